"""Bugs found by trying the engine, each kept from coming back.

A run killed in its first step lost its start fields; ``await handler.cancel()`` returned
before the cancelled step's clean-up ran; a step raising ``CancelledError`` behaved differently
on different Pythons; ``collect_events`` from a sync step changed the run from a worker thread;
setting one field of a typed state validated the whole model again.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from pydantic import BaseModel, field_validator

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledError,
    step,
)
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.runtime import routing


class Loaded(Event):
    path: str


class Load(Workflow):
    die_in_first_step = False

    @step
    async def load(self, ev: StartEvent) -> Loaded:
        if self.die_in_first_step:
            os._exit(9)  # the process dies while the first step runs
        return Loaded(path=ev.get("path", "<lost>"))

    @step
    async def done(self, ev: Loaded) -> StopEvent:
        return StopEvent(result=ev.path)


async def test_a_fork_of_snapshot_zero_keeps_the_start_fields() -> None:
    store = MemoryStore()
    first = Load().run(checkpoint=store, path="/data/in.csv")
    assert await first == "/data/in.csv"
    assert await Load().resume(first.run_id, store=store, at=0) == "/data/in.csv"


def _run_and_die(db: str) -> None:
    async def main() -> None:
        workflow = Load()
        workflow.die_in_first_step = True
        await workflow.run(checkpoint=SQLiteStore(db), run_id="dies", path="/data/in.csv")

    asyncio.run(main())


async def test_a_run_killed_in_its_first_step_resumes_with_its_start_fields(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "runs.db")
    process = multiprocessing.get_context("spawn").Process(target=_run_and_die, args=(db,))
    process.start()
    await asyncio.to_thread(process.join, 60)
    assert process.exitcode == 9
    store = SQLiteStore(db)
    assert store.latest("dies").status == "running"
    assert await Load().resume("dies", store=store) == "/data/in.csv"


class Cleanup(Workflow):
    entered: asyncio.Event

    @step
    async def slow(self, ctx: Context, ev: StartEvent) -> StopEvent:
        try:
            self.entered.set()
            await asyncio.sleep(60)
        finally:
            await ctx.store.set("cleaned", True)  # lands before the last checkpoint
        return StopEvent()


async def test_cancel_returns_after_the_cancelled_steps_clean_up_is_saved() -> None:
    store = MemoryStore()
    workflow = Cleanup()
    workflow.entered = asyncio.Event()
    handler = workflow.run(checkpoint=store)
    await workflow.entered.wait()
    await handler.cancel()
    assert await handler.ctx.store.get("cleaned") is True
    latest = store.latest(handler.run_id)
    assert latest.status == "cancelled"
    assert latest.context["store"] == handler.ctx.to_dict()["store"]
    with pytest.raises(WorkflowCancelledError):
        await handler


class RaisesCancelled(Workflow):
    attempts: int = 0

    @step(
        retry_policy=ConstantDelayRetryPolicy(
            delay=0, maximum_attempts=2, retry_on=(Exception, asyncio.CancelledError)
        )
    )
    async def flaky(self, ev: StartEvent) -> StopEvent:
        type(self).attempts += 1
        if type(self).attempts == 1:
            raise asyncio.CancelledError("the step gave up itself")
        return StopEvent(result="second try")


class AlwaysCancelled(Workflow):
    @step
    async def give_up(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(0)
        raise asyncio.CancelledError()


async def test_a_step_raising_cancelled_error_is_that_step_failing() -> None:
    RaisesCancelled.attempts = 0
    assert await RaisesCancelled().run() == "second try"  # its retry policy decides
    handler = AlwaysCancelled().run()
    with pytest.raises(asyncio.CancelledError, match="give_up"):
        await handler
    assert handler.status == "failed"  # not "cancelled": nobody cancelled the run


class Part(Event):
    i: int


class SyncJoin(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Part | None:
        for i in range(3):
            ctx.send_event(Part(i=i))
        return None

    @step(num_workers=3)
    def join(self, ctx: Context, ev: Part) -> StopEvent | None:  # a sync step: on a thread
        got = ctx.collect_events(ev, [Part, Part, Part])
        return None if got is None else StopEvent(result=sorted(p.i for p in got))


async def test_collect_events_in_a_sync_step_changes_the_run_on_its_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    collect = routing.collect

    def watched(*args: object, **kwargs: object) -> object:
        threads.append(threading.get_ident())
        return collect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(routing, "collect", watched)
    assert await SyncJoin().run() == [0, 1, 2]
    assert threads == [threading.get_ident()] * 3


VALIDATIONS = [0]  # how many times the whole field "rows" was validated


class Big(BaseModel):
    rows: list[int] = list(range(1000))
    n: int = 0
    checked: int = 0

    @field_validator("rows")
    @classmethod
    def count_checks(cls, rows: list[int]) -> list[int]:
        VALIDATIONS[0] += 1
        return rows


class Typed(Workflow):
    @step
    async def bump(self, ctx: Context[Big], ev: StartEvent) -> StopEvent:
        await ctx.store.get("n")
        VALIDATIONS[0] = 0
        for i in range(50):
            await ctx.store.set("n", i)
        return StopEvent(result=VALIDATIONS[0])


async def test_setting_one_field_of_a_typed_state_validates_only_that_field() -> None:
    # at most one whole validation (the first set builds the model), not one per set
    assert await Typed().run() <= 1
