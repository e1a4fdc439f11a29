"""Stores that cannot work, told apart in words: a PostgreSQL server that does not answer
(frozen with SIGSTOP) fails a call within the store's timeout, naming its address and the
timeout; a wrong password, database, role or sslmode says what the server (or libpq) said,
never that the server "did not answer" nor to resume a run that never started; passwords are
masked whole; a run id no store can keep is refused at run(), the same way with any store.

The PostgreSQL tests use the session's cluster (servers.py), with one role of their own that
must give a password (a line of pg_hba.conf for that role only); the Redis ones start a
redis-server that asks for a password."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Counter
from servers import PostgresCluster, free_port

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore

# what a store that answered, or was never reached, must not say
NOT_SAID = ("did not answer", "resume")


def within(seconds: float, call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """Run ``call`` in a thread; the exception it raised (None if none) and how long it took.
    Fails the test if it has not returned after ``seconds`` (the thread is left behind)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"the store call did not return within {seconds} s"
    return outcome[0], time.monotonic() - started


# -- a frozen PostgreSQL --------------------------------------------------------------------------


def cluster_processes(cluster: PostgresCluster) -> list[int]:
    """The postmaster (first line of postmaster.pid) and every process it started."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == postmaster:
            children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def frozen(cluster: PostgresCluster, longest: float = 20.0) -> Iterator[None]:
    """The whole cluster stopped (SIGSTOP): connections are accepted by the kernel, nothing
    answers. Continued at the end, or after ``longest`` seconds whatever happens."""
    processes = cluster_processes(cluster)

    def thaw() -> None:
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    safety = threading.Timer(longest, thaw)
    safety.start()
    try:
        yield
    finally:
        safety.cancel()
        thaw()


def database_of(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


def test_a_frozen_postgres_fails_a_call_within_the_timeout_naming_its_address(
    postgres_cluster: PostgresCluster, postgres_dsn: str
) -> None:
    from notebook_workflows.checkpoint import PostgresStore

    store = PostgresStore(postgres_dsn, timeout=1)
    assert store.runs() == []  # connected before the freeze
    with frozen(postgres_cluster):
        error, took = within(10, store.runs)
    assert isinstance(error, SnapshotError)
    assert 1.0 <= took < 2.0  # cut at 1.2 times the timeout
    message = str(error)
    where = f"127.0.0.1:{postgres_cluster.port}/{database_of(postgres_dsn)}"
    assert f"the PostgreSQL server at {where} did not answer within 1 s" in message
    assert store.runs() == []  # thawed: the next call connects again
    store.close()


def test_a_lock_held_elsewhere_is_waited_for_no_longer_than_the_timeout(
    postgres_dsn: str,
) -> None:
    import psycopg

    from notebook_workflows.checkpoint import Owner, PostgresStore

    store = PostgresStore(postgres_dsn, timeout=1)
    store.acquire_lease("r", Owner.current())
    with psycopg.connect(postgres_dsn) as other:  # a transaction holding the lease's row
        other.execute("SELECT * FROM nw_leases WHERE run_id = 'r' FOR UPDATE")
        error, took = within(10, lambda: store.acquire_lease("r", Owner.current(), force=True))
    assert isinstance(error, SnapshotError)
    assert 1.0 <= took < 2.0
    message = str(error)
    assert "gave up on a statement after the store's timeout, 1 s" in message
    assert "canceling statement due to" in message and "another session hold a lock" in message
    store.close()


async def test_a_run_on_a_frozen_postgres_fails_naming_the_server_the_timeout_and_resume(
    postgres_cluster: PostgresCluster, postgres_dsn: str
) -> None:
    from notebook_workflows.checkpoint import PostgresStore

    store = PostgresStore(postgres_dsn, timeout=1)
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=100_000, delay=0.002, run_id="frozen")
    while len(Counter.ran) < 5:
        await asyncio.sleep(0.002)
    with frozen(postgres_cluster, longest=10):
        started = time.monotonic()
        with pytest.raises(SnapshotError) as caught:
            await asyncio.wait_for(handler, 10)
        took = time.monotonic() - started
    # the checkpoint's call, cut at 1.2 s, then the lease's release, which must connect again
    # (libpq waits 2 s at least for that): not the 10 s the server stays frozen
    assert took < 6
    message = str(caught.value)
    where = f"127.0.0.1:{postgres_cluster.port}/{database_of(postgres_dsn)}"
    assert "run 'frozen' stopped" in message
    assert f"the PostgreSQL server at {where} did not answer within 1 s" in message
    assert message.count("resume(") == 1 and "workflow.resume('frozen')" in message
    latest = store.latest("frozen")  # thawed: the checkpoints written are there
    assert latest.status == "running" and latest.steps >= 5
    store.close()


# -- PostgreSQL refusing a connection -------------------------------------------------------------


@pytest.fixture(scope="module")
def password_role(postgres_cluster: PostgresCluster) -> str:
    """A role of the session cluster that logs in with a password ('right pass') over TCP,
    while every other role keeps trust (its pg_hba.conf line comes first)."""
    import psycopg

    role = f"nw_pw_{uuid.uuid4().hex[:8]}"
    port = postgres_cluster.port
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right pass'")
    hba = postgres_cluster.data / "pg_hba.conf"
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    postgres_cluster.run("pg_ctl", "-D", str(postgres_cluster.data), "reload")
    deadline = time.monotonic() + 10
    while True:  # until the server has read its new pg_hba.conf
        try:
            psycopg.connect(f"postgresql://{role}@127.0.0.1:{port}/postgres").close()
        except psycopg.OperationalError:
            return role
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded"
        time.sleep(0.05)


def refused_call(dsn: str) -> str:
    """What ``runs()`` of a store at ``dsn`` fails with."""
    from notebook_workflows.checkpoint import PostgresStore

    store = PostgresStore(dsn, timeout=2)
    with pytest.raises(SnapshotError) as caught:
        store.runs()
    return str(caught.value)


def bad_dsns(port: int, database: str, role: str) -> dict[str, tuple[str, str]]:
    """name -> (DSN, what the server or libpq said)"""
    at = f"host=127.0.0.1 port={port} dbname={database}"
    url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
    return {
        "wrong password": (
            f"{at} user={role} password='WRONG PASS'",
            f'password authentication failed for user "{role}"',
        ),
        "no password": (f"{at} user={role}", "no password supplied"),
        "missing database": (
            f"postgresql://postgres@127.0.0.1:{port}/no_such_db",
            'database "no_such_db" does not exist',
        ),
        "missing role": (f"{at} user=no_such_role", 'role "no_such_role" does not exist'),
        "sslmode the server lacks": (
            f"{url}?sslmode=require",
            "server does not support SSL, but SSL was required",
        ),
        "bad sslmode": (f"{url}?sslmode=bogus", 'invalid sslmode value: "bogus"'),
    }


BAD = list(bad_dsns(0, "", ""))


@pytest.mark.parametrize("case", BAD)
def test_a_refused_connection_says_what_the_server_said(
    case: str, postgres_cluster: PostgresCluster, postgres_dsn: str, password_role: str
) -> None:
    database = database_of(postgres_dsn)
    dsn, words = bad_dsns(postgres_cluster.port, database, password_role)[case]
    message = refused_call(dsn)
    assert words in message
    assert f"the PostgreSQL server at 127.0.0.1:{postgres_cluster.port}/" in message
    assert not any(wrong in message for wrong in NOT_SAID), message
    assert "WRONG" not in message and "PASS'" not in message
    if case != "bad sslmode":  # libpq's own refusal: no server was asked
        assert "refused the connection" in message


def test_a_run_whose_store_refuses_the_connection_says_so_and_not_to_resume(
    postgres_cluster: PostgresCluster, postgres_dsn: str, password_role: str
) -> None:
    import psycopg

    from notebook_workflows.checkpoint import PostgresStore

    dsn, words = bad_dsns(postgres_cluster.port, database_of(postgres_dsn), password_role)[
        "wrong password"
    ]
    with pytest.raises(SnapshotError) as caught:
        Counter().run_sync(checkpoint=PostgresStore(dsn), n=2, run_id="never")
    message = str(caught.value)
    assert words in message and "Check the user, password, database and sslmode" in message
    assert not any(wrong in message for wrong in NOT_SAID), message
    with PostgresStore(postgres_dsn) as store:
        assert store.runs() == []  # it never started

    # refused for its password, nothing else: with the right one the same role runs
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"GRANT ALL ON SCHEMA public TO {password_role}")
    with PostgresStore(dsn.replace("WRONG PASS", "right pass"), prefix="mine") as store:
        assert Counter().run_sync(checkpoint=store, n=2, run_id="ok") == 2


# -- passwords are masked whole -------------------------------------------------------------------


MASKED = {
    "host=db user=me password='WRONG PASS' dbname=x": "host=db user=me password=*** dbname=x",
    "host=db password = 'it\\'s a secret' dbname=x": "host=db password = *** dbname=x",
    "host=db password=plain dbname=x": "host=db password=*** dbname=x",
    "postgresql://me:s3cret@db:5432/x": "postgresql://me:***@db:5432/x",
    "postgresql://me@db/x?sslmode=require&password=s3cret&application_name=a": (
        "postgresql://me@db/x?sslmode=require&password=***&application_name=a"
    ),
}


def test_a_password_in_a_dsn_is_masked_whole() -> None:
    pytest.importorskip("psycopg")
    from notebook_workflows.checkpoint import PostgresStore

    shown = {dsn: repr(PostgresStore(dsn)) for dsn in MASKED}
    assert shown == {
        dsn: f"PostgresStore({masked!r}, prefix='nw')" for dsn, masked in MASKED.items()
    }


def test_a_dsn_that_does_not_parse_is_refused_at_once_without_its_password() -> None:
    pytest.importorskip("psycopg")
    from notebook_workflows.checkpoint import PostgresStore

    with pytest.raises(ValueError, match="is not a PostgreSQL connection string") as caught:
        PostgresStore("host=db password='s3cret' colour=blue")
    assert "s3cret" not in str(caught.value) and 'invalid connection option "colour"' in str(
        caught.value
    )


# -- Redis refusing a connection ------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A redis-server that asks for the password 'right pass'; its port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--save", "", "--appendonly", "no", "--requirepass", "right pass"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"-NOAUTH"):
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield port
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://:WRONG%20PASS@127.0.0.1:{port}/0", "invalid username-password pair"),
        ("redis://nobody:x@127.0.0.1:{port}/0", "invalid username-password pair"),
        ("redis://127.0.0.1:{port}/0", "authenticated"),
        ("redis://:right%20pass@127.0.0.1:{port}/99", "DB index is out of range"),
    ],
)
def test_redis_refusing_says_what_the_server_said(
    url: str, words: str, redis_with_password: int
) -> None:
    from notebook_workflows.checkpoint import RedisStore

    store = RedisStore(url.format(port=redis_with_password))
    with pytest.raises(SnapshotError) as caught:
        store.runs()
    message = str(caught.value)
    assert words in message and f"the Redis server at 127.0.0.1:{redis_with_password}" in message
    assert "Check the" in message and " the URL" in message
    assert not any(wrong in message for wrong in NOT_SAID), message
    assert "WRONG" not in message
    with pytest.raises(SnapshotError) as caught:
        Counter().run_sync(checkpoint=store, n=2, run_id="never")
    assert words in str(caught.value)
    assert not any(wrong in str(caught.value) for wrong in NOT_SAID), str(caught.value)
    store.close()


# -- run ids no store can keep --------------------------------------------------------------------


def no_store(tmp_path: Path) -> None:
    return None


STORES: dict[str, Callable[[Path], Any]] = {
    "no store": no_store,
    "memory": lambda tmp_path: MemoryStore(),
    "sqlite": lambda tmp_path: SQLiteStore(tmp_path / "runs.db"),
}


@pytest.mark.parametrize("kind", list(STORES))
@pytest.mark.parametrize("run_id", ["", "a\x00b", "a\nb", "\x1b[31mred", "tab\there"])
async def test_a_run_id_no_store_can_keep_is_refused_at_run(
    kind: str, run_id: str, tmp_path: Path
) -> None:
    store = STORES[kind](tmp_path)
    with pytest.raises(ValueError) as caught:
        Counter().run(checkpoint=store, n=2, run_id=run_id)
    assert repr(run_id) in str(caught.value)
    if store is not None:
        assert store.runs() == []  # refused before anything was written
    with pytest.raises(ValueError) as again:
        await asyncio.to_thread(Counter().run_sync, checkpoint=store, n=2, run_id=run_id)
    assert str(again.value) == str(caught.value)  # the same words, sync or not, any store


async def test_a_run_id_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="run_id is a str, got int"):
        Counter().run(checkpoint=MemoryStore(), n=2, run_id=7)  # type: ignore[arg-type]
    assert await Counter().run(n=2, run_id="fine, with spaces and ünïcode") == 2
