"""E: wall time of a fresh ``python -c '<import>'``, ours beside the floors and the peer.

Each statement runs in a new process, round-robin, after a warm-up that writes bytecode caches
(as a normal install does), with PYTHONDONTWRITEBYTECODE removed for that reason.
Run: python bench/imports.py [--reps 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = [
    ("python -c pass", "pass"),
    ("asyncio + pydantic (floor)", "import asyncio; from pydantic import BaseModel"),
    ("notebook_workflows", "import notebook_workflows"),
    ("llama-index-workflows", "from workflows import Workflow, step, Context"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=9)
    a = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def wall(stmt: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], env=env, check=True)
        return time.perf_counter() - start

    for _, stmt in CASES:
        wall(stmt)
    samples: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(a.reps):
        for name, stmt in CASES:
            samples[name].append(wall(stmt))
    for name, stmt in CASES:
        xs = samples[name]
        record = {
            "engine": name,
            "workload": "E_import",
            "median_ms": round(statistics.median(xs) * 1e3, 1),
            "samples_ms": [round(x * 1e3, 1) for x in xs],
            "stmt": stmt,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
