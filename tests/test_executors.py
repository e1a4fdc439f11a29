"""Sync steps on any executor: a thread pool by default, a process pool, a Dask cluster.

A real ``distributed.LocalCluster`` of two worker processes is started once for this module;
the process pool is the standard library's. Steps and events live in ``tests/scale_flows.py``
so the workers can import them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest
from helpers import wait_until

from notebook_workflows import (
    Event,
    StartEvent,
    StepFailed,
    StepFinished,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from notebook_workflows.checkpoint import SQLiteStore
from notebook_workflows.serialization import decode
from tests import scale_flows as F

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2) as pool:
        yield pool


# -- where steps run ------------------------------------------------------------------------------


async def test_sync_steps_run_in_the_dask_workers_and_async_steps_on_the_runs_loop(
    client: Any,
) -> None:
    handler = F.FanOut().run(n=6, executor=client.get_executor())
    result = await handler
    workers = set(client.run(os.getpid).values())
    assert [i for i, *_ in result] == list(range(6))
    assert {pid for _, _, pid, _ in result} <= workers and os.getpid() not in workers
    assert await handler.ctx.store.get("loop_pid") == os.getpid()


async def test_equal_calls_each_run_on_dask_even_with_a_pure_executor(client: Any) -> None:
    # Dask's executor is pure by default: equal tasks would be computed once. Four equal
    # items must still make four calls, each with its own moment.
    result = await F.FanOut().run(n=4, same=True, executor=client.get_executor())
    assert len({stamp for *_, stamp in result}) == 4


async def test_sync_steps_run_in_a_process_pool(pool: ProcessPoolExecutor) -> None:
    result = await F.FanOut(executor=pool).run(n=4)
    assert all(pid != os.getpid() for _, _, pid, _ in result)


async def test_a_sync_join_runs_elsewhere_with_the_events_it_gathered(
    pool: ProcessPoolExecutor,
) -> None:
    values, pid = await F.Joined().run(executor=pool)
    assert values == [0, 2, 4, 6] and pid != os.getpid()


async def test_a_steps_executor_beats_the_runs_which_beats_the_workflows() -> None:
    workflow_ex, run_ex = F.RecordingExecutor("workflow"), F.RecordingExecutor("run")
    F.OWN.steps.clear()
    assert await F.Precedence(executor=workflow_ex).run(executor=run_ex) == "rec-run_0"
    assert (F.OWN.steps, run_ex.steps, workflow_ex.steps) == (["first"], ["second"], [])
    assert (await F.Precedence(executor=workflow_ex).run()).startswith("rec-workflow")
    assert workflow_ex.steps == ["second"]
    # without any: the run's own thread pool, sharing the run's process and context
    assert (await F.Precedence().run()).startswith("nw-")
    assert F.OWN.steps == ["first"] * 3


async def test_a_thread_pool_given_as_executor_runs_steps_in_the_runs_process() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="mine") as pool:
        assert (await F.Precedence().run(executor=pool)).startswith("mine")


def test_an_executor_is_checked_where_it_is_given() -> None:
    with pytest.raises(TypeError, match=r"Workflow\(executor=...\) takes a concurrent"):
        F.FanOut(executor="dask")
    with pytest.raises(TypeError, match=r"@step\(executor=...\) takes"):
        step(executor=4)


# -- what a step does elsewhere reaches the run ----------------------------------------------------


async def test_store_writes_events_and_stream_of_a_remote_step_reach_the_run(
    client: Any, tmp_path: Any
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = F.EffectsFlow().run(i=3, executor=client.get_executor(), checkpoint=store)
    finished: list[StepFinished] = []
    handler.subscribe(lambda item: finished.append(item) if isinstance(item, StepFinished) else 0)
    streamed = [ev async for ev in handler.stream_events()]
    assert await handler == 6
    data = handler.ctx.store.to_dict()
    assert data["from_remote"]["pid"] in client.run(os.getpid).values()
    assert (data["receipt"], data["noted"], "doomed" in data) == ("receipt-3", "sent", False)
    assert [ev.text for ev in streamed if isinstance(ev, F.Note)] == ["worked on 3"]
    where = {rec.step: rec.where for rec in finished}
    assert where["work"] in client.scheduler_info()["workers"] and where["begin"] == ""
    # the checkpoint written after the remote step holds everything it did
    # (its ctx.once record was written while it ran: a "journal" snapshot before this one)
    history = store.history(handler.run_id)
    assert [s.reason for s in history if s.step == "work"] == ["journal", "step"]
    [after] = [s for s in history if s.step == "work" and s.reason == "step"]
    saved = {k: decode(v) for k, v in after.context["store"].items()}
    assert saved["receipt"] == "receipt-3" and "doomed" not in saved
    assert saved["from_remote"] == data["from_remote"]
    store.close()


async def test_a_rerun_replays_what_a_remote_step_wrote(
    pool: ProcessPoolExecutor, tmp_path: Any
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    first = F.EffectsFlow().run(i=4, executor=pool, checkpoint=store)
    assert await first == 8
    again = F.EffectsFlow().rerun(first.run_id, store=store)
    assert await again == 8
    # nothing was called again, and the store holds what the remote step had written
    assert again.ctx.store.to_dict() == first.ctx.store.to_dict()
    calls = [call for snapshot in store.history(again.run_id) for call in snapshot.calls]
    assert {c["step"] for c in calls} == {"begin", "work", "noted", "finish"}
    assert all(c.get("replayed") for c in calls), calls
    store.close()


async def test_a_typed_state_is_validated_in_the_remote_process(pool: ProcessPoolExecutor) -> None:
    handler = F.TypedFlow().run(by=2, executor=pool)
    assert await handler == 2
    assert handler.ctx.store.to_dict() == {"seen": 2, "last": "bumped"}
    with pytest.raises(Exception, match="seen"):
        await F.TypedFlow().run(by="many", executor=pool)


async def test_a_retried_remote_step_gets_its_once_journal_and_retry_info(
    pool: ProcessPoolExecutor,
) -> None:
    handler = F.Retried().run(executor=pool)
    failures: list[StepFailed] = []
    handler.subscribe(lambda item: failures.append(item) if isinstance(item, StepFailed) else 0)
    receipt, retry_number, last = await handler
    assert (retry_number, last) == (1, "ValueError")
    # the first attempt recorded its receipt before failing; the retry got it back
    assert f"after charging {receipt}" in str(failures[0].error)


async def test_a_remote_step_that_raises_changes_nothing_and_says_where(
    pool: ProcessPoolExecutor,
) -> None:
    with pytest.raises(ValueError, match="first attempt fails") as info:
        await F.Flaky().run(executor=pool)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised in another process" in notes and "in step 'charge'" in notes


async def test_an_error_that_cannot_travel_back_arrives_as_text(pool: ProcessPoolExecutor) -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"step 'fussy' raised PickyError: 7: no such"):
        await F.RaisesPicky().run(executor=pool)


async def test_a_timed_out_remote_attempt_that_returns_late_changes_nothing() -> None:
    import asyncio

    with ProcessPoolExecutor(2) as pool:
        handler = F.SlowFirst().run(executor=pool)
        assert await handler == 2
        await asyncio.to_thread(pool.shutdown)  # waits for the first attempt to return
        for _ in range(20):  # and lets the loop take in what it returned
            await asyncio.sleep(0)
        assert handler.ctx.store.to_dict() == {"attempt_2": True}  # it was ignored


# -- what cannot travel, or cannot work remotely ---------------------------------------------------


async def test_what_needs_the_live_run_raises_naming_the_step(pool: ProcessPoolExecutor) -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"step 'greedy'.*collect_events.*async step"):
        await F.AsksTooMuch().run(executor=pool)
    with pytest.raises(WorkflowRuntimeError, match=r"step 'patient'.*wait_for_event.*async step"):
        await F.Waits().run(executor=pool)


async def test_an_event_that_cannot_travel_back_is_named(pool: ProcessPoolExecutor) -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"step 'send'.*send_event\(Note.*pickled"):
        await F.SendsLock().run(executor=pool)
    with pytest.raises(WorkflowRuntimeError, match=r"step 'give' returned StopEvent.*pickled"):
        await F.ReturnsLock().run(executor=pool)


async def test_what_cannot_be_sent_is_named_before_anything_is_sent() -> None:
    spy = F.RecordingExecutor("spy")
    with pytest.raises(WorkflowRuntimeError, match=r"step 'locked'.*resource 'lock'.*pickled"):
        await F.NeedsLock().run(executor=spy)
    with pytest.raises(WorkflowRuntimeError, match=r"step 'here'.*its event StartEvent.*pickled"):
        await F.Where().run(executor=spy, handle=threading.Lock())
    with pytest.raises(WorkflowRuntimeError, match=r"workflow attribute 'lock'"):
        workflow = F.Where()
        workflow.lock = threading.Lock()
        await workflow.run(executor=spy)
    assert spy.steps == []  # nothing was submitted


def test_a_workflow_travels_without_its_store_and_executor(tmp_path: Any) -> None:
    from notebook_workflows.remote import workflow_copy

    store = SQLiteStore(tmp_path / "runs.db")
    workflow = F.Where(checkpoint=store, executor=F.RecordingExecutor("x"))
    workflow.label = "kept"
    copy = workflow_copy(workflow)
    assert (copy.checkpoint, copy.executor, copy.label) == (None, None, "kept")
    store.close()


# -- a driver that dies while its steps run on the cluster ----------------------------------------

DRIVER = """
import asyncio, sys
from distributed import Client
from notebook_workflows import StepStarted
from notebook_workflows.checkpoint import SQLiteStore
from tests.scale_flows import SlowItems

async def main(client):
    workflow = SlowItems(checkpoint=SQLiteStore(sys.argv[2]), executor=client.get_executor())
    handler = workflow.run(n=4, pause=1.0, run_id="killed")
    def started(item):
        if isinstance(item, StepStarted) and item.step == "slow":
            print("slow started", flush=True)
    handler.subscribe(started)
    await handler
    print("finished", flush=True)

asyncio.run(main(Client(sys.argv[1])))
"""


def slow_in_flight(path: Any) -> bool:
    """Whether the store at ``path`` has a checkpoint of run 'killed' with 'slow' running."""
    if not path.exists():
        return False
    with SQLiteStore(path) as store:
        info = store.run_info("killed")
        return info is not None and "slow" in str(store.latest("killed").context["in_flight"])


async def test_a_run_whose_driver_died_while_steps_ran_on_the_cluster_resumes(
    client: Any, tmp_path: Any
) -> None:
    import subprocess
    import sys

    path = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, client.scheduler.address, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "slow started"
        wait_until(lambda: slow_in_flight(path), what="the checkpoint with 'slow' in flight")
    finally:
        driver.kill()
        driver.wait()
    store = SQLiteStore(path)
    at_death = store.latest("killed").context
    assert at_death["status"] == "running"
    assert "slow" in str(at_death["in_flight"]) and "done_0" not in at_death["store"]
    workflow = F.SlowItems(executor=client.get_executor())
    assert await workflow.resume("killed", store=store) == [0, 10, 20, 30]
    done = {k: decode(v) for k, v in store.latest("killed").context["store"].items()}
    workers = set(client.run(os.getpid).values())
    assert {done[f"done_{i}"] for i in range(4)} <= workers
    store.close()


PAYER = """
import asyncio, sys
from concurrent.futures import ProcessPoolExecutor
from notebook_workflows.checkpoint import SQLiteStore
from tests.scale_flows import Charging

async def main(executor):
    workflow = Charging(checkpoint=SQLiteStore(sys.argv[2]), executor=executor)
    await workflow.run(ledger=sys.argv[3], order="A-1", run_id="pay")

if sys.argv[1] == "pool":
    with ProcessPoolExecutor(1) as pool:
        asyncio.run(main(pool))
else:
    from distributed import Client
    asyncio.run(main(Client(sys.argv[1]).get_executor()))
"""


def _journal_of(store: Any, run_id: str) -> dict[str, Any]:
    latest = store.latest(run_id)
    if latest is None:
        return {}
    return {k: v for inv in latest.context["in_flight"] for k, v in inv.get("journal", {}).items()}


@pytest.mark.parametrize("where", ["dask", "pool"])
async def test_a_once_call_elsewhere_is_kept_though_the_driver_dies_before_the_step_ends(
    client: Any, tmp_path: Any, where: str
) -> None:
    import subprocess
    import sys

    path, ledger = tmp_path / "runs.db", tmp_path / "ledger.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    executor = client.scheduler.address if where == "dask" else "pool"
    driver = subprocess.Popen(
        [sys.executable, "-c", PAYER, executor, str(path), str(ledger)],
        env=env,
        start_new_session=True,  # its process pool's workers die with it (see below)
    )
    store = SQLiteStore(path)
    try:
        wait_until(lambda: ledger.exists() and ledger.read_text(), 60, "the charge")
        assert ledger.read_text() == "A-1\n"  # charged, and the step still runs
        # the record is in the store while the step runs (not only when it returns)
        wait_until(lambda: "charge" in _journal_of(store, "pay"), what="the once record")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and a pool's workers, at once
        driver.wait()
    assert "charge" in _journal_of(store, "pay")
    (tmp_path / "ledger.txt.go").write_text("")  # the resumed attempt does not wait
    if where == "dask":
        workflow = F.Charging(executor=client.get_executor())
        assert await workflow.resume("pay", store=store) == "receipt-A-1"
    else:
        with ProcessPoolExecutor(1) as pool:
            assert await F.Charging(executor=pool).resume("pay", store=store) == "receipt-A-1"
    assert ledger.read_text() == "A-1\n"  # one charge: the resumed attempt reused the record
    store.close()


@pytest.mark.parametrize("where", ["dask", "pool"])
async def test_a_once_record_sent_while_the_step_ran_is_written_once(
    client: Any, pool: ProcessPoolExecutor, tmp_path: Any, where: str
) -> None:
    from notebook_workflows.checkpoint import MemoryStore

    ledger = tmp_path / "ledger.txt"
    (tmp_path / "ledger.txt.go").write_text("")
    store = MemoryStore()
    executor = client.get_executor() if where == "dask" else pool
    handler = F.Charging(checkpoint=store, executor=executor).run(ledger=str(ledger), order="B-2")
    assert await handler == "receipt-B-2"
    reasons = [snapshot.reason for snapshot in store.history(handler.ctx.run_id)]
    assert reasons.count("journal") == 1
    assert ledger.read_text() == "B-2\n"


async def test_the_once_lines_thread_ends_with_its_run(
    client: Any, pool: ProcessPoolExecutor, tmp_path: Any
) -> None:

    from notebook_workflows.checkpoint import MemoryStore

    ledger = tmp_path / "ledger.txt"
    (tmp_path / "ledger.txt.go").write_text("")
    for executor in (pool, client.get_executor()):
        workflow = F.Charging(checkpoint=MemoryStore(), executor=executor)
        await workflow.run(ledger=str(ledger), order="C-3")
    wait_until(
        lambda: not any(t.name.startswith("once-line") for t in threading.enumerate()),
        what="the once-line threads' end",
    )


def test_the_monitors_log_line_says_where_a_step_ran() -> None:
    from notebook_workflows.notebook.monitor.log import Row

    record = StepFinished("r", "crunch", F.Item(i=1), (), 0.05, 11.0, "tcp://127.0.0.1:4001")
    assert Row(record, 10.0, {}).summary.endswith("· on tcp://127.0.0.1:4001")
    here = StepFinished("r", "crunch", F.Item(i=1), (), 0.05, 11.0)
    assert " on " not in Row(here, 10.0, {}).summary


NOTEBOOK_LIKE = """
import asyncio
from concurrent.futures import ProcessPoolExecutor
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

class Item(Event):
    i: int

class Done(Event):
    value: int

class Crunch(Workflow):
    @step
    async def spread(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(6)]

    @step(num_workers=6)
    def work(self, ev: Item) -> Done:
        return Done(value=ev.i * 2)

    @step
    async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
        got = ctx.collect_events(ev, [Done] * 6)
        return None if got is None else StopEvent(result=sorted(e.value for e in got))

async def main():
    with ProcessPoolExecutor(1) as pool:
        print(await Crunch().run(executor=pool))

asyncio.run(main())
"""


def test_classes_defined_in_a_notebook_travel_to_a_worker_again_and_again() -> None:
    # cloudpickle carries __main__'s classes by value and sets their state again with every
    # call; event validators that were still deferred used to recurse on the second call.
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_LIKE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip() == "[0, 2, 4, 6, 8, 10]", done.stderr[-2000:]


RESUMER = """
import sys
from distributed import Client
from notebook_workflows.checkpoint import PostgresStore
from tests.scale_flows import SlowItems

with Client(sys.argv[1]) as client, PostgresStore(sys.argv[2]) as store:
    workflow = SlowItems(executor=client.get_executor())
    print(workflow.resume_sync(sys.argv[3], store=store))
"""


async def test_a_run_kept_in_postgres_is_finished_on_the_cluster_by_a_second_process(
    client: Any, postgres_dsn: str
) -> None:
    import subprocess
    import sys

    from notebook_workflows.checkpoint import PostgresStore

    store = PostgresStore(postgres_dsn)
    handler = F.SlowItems(checkpoint=store, executor=client.get_executor()).run(n=4, pause=0.3)

    def stop_after_one(item: Any) -> None:
        if isinstance(item, StepFinished) and item.step == "slow":
            handler.request_cancel("stopped to be resumed elsewhere")

    handler.subscribe(stop_after_one)
    with pytest.raises(Exception, match="stopped to be resumed elsewhere"):
        await handler
    assert store.run_info(handler.run_id).status == "cancelled"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", RESUMER, client.scheduler.address, postgres_dsn, handler.run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.stdout.strip().splitlines()[-1] == "[0, 10, 20, 30]", done.stderr[-2000:]
    history = store.history(handler.run_id)
    assert sum(1 for s in history if s.step == "slow") == 4  # each item completed once
    assert store.run_info(handler.run_id).status == "done"
    store.close()


# -- what travels once per run --------------------------------------------------------------------


def test_classes_travelling_by_value_are_pickled_once_per_run_not_with_every_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import weakref

    from notebook_workflows import remote
    from notebook_workflows.remote import _HEADS, RemoteCall, Shipment, pack, run_remote, unpack

    class Local(Event):  # defined in a function: not importable, so it travels by value
        n: int

    def bump(ev: Local) -> Local:
        return Local(n=ev.n + 1)

    shipment = Shipment()

    def packed(n: int) -> tuple[bytes, bytes, bytes]:
        call = RemoteCall("bump", bump, [Local(n=n)], {}, None)
        return pack(call, "run-1", None, [("event", Local(n=n))], shipment)

    first, second = packed(1), packed(2)
    # the head (the class and the function, by value) is made once; a call's own bytes name
    # them by their place in it and stay small
    assert second[1:] == first[1:] and len(second[0]) < len(first[2]) // 4
    assert b"<locals>" not in second[0] and Local in shipment.known and bump in shipment.known
    # equal calls still differ (their nonces): Dask must not merge them
    assert packed(2)[0] != second[0]
    # in this process, a head is the shipment's own objects, never loaded again
    assert unpack(run_remote(*first), shipment.known).value.n == 2 and first[1] not in _HEADS
    # the executor's process (here: one that did not pack it) loads a head once, and the
    # outcome names the class the same way
    monkeypatch.setattr(remote, "_SHIPPED", weakref.WeakValueDictionary())
    outcome = unpack(run_remote(*first), shipment.known)
    loaded = _HEADS[first[1]]
    outcome_2 = unpack(run_remote(*second), shipment.known)
    assert _HEADS[first[1]] is loaded
    assert type(outcome.value) is Local and type(outcome_2.value) is Local
    assert (outcome.value.n, outcome_2.value.n) == (2, 3)


async def test_dask_is_told_that_no_two_calls_are_equal(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's executor is pure by default: it would hash every call's bytes to name its task,
    # work thrown away when each call carries a nonce.
    seen: list[Any] = []
    submit = client.submit

    def spy(fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("pure"))
        return submit(fn, *args, **kwargs)

    monkeypatch.setattr(client, "submit", spy)
    result = await F.FanOut().run(n=3, executor=client.get_executor())
    assert [i for i, *_ in result] == [0, 1, 2] and seen == [False] * 3


class _SameProcess(Executor):
    """An executor that runs calls on a thread of this process, not being a thread pool."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        self._pool.shutdown(wait=wait)


def _local_workflow() -> type[Workflow]:
    class Half(Event):  # defined in a function: it travels by value, in the run's head
        n: int

    class Halves(Workflow):
        @step
        def first(self, ev: StartEvent) -> Half:
            return Half(n=ev.n // 2)

        @step
        def second(self, ev: Half) -> StopEvent:
            return StopEvent(result=ev.n // 2)

    return Halves


async def test_classes_shipped_to_an_executor_in_this_process_stay_as_they_are() -> None:
    # Loading a head where it was packed used to hand back the very classes shipped with
    # their state set again from the copy: the second run found step specs it could not read.
    workflow = _local_workflow()
    with _SameProcess() as executor:
        assert [await workflow().run(n=20, executor=executor) for _ in range(3)] == [5, 5, 5]


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # another cluster has it
async def test_a_workflow_runs_again_and_again_on_a_dask_cluster_of_threads() -> None:
    workflow = _local_workflow()
    async with (
        distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address=None, asynchronous=True
        ) as cluster,
        distributed.Client(cluster, asynchronous=True) as threads,
    ):
        executor = threads.get_executor()
        assert [await workflow().run(n=8, executor=executor) for _ in range(3)] == [2, 2, 2]
