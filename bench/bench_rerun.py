"""Rerun after editing the last step, beside the original run (issue 15).

A chain of 1,000 step calls (``loop`` sends itself ``Loop(i + 1)`` until ``i`` reaches 999,
then ``Last``) and one ``last`` step, checkpointed to a ``SQLiteStore`` in a temporary
directory. Timed: the original run, then ``rerun(run_id)`` of it with ``last`` edited (the
cell defining the class run again with another body for ``last``), from the ``rerun`` call to
its result, reading the recorded history included. The 1,000 ``loop`` calls are replayed and
``last`` runs. Two kinds of step: ``work=0`` (a step that does nothing, so the figure is the
engine's cost per call against its cost per replay) and ``work=1ms`` (each call awaits 1 ms,
a stand-in for real work). Each repetition makes a fresh store and a fresh original run.

Run: python bench/bench_rerun.py [--reps 5]
Prints JSON lines (bench/common.py's ``emit``).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

from notebook_workflows import Event, StartEvent, StopEvent, Workflow, step  # noqa: F401

N = 1000


class Loop(Event):
    i: int


class Last(Event):
    i: int


CHAIN = """
class Chain(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Loop:
        return Loop(i=0)

    @step
    async def loop(self, ev: Loop) -> Loop | Last:
        if WORK:
            await asyncio.sleep(WORK)
        if ev.i + 1 < N:
            return Loop(i=ev.i + 1)
        return Last(i=ev.i)

    @step
    async def last(self, ev: Last) -> StopEvent:
        return StopEvent(result=ev.i)
"""


def chain_class(work: float, edited: bool) -> type:
    source = CHAIN
    if edited:
        source = source.replace("StopEvent(result=ev.i)", "StopEvent(result=ev.i * 2)")
    namespace = {**globals(), "WORK": work, "__name__": "__main__"}
    exec(textwrap.dedent(source), namespace)
    return namespace["Chain"]


async def once(work: float, tmp: str, i: int) -> tuple[float, float, int]:
    from notebook_workflows.checkpoint import SQLiteStore

    with SQLiteStore(os.path.join(tmp, f"rerun{work}-{i}.db")) as store:
        store.runs()  # opening the file is not part of a run
        original = chain_class(work, edited=False)(checkpoint=store, timeout=None)
        started = time.perf_counter()
        handler = original.run()
        assert await handler == N - 1
        first = time.perf_counter() - started
        edited = chain_class(work, edited=True)(checkpoint=store, timeout=None)
        started = time.perf_counter()
        rerun = edited.rerun(handler.run_id)
        assert await rerun == 2 * (N - 1)
        again = time.perf_counter() - started
        replayed = sum(rerun.view().replayed.values())
    return first, again, replayed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_rerun_")
    try:
        for label, work in (("work=0", 0.0), ("work=1ms", 0.001)):
            firsts, agains = [], []
            replayed = 0
            for i in range(args.reps):
                first, again, replayed = asyncio.run(once(work, tmp, i))
                firsts.append(first)
                agains.append(again)
            ratio = statistics.median(agains) / statistics.median(firsts)
            C.emit(
                "notebook_workflows",
                "local",
                f"R_rerun_last_changed/{label}",
                agains,
                original_median_ms=round(statistics.median(firsts) * 1e3, 3),
                original_samples_ms=[round(s * 1e3, 3) for s in firsts],
                rerun_over_original=round(ratio, 3),
                steps=N + 2,
                replayed=replayed,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
