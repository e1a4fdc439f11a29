"""ctx.once: a step's call with an outside effect runs once, even when the step runs again
after a retry or a crash; its recorded result comes back instead."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path

import pytest

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore


def charge(ledger: str, order: str, amount: int) -> dict[str, object]:
    """A payment provider: every call is one more charge on the card."""
    with open(ledger, "a") as f:
        f.write(f"{order} {amount}\n")
    return {"receipt": f"r-{order}", "amount": amount}


class Paid(Event):
    receipt: str


class Checkout(Workflow):
    crash_after_charge = False
    fail_first_send = False

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
    async def pay(self, ctx: Context, ev: StartEvent) -> Paid:
        paid = await ctx.once("charge-card", charge, ev.ledger, ev.order, ev.amount)
        if self.crash_after_charge:
            os._exit(9)  # the process dies after the charge, before the step completes
        if self.fail_first_send and not await ctx.store.get("sent", default=False):
            await ctx.store.set("sent", True)
            raise ConnectionError("the confirmation e-mail failed")  # retried
        return Paid(receipt=paid["receipt"])

    @step
    async def done(self, ev: Paid) -> StopEvent:
        return StopEvent(result=ev.receipt)


def _pay_and_die(db: str, ledger: str) -> None:
    async def main() -> None:
        workflow = Checkout()
        workflow.crash_after_charge = True
        await workflow.run(
            checkpoint=SQLiteStore(db), run_id="order-7", ledger=ledger, order="7", amount=30
        )

    asyncio.run(main())


async def test_a_step_killed_after_its_charge_does_not_charge_again(tmp_path: Path) -> None:
    db, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    process = multiprocessing.get_context("spawn").Process(
        target=_pay_and_die, args=(db, str(ledger))
    )
    process.start()
    await asyncio.to_thread(process.join, 60)
    assert process.exitcode == 9
    assert ledger.read_text() == "7 30\n"
    assert await Checkout().resume("order-7", store=SQLiteStore(db)) == "r-7"
    assert ledger.read_text() == "7 30\n"  # exactly one charge


async def test_a_retried_step_gets_the_recorded_result(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    workflow = Checkout()
    workflow.fail_first_send = True
    result = await workflow.run(checkpoint=MemoryStore(), ledger=str(ledger), order="8", amount=5)
    assert result == "r-8" and ledger.read_text() == "8 5\n"


async def test_once_outside_a_step_is_refused() -> None:
    handler = Checkout().run(ledger=os.devnull, order="9", amount=1)
    await handler
    with pytest.raises(WorkflowRuntimeError, match="inside a step"):
        await handler.ctx.once("x", print)


class Unrecordable(Workflow):
    @step
    async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.once("socket", lambda: object())
        return StopEvent()


async def test_a_result_that_cannot_be_recorded_names_the_step_and_the_call() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"step 'go': ctx.once\('socket'"):
        await Unrecordable().run()
