"""PostgresStore's own behaviour, on a real PostgreSQL cluster the tests start (servers.py).
What every store does (runs, history, leases, two processes) is in test_store_contract.py."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time

import pytest
from ckpt_flows import Docs
from servers import free_port

from notebook_workflows import SnapshotError


def test_importing_the_checkpoints_does_not_need_psycopg() -> None:
    code = (
        "import sys, notebook_workflows.checkpoint as c; c.PostgresStore; "
        "assert 'psycopg' not in sys.modules, 'psycopg imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_the_schema_is_versioned_and_a_newer_one_is_refused(postgres_dsn: str) -> None:
    import psycopg

    from notebook_workflows.checkpoint import PostgresStore

    with PostgresStore(postgres_dsn) as store:
        Docs().run_sync(checkpoint=store, ids=[1], log=os.devnull, run_id="kept")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM nw_schema").fetchall() == [(1,)]
        conn.execute("UPDATE nw_schema SET version = 7")
    with PostgresStore(postgres_dsn) as store, pytest.raises(SnapshotError) as caught:
        store.runs()
    message = str(caught.value)
    assert "written by a newer notebook_workflows (schema 7" in message
    assert "upgrade notebook_workflows" in message and "nothing was changed" in message
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE nw_schema SET version = 1")
    with PostgresStore(postgres_dsn) as store:
        assert [r.run_id for r in store.runs()] == ["kept"]
    with PostgresStore(postgres_dsn, prefix="other") as other:
        assert other.runs() == []  # prefixes keep stores apart in one database


def test_the_password_is_never_shown_and_a_missing_server_is_named(tmp_path: object) -> None:
    from notebook_workflows.checkpoint import PostgresStore

    port = free_port()  # nothing listens there
    store = PostgresStore(f"postgresql://me:s3cret@127.0.0.1:{port}/db", connect_timeout=2)
    assert "s3cret" not in repr(store) and "me:***@" in repr(store)
    started = time.monotonic()
    with pytest.raises(SnapshotError) as caught:
        store.runs()
    message = str(caught.value)
    assert time.monotonic() - started < 10  # refused at once; generous beside the 2 s timeout
    assert "s3cret" not in message.replace(repr(store), "")
    # refused, not "did not answer": nothing listens there
    server = f"the PostgreSQL server at 127.0.0.1:{port}/db"
    assert f"could not list its runs: {server} could not be reached: Connection refused" in message
    assert "did not answer" not in message
    with pytest.raises(ValueError, match="prefix names tables"):
        PostgresStore("postgresql://x/y", prefix="bad-name; DROP")


def write_runs(dsn: str, prefix: str) -> None:
    from notebook_workflows.checkpoint import PostgresStore

    async def main() -> None:
        with PostgresStore(dsn) as store:
            for i in range(4):
                result = await Docs().run(
                    checkpoint=store, run_id=f"{prefix}-{i}", ids=list(range(6)), log=os.devnull
                )
                assert result == list(range(6))

    asyncio.run(main())


def test_two_processes_write_one_database_at_once(postgres_dsn: str) -> None:
    from notebook_workflows.checkpoint import PostgresStore

    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=write_runs, args=(postgres_dsn, n)) for n in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with PostgresStore(postgres_dsn) as store:
        runs = store.runs()
        assert sorted(r.run_id for r in runs) == [f"{n}-{i}" for n in "ab" for i in range(4)]
        for info in runs:
            assert info.status == "done" and info.steps == 13
            assert [s.seq for s in store.history(info.run_id)] == list(range(15))
