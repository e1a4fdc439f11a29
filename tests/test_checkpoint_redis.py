"""RedisStore on a real redis-server, started by the tests on a free loopback port
(``redis_server`` in servers.py). What every store does is in test_store_contract.py; here is
what is Redis's own: a server that stops, freezes (SIGSTOP) or is slow."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Counter
from helpers import until
from servers import RedisServer

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import SnapshotStore

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="redis-server is not installed"
    ),
]


def store_at(server: RedisServer, prefix: str = "nw", **options: Any) -> SnapshotStore:
    from notebook_workflows.checkpoint import RedisStore

    return RedisStore(server.url, prefix=prefix, **options)


def test_the_store_names_its_server_and_prefixes_keep_stores_apart(
    redis_server: RedisServer,
) -> None:
    """Runs, history, forks and pruning: test_store_contract.py, on every store."""
    store = store_at(redis_server)
    assert "RedisStore('redis://127.0.0.1:" in repr(store) and "prefix='nw'" in repr(store)
    Counter().run_sync(checkpoint=store, n=2, run_id="here")
    other = store_at(redis_server, prefix="elsewhere")
    assert other.runs() == []
    assert [r.run_id for r in store.runs()] == ["here"]


async def test_a_redis_server_that_stops_fails_the_run_and_keeps_its_checkpoints(
    redis_server: RedisServer,
) -> None:
    store = store_at(redis_server)
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=200, delay=0.005, run_id="long")
    await until(lambda: len(Counter.ran) >= 5, what="five ticks")
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
    assert time.monotonic() - started < 10  # refused at once; generous beside the 2 s timeout


async def run_while_frozen(server: RedisServer, handler: Any, freeze: float) -> float:
    """Freeze the server (SIGSTOP) while the run goes on, for ``freeze`` seconds at most or
    until the run ends; return the longest time the event loop was kept from running."""
    await until(lambda: len(Counter.ran) >= 5, what="five ticks")
    server.pause()
    thaw = threading.Timer(freeze, server.resume)  # bounded, whatever happens here
    thaw.start()
    longest, last = 0.0, time.monotonic()
    try:
        while not handler.done():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
    finally:
        thaw.cancel()
        server.resume()
    return longest


async def test_a_write_retried_after_a_timeout_recognises_its_own_earlier_write(
    redis_server: RedisServer,
) -> None:
    """The server freezes for longer than the timeout: the checkpoint is sent again, and the
    first request, applied once the server thaws, must not fail the run as "another kernel"."""
    store = store_at(redis_server, timeout=1.0)
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=150, delay=0.002, run_id="slow")
    # the first try times out at 1 s, the retry goes out and the server thaws at 1.4 s:
    # both requests are applied then, the first one first
    await run_while_frozen(redis_server, handler, freeze=1.4)
    assert await handler == 150
    history = store.history("slow")
    assert [s.seq for s in history] == list(range(len(history)))
    assert history[-1].status == "done" and history[-1].steps == 151


async def test_a_frozen_server_fails_the_run_in_bounded_time_saying_it_did_not_answer(
    redis_server: RedisServer,
) -> None:
    store = store_at(redis_server)  # the default timeout: 2 s
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=100_000, delay=0.002, run_id="frozen")
    started = time.monotonic()
    longest_block = await run_while_frozen(redis_server, handler, freeze=60)
    # two tries of 2 s, not the 60 s the server stays frozen (generous, for a loaded machine)
    assert time.monotonic() - started < 30
    assert longest_block < 6  # two tries of 2 s, then the run fails
    with pytest.raises(SnapshotError) as caught:
        await handler
    message = str(caught.value)
    assert "run 'frozen' stopped" in message and "resume('frozen')" in message
    assert f"Redis server at 127.0.0.1:{redis_server.port} did not answer within 2 s" in message
    assert message.count("resume(") == 1  # the run's error says it, the store's does not again
    assert handler.status == "failed"
    latest = store.latest("frozen")  # thawed: every checkpoint written is there
    # five ticks had run when it froze; in "sync" the records of the last two steps may still
    # have been on their way (the writer's thread writes them while the run goes on)
    assert latest.status == "running" and latest.steps >= 5 - 2
    Counter.ran = []
    resumed = Counter().resume("frozen", store=store)
    await resumed.cancel()  # it goes on from there; no need for 100,000 steps
    history = store.history("frozen")
    assert [s.seq for s in history] == list(range(len(history)))


def test_a_batch_sent_again_is_recognised_as_its_own_and_any_other_is_refused(
    redis_server: RedisServer,
) -> None:
    """``save_many`` retried after a timeout may find its first attempt applied: the very same
    records are accepted as written; a batch that differs in any record is refused whole."""
    from notebook_workflows.checkpoint import Record
    from notebook_workflows.checkpoint.base import dumps

    store = store_at(redis_server)
    Counter().run_sync(checkpoint=store, n=1, run_id="r")
    last = store.latest("r").seq

    def records(first: int, count: int, value: int) -> list[Record]:
        data = dumps({"store_set": {"n": value}})
        return [
            Record("r", seq, "delta", "step", "tick", "running", seq, 5.0, data)
            for seq in range(first, first + count)
        ]

    store.save_many(records(last + 1, 4, 1))
    store.save_many(records(last + 1, 4, 1))  # the retry of an applied batch
    assert [s.seq for s in store.history("r")] == list(range(last + 5))
    with pytest.raises(SnapshotError, match=rf"already has snapshot {last + 1} of run 'r'"):
        store.save_many(records(last + 1, 4, 2))  # the same seqs, other records
    with pytest.raises(SnapshotError, match=r"already has one of snapshots"):
        store.save_many(records(last + 3, 4, 1))  # half of it there: not a retry
    assert store.latest("r").seq == last + 4
    assert store.latest("r").context["store"]["n"] == 1
