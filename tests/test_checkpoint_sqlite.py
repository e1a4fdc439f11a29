"""SQLiteStore: the embedded default store, its files, its errors, two writers at once."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Counter, Docs

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import MemoryStore, RunList, SnapshotStore, SQLiteStore


def test_the_default_file_is_under_the_current_directory_and_made_on_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore()
    assert store.path == tmp_path / ".notebook_workflows" / "runs.db"
    assert store.runs() == []  # looking creates nothing
    assert not (tmp_path / ".notebook_workflows").exists()
    Counter().run_sync(checkpoint=store, n=2)
    assert store.path.exists()
    monkeypatch.chdir("/")
    assert len(store.runs()) == 1  # the path was fixed when the store was made


def test_the_file_uses_wal_and_the_chosen_durability(tmp_path: Path) -> None:
    for mode, code in (("NORMAL", 1), ("full", 2)):
        store = SQLiteStore(tmp_path / f"{mode}.db", synchronous=mode)
        Counter().run_sync(checkpoint=store, n=1)
        conn = store._connection()
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == code
    with pytest.raises(ValueError, match="synchronous must be one of NORMAL, FULL"):
        SQLiteStore(tmp_path / "x.db", synchronous="sometimes")


async def test_runs_lists_the_latest_state_of_each_run(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    first = Counter().run(checkpoint=store, n=3, run_id="first")
    await first
    second = Counter().run(checkpoint=store, n=2, run_id="second")
    await second
    runs = store.runs()
    assert isinstance(runs, RunList)
    assert [(r.run_id, r.workflow, r.status, r.steps, r.parent) for r in runs] == [
        ("second", "ckpt_flows:Counter", "done", 3, None),
        ("first", "ckpt_flows:Counter", "done", 4, None),
    ]
    assert runs[0].updated_at >= runs[1].updated_at > 0
    assert runs[0].seq == 4 and runs[0].snapshots == 5
    text = str(runs)
    assert text.splitlines()[0].split() == [
        "run", "workflow", "status", "steps", "snapshots", "updated", "parent"
    ]  # fmt: skip
    assert "second" in text and "Counter" in text
    html = runs._repr_html_()
    assert html.startswith("<table>") and "<td style='text-align:left'>first</td>" in html
    assert str(RunList()) == "(no runs)"


def test_every_store_is_a_snapshot_store(tmp_path: Path) -> None:
    assert isinstance(SQLiteStore(tmp_path / "a.db"), SnapshotStore)
    assert isinstance(MemoryStore(), SnapshotStore)
    with pytest.raises(TypeError, match="snapshot store"):
        Counter().run_sync(checkpoint="runs.db", n=1)


async def test_unknown_runs_are_named_with_the_store_and_known_runs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    with pytest.raises(SnapshotError, match=r"has no run 'nope': it holds no runs at all"):
        store.latest("nope")
    for i in range(7):
        await Counter().run(checkpoint=store, n=1, run_id=f"run-{i}")
    for call in (store.latest, store.history, store.delete, lambda r: store.snapshot(r, 0)):
        with pytest.raises(SnapshotError) as caught:
            call("nope")
        message = str(caught.value)
        assert "SQLiteStore(" in message and str(tmp_path) in message and "'nope'" in message
        assert "'run-6'" in message and "and 2 more" in message
    with pytest.raises(SnapshotError, match=r"run 'run-1' .* has no snapshot 9: .* 0 to 3"):
        store.snapshot("run-1", 9)


async def test_a_run_id_in_use_is_refused_before_anything_runs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    await Counter().run(checkpoint=store, n=1, run_id="nightly")
    Counter.ran = []
    with pytest.raises(SnapshotError, match=r"already has a run 'nightly'.*resume\('nightly'\)"):
        await Counter().run(checkpoint=store, n=1, run_id="nightly")
    assert Counter.ran == []
    assert len(store.history("nightly")) == 4


async def test_delete_removes_a_run_and_its_snapshots(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    await Counter().run(checkpoint=store, n=2, run_id="a")
    await Counter().run(checkpoint=store, n=2, run_id="b")
    store.delete("a")
    assert [r.run_id for r in store.runs()] == ["b"]
    with pytest.raises(SnapshotError, match="has no run 'a'"):
        store.history("a")
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 5  # b's only
    await Counter().run(checkpoint=store, n=1, run_id="a")  # the id can be used again
    assert len(store.history("a")) == 4


async def test_prune_keeps_the_latest_runs_and_can_drop_history(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    for name in ("old", "middle", "new"):
        await Counter().run(checkpoint=store, n=30, run_id=name)  # one after the other
    latest_middle = store.latest("middle").context
    result = store.prune(keep_runs=2)
    assert result.runs_deleted == ["old"]
    assert [r.run_id for r in store.runs()] == ["new", "middle"]
    size = store.path.stat().st_size
    result = store.prune(compact=True)
    assert result.runs_deleted == [] and result.snapshots_dropped == 2 * 32
    history = store.history("middle")
    assert [(s.seq, s.kind) for s in history] == [(32, "base")]
    assert store.latest("middle").context == latest_middle  # still loadable, unchanged
    assert store.runs()[1].steps == 31
    assert store.prune(older_than=3600).runs_deleted == []
    assert sorted(store.prune(older_than=0).runs_deleted) == ["middle", "new"]
    assert store.runs() == []
    assert store.path.stat().st_size <= size
    with pytest.raises(ValueError, match="keep_runs"):
        store.prune(keep_runs=-1)


async def test_a_full_disk_fails_the_run_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    await Counter().run(checkpoint=store, n=1)  # the file exists, with its tables
    conn = store._connection()
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # room for a few small writes only
    handler = Counter().run(checkpoint=store, n=3000, run_id="big")
    with pytest.raises(SnapshotError) as caught:
        await handler
    message = str(caught.value)
    assert "run 'big' stopped" in message and repr(store) in message
    assert "full" in message and "resume('big')" in message
    assert handler.status == "failed"
    latest = store.latest("big")
    assert latest.reason == "step" and latest.status == "running"
    assert f"last good checkpoint is snapshot {latest.seq}" in message
    conn.execute("PRAGMA max_page_count = 1073741823")
    # the step whose checkpoint was lost is the one to run again
    [queued] = latest.context["queue"] or latest.context["in_flight"]
    Counter.ran = []
    resumed = Counter().resume("big", store=store)
    assert await resumed == 3000
    assert Counter.ran[0] == queued["event"]["data"]["i"]


def write_runs(path: str, prefix: str, runs: int, rounds: Any = None) -> None:
    """Write ``runs`` runs into the SQLite file at ``path``; with a barrier ``rounds`` shared
    with another writer, each run starts only once both writers have finished the one before."""
    import asyncio

    async def main() -> None:
        store = SQLiteStore(path)
        for i in range(runs):
            if rounds is not None:
                rounds.wait(60)
            result = await Docs().run(
                checkpoint=store, run_id=f"{prefix}-{i}", ids=list(range(10)), log=os.devnull
            )
            assert result == list(range(10))

    asyncio.run(main())


def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    fork = multiprocessing.get_context("fork")
    # The two writers go in rounds: both open the file, then each round both write one run
    # and meet at the barrier before the next. However the machine schedules them, neither
    # can write all its runs before the other starts: their writes provably interleave.
    rounds = fork.Barrier(2)
    workers = [fork.Process(target=write_runs, args=(path, name, 6, rounds)) for name in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    store = SQLiteStore(path)
    runs = store.runs()
    assert sorted(r.run_id for r in runs) == sorted(f"{n}-{i}" for n in "ab" for i in range(6))
    for info in runs:
        assert info.status == "done" and info.steps == 21
        history = store.history(info.run_id)
        assert [s.seq for s in history] == list(range(23))
        assert history[-1].context["stop"]["data"]["result"] == list(range(10))
    # the two writers really alternated: every run of a round was written, start to end,
    # before any run of the next round began, so each writer wrote between the other's runs
    span = {info.run_id: (info.created_at, info.updated_at) for info in runs}
    for i in range(5):
        this_round_ended = max(span[f"{n}-{i}"][1] for n in "ab")
        next_round_began = min(span[f"{n}-{i + 1}"][0] for n in "ab")
        assert this_round_ended < next_round_began
    a_start, a_end = span["a-0"][0], span["a-5"][1]
    b_start, b_end = span["b-0"][0], span["b-5"][1]
    assert a_start < b_end and b_start < a_end


def filled_store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    for i in range(3):
        Counter().run_sync(checkpoint=store, n=20, run_id=f"run-{i}")
    store.close()  # the log is folded into the file, as after the kernel exits
    return store


@pytest.mark.parametrize("keep", [0.0, 0.9, 0.5], ids=["empty", "90%", "half"])
def test_a_truncated_file_is_reported_damaged_never_empty(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "runs.db"
    filled_store(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    store = SQLiteStore(path)
    for call in (store.runs, lambda: store.latest("run-1"), lambda: store.run_info("x")):
        with pytest.raises(SnapshotError) as caught:
            call()
        message = str(caught.value)
        assert "is damaged" in message and str(path) in message, message
        assert "no runs" not in message
    assert path.stat().st_size == int(size * keep)  # nothing was written into it


def test_a_file_that_is_not_a_database_is_reported_damaged(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"these are not the runs you are looking for\n" * 100)
    with pytest.raises(SnapshotError, match=r"is damaged: the file .*runs\.db"):
        SQLiteStore(path).runs()
    filled_store(path := tmp_path / "scribbled.db")
    with open(path, "r+b") as f:  # the header survives, pages in the middle do not
        f.seek(4096 * 2)
        f.write(b"\xff" * 4096 * 3)
    with pytest.raises(SnapshotError, match=r"is damaged.*scribbled\.db"):
        store = SQLiteStore(path)
        store.runs()
        for info in store.runs():
            store.history(info.run_id)


def test_a_new_file_is_still_made_cheaply_and_a_whole_one_opens(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "runs.db"
    started = time.perf_counter()
    with SQLiteStore(path) as store:
        Counter().run_sync(checkpoint=store, n=1, run_id="one")
    # generous for a loaded machine, and still well under the 30 s a wait for the file's
    # write lock (the store's busy timeout) would take
    assert time.perf_counter() - started < 10
    assert sorted(p.name for p in path.parent.iterdir()) == ["runs.db"]  # no leftovers
    with SQLiteStore(path) as store:
        assert [r.run_id for r in store.runs()] == ["one"]


def test_two_processes_creating_one_new_file_both_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=write_runs, args=(path, name, 1)) for name in "abcd"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(SQLiteStore(path).runs()) == 4
