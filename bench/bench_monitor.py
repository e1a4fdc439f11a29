"""What a live monitor costs a run: the 2,000-step chain with and without ``handler.monitor()``.

Two settings, each in one process, the two variants alternating (with, without, without, with,
...) so drift hits them alike; a figure is the median of the timed runs after a warm-up of each.

- ``monitor_chain_2000_*``: in this process. "With" does what a notebook does (make the
  monitor, ask for its display bundle, await the run) and is timed until ``await`` returns,
  which is after the monitor drew the finished run. Widget messages go to a stand-in comm that
  serializes each one to JSON, as a kernel would, and counts them. This is all the work the
  monitor itself does; the issue's 1.2x budget is checked here.
- ``monitor_chain_2000_*_in_kernel``: the same in a real Jupyter kernel, where the monitor is
  displayed with ``display()`` and every widget message really goes out. On top of the
  monitor's own work this pays the kernel's fixed price of a displayed widget (opening its
  comms, the display and the final display update, each waiting for the kernel's I/O thread),
  about the same for any length of run.

The graph is drawn on the monitor's own thread once the run has ended (a run this short is
drawn once); the script lets it finish between runs, untimed.

Run: .venv/bin/python bench/bench_monitor.py [--reps 11] [--no-kernel]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from queue import Empty
from typing import Any

import comm
from comm.base_comm import BaseComm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
import engines

LIMIT_RATIO = 1.2  # the budget: a monitored run costs at most 1.2x an unmonitored one
HERE = Path(__file__).resolve().parent


class CountingComm(BaseComm):
    """A comm that does what a kernel's would cost (JSON) and remembers how much it sent."""

    messages = 0
    sent_bytes = 0

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, **keys: Any
    ) -> None:
        CountingComm.messages += 1
        CountingComm.sent_bytes += len(json.dumps(data, default=str))


async def settle(monitor: Any) -> None:
    """Let the monitor's graph thread finish (outside the timed part)."""
    for _ in range(500):
        if not monitor._graph_busy and monitor._graph_next is None:
            return
        await asyncio.sleep(0.005)


async def in_process(reps: int) -> None:
    comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)
    api = engines.load("notebook_workflows")
    workflow = engines.chain_workflow(api, C.N_CHAIN)
    monitors: list[Any] = []

    async def plain() -> float:
        gc.collect()
        start = time.perf_counter()
        assert await workflow.run() == C.N_CHAIN
        return time.perf_counter() - start

    async def watched() -> float:
        gc.collect()
        start = time.perf_counter()
        handler = workflow.run()
        monitor = handler.monitor()
        monitor._repr_mimebundle_()  # what displaying it in a notebook asks for
        assert await handler == C.N_CHAIN
        elapsed = time.perf_counter() - start
        monitors.append(monitor)
        await settle(monitor)
        return elapsed

    await plain()  # warm-up: imports, the workflow's graph model, the shared widget models
    await watched()
    monitors.clear()
    without: list[float] = []
    with_monitor: list[float] = []
    sent_before = (CountingComm.messages, CountingComm.sent_bytes)
    for rep in range(reps):
        for fn in (watched, plain) if rep % 2 == 0 else (plain, watched):
            (with_monitor if fn is watched else without).append(await fn())
    messages = (CountingComm.messages - sent_before[0]) / reps
    sent_kb = (CountingComm.sent_bytes - sent_before[1]) / reps / 1024
    ratio = statistics.median(with_monitor) / statistics.median(without)
    C.emit("notebook_workflows", api.version, "monitor_chain_2000_without", without, n=C.N_CHAIN)
    C.emit(
        "notebook_workflows",
        api.version,
        "monitor_chain_2000_with",
        with_monitor,
        n=C.N_CHAIN,
        ratio=round(ratio, 3),
        limit_ratio=LIMIT_RATIO,
        refreshes_per_run=statistics.median(m._refreshes for m in monitors),
        widget_messages_per_run=round(messages, 1),
        widget_kb_per_run=round(sent_kb, 1),
    )


KERNEL_CELL = """
import asyncio, gc, statistics, sys, time
sys.path.insert(0, {bench!r})
import common as C, engines
from IPython.display import display

api = engines.load("notebook_workflows")
workflow = engines.chain_workflow(api, C.N_CHAIN)

async def plain():
    gc.collect()
    start = time.perf_counter()
    assert await workflow.run() == C.N_CHAIN
    return time.perf_counter() - start

async def watched():
    gc.collect()
    start = time.perf_counter()
    handler = workflow.run()
    monitor = handler.monitor()
    display(monitor)
    assert await handler == C.N_CHAIN
    elapsed = time.perf_counter() - start
    while monitor._graph_busy or monitor._graph_next is not None:
        await asyncio.sleep(0.005)
    return elapsed

async def watched_run():
    # the same, timed from the moment the run starts to execute (at the await: run() and
    # display() only prepare it) to its result: what a displayed monitor adds to the run
    gc.collect()
    handler = workflow.run()
    monitor = handler.monitor()
    display(monitor)
    start = time.perf_counter()
    assert await handler == C.N_CHAIN
    elapsed = time.perf_counter() - start
    while monitor._graph_busy or monitor._graph_next is not None:
        await asyncio.sleep(0.005)
    return elapsed

await plain()
await watched()
await watched_run()
without, with_monitor, with_run = [], [], []
for rep in range({reps}):
    order = (watched, watched_run, plain) if rep % 2 == 0 else (plain, watched_run, watched)
    for fn in order:
        {{watched: with_monitor, watched_run: with_run, plain: without}}[fn].append(await fn())
ratio = statistics.median(with_monitor) / statistics.median(without)
run_ratio = statistics.median(with_run) / statistics.median(without)
C.emit("notebook_workflows", api.version, "monitor_chain_2000_without_in_kernel", without,
       n=C.N_CHAIN)
C.emit("notebook_workflows", api.version, "monitor_chain_2000_with_in_kernel", with_monitor,
       n=C.N_CHAIN, ratio=round(ratio, 3), timed="whole cell: monitor made, displayed, run")
C.emit("notebook_workflows", api.version, "monitor_chain_2000_run_in_kernel", with_run,
       n=C.N_CHAIN, ratio=round(run_ratio, 3), timed="the run itself, monitor displayed")
"""


def in_kernel(reps: int) -> None:
    """Run the same comparison inside a real kernel and pass its JSON lines on."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(HERE.parent))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        msg_id = client.execute(KERNEL_CELL.format(bench=str(HERE), reps=reps))
        output, deadline = "", time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                msg = client.get_iopub_msg(timeout=1)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                output += content["text"]
            elif kind == "error":
                raise RuntimeError("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        for line in output.splitlines():
            if line.startswith("{"):
                print(line, flush=True)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--no-kernel", action="store_true", help="skip the in-kernel figures")
    args = parser.parse_args()
    asyncio.run(in_process(args.reps))
    if not args.no_kernel:
        in_kernel(args.reps)


if __name__ == "__main__":
    main()
