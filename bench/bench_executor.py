"""Sync steps on other executors: CPU-bound steps on the thread pool, a 2-process Dask
LocalCluster and a 2-process ``ProcessPoolExecutor``; and what one remote step adds.

* X_executor_*: 64 events fanned out to a sync step of pure-Python work (about 50 ms of CPU
  each, calibrated here; ``step_ms`` is one step's CPU time), gathered by an async step. The
  three executors take turns in each round; a figure is the median of the rounds. The thread
  pool holds the GIL: one core at most.
* X_executor_raw_dask: the same 64 calls of the work submitted to the cluster directly
  (``client.submit``, no workflow): what the machine allows today, beside which the
  workflow's figure reads. A busy shared machine leaves little to gain from a second core.
* X_remote_step_overhead: one trivial sync step, run on the LocalCluster and on the thread
  pool in turns; the figure is the difference of the medians, in ms. Beside it, one bare
  call of a plain function through the same Dask executor: the cluster's own round trip.

The cluster runs with Dask's housekeeping thinned for CPU-bound pure-Python tasks
(``TUNED_FOR_PURE_PYTHON``; the workflow's line and Dask's own alike, on the same cluster):
each worker's statistical profiler off (it samples its task thread every 10 ms), event loop
health ticks every second instead of every 20 ms, the memory and system monitors every second
or two. Each of those wakes a thread that must take the GIL from the task: measured here, a
busy worker spent 8% of its task's CPU on them besides the task, 1.7% with these settings,
and the client's process (scheduler and nannies) 56 ms of CPU a second while idle, 12 ms
with them; on 2 cores all of it is taken from the workers. ``--dask-defaults`` keeps Dask's
configuration as it ships.

Run: python bench/bench_executor.py [--rounds 3] [--dask-defaults]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit

from notebook_workflows import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)

ENGINE = "notebook_workflows"
STEPS = 64
STEP_MS = 50
# Dask settings for CPU-bound pure-Python tasks (README, "Scaling out"): fewer wake-ups of
# threads that take the GIL from the task thread (see the module's docstring).
TUNED_FOR_PURE_PYTHON = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


class Item(Event):
    i: int


class Done(Event):
    value: int


def crunch(seed: int, rounds: int) -> int:
    total = seed
    for k in range(rounds):
        total = (total * 31 + k) % 1_000_003
    return total


class Crunch(Workflow):
    rounds = 1

    @step
    async def spread(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(STEPS)]

    @step(num_workers=STEPS)
    def work(self, ev: Item) -> Done:
        return Done(value=crunch(ev.i, self.rounds))

    @step
    async def gather(self, ctx: Context, ev: Done) -> StopEvent | None:
        got = ctx.collect_events(ev, [Done] * STEPS)
        return None if got is None else StopEvent(result=len(got))


class Trivial(Workflow):
    @step
    def once(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=1)


def calibrate() -> int:
    """Rounds of ``crunch`` that take about STEP_MS of CPU here: the fastest of a few tries, in
    CPU time, so that a busy moment (other processes, or a sibling hyperthread slowing this
    one) does not change the size of every step of the run; measured again at the step's own
    size, since a first guess from short tries once gave 26 ms steps for 50."""
    rounds = 200_000
    for _ in range(2):  # then once more at the step's own size: short tries misjudged it
        took = min(_timed(lambda r=rounds: crunch(1, r), time.thread_time) for _ in range(5))
        rounds = max(1000, int(rounds * (STEP_MS / 1000) / took))
    return rounds


def _timed(fn: Any, clock: Any = time.perf_counter) -> float:
    start = clock()
    fn()
    return clock() - start


async def run_once(workflow: Workflow, executor: Any) -> float:
    start = time.perf_counter()
    await workflow.run(executor=executor)
    return time.perf_counter() - start


async def measure(client: Any, pool: ProcessPoolExecutor, rounds: int) -> None:
    workflow = Crunch()
    workflow.rounds = calibrate()
    one_step = statistics.median(
        _timed(lambda: crunch(1, workflow.rounds), time.thread_time) for _ in range(3)
    )
    dask = client.get_executor()
    executors = {"threads": None, "dask_2_workers": dask, "process_pool_2": pool}
    for executor in (dask, pool):  # warm-up: start the workers, import the package there
        await run_once(workflow, executor)
    samples: dict[str, list[float]] = {name: [] for name in [*executors, "raw_dask"]}
    for _ in range(rounds):
        for name, executor in executors.items():
            samples[name].append(await run_once(workflow, executor))
        start = time.perf_counter()
        futures = [client.submit(crunch, i, workflow.rounds, pure=False) for i in range(STEPS)]
        await asyncio.to_thread(client.gather, futures)
        samples["raw_dask"].append(time.perf_counter() - start)
    threads = statistics.median(samples["threads"])
    for name, values in samples.items():
        emit(
            ENGINE,
            "",
            f"X_executor_{name}_{STEPS}x{STEP_MS}ms",
            values,
            steps=STEPS,
            step_ms=round(one_step * 1e3, 1),
            speedup_vs_threads=round(threads / statistics.median(values), 2),
            cores=os.cpu_count(),
        )
    trivial = Trivial()
    local: list[float] = []
    remote: list[float] = []
    bare: list[float] = []  # one call of a plain function through the same executor
    for _ in range(3):
        await run_once(trivial, dask)
    for i in range(40):
        local.append(await run_once(trivial, None))
        remote.append(await run_once(trivial, dask))
        start = time.perf_counter()
        await asyncio.wrap_future(dask.submit(crunch, i, 1))  # distinct: Dask caches equal calls
        bare.append(time.perf_counter() - start)
    added = statistics.median(remote) - statistics.median(local)
    emit(
        ENGINE,
        "",
        "X_remote_step_overhead",
        remote,
        added_ms=round(added * 1e3, 2),
        thread_pool_ms=round(statistics.median(local) * 1e3, 2),
        dask_round_trip_ms=round(statistics.median(bare) * 1e3, 2),
    )


def main() -> None:
    import dask
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dask-defaults", action="store_true", help="Dask's own settings")
    a = parser.parse_args()
    settings = {} if a.dask_defaults else TUNED_FOR_PURE_PYTHON
    with (
        dask.config.set(settings),  # before the cluster starts: its workers inherit them
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
        ProcessPoolExecutor(2) as pool,
    ):
        asyncio.run(measure(client, pool, a.rounds))


if __name__ == "__main__":
    main()
