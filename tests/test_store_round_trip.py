"""Nothing lost: what ``ctx.store.set`` accepts is checkpointed and read back equal, through
every store; what could not be written is refused at ``set``, naming the key path and why.

The property runs a one-step workflow that sets a generated value with ``checkpoint=store``,
then loads ``store.latest(run_id).context`` with ``Context.from_dict``. An oracle written here,
apart from the codec, says which values must be refused: a lone surrogate anywhere, or more
than ``MAX_DEPTH`` levels in the JSON form.
"""

from __future__ import annotations

import asyncio
import math
import string
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from servers import store_fixture
from test_serialization_values import assert_same

from notebook_workflows import Context, ContextSerdeError, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore, texts
from notebook_workflows.serialization import INT_DIGITS, MAX_DEPTH


class SetValue(Workflow):
    """Sets the value it was made with at key ``v``."""

    def __init__(self, value: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    @step
    async def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("v", self.value)
        return StopEvent(result="kept")


class FromStart(Workflow):
    """Sets the start event's ``value`` field at key ``v``."""

    @step
    async def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("v", ev.value)
        return StopEvent(result="kept")


store = store_fixture("memory", "sqlite", "redis")


# -- the oracle -------------------------------------------------------------------------------


def has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if any("\ud800" <= c <= "\udfff" for c in v):
                return True
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
    return False


def json_depth(v: Any) -> int:
    """Levels of the JSON form: a tag object counts one, its list or mapping one more."""
    if isinstance(v, list):
        return 1 + max(map(json_depth, v), default=0)
    if isinstance(v, (tuple, set, frozenset)):
        return 2 + max(map(json_depth, v), default=0)
    if isinstance(v, dict):
        inner = max((json_depth(x) for x in v.values()), default=0)
        if not all(isinstance(k, str) for k in v):
            return 3 + max(inner, *(json_depth(k) for k in v))
        return (2 if any(k.startswith("$") for k in v) else 1) + inner
    if isinstance(v, float) and not math.isfinite(v):
        return 1
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**INT_DIGITS:
        return 1
    if isinstance(v, (bytes, date)):
        return 1
    return 0


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


# -- strategies -------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=6) | st.sampled_from(
    ["\ud800", "ok \udc80", "\x00", "a\x00b"]  # lone surrogates and NUL, often
)
keys = any_text | st.text(string.ascii_letters, max_size=4) | st.sampled_from(["$ref", "\x00"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.tuples(st.integers(250, 6000), st.integers(), st.sampled_from([1, -1])).map(
        lambda t: t[2] * (10 ** t[0] + t[1])  # around INT_DIGITS and CPython's 4,300 digits
    )
    | st.floats()  # nan, infinities, 1e308
    | any_text
    | st.binary(max_size=4)
    | st.dates()
)
hashable = leaves.filter(lambda v: not (isinstance(v, float) and math.isnan(v)))
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=3)
        | st.dictionaries(st.integers(), inner, max_size=2)
        | st.frozensets(hashable, max_size=3)
    ),
    max_leaves=12,
) | st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2).map(nested)


def must_be_refused(value: Any) -> bool:
    return has_lone_surrogate(value) or json_depth(value) > MAX_DEPTH


async def check_value(value: Any, store: Any, raw: bool = False) -> None:
    if must_be_refused(value):
        with pytest.raises(ContextSerdeError) as caught:
            await Context(SetValue()).store.set("cfg", value)
        message = str(caught.value)
        assert message.startswith("cannot store cfg")
        assert "lone surrogate" in message or "nested too deeply" in message, message
        return
    handler = SetValue(value).run(checkpoint=store)
    assert await handler == "kept"
    snapshot = store.latest(handler.run_id)
    restored = Context.from_dict(SetValue(), snapshot._raw_context() if raw else snapshot.context)
    got = await restored.store.get("v")
    assert_same(got, value)
    if raw:  # the value came as text, and each get parses it afresh
        assert_same(await restored.store.get("v"), value)
        restored.store._encoded()  # parsed into data for a view, checked on the way
        assert_same(await restored.store.get("v"), value)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(value=values)
def test_every_value_set_accepts_is_written_and_read_back_equal(store: Any, value: Any) -> None:
    event("refused at set" if must_be_refused(value) else "checkpointed and read back")
    asyncio.run(check_value(value, store))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(value=values)
def test_every_value_is_read_back_equal_when_resume_keeps_it_as_text(
    store: Any, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same property through what ``resume`` loads, with every value that holds a
    container written as raw text (``checkpoint.texts``, its size threshold lowered to 1)."""
    monkeypatch.setattr(texts, "RAW_MIN", 1)
    asyncio.run(check_value(value, store, raw=True))


@pytest.mark.parametrize(
    "value",
    [
        10**5000,
        -(2**100_000),
        float("nan"),
        float("-inf"),
        1e308,
        "a\x00b",
        {"\x00": ["\x00"]},
        nested(MAX_DEPTH),
    ],
    ids=["10**5000", "-2**100000", "nan", "-inf", "1e308", "nul", "nul-key", "max-depth"],
)
@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "as-text"])
async def test_edge_values_survive_a_checkpoint(
    store: Any, value: Any, raw: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(texts, "RAW_MIN", 1)
    await check_value(value, store, raw)


async def test_a_big_int_start_field_survives_every_snapshot_of_the_run(store: Any) -> None:
    value = 10**5000 + 1
    handler = FromStart().run(checkpoint=store, value=value)
    assert await handler == "kept"
    history = store.history(handler.run_id)
    assert len(history) >= 2
    for snapshot in history:  # each holds the StartEvent the run was given
        Context.from_dict(FromStart(), snapshot.context)
    first = Context.from_dict(FromStart(), history[0].context)
    [started] = first.to_dict()["in_flight"]  # the first step had started with it
    assert started["event"]["data"]["value"] == {"$int": hex(value)}
    assert set(first.to_dict()["start"]["fields"]) == {"value"}  # and its digest is kept
    latest = Context.from_dict(FromStart(), store.latest(handler.run_id).context)
    assert await latest.store.get("v") == value


@pytest.mark.parametrize(
    ("value", "where", "reason"),
    [
        ({"notes": ["fine", "bad \ud800"]}, "cfg.notes[1]", "lone surrogate"),
        ({"\udcff": 1}, "cfg['\\udcff']", "lone surrogate"),
        (nested(300), "cfg", "nested too deeply"),
        ({"deep": nested(MAX_DEPTH)}, "cfg", "nested too deeply"),
    ],
    ids=["surrogate", "surrogate-key", "300-deep", "one-too-deep"],
)
async def test_what_could_not_be_written_is_refused_at_set(
    value: Any, where: str, reason: str
) -> None:
    ctx = Context(SetValue())
    with pytest.raises(ContextSerdeError) as caught:
        await ctx.store.set("cfg", value)
    message = str(caught.value)
    assert message.startswith(f"cannot store {where}: ") and reason in message
    assert ctx.store.keys() == []


async def test_a_step_setting_an_unwritable_value_fails_there_not_at_the_checkpoint() -> None:
    store = MemoryStore()
    handler = SetValue({"n": "\ud800"}).run(checkpoint=store)
    with pytest.raises(ContextSerdeError, match=r"cannot store v\.n: .*lone surrogate"):
        await handler
    assert handler.status == "failed"
    snapshot = store.latest(handler.run_id)  # the run's checkpoints stay readable
    Context.from_dict(SetValue(), snapshot.context)
