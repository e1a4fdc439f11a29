"""Real servers for the store tests, started by the tests themselves on free loopback ports.

* ``redis_server``: a redis-server per test, its append-only file in the test's temp folder.
* ``postgres_cluster`` (one per session: initdb and start take a few seconds) and
  ``postgres_dsn`` (a fresh database per test). As root, the cluster runs as the ``postgres``
  system user (the server refuses root) in a temp folder owned by it.

* ``store_spec`` / ``any_store``: the same test on every store (memory, SQLite, Redis,
  PostgreSQL), and ``shared_spec`` on the stores several processes can share.

Every server listens on 127.0.0.1 only, is stopped at the end (also when a test fails), and
every wait is bounded. A missing program skips its tests with the reason (``make test``
installs them; under NOTEBOOK_WORKFLOWS_STRICT=1 a skip fails).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notebook_workflows.checkpoint import BaseStore, MemoryStore, SQLiteStore

__all__ = [
    "PostgresCluster",
    "RedisServer",
    "any_store",
    "make_store",
    "postgres_cluster",
    "postgres_dsn",
    "redis_server",
    "shared_spec",
    "store_fixture",
    "store_spec",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Redis ----------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own, with its data (an append-only file) in a temp dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.process is not None:
            self.resume()  # a stopped process would not see SIGTERM until continued
            self.process.terminate()  # redis-server writes its append-only file and exits
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- PostgreSQL -----------------------------------------------------------------------------------


def postgres_bin(program: str) -> str | None:
    """``program`` from PATH or from Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(program)
    if found:
        return found
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return versions[-1] if versions else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster: initdb in a temp folder, pg_ctl start on a free port."""

    def __init__(self, fsync: bool = False) -> None:
        self.fsync = fsync  # off for tests (speed); on for benchmarks (the default, durable)
        self.programs = {p: postgres_bin(p) for p in ("initdb", "pg_ctl", "createdb")}
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="nw-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, program: str, *args: str, timeout: float = 90) -> None:
        path = self.programs[program]
        assert path is not None
        done = subprocess.run(
            [*self.as_user, path, *args], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                 "-N")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=60"
        )
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                 "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        name = f"nw_{uuid.uuid4().hex[:12]}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name,
                 timeout=90)  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    missing = [p for p, path in cluster.programs.items() if path is None]
    if missing:
        shutil.rmtree(cluster.root, ignore_errors=True)
        pytest.skip(
            f"PostgreSQL programs {', '.join(missing)} are not installed (Debian: apt-get "
            f"install postgresql; they live in /usr/lib/postgresql/<version>/bin)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        shutil.rmtree(cluster.root, ignore_errors=True)
        pytest.skip("psycopg is not installed: pip install 'notebook-workflows[postgres]'")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_dsn(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database()


# -- every store ----------------------------------------------------------------------------------

STORE_KINDS = ["memory", "sqlite", "redis", "postgres"]
SHARED_KINDS = ["sqlite", "redis", "postgres"]  # stores that several processes can share


def store_location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "redis":
        return str(request.getfixturevalue("redis_server").url)
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return str(tmp_path / "runs.db")


def make_store(kind: str, location: str) -> BaseStore:
    """A new store of ``kind`` at ``location`` (also in a child process: pass the two)."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(location)
    if kind == "redis":
        from notebook_workflows.checkpoint import RedisStore

        return RedisStore(location)
    from notebook_workflows.checkpoint import PostgresStore

    return PostgresStore(location)


@pytest.fixture(params=STORE_KINDS)
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, store_location(request.param, request, tmp_path)


@pytest.fixture(params=SHARED_KINDS)
def shared_spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, store_location(request.param, request, tmp_path)


@pytest.fixture
def any_store(store_spec: tuple[str, str]) -> Iterator[BaseStore]:
    with make_store(*store_spec) as store:
        yield store


def store_fixture(*kinds: str) -> Any:
    """A ``store`` fixture over these kinds of store (a file's own choice, where ``any_store``
    is every kind), each made fresh for the test and closed after it:
    ``store = store_fixture("memory", "sqlite")`` at a test file's top level."""
    params = [pytest.param(k, marks=pytest.mark.redis) if k == "redis" else k for k in kinds]

    @pytest.fixture(params=params)
    def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
        kind = request.param
        with make_store(kind, store_location(kind, request, tmp_path)) as made:
            yield made

    return store
