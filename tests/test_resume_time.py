"""Resuming costs what the last snapshot holds, not the length of the run's history: loading
the latest snapshot replays the deltas since the nearest base (bounded by the base gap), and
nothing else reads the history. Timed from the ``resume`` call to the first resumed step
starting, on SQLite."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import time
from pathlib import Path

from durability_flows import Chain, total

from notebook_workflows.checkpoint import SQLiteStore


async def failed_run(path: Path, snapshots: int) -> None:
    """A run with ``snapshots`` snapshots whose last step failed: the start, the first step,
    ``snapshots - 3`` steps and the end."""
    workflow = Chain()
    workflow.fail_at = snapshots - 3
    with SQLiteStore(path) as store:
        handler = workflow.run(checkpoint=store, run_id="long", n=snapshots, log="/dev/null")
        with contextlib.suppress(RuntimeError):  # the last step fails, as it should
            await handler
        info = store.run_info("long")
        assert info is not None and info.status == "failed" and info.seq + 1 == snapshots


async def seconds_to_first_step(path: Path, snapshots: int) -> float:
    with SQLiteStore(path) as store:
        store.runs()  # the file is open: opening it is not resuming
        workflow = Chain()
        start = time.perf_counter()
        handler = workflow.resume("long", store=store)
        assert await handler == total(snapshots)
        assert workflow.first_hop_at is not None
        return workflow.first_hop_at - start


async def test_resuming_10000_snapshots_costs_about_what_100_cost(tmp_path: Path) -> None:
    medians = {}
    for snapshots in (100, 10_000):
        original = tmp_path / f"{snapshots}.db"
        await failed_run(original, snapshots)
        samples = []
        for i in range(3):
            copy = tmp_path / f"{snapshots}-{i}.db"
            shutil.copyfile(original, copy)  # closed: its log is folded into the file
            samples.append(await seconds_to_first_step(copy, snapshots))
        medians[snapshots] = statistics.median(samples)
    assert medians[10_000] < 1.0, medians  # measured about 15 ms on a loaded 2-core machine
    assert medians[10_000] < 5 * medians[100] + 0.05, medians
