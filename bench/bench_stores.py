"""What a checkpoint costs in each store: SQLite (NORMAL and FULL) against PostgreSQL.

1. Latency: the extra cost of one checkpoint per step, as the recorder pays it: one
   ``store.save(Record(...))`` of a small delta (a one-key change), timed one by one after a
   run's first base was saved with ``new_run=``; the median over every save of every round.
2. Batches: the same records saved 16 at a time with ``store.save_many`` (one commit per
   batch, what ``durability="async"`` writes when steps come quickly), per record.
3. Throughput: records per second with 4 writers, each writing its own run, at once (threads,
   each with its own store object; and processes); the median over rounds.

PostgreSQL: ``--dsn postgresql://...``, or a throwaway cluster started here with initdb/pg_ctl
on a free loopback port (tests/servers.py), with its default durability (fsync on,
synchronous_commit on), so each commit waits for the WAL flush, as SQLite FULL does; and
with ``synchronous_commit=off`` (a crash of the server may lose the last commits, never
corrupt), closer to SQLite NORMAL.

Run: python bench/bench_stores.py [--saves 2000] [--rounds 5] [--dsn DSN]
Prints a table of medians on stderr and JSON lines (one per store) that ``bench/run.py`` gathers
into ``bench/STORES.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from notebook_workflows.checkpoint import BaseStore, Record, RunInfo, SQLiteStore  # noqa: E402
from notebook_workflows.checkpoint.base import dumps  # noqa: E402

WRITERS = 4
BATCH = 16  # records per save_many: the async writer's MAX_WAITING


def base_record(run_id: str) -> tuple[Record, RunInfo]:
    now = time.time()
    data = dumps({"format": 1, "run_id": run_id, "store": {"counter": 0}, "queue": []})
    record = Record(run_id, 0, "base", "start", None, "running", 0, now, data)
    return record, RunInfo(run_id, "bench:Chain", "running", 0, now, created_at=now)


def delta(run_id: str, seq: int) -> Record:
    data = dumps({"store": {"set": {"counter": seq}}})  # a one-key change
    return Record(run_id, seq, "delta", "step", "tick", "running", seq, time.time(), data)


def write_run(store: BaseStore, saves: int, timings: list[float] | None = None) -> None:
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    record, info = base_record(run_id)
    store.save(record, new_run=info)
    clock = time.perf_counter
    for seq in range(1, saves + 1):
        rec = delta(run_id, seq)
        if timings is None:
            store.save(rec)
        else:
            start = clock()
            store.save(rec)
            timings.append(clock() - start)


def batch_latency(make: Callable[[], BaseStore], saves: int, rounds: int) -> float:
    """Microseconds per record when records are saved ``BATCH`` at a time."""
    timings: list[float] = []
    clock = time.perf_counter
    with make() as store:
        write_run(store, 50)
        for _ in range(rounds):
            run_id = f"bench-{uuid.uuid4().hex[:10]}"
            record, info = base_record(run_id)
            store.save(record, new_run=info)
            for first in range(1, saves + 1, BATCH):
                batch = [delta(run_id, seq) for seq in range(first, first + BATCH)]
                start = clock()
                store.save_many(batch)
                timings.append((clock() - start) / BATCH)
    return statistics.median(timings) * 1e6


def latency(make: Callable[[], BaseStore], saves: int, rounds: int) -> float:
    timings: list[float] = []
    with make() as store:
        write_run(store, 50)  # warm-up: the connection, the tables, the caches
        for _ in range(rounds):
            write_run(store, saves, timings)
    return statistics.median(timings) * 1e6


def _process_writer(spec: tuple[str, str], saves: int, start: Any) -> None:
    store = open_store(*spec)
    write_run(store, 5)
    start.wait()
    write_run(store, saves)
    store.close()


def throughput(spec: tuple[str, str], saves: int, rounds: int, mode: str) -> float:
    rates = []
    for _ in range(rounds):
        if mode == "threads":
            stores = [open_store(*spec) for _ in range(WRITERS)]
            for store in stores:
                write_run(store, 5)
            workers = [threading.Thread(target=write_run, args=(store, saves)) for store in stores]
            began = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - began
            for store in stores:
                store.close()
        else:
            fork = multiprocessing.get_context("fork")
            start = fork.Barrier(WRITERS + 1)
            procs = [
                fork.Process(target=_process_writer, args=(spec, saves, start))
                for _ in range(WRITERS)
            ]
            for p in procs:
                p.start()
            start.wait()
            began = time.perf_counter()
            for p in procs:
                p.join()
                assert p.exitcode == 0
            elapsed = time.perf_counter() - began
        rates.append(WRITERS * saves / elapsed)
    return statistics.median(rates)


def open_store(kind: str, where: str) -> BaseStore:
    if kind.startswith("sqlite"):
        return SQLiteStore(where, synchronous=kind.partition("/")[2] or "NORMAL")
    from notebook_workflows.checkpoint import PostgresStore

    if kind == "postgres/async":  # commits return before the WAL flush (may lose the last few)
        return PostgresStore(where, options="-c synchronous_commit=off")
    return PostgresStore(where)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--saves", type=int, default=2000, help="records per run and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dsn", help="a PostgreSQL database (default: a throwaway cluster)")
    args = parser.parse_args()

    cluster = None
    dsn = args.dsn
    if dsn is None:
        from servers import PostgresCluster

        cluster = PostgresCluster(fsync=True)
        cluster.start()
        dsn = cluster.create_database()
    folder = Path(tempfile.mkdtemp(prefix="nw-bench-"))
    try:
        specs = {
            "SQLite (NORMAL)": ("sqlite/NORMAL", str(folder / "normal.db")),
            "SQLite (FULL)": ("sqlite/FULL", str(folder / "full.db")),
            "PostgreSQL (fsync on)": ("postgres", dsn),
            "PostgreSQL (sync_commit off)": ("postgres/async", dsn),
        }
        rows = []
        for name, spec in specs.items():
            made = lambda spec=spec: open_store(*spec)  # noqa: E731
            per_save = latency(made, args.saves, args.rounds)
            per_batched = batch_latency(made, args.saves, args.rounds)
            tput = {
                mode: throughput(spec, args.saves // 2, args.rounds, mode)
                for mode in ("threads", "processes")
            }
            rows.append((name, per_save, per_batched, tput["threads"], tput["processes"]))
            print(f"measured {name}", file=sys.stderr)
        heading = (
            f"one checkpoint save (one-key delta), median over {args.rounds} x {args.saves} "
            f"saves; in batches of {BATCH} (save_many), per record; {WRITERS} writers of "
            f"separate runs, median of {args.rounds} rounds"
        )
        print(heading, file=sys.stderr)
        for name, per_save, per_batched, threads, procs in rows:
            print(
                f"  {name:<30}{per_save:8.0f} us{per_batched:8.1f} us{threads:10,.0f}"
                f"{procs:10,.0f} rec/s",
                file=sys.stderr,
            )
            record = {
                "engine": "notebook_workflows",
                "workload": f"C_store {name}",
                "us_per_save": round(per_save, 1),
                "us_per_record_in_batches": round(per_batched, 1),
                "batch": BATCH,
                "records_per_s_4_threads": round(threads),
                "records_per_s_4_processes": round(procs),
                "saves": args.saves,
                "rounds_measured": args.rounds,
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            }
            print(json.dumps(record), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
