"""Big store values stay JSON text until a step reads them (``checkpoint.texts``, ``codec._raw``).

A record whose store holds a big value lists where that value's text lies; ``resume`` puts the
text in the store as it is, and the first ``get`` parses it. What is checked here: the record
is still one JSON document; a resumed run reads the value equal and fresh on every get; the
text is written back verbatim, never parsed, when nothing changed it; the codec's limits hold
for text as for data; a record whose layout was tampered with is a damaged store, never a
crash; records written before the layout still load.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import from_json, to_json

from notebook_workflows import (
    Context,
    ContextSerdeError,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.checkpoint.texts import dumps, parse_record
from notebook_workflows.codec import RawJSON, decode_raw
from notebook_workflows.codec._raw import _PARSER_DEPTH
from notebook_workflows.errors import SnapshotError
from notebook_workflows.serialization import MAX_DEPTH

ITEMS = {f"k{i:04d}": {"id": i, "name": f"item-{i}", "tags": ["a", "b"]} for i in range(300)}


class Go(Event):
    pass


class Keep(Workflow):
    """Sets ``items`` (a big value) and ``n``, then fails once in ``use`` (``fail`` set)."""

    fail = False

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Go:
        await ctx.store.set("items", ev.items)
        await ctx.store.set("n", 1)
        return Go()

    @step
    async def use(self, ctx: Context, ev: Go) -> StopEvent:
        if self.fail:
            raise RuntimeError("use failed")
        items = await ctx.store.get("items")
        again = await ctx.store.get("items")  # the stored object, parsed once
        return StopEvent(result=(len(items), again is items, "extra" not in again))


def raw_of(snapshot: Any, key: str = "items") -> RawJSON:
    value = snapshot._raw_context()["store"][key]
    assert type(value) is RawJSON, value
    return value


async def failed_run(store: Any, items: Any = ITEMS) -> str:
    workflow = Keep()
    workflow.fail = True
    handler = workflow.run(checkpoint=store, items=items)
    with pytest.raises(RuntimeError):
        await handler
    return handler.run_id


# -- the record -------------------------------------------------------------------------------


def test_a_record_with_a_big_value_is_still_one_json_document() -> None:
    record = {"store_set": {"items": ITEMS, "n": 1}, "queue_empty": True}
    text = dumps(record)
    assert text.startswith('{"$raw":[')
    whole = json.loads(text)  # any JSON tool reads it
    assert whole["store_set"] == {"items": ITEMS, "n": 1} and whole["queue_empty"] is True
    data = parse_record(text, "here")
    assert type(data["store_set"]["items"]) is RawJSON
    assert data["store_set"]["items"].text == to_json(ITEMS).decode()
    assert data["store_set"]["n"] == 1 and data["queue_empty"] is True


def test_a_record_without_big_values_is_written_as_before() -> None:
    small = {"store_set": {"n": 1, "cfg": {"a": [1, 2]}}, "queue_empty": True}
    assert json.loads(dumps(small)) == small and not dumps(small).startswith('{"$raw"')
    scalars = {"store_set": {"n": 1}, "queue_empty": True}
    assert dumps(scalars) == to_json(scalars).decode()  # one encoder call, as before


def test_records_written_before_the_layout_still_load() -> None:
    old = to_json({"store": {"items": ITEMS}, "status": "done"}).decode()
    data = parse_record(old, "here")
    assert data["store"]["items"] == ITEMS


# -- resume -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_resume_reads_a_big_value_as_text_parsed_once_by_the_first_get(
    kind: str, tmp_path: Path
) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "runs.db")
    run_id = await failed_run(store)
    raw_of(store.latest(run_id))
    restored = Context.from_dict(Keep(), store.latest(run_id)._raw_context())
    assert type(restored.store._data["items"]) is RawJSON  # not parsed at load
    assert await Keep().resume(run_id, store=store) == (len(ITEMS), True, True)


async def test_resume_writes_the_text_back_as_it_is(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    run_id = await failed_run(store)
    before = raw_of(store.latest(run_id)).text
    assert await Keep().resume(run_id, store=store) == (len(ITEMS), True, True)
    resumed = [s for s in store.history(run_id) if s.reason == "resume"]
    assert [s.kind for s in resumed] == ["base"]
    assert raw_of(resumed[0]).text == before


async def test_the_public_context_holds_data_not_text(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    run_id = await failed_run(store)
    snapshot = store.latest(run_id)
    assert snapshot.context["store"]["items"] == ITEMS
    json.dumps(snapshot.context)  # what a user may do with it
    ctx = Context.from_dict(Keep(), snapshot._raw_context())
    assert ctx.to_dict()["store"]["items"] == ITEMS
    assert ctx.store.to_dict()["items"] == ITEMS
    calls = [c for s in store.history(run_id) for c in s.calls if c["step"] == "begin"]
    assert calls[0]["set"]["items"] == ITEMS


async def test_a_big_value_a_step_set_is_replayed_by_a_rerun(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    run_id = await failed_run(store)
    assert await Keep().rerun(run_id, store=store) == (len(ITEMS), True, True)


def test_a_raw_value_travels_to_another_process_as_text() -> None:
    raw = RawJSON(to_json(ITEMS).decode(), "snapshot 3 of run 'r'")
    back = pickle.loads(pickle.dumps(raw))
    assert type(back) is RawJSON and back.text == raw.text and back.where == raw.where


class KeepSync(Workflow):
    """``Keep`` with a sync ``use``, to run in another process."""

    fail = False

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Go:
        await ctx.store.set("items", ev.items)
        return Go()

    @step
    def use(self, ctx: Context, ev: Go) -> StopEvent:
        if self.fail:
            raise RuntimeError("use failed")
        return StopEvent(result=ctx.store.get("items") == ITEMS)


async def test_a_resumed_step_in_another_process_reads_the_value_kept_as_text() -> None:
    store = MemoryStore()
    workflow = KeepSync()
    workflow.fail = True
    handler = workflow.run(checkpoint=store, items=ITEMS)
    with pytest.raises(RuntimeError):
        await handler
    raw_of(store.latest(handler.run_id))
    with ProcessPoolExecutor(1) as pool:
        assert await KeepSync(executor=pool).resume(handler.run_id, store=store) is True


# -- the codec's rules, for text --------------------------------------------------------------


def test_the_parser_depth_the_limit_relies_on() -> None:
    from_json("[" * _PARSER_DEPTH + "]" * _PARSER_DEPTH)
    with pytest.raises(ValueError, match="recursion limit"):
        from_json("[" * (_PARSER_DEPTH + 1) + "]" * (_PARSER_DEPTH + 1))


def test_text_nested_past_the_limit_is_refused_naming_the_key() -> None:
    ok = RawJSON("[" * MAX_DEPTH + "]" * MAX_DEPTH, "snapshot 1 of run 'r'")
    assert decode_raw(ok, "store.deep") is not None
    deep = RawJSON("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "snapshot 1 of run 'r'")
    with pytest.raises(ContextSerdeError, match=r"store\.deep .*snapshot 1 of run 'r'.*128"):
        decode_raw(deep, "store.deep")


@pytest.mark.parametrize(
    "text",
    [
        '{"$set": [1, 2]}',
        '{"\\u0024set": [1, 2]}',  # a tag spelled with an escape is still read as a tag
        '{"a": {"$datetime": "2026-01-01T00:00:00"}}',
        '["$5", "\\u00e9"]',
    ],
)
def test_text_with_tags_is_decoded_as_data_is(text: str) -> None:
    from notebook_workflows.serialization import decode

    assert decode_raw(RawJSON(text, "x"), "v") == decode(json.loads(text), "v")


@pytest.mark.parametrize(
    "text",
    ["[1, 2", "[1], [2]", "", '{"$nope": 1}', '"\\ud800"', "NaN", "1" + "0" * 4300],
)
def test_bad_text_is_a_clear_error_naming_the_key_and_the_snapshot(text: str) -> None:
    with pytest.raises(ContextSerdeError, match=r"store\.items") as caught:
        decode_raw(RawJSON(text, "snapshot 4 of run 'r'"), "store.items")
    if "$nope" not in text:
        assert "snapshot 4 of run 'r'" in str(caught.value)


def test_a_number_too_big_for_a_float_never_reaches_a_record_as_infinity() -> None:
    ctx = Context.from_dict(Keep(), _context_with({"items": RawJSON("[1e400]", "x")}))
    with pytest.raises(ContextSerdeError, match="items"):
        ctx.to_dict()  # the text as it is would be written back as the non-JSON Infinity
    assert asyncio.run(ctx.store.get("items")) == [float("inf")]  # as JSON parsers read it
    # read, it is the store's value: encoded again, the infinity is tagged, as set() tags it
    written = json.dumps(ctx.to_dict()["store"]["items"], allow_nan=False)
    assert json.loads(written) == [{"$float": "inf"}]


def _context_with(store: dict[str, Any]) -> dict[str, Any]:
    data = Context(Keep()).to_dict()
    data["store"] = store
    return data


# -- tampering --------------------------------------------------------------------------------


async def test_a_tampered_layout_is_a_damaged_store_never_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    run_id = await failed_run(store)
    store.close()
    con = sqlite3.connect(path)
    rows = con.execute("SELECT key, data FROM snapshots WHERE data LIKE '{\"$raw\":[%'").fetchall()
    assert rows
    key, original = rows[0]
    rng = random.Random(7)
    for _ in range(300):
        text = _mutated(original, rng)
        con.execute("UPDATE snapshots SET data = ? WHERE key = ?", (text, key))
        con.commit()
        with SQLiteStore(path) as store:
            try:
                snapshot = store.latest(run_id)
                snapshot.context  # noqa: B018 - the property parses
                ctx = Context.from_dict(Keep(), snapshot._raw_context())
                await ctx.store.get("items")
            except (SnapshotError, ContextSerdeError):
                pass
    con.close()


def _mutated(text: str, rng: random.Random) -> str:
    end = text.index("],")
    offsets = [int(n) for n in text[len('{"$raw":[') : end].split(",")]
    how = rng.randrange(4)
    if how == 0:  # other numbers
        offsets = [max(0, n + rng.randint(-30, 30)) for n in offsets]
    elif how == 1:  # fewer or more of them
        offsets = offsets[:1] if rng.random() < 0.5 else [*offsets, offsets[-1] + 5]
    head = '{"$raw":[' + ",".join(map(str, offsets)) + "],"
    body = text[end + 2 :]
    if how == 2:  # a cut inside the value
        cut = rng.randrange(len(body))
        body = body[:cut] + body[cut + rng.randint(1, 50) :]
    elif how == 3:  # a byte changed anywhere
        at = rng.randrange(len(body))
        body = body[:at] + rng.choice('{}[]",:$0a\\') + body[at + 1 :]
    return head + body


async def test_snapshots_that_share_a_value_share_its_parse(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    run_id = await failed_run(store)
    history = store.history(run_id)
    kept = [s for s in history if "items" in s._raw_context()["store"]]
    assert len(kept) >= 2
    first = kept[0].context["store"]["items"]
    assert all(s.context["store"]["items"] is first for s in kept)  # one parse, as before


def test_a_parse_error_points_into_the_saved_text() -> None:
    with pytest.raises(ContextSerdeError) as caught:
        decode_raw(RawJSON('{"a": 1x}', "snapshot 2 of run 'r'"), "store.a")
    assert "column 8" in str(caught.value) and "the store is damaged" in str(caught.value)


async def test_a_view_of_a_store_with_damaged_text_says_why_and_keeps_the_rest() -> None:
    from notebook_workflows.notebook.display import decoded_store

    ctx = Context.from_dict(
        Keep(), _context_with({"items": RawJSON("[1, 2", "snapshot 3 of run 'r'"), "n": 1})
    )
    handler = Keep().run(ctx=ctx, stepwise=True)
    shown = decoded_store(handler.view())
    await handler.cancel_run()
    assert shown["n"] == 1
    assert "snapshot 3 of run 'r'" in repr(shown["items"]) and "damaged" in repr(shown["items"])
