"""A checkpoint writes what changed; replaying the changes gives back every full snapshot."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from flows import Ask
from helpers import waiting

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.checkpoint.delta import DELETED, apply_delta, delta_of
from notebook_workflows.snapshot import snapshot_of


class Recorder:
    """Checks at every step that base + deltas == the full snapshot."""

    def __init__(self) -> None:
        self.current: dict[str, Any] | None = None
        self.deltas: list[dict[str, Any]] = []
        self.checked = 0

    def run_started(self, ctx: Any) -> None:
        ctx._state.drain_changes()
        ctx.store._drain_changes(DELETED)
        self.current = copy.deepcopy(snapshot_of(ctx))

    def step_completed(self, ctx: Any, step: Any) -> None:
        self._check(ctx)

    def run_ended(self, ctx: Any) -> None:
        self._check(ctx)

    def _check(self, ctx: Any) -> None:

        delta = delta_of(ctx, ctx._state.drain_changes(), ctx.store._drain_changes(DELETED))
        self.deltas.append(delta)
        assert self.current is not None
        self.current = apply_delta(self.current, copy.deepcopy(delta))
        full = snapshot_of(ctx)
        for key in (
            "store",
            "queue",
            "in_flight",
            "collected",
            "waiters",
            "questions",
            "stop",
            "counters",
            "steps_done",
            "status",
        ):
            assert self.current[key] == full[key], key
        self.checked += 1


class Item(Event):
    i: int


class Done(Event):
    i: int


class FanIn(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Item | None:
        await ctx.store.set("started", True)
        for i in range(6):
            ctx.send_event(Item(i=i))
        return None

    @step(num_workers=3)
    async def work(self, ctx: Context, ev: Item) -> Done:
        await asyncio.sleep(0.001 * (ev.i % 3))
        async with ctx.store.edit_state() as state:
            state["seen"] = [*state.get("seen", []), ev.i]
        return Done(i=ev.i)

    @step
    async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
        got = ctx.collect_events(ev, [Done] * 6)
        if got is None:
            return None
        await ctx.store.delete("started")
        return StopEvent(result=sorted(d.i for d in got))


async def test_deltas_rebuild_every_snapshot_of_a_fan_in() -> None:
    recorder = Recorder()
    assert await FanIn().run(checkpoint=recorder) == list(range(6))
    assert recorder.checked == 1 + 6 + 6 + 1  # every step and the end


async def test_a_delta_holds_what_changed_not_the_whole_state() -> None:
    recorder = Recorder()
    await FanIn().run(checkpoint=recorder)
    first, *later = recorder.deltas
    # begin sent six items: queued, or already in flight when the checkpoint was written
    assert len(first["queue_add"]) + len(first["in_flight_put"]) == 6
    for delta in later:
        changed = delta["queue_add"] + delta["in_flight_put"] + delta["collected_add"]
        assert len(changed) <= 4, delta
        assert set(delta["store_set"]) <= {"seen"}


async def test_deltas_follow_waiters_and_answers() -> None:
    recorder = Recorder()
    handler = Ask().run(checkpoint=recorder)
    await waiting(handler)
    handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == "yes"
    assert recorder.checked == 2
