"""A checkpoint is a delta, yet history() rebuilds every snapshot exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Approve, Counter, Docs
from helpers import waiting

from notebook_workflows import Context, HumanResponseEvent, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import Recorder, SQLiteStore
from notebook_workflows.snapshot import snapshot_of


class Witness(Recorder):
    """A recorder that also keeps the full snapshot after every record it writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.full: list[dict[str, Any]] = []

    def _keep(self, ctx: Any) -> None:
        self.full.append(json.loads(json.dumps(snapshot_of(ctx))))

    def run_started(self, ctx: Any) -> Any:
        opening = super().run_started(ctx)
        self._keep(ctx)
        return opening  # the driver makes the run's first record with it, off the loop

    def step_completed(self, ctx: Any, step: Any) -> Any:
        written = super().step_completed(ctx, step)
        self._keep(ctx)
        return written  # the run waits for it, as for any recorder's

    def status_changed(self, ctx: Any) -> Any:
        written = super().status_changed(ctx)
        self._keep(ctx)
        return written

    def run_ended(self, ctx: Any) -> Any:
        rest = super().run_ended(ctx)
        self._keep(ctx)
        return rest


@pytest.fixture
def stores(any_store: Any) -> list[Any]:
    return [any_store]  # every store in turn: memory, SQLite, Redis, PostgreSQL (servers.py)


def assert_history_is(store: Any, run_id: str, full: list[dict[str, Any]]) -> None:
    history = store.history(run_id)
    assert [s.seq for s in history] == list(range(len(full)))
    for snapshot, expected in zip(history, full, strict=True):
        assert snapshot.context == expected, f"snapshot {snapshot.seq} differs"
    # and in any order, each one on its own
    for seq in (len(full) - 1, 0, len(full) // 2):
        assert store.snapshot(run_id, seq).context == full[seq]
    assert store.latest(run_id).context == full[-1]


@pytest.mark.parametrize("gap", [0, 64 * 1024], ids=["base-often", "base-rarely"])
async def test_history_rebuilds_every_snapshot_of_a_fan_out(
    tmp_path: Path, gap: int, stores: list[Any]
) -> None:
    for store in stores:
        witness = Witness(store, min_base_gap=gap)
        handler = Docs().run(checkpoint=witness, ids=list(range(8)), log=str(tmp_path / "log"))
        assert await handler == list(range(8))
        assert len(witness.full) == 1 + 1 + 8 + 8 + 1  # start, split, converts, joins, end
        assert_history_is(store, handler.run_id, witness.full)
        kinds = [s.kind for s in store.history(handler.run_id)]
        assert kinds[0] == "base"
        if gap == 0:
            assert kinds.count("base") > 2  # the rule "deltas outgrow the base" kicked in
        else:
            assert kinds.count("base") == 1


async def test_history_follows_deleted_keys_and_a_long_chain(
    tmp_path: Path, stores: list[Any]
) -> None:
    for store in stores:
        witness = Witness(store, min_base_gap=2000)
        handler = Counter().run(checkpoint=witness, n=60)
        assert await handler == 60
        assert_history_is(store, handler.run_id, witness.full)
        assert "pop_me" in store.snapshot(handler.run_id, 6).context["store"]
        assert "pop_me" not in store.snapshot(handler.run_id, 7).context["store"]


async def test_history_follows_questions_and_answers(tmp_path: Path, stores: list[Any]) -> None:
    for store in stores:
        witness = Witness(store)
        handler = Approve().run(checkpoint=witness, draft="v1")
        await waiting(handler)
        handler.ctx.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "v1: yes"
        assert_history_is(store, handler.run_id, witness.full)


async def test_snapshots_say_what_they_record(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Counter().run(checkpoint=store, n=3)
    await handler
    history = store.history(handler.run_id)
    assert [(s.reason, s.step, s.status, s.steps) for s in history] == [
        ("start", None, "running", 0),
        ("step", "begin", "running", 1),
        ("step", "tick", "running", 2),
        ("step", "tick", "running", 3),
        ("step", "tick", "done", 4),  # the step that returned the StopEvent ended the run
        ("end", None, "done", 4),
    ]
    assert all(s.run_id == handler.run_id and s.created_at > 0 for s in history)
    assert "after step 'tick'" in repr(history[2])
    assert store.snapshot(handler.run_id, -1).seq == 5  # negative numbers count from the end


async def test_a_big_state_with_small_changes_writes_small_deltas(tmp_path: Path) -> None:
    """The cost follows the change: 2,000 keys in the store, one changed per step."""
    sizes: list[int] = []

    class Wide(SQLiteStore):
        def _append(self, record: Any, new_run: Any) -> None:
            sizes.append(len(record.data))
            super()._append(record, new_run)

        def _append_many(self, records: Any) -> None:
            sizes.extend(len(record.data) for record in records)
            super()._append_many(records)

    store = Wide(tmp_path / "runs.db")
    handler = Counter().run(checkpoint=store, n=1)
    await handler
    ctx = handler.ctx
    for i in range(2000):
        await ctx.store.set(f"item{i:04d}", {"id": i, "name": f"item-{i}", "tags": ["a", "b"]})
    sizes.clear()
    handler = Counter().run(ctx=ctx, checkpoint=store, n=100)
    assert await handler == 100
    base, *deltas = sizes
    assert base > 100_000
    assert max(deltas) < 1_000  # a delta holds the step's change, not the 2,000 keys
    assert sum(deltas) < base  # so no second base was needed


class BigState(Workflow):
    @step
    async def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("items", ev.items)
        return StopEvent(result=None)


async def test_loading_a_big_snapshot_runs_no_garbage_collection_and_leaves_the_collector_as_it_was(
    tmp_path: Path,
) -> None:
    """Decoding a big state makes tens of thousands of containers, none of them garbage: the
    collector waits until the snapshot is loaded (codec._text)."""
    import gc

    from notebook_workflows import Context

    store = SQLiteStore(tmp_path / "runs.db")
    items = {f"k{i}": {"id": i, "tags": ["a", "b"]} for i in range(20_000)}
    await BigState().run(checkpoint=store, run_id="big", items=items)
    collections: list[str] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections.append(phase)

    data = SQLiteStore(tmp_path / "runs.db").latest("big").context
    gc.collect()
    gc.callbacks.append(seen)
    try:
        ctx = Context.from_dict(BigState(), data)  # 20,000 dicts decoded
        during = len(collections)
        assert gc.isenabled()
        gc.disable()  # someone's own choice: loading leaves it off
        Context.from_dict(BigState(), data)
        assert not gc.isenabled()
        gc.enable()
    finally:
        gc.callbacks.remove(seen)
    assert during <= 1  # the one it deferred, when it starts again; dozens without the pause
    assert (await ctx.store.get("items")) == items
