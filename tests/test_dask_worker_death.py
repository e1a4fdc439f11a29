"""A Dask worker that dies after a step's ``ctx.once`` call: the call is not made again.

Dask runs a task again on another worker when the worker running it dies, from the very
bytes first submitted. Here a real ``LocalCluster`` of two worker processes runs a step that
charges through ``ctx.once`` (a line appended to a ledger file), says which process it runs
in, and waits; the test SIGKILLs that process, Dask starts the call again on the other
worker, and the ledger must still hold one charge. With a synchronous client and with
``Client(asynchronous=True)``, with a checkpoint store and without.

A call the run gave up on (its step timed out and the next attempt runs) goes on where it
runs, on Dask and on a process pool alike: its ``ctx.once`` calls are refused, not made. And
when the run cannot say what it holds, ``once`` makes no call; when it cannot keep a record,
``once`` raises after its call.

The workflows live in this module so that the workers import them by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notebook_workflows import Context, StartEvent, StopEvent, Workflow, WorkflowRuntimeError, step
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.errors import SnapshotError
from notebook_workflows.journal_line import Line
from notebook_workflows.remote import RemoteContext, RemoteStore
from notebook_workflows.retry_policy import ConstantDelayRetryPolicy
from notebook_workflows.store import encode_once

distributed = pytest.importorskip("distributed")


def charge(ledger: str) -> str:
    """A payment: one line in the ledger per charge made."""
    with open(ledger, "a") as out:
        out.write("charged\n")
    return "receipt-1"


class PayThenWait(Workflow):
    """Charges once, leaves a file named after its process (``charged-by-<pid>``), then waits
    up to 30 s for the file ``go`` before it returns."""

    @step
    def pay(self, ctx: Context, ev: StartEvent) -> StopEvent:
        folder = Path(ev.folder)
        receipt = ctx.once("charge", charge, str(folder / "ledger.txt"))
        (folder / f"charged-by-{os.getpid()}").write_text("")
        deadline = time.monotonic() + 30
        while not (folder / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return StopEvent(result=receipt)


class GivesUpOnTheFirstAttempt(Workflow):
    """The run gives up on the first attempt (2 s timeout) and starts a second, which
    charges and waits for the first to end; the first tries to charge only after the second
    did, and leaves what became of it in the file ``first-attempt``."""

    @step(timeout=2.0, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    def pay(self, ctx: Context, ev: StartEvent) -> StopEvent:
        folder = Path(ev.folder)
        if ctx.retry_info().retry_number == 0:
            _wait_for(folder / "second-attempt-charged")
            try:
                ctx.once("charge", charge, str(folder / "ledger.txt"))
            except Exception as exc:
                (folder / "first-attempt").write_text(f"{type(exc).__name__}: {exc}")
                raise
            (folder / "first-attempt").write_text("charged")
            return StopEvent(result="first")
        receipt = ctx.once("charge", charge, str(folder / "ledger.txt"))
        (folder / "second-attempt-charged").write_text("")
        _wait_for(folder / "first-attempt")
        return StopEvent(result=receipt)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def cluster() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # a free port: other clusters may hold 8787
    )
    try:
        yield cluster
    finally:
        cluster.close()


def _kill_the_worker_that_charged(folder: Path) -> int:
    """SIGKILL the worker process that charged (once it says so), then let the step go on
    wherever Dask starts it again. Returns the killed process's id."""
    deadline = time.monotonic() + 20
    while not (charged := list(folder.glob("charged-by-*"))):
        assert time.monotonic() < deadline, "the step never charged"
        time.sleep(0.02)
    pid = int(charged[0].name.removeprefix("charged-by-"))
    os.kill(pid, signal.SIGKILL)
    (folder / "go").write_text("")
    return pid


async def _pay_while_a_worker_dies(
    executor: Any, tmp_path: Path, checkpointed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="notebook_workflows")
    store = SQLiteStore(tmp_path / "runs.db") if checkpointed else None
    handler = PayThenWait(checkpoint=store, executor=executor).run(
        folder=str(tmp_path), run_id="pay"
    )
    try:
        result, killed = await asyncio.wait_for(
            asyncio.gather(handler, asyncio.to_thread(_kill_the_worker_that_charged, tmp_path)),
            timeout=60,
        )
    finally:
        (tmp_path / "go").write_text("")
    ran_in = {int(p.name.removeprefix("charged-by-")) for p in tmp_path.glob("charged-by-*")}
    assert killed in ran_in and len(ran_in) == 2  # Dask did start the call again elsewhere
    assert result == "receipt-1"
    assert (tmp_path / "ledger.txt").read_text() == "charged\n"  # charged once, not twice
    said = [r.getMessage() for r in caplog.records if r.name == "notebook_workflows"]
    assert any("step 'pay' (run 'pay') started again" in line for line in said), said
    assert any("records the run holds ('charge')" in line for line in said), said
    if store is not None:
        store.close()
    deadline = time.monotonic() + 10  # the run's side of its line ends with the run
    while any(t.name == "once-line pay" for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("checkpointed", [True, False], ids=["checkpointed", "no-checkpoint"])
async def test_a_call_dask_starts_again_after_its_worker_died_does_not_charge_again(
    cluster: Any, tmp_path: Path, checkpointed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with distributed.Client(cluster) as client:
        await _pay_while_a_worker_dies(client.get_executor(), tmp_path, checkpointed, caplog)


@pytest.mark.parametrize("checkpointed", [True, False], ids=["checkpointed", "no-checkpoint"])
async def test_the_same_holds_with_an_asynchronous_client(
    cluster: Any, tmp_path: Path, checkpointed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as client:
        await _pay_while_a_worker_dies(client.get_executor(), tmp_path, checkpointed, caplog)


@pytest.mark.parametrize("where", ["dask", "pool"])
async def test_a_call_the_run_gave_up_on_makes_no_once_call(
    request: pytest.FixtureRequest, tmp_path: Path, where: str
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    store = SQLiteStore(tmp_path / "runs.db")
    with contextlib.ExitStack() as stack:
        if where == "dask":
            client = stack.enter_context(distributed.Client(request.getfixturevalue("cluster")))
            # the step's timeout counts from its start: a worker's first imports must not
            client.run(importlib.import_module, GivesUpOnTheFirstAttempt.__module__)
            executor = client.get_executor()
        else:
            executor = stack.enter_context(ProcessPoolExecutor(2))
        workflow = GivesUpOnTheFirstAttempt(checkpoint=store, executor=executor)
        result = await asyncio.wait_for(workflow.run(folder=str(tmp_path)), timeout=60)
    assert result == "receipt-1"
    first = (tmp_path / "first-attempt").read_text()
    assert first.startswith("WorkflowRuntimeError: step 'pay'"), first
    assert "did not call ctx.once('charge')" in first and "no longer waits for this call" in first
    assert (tmp_path / "ledger.txt").read_text() == "charged\n"
    store.close()


# -- when the run cannot say what it holds, or cannot keep a record -------------------------------


class _RunSays(Line):
    """A line whose run gives fixed answers (``None``: the run does not answer)."""

    def __init__(self, held: Any, kept: Any = True) -> None:
        self.answers = {"held": held, "once": kept}
        self.asked: list[str] = []

    def _ask(self, message: tuple[Any, ...]) -> Any:
        self.asked.append(message[0])
        answer = self.answers[message[0]]
        if answer is None:
            raise TimeoutError
        return answer


def _context(line: Line) -> RemoteContext:
    return RemoteContext("pay", "r-1", RemoteStore(None, {}), (0, 0.0, None, 0.0), {}, 3, line)


def test_once_makes_no_call_when_the_run_cannot_say_what_it_holds() -> None:
    charges: list[str] = []
    ctx = _context(_RunSays(held=None))
    with pytest.raises(WorkflowRuntimeError) as failed:
        ctx.once("charge", charges.append, "A-1")
    assert charges == []
    said = str(failed.value)
    assert said.startswith("step 'pay' (run 'r-1') did not call ctx.once('charge'): the run")
    assert "no answer in 30 s" in said and "cannot tell whether an earlier start" in said
    assert "resume" in said


def test_once_returns_what_an_earlier_start_of_the_call_recorded() -> None:
    charges: list[str] = []
    line = _RunSays(held={"records": {"charge": encode_once("pay", "charge", "r-9")}, "start": 2})
    assert _context(line).once("charge", charges.append, "A-1") == "r-9"
    assert charges == [] and line.asked == ["held"]


def test_once_raises_after_its_call_when_the_run_cannot_keep_the_record() -> None:
    charges: list[str] = []
    line = _RunSays(held={"records": {}, "start": 1}, kept="SnapshotError: disk full")
    ctx = _context(line)
    with pytest.raises(WorkflowRuntimeError, match=r"made its call, but the run could not record"):
        ctx.once("charge", charges.append, "A-1")
    assert charges == ["A-1"] and line.asked == ["held", "once"]
    assert "charge" in ctx._recorded  # travels with the step's failure, as a last chance


class PayOnce(Workflow):
    @step
    def pay(self, ctx: Context, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ctx.once("charge", charge, ev.ledger))


class _LosesTheFirstOnceRecord(MemoryStore):
    """A store whose first write of a ``ctx.once`` record fails (a disk that was full)."""

    failed = False

    def _append(self, record: Any, new_run: Any) -> None:
        self._fail_once([record])
        super()._append(record, new_run)

    def _append_many(self, records: Any) -> None:
        self._fail_once(records)
        super()._append_many(records)

    def _fail_once(self, records: Any) -> None:
        if not self.failed and any(record.reason == "journal" for record in records):
            self.failed = True
            raise OSError("injected: no space left on the device")


async def test_a_remote_once_record_the_store_could_not_write_fails_the_run_and_is_not_repeated(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    ledger, store = tmp_path / "ledger.txt", _LosesTheFirstOnceRecord()
    with ProcessPoolExecutor(1) as pool:
        with pytest.raises(SnapshotError) as failed:
            await PayOnce(checkpoint=store, executor=pool).run(ledger=str(ledger), run_id="pay")
        said = str(failed.value)
        assert "ctx.once result in step 'pay'" in said and "no space left on the device" in said
        assert "workflow.resume('pay')" in said
        assert ledger.read_text() == "charged\n"
        resumed = await PayOnce(executor=pool).resume("pay", store=store)
    assert resumed == "receipt-1"
    assert ledger.read_text() == "charged\n"  # the resumed run got the kept result
