"""Workflows whose sync steps run on other executors (process pools, a Dask cluster).

They live in a module of their own so that a worker process can import them by name (a
``ProcessPoolExecutor`` pickles steps by reference).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Annotated, Any

from pydantic import BaseModel

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.resources import Resource


class Item(Event):
    i: int


class Crunched(Event):
    i: int
    value: int
    pid: int
    stamp: int = 0


class Note(Event):
    text: str


def crunch_number(i: int, rounds: int) -> int:
    """Pure-Python CPU work: a few million additions, no I/O, holding the GIL."""
    total = i
    for k in range(rounds):
        total = (total * 31 + k) % 1_000_003
    return total


class FanOut(Workflow):
    """``n`` items fanned out to a sync step, gathered by an async one."""

    rounds = 20_000

    @step
    async def spread(self, ctx: Context, ev: StartEvent) -> list[Item]:
        await ctx.store.set("n", ev.n)
        await ctx.store.set("loop_pid", os.getpid())  # async steps run on the run's loop
        same = ev.get("same", False)
        return [Item(i=0 if same else i) for i in range(ev.n)]

    @step(num_workers=64)
    def crunch(self, ev: Item) -> Crunched:
        value = crunch_number(ev.i, self.rounds)
        return Crunched(i=ev.i, value=value, pid=os.getpid(), stamp=time.perf_counter_ns())

    @step
    async def gather(self, ctx: Context, ev: Crunched) -> StopEvent | None:
        got = ctx.collect_events(ev, [Crunched] * ctx.store._get("n", 0))
        if got is None:
            return None
        return StopEvent(result=sorted((e.i, e.value, e.pid, e.get("stamp", 0)) for e in got))


class Tally(BaseModel):
    seen: int = 0
    last: str = ""


class EffectsFlow(Workflow):
    """A remote step that writes the store, sends events, writes to the stream and records
    a ``ctx.once`` call; the async steps after it see all of it."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Item:
        ctx.store._set("before", "kept")
        ctx.store._set("doomed", 1)
        return Item(i=ev.i)

    @step
    def work(self, ctx: Context, ev: Item) -> Crunched | Note:
        assert ctx.store.get("before") == "kept"
        ctx.store.set("from_remote", {"i": ev.i, "pid": os.getpid()})
        ctx.store.delete("doomed")
        charged = ctx.once("charge", lambda: f"receipt-{ev.i}")
        ctx.store.set("receipt", charged)
        ctx.write_event_to_stream(Note(text=f"worked on {ev.i}"))
        ctx.send_event(Note(text="sent"))
        return Crunched(i=ev.i, value=ev.i * 2, pid=os.getpid())

    @step
    async def noted(self, ctx: Context, ev: Note) -> None:
        await ctx.store.set("noted", ev.text)

    @step
    async def finish(self, ctx: Context, ev: Crunched) -> StopEvent:
        return StopEvent(result=ev.value)


class TypedFlow(Workflow):
    @step
    def bump(self, ctx: Context[Tally], ev: StartEvent) -> StopEvent:
        ctx.store.set("seen", ctx.store.get("seen") + ev.by)
        ctx.store.set("last", "bumped")
        return StopEvent(result=ctx.store.state.seen)


def charge_once(ctx: Any) -> StopEvent:
    """Fails on its first attempt after recording a ``ctx.once`` call."""
    receipt = ctx.once("charge", time.time_ns)
    info = ctx.retry_info()
    if info.retry_number == 0:
        raise ValueError(f"first attempt fails after charging {receipt}")
    return StopEvent(result=(receipt, info.retry_number, type(info.last_exception).__name__))


class Flaky(Workflow):
    @step
    def charge(self, ctx: Context, ev: StartEvent) -> StopEvent:
        return charge_once(ctx)


class Retried(Workflow):
    """As ``Flaky``, with a retry: the second attempt gets the first one's receipt."""

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    def charge(self, ctx: Context, ev: StartEvent) -> StopEvent:
        return charge_once(ctx)


class SlowFirst(Workflow):
    """Its first attempt overruns the step's timeout; what it does when it finally returns
    must change nothing, since the run gave up on it and retried."""

    @step(timeout=0.5, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    def late(self, ctx: Context, ev: StartEvent) -> StopEvent:
        attempt = ctx.retry_info().retry_number + 1
        if attempt == 1:
            time.sleep(1.5)
        ctx.store.set(f"attempt_{attempt}", True)
        return StopEvent(result=attempt)


class Joined(Workflow):
    """A fan-out whose members and whose join are sync steps: the join's gathered events
    travel too."""

    @step
    async def spread(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(4)]

    @step(num_workers=4)
    def double(self, ev: Item) -> Crunched:
        return Crunched(i=ev.i, value=ev.i * 2, pid=os.getpid())

    @step
    def join(self, done: list[Crunched]) -> StopEvent:
        return StopEvent(result=(sorted(c.value for c in done), os.getpid()))


class Where(Workflow):
    @step
    def here(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=os.getpid())


class AsksTooMuch(Workflow):
    @step
    def greedy(self, ctx: Context, ev: StartEvent) -> StopEvent | None:
        ctx.collect_events(ev, [StartEvent])
        return None


class PickyError(Exception):
    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{code}: {why}")
        self.lock = make_lock()  # what it holds cannot be pickled


class RaisesPicky(Workflow):
    @step
    def fussy(self, ev: StartEvent) -> StopEvent:
        raise PickyError(7, "no such thing")


class Waits(Workflow):
    @step
    def patient(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.wait_for_event(Note)
        return StopEvent()


class SendsLock(Workflow):
    @step
    def send(self, ctx: Context, ev: StartEvent) -> StopEvent | Note:
        ctx.send_event(Note(text="x", lock=make_lock()))
        return StopEvent()

    @step
    async def noted(self, ev: Note) -> None:
        return None


class ReturnsLock(Workflow):
    @step
    def give(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=make_lock())


def make_lock() -> Any:
    import threading

    return threading.Lock()


class NeedsLock(Workflow):
    @step
    def locked(self, ev: StartEvent, lock: Annotated[Any, Resource(make_lock)]) -> StopEvent:
        return StopEvent(result="never")


class RecordingExecutor(Executor):
    """Any executor at all: runs submissions on a thread of its own and remembers the names of
    the steps it was given (it reads them from the packed call, as a test's spy)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: list[str] = []
        self._pool = ThreadPoolExecutor(2, thread_name_prefix=f"rec-{name}")

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        import pickle

        self.steps.append(pickle.loads(args[0]).step)
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        self._pool.shutdown(wait=wait)


OWN = RecordingExecutor("own")


class Precedence(Workflow):
    """One sync step with an executor of its own, one without, one async."""

    @step(executor=OWN)
    def first(self, ev: StartEvent) -> Item:
        return Item(i=1)

    @step
    def second(self, ctx: Context, ev: Item) -> Note:
        import threading

        return Note(text=threading.current_thread().name)

    @step
    async def third(self, ev: Note) -> StopEvent:
        return StopEvent(result=ev.text)


class SlowItems(Workflow):
    """Sync steps that take a while, for killing the driver while they run elsewhere."""

    @step
    async def spread(self, ctx: Context, ev: StartEvent) -> list[Item]:
        await ctx.store.set("n", ev.n)
        await ctx.store.set("pause", ev.get("pause", 0.0))
        return [Item(i=i) for i in range(ev.n)]

    @step(num_workers=8)
    def slow(self, ctx: Context, ev: Item) -> Crunched:
        time.sleep(ctx.store.get("pause", 0.0))
        ctx.store.set(f"done_{ev.i}", os.getpid())
        return Crunched(i=ev.i, value=ev.i * 10, pid=os.getpid())

    @step
    async def gather(self, ctx: Context, ev: Crunched) -> StopEvent | None:
        got = ctx.collect_events(ev, [Crunched] * await ctx.store.get("n"))
        if got is None:
            return None
        return StopEvent(result=sorted(e.value for e in got))


def charge(ledger: str, order: str) -> str:
    """A payment: one line in the ledger file per charge made."""
    with open(ledger, "a") as out:
        out.write(order + "\n")
    return f"receipt-{order}"


class Charging(Workflow):
    """A payment-like sync step: it charges through ``ctx.once``, then waits (up to 30 s) for
    the file ``<ledger>.go`` before it returns, so its run's process can be killed while it
    runs."""

    @step
    def pay(self, ctx: Context, ev: StartEvent) -> StopEvent:
        receipt = ctx.once("charge", charge, ev.ledger, ev.order)
        for _ in range(300):
            if os.path.exists(ev.ledger + ".go"):
                break
            time.sleep(0.1)
        return StopEvent(result=receipt)
