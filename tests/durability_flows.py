"""The workflow of the durability and resume-time tests. Snapshots find classes by module and
name, and the crash tests continue runs in other processes, so it lives in a module."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ckpt_flows import log_line

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import BaseStore


def charge(ledger: str, what: str) -> str:
    """A payment provider: every call is one more line in the ledger."""
    log_line(ledger, what)
    return f"receipt-{what}"


class Hop(Event):
    i: int


class Chain(Workflow):
    """``n`` steps in a row adding up their numbers; each appends its number to the log file.
    Step ``fail_at`` raises, ``crash_at`` kills the process, ``charge_at`` charges a card
    through ``ctx.once`` (before the crash, if both)."""

    fail_at: int | None = None
    crash_at: int | None = None
    charge_at: int | None = None
    watch: BaseStore | None = None  # read in the step right after the charge
    seen: Any = None
    first_hop_at: float | None = None  # perf_counter() when the first hop started
    pause: float = 0.0  # seconds each hop waits, as a step waiting on a network would
    pause_every: int = 1  # ... or only every so many hops (hop 0 among them)

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Hop:
        await ctx.store.set("n", ev.n)
        await ctx.store.set("log", ev.log)
        await ctx.store.set("ledger", ev.get("ledger", os.devnull))
        await ctx.store.set("total", 0)
        return Hop(i=0)

    @step
    async def hop(self, ctx: Context, ev: Hop) -> Hop | StopEvent:
        if self.first_hop_at is None:
            self.first_hop_at = time.perf_counter()
        log_line(await ctx.store.get("log"), str(ev.i))
        if self.pause and ev.i % self.pause_every == 0:
            await asyncio.sleep(self.pause)
        if ev.i == self.charge_at:
            await ctx.once("charge", charge, await ctx.store.get("ledger"), str(ev.i))
            if self.watch is not None:
                self.seen = self.watch.latest(ctx.run_id)
        if ev.i == self.crash_at:
            os._exit(7)
        if ev.i == self.fail_at:
            raise RuntimeError(f"hop {ev.i} broke")
        total = await ctx.store.get("total") + ev.i
        await ctx.store.set("total", total)
        if ev.i + 1 >= await ctx.store.get("n"):
            return StopEvent(result=total)
        return Hop(i=ev.i + 1)


def total(n: int) -> int:
    return n * (n - 1) // 2
