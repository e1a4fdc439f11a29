"""RedisStore on a real redis-server, started by the tests on a free loopback port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ckpt_flows import Counter, Docs

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import SnapshotStore

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="redis-server is not installed"
    ),
]


class RedisServer:
    """A redis-server of the test's own, with its data (an append-only file) in a temp dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

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

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # redis-server writes its append-only file and exits
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def store_at(server: RedisServer, prefix: str = "nw") -> SnapshotStore:
    from notebook_workflows.checkpoint import RedisStore

    return RedisStore(server.url, prefix=prefix)


async def test_runs_history_and_resume_on_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    store = store_at(redis_server)
    assert "RedisStore('redis://127.0.0.1:" in repr(store) and "prefix='nw'" in repr(store)
    handler = Docs().run(checkpoint=store, ids=[5, 4, 3, 2, 1], log=str(tmp_path / "log"))
    assert await handler == [1, 2, 3, 4, 5]
    [info] = store.runs()
    assert (info.run_id, info.workflow, info.status, info.steps) == (
        handler.run_id, "ckpt_flows:Docs", "done", 11
    )  # fmt: skip
    history = store.history(handler.run_id)
    assert [s.seq for s in history] == list(range(13))
    assert history[-1].context == store.latest(handler.run_id).context
    assert history[-1].context["stop"]["data"]["result"] == [1, 2, 3, 4, 5]
    fork = Docs().resume(handler.run_id, store=store, at=3)
    assert await fork == [1, 2, 3, 4, 5]
    assert store.run_info(fork.run_id).parent == handler.run_id  # type: ignore[union-attr]
    other = store_at(redis_server, prefix="elsewhere")
    assert other.runs() == []  # prefixes keep stores apart on one server
    store.prune(compact=True)
    assert [s.seq for s in store.history(handler.run_id)] == [12]
    assert store.latest(handler.run_id).context == history[-1].context
    store.delete(handler.run_id)
    with pytest.raises(SnapshotError, match=r"RedisStore\(.*\) has no run"):
        store.latest(handler.run_id)


async def test_a_redis_server_that_stops_fails_the_run_and_keeps_its_checkpoints(
    redis_server: RedisServer,
) -> None:
    store = store_at(redis_server)
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=200, delay=0.005, run_id="long")
    while len(Counter.ran) < 5:
        await asyncio.sleep(0.002)
    await asyncio.to_thread(redis_server.stop)
    with pytest.raises(SnapshotError) as caught:
        await handler
    message = str(caught.value)
    assert "run 'long' stopped" in message and redis_server.url in message
    assert "resume('long')" in message
    assert handler.status == "failed"
    ran = len(Counter.ran)
    assert ran < 200

    redis_server.start()  # the same data directory: the checkpoints come back
    latest = store.latest("long")
    assert latest.status == "running" and latest.reason == "step"
    assert ran - 2 <= latest.steps - 1 <= ran  # the last good checkpoint, lost at most one step
    resumed = Counter().resume("long", store=store)
    assert await resumed == 200
    assert store.latest("long").status == "done"


def test_a_missing_server_is_named_in_the_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # never started
    store = store_at(server)
    started = time.monotonic()
    with pytest.raises(SnapshotError, match=rf"RedisStore\('{server.url}'.* could not list"):
        store.runs()
    assert time.monotonic() - started < 10
