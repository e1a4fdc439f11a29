"""Shared measuring helpers: one workload per process, a warm-up, then timed repetitions.

Every engine script prints one JSON line per figure; ``run.py`` runs the engines in turns
(round-robin, fresh processes) so the noise of this shared machine hits them all alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

N_CHAIN = 2000  # A: a self-loop step run N times, bumping a counter in the engine's state
N_FANOUT = 200  # B: fan-out of N events to a step with num_workers=N, then collect them
N_CKPT = 500  # C: A with N=500, a SQLite checkpoint after every step
N_ITEMS = 10_000  # D: a state of N small dicts (about 1 MB of JSON)


def make_items(n: int = N_ITEMS) -> dict[str, dict[str, Any]]:
    return {
        f"k{i:05d}": {
            "id": i,
            "name": f"item-{i:05d}",
            "value": i * 1.5,
            "flag": i % 2 == 0,
            "tags": ["alpha", "beta"],
        }
        for i in range(n)
    }


def args(workloads: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=workloads)
    parser.add_argument("--reps", type=int, default=7)
    return parser.parse_args()


async def ameasure(fn: Callable[[], Awaitable[Any]], reps: int) -> list[float]:
    await fn()  # warm-up
    samples = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


def measure(fn: Callable[[], Any], reps: int) -> list[float]:
    fn()
    samples = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def emit(engine: str, version: str, workload: str, samples_s: list[float], **extra: Any) -> None:
    record = {
        "engine": engine,
        "version": version,
        "workload": workload,
        "median_ms": round(statistics.median(samples_s) * 1e3, 3),
        "samples_ms": [round(s * 1e3, 3) for s in samples_s],
        "python": sys.version.split()[0],
        **extra,
    }
    print(json.dumps(record), flush=True)
