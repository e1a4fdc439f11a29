"""The event loop while a checkpoint store does not answer.

A 60-hop run (each hop waits 20 ms and makes a ``ctx.once`` call, as a step that calls a
model and pays would) is checkpointed into each store; a few steps in, the store is frozen
for ``--frozen`` seconds (6 by default): SQLite by another connection holding an exclusive
write lock, Redis and PostgreSQL by SIGSTOP of their server processes. A ticker task sleeping
10 ms at a time measures how late the loop wakes it; the figure is the worst lateness over
the whole run, in each durability mode. A frozen loop is a frozen notebook kernel: no widget
update, no interrupt. The servers are throwaway ones on free loopback ports
(``tests/servers.py``).

Run: python bench/bench_frozen.py [--frozen 6]
Prints JSON lines, the last one a summary that ``bench/run.py`` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import test_store_frozen as frozen  # noqa: E402  (the workflow, the ticker, the freezing)
from servers import PostgresCluster, RedisServer, make_store  # noqa: E402

MODES = ("sync", "async", "exit")


async def one(kind: str, location: str, mode: str, freeze: Any) -> float:
    with make_store(kind, location) as store:
        stack = contextlib.ExitStack()
        handler = frozen.Slowly().run(checkpoint=store, durability=mode)
        return await frozen.worst_lag(handler, lambda: freeze(stack), stack.close)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frozen", type=float, default=6.0)
    args = parser.parse_args()
    frozen.FROZEN = args.frozen
    summary: dict[str, Any] = {"engine": "summary", "workload": "frozen_store_loop_lag"}
    summary["frozen_s"] = args.frozen
    tmp = Path(tempfile.mkdtemp())
    redis = RedisServer(tmp)
    cluster = PostgresCluster()
    redis.start()
    cluster.start()
    try:
        sqlite_path = str(tmp / "runs.db")

        def lock_sqlite(stack: contextlib.ExitStack) -> None:
            lock = sqlite3.connect(sqlite_path, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            stack.callback(lock.close)
            stack.callback(lock.execute, "ROLLBACK")

        def stop_redis(stack: contextlib.ExitStack) -> None:
            redis.pause()
            stack.callback(redis.resume)

        def stop_postgres(stack: contextlib.ExitStack) -> None:
            stack.enter_context(frozen.signalled(frozen.cluster_pids(cluster.data)))

        stores = [
            ("sqlite", sqlite_path, lock_sqlite),
            ("redis", redis.url, stop_redis),
            ("postgres", cluster.create_database(), stop_postgres),
        ]
        for kind, location, freeze in stores:
            for mode in MODES:
                lag = asyncio.run(one(kind, location, mode, freeze))
                record = {"engine": "notebook_workflows", "workload": f"frozen_{kind}_{mode}"}
                print(json.dumps({**record, "worst_lag_ms": round(lag * 1e3, 1)}), flush=True)
                summary[f"{kind}/{mode} worst_lag_ms"] = round(lag * 1e3, 1)
    finally:
        redis.stop()
        cluster.stop()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
