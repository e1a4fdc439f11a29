"""num_workers bounds concurrency; sync steps run off the event loop's thread."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step


class Job(Event):
    i: int


class Finished(Event):
    i: int


class Pool(Workflow):
    def __init__(self, jobs: int) -> None:
        super().__init__()
        self.jobs = jobs
        self.active = 0
        self.peak = 0

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Job | None:
        for i in range(self.jobs):
            ctx.send_event(Job(i=i))
        return None

    @step(num_workers=3)
    async def work(self, ev: Job) -> Finished:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.01)
        self.active -= 1
        return Finished(i=ev.i)

    @step
    async def done(self, ctx: Context, ev: Finished) -> StopEvent | None:
        if ctx.collect_events(ev, [Finished] * self.jobs) is None:
            return None
        return StopEvent(result=self.peak)


async def test_num_workers_bounds_how_many_invocations_run_at_once() -> None:
    assert await Pool(jobs=12).run() == 3


async def test_steps_run_one_at_a_time_by_default() -> None:
    class Serial(Pool):
        @step
        async def work(self, ev: Job) -> Finished:  # no num_workers: the default of 1
            return await Pool.work(self, ev)

    assert await Serial(jobs=5).run() == 1


async def test_sync_steps_run_on_worker_threads_in_parallel() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    # each invocation waits until all four are inside the step: they can only pass together
    together = threading.Barrier(4, timeout=20)

    class Blocking(Pool):
        @step(num_workers=4)
        def work(self, ev: Job) -> Finished:  # type: ignore[override]
            threads.add(threading.get_ident())
            together.wait()
            return Finished(i=ev.i)

    await Blocking(jobs=4).run()
    assert loop_thread not in threads and len(threads) == 4


async def test_a_sync_step_can_send_events_from_its_thread() -> None:
    class Sender(Workflow):
        @step
        def begin(self, ctx: Context, ev: StartEvent) -> Job | None:
            ctx.send_event(Job(i=7))
            return None

        @step
        async def end(self, ev: Job) -> StopEvent:
            return StopEvent(result=ev.i)

    assert await Sender().run() == 7


class Guarded(Workflow):
    """Steps that use what asks for the current task: asyncio.timeout and TaskGroup."""

    @step
    async def begin(self, ev: StartEvent) -> Job:
        task = asyncio.current_task()
        try:
            async with asyncio.timeout(0.02):  # entered before the step first suspends
                await asyncio.sleep(1)
        except TimeoutError:
            timed_out = True
        assert asyncio.current_task() is task  # one task for the whole invocation
        async with asyncio.TaskGroup() as group:
            jobs = [group.create_task(asyncio.sleep(0.001, result=i)) for i in range(3)]
        return Job(i=sum(j.result() for j in jobs) + 10 * timed_out)

    @step
    async def end(self, ev: Job) -> StopEvent:
        return StopEvent(result=ev.i)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout and TaskGroup: 3.11+")
async def test_steps_run_as_their_own_task_from_the_first_line() -> None:
    handler = Guarded().run()
    assert await handler == 13  # the timeout hit the step, not the run
    assert handler.status == "done"
