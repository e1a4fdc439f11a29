"""Every record names the one before it: a history with a gap, a swap or a changed record is
refused with ``SnapshotError`` naming the run and the snapshot, by ``latest``, ``history``,
``resume`` and ``runs show`` alike, and a record of the wrong shape never reaches the fold.

The run here adds 10, 20, 30, ... to ``total``, one step each, and fails once on the way
(``Adder.fail_at``), so ``resume`` has steps to run and a result that every record counts
towards: with one record lost, a resume that trusted the rest would return the wrong sum.
The damage is done as a hand edit or a broken disk would do it: rows deleted, swapped or
changed in the SQLite file, entries of the MemoryStore's dict; on every store (Redis and
PostgreSQL too), by writing the damaged records back through ``save``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from notebook_workflows import Context, Event, SnapshotError, StartEvent, StopEvent, Workflow, step
from notebook_workflows.__main__ import _show, main
from notebook_workflows.checkpoint import BaseStore, MemoryStore, Recorder, SQLiteStore
from notebook_workflows.checkpoint.base import Record
from notebook_workflows.checkpoint.chain import PREV

# -- the run --------------------------------------------------------------------------------------


class Add(Event):
    i: int


class Adder(Workflow):
    """Keeps ``part{i}`` = ``10 * i`` for ``i`` = 1 to ``n``, one step each, and returns the
    sum of the parts it holds at the end; the step for ``fail_at`` raises (the run fails there,
    and a resume goes on from it). Each record sets one part: a record lost is a part lost.
    With ``blob``, the store also holds a value big enough to be kept as raw text
    (``checkpoint.texts``)."""

    fail_at: ClassVar[int | None] = None

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Add:
        await ctx.store.set("n", ev.n)
        if ev.get("blob"):
            await ctx.store.set("blob", [f"line {i:04d} of a big value" for i in range(300)])
        return Add(i=1)

    @step
    async def add(self, ctx: Context, ev: Add) -> Add | StopEvent:
        if ev.i == type(self).fail_at:
            raise RuntimeError(f"step {ev.i} failed, once")
        async with ctx.store.edit_state() as state:
            state[f"part{ev.i}"] = 10 * ev.i
            total = sum(state[k] for k in state.keys() if k.startswith("part"))  # noqa: SIM118 - a view of the store, not a dict
        if ev.i >= await ctx.store.get("n"):
            return StopEvent(result=total)
        return Add(i=ev.i + 1)


async def failed_run(store: Any, run_id: str = "sum", n: int = 8, fail_at: int = 6) -> str:
    """A run of ``Adder`` that failed at step ``fail_at``: records 0 (its start) to 7 (its end,
    failed), record ``i + 1`` setting ``part{i}``."""
    Adder.fail_at = fail_at
    try:
        with pytest.raises(RuntimeError, match="failed, once"):
            await Adder().run(checkpoint=store, run_id=run_id, n=n)
    finally:
        Adder.fail_at = None
    return run_id


async def resumed(store: Any, run_id: str, fail_at: int | None = None) -> Any:
    """What resuming the run returns (``Adder`` failing at ``fail_at`` this time)."""
    Adder.fail_at = fail_at
    try:
        return await Adder().resume(run_id, store=store)
    finally:
        Adder.fail_at = None


EXPECTED = 10 * sum(range(1, 9))  # 360: the sum a whole run of n=8 returns


# -- damage, as a hand edit or a broken disk does it ----------------------------------------------


class Tamper:
    """A run's records in a MemoryStore or a SQLite file, changed behind the store's back."""

    def __init__(self, store: BaseStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def records(self) -> list[Record]:
        return self.store._records(self.run_id, 0, 2**31)

    def data(self, seq: int) -> str:
        return next(r.data for r in self.records() if r.seq == seq)

    def delete(self, seq: int, *, keep_base_index: bool = True) -> None:
        """Remove record ``seq`` (SQLite: the row; its entry among the bases stays unless
        ``keep_base_index`` is False, as after a careful hand edit)."""
        if isinstance(self.store, MemoryStore):
            del self.store._log[self.run_id][seq]
            return
        with self.sql() as (conn, key):
            conn.execute("DELETE FROM snapshots WHERE key = ?", (key + seq,))
            if not keep_base_index:
                conn.execute("DELETE FROM bases WHERE key = ?", (key + seq,))

    def put(self, record: Record) -> None:
        """Put back ``record`` (one that was deleted)."""
        if isinstance(self.store, MemoryStore):
            self.store._log[self.run_id][record.seq] = record
            return
        with self.sql() as (conn, key):
            conn.execute(
                "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key + record.seq, *record[2:]),
            )

    def set(self, seq: int, data: str) -> None:
        """Replace the text of record ``seq``."""
        if isinstance(self.store, MemoryStore):
            log = self.store._log[self.run_id]
            log[seq] = log[seq]._replace(data=data)
            return
        with self.sql() as (conn, key):
            conn.execute("UPDATE snapshots SET data = ? WHERE key = ?", (data, key + seq))

    def swap(self, a: int, b: int) -> None:
        """Swap what records ``a`` and ``b`` hold (their numbers stay where they are)."""
        if isinstance(self.store, MemoryStore):
            log = self.store._log[self.run_id]
            log[a], log[b] = log[b]._replace(seq=a), log[a]._replace(seq=b)
            return
        columns = "kind, reason, step, status, steps, created_at, data"
        with self.sql() as (conn, key):
            row_a = conn.execute(f"SELECT {columns} FROM snapshots WHERE key = ?", (key + a,))
            row_b = conn.execute(f"SELECT {columns} FROM snapshots WHERE key = ?", (key + b,))
            first, second = row_a.fetchone(), row_b.fetchone()
            update = (
                "UPDATE snapshots SET kind = ?, reason = ?, step = ?, status = ?, steps = ?, "
                "created_at = ?, data = ? WHERE key = ?"
            )
            conn.execute(update, (*second, key + a))
            conn.execute(update, (*first, key + b))

    def strip_links(self) -> None:
        """Make every record as it was written before records named the one before them."""
        for record in self.records():
            data = json.loads(record.data)
            if data.pop(PREV, None) is not None:
                self.set(record.seq, json.dumps(data, separators=(",", ":"), ensure_ascii=False))

    @contextlib.contextmanager
    def sql(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A connection to the SQLite file and the key of the run's record 0; committed."""
        assert isinstance(self.store, SQLiteStore)
        conn = sqlite3.connect(self.store.path)
        try:
            query = "SELECT rid FROM runs WHERE run_id = ?"
            (rid,) = conn.execute(query, (self.run_id,)).fetchone()
            yield conn, rid * 2**32
            conn.commit()
        finally:
            conn.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryStore()
    else:
        with SQLiteStore(tmp_path / "runs.db") as sqlite:
            yield sqlite


def refused(store: Any, run_id: str, *needles: str) -> list[str]:
    """Every way of reading the run refuses it, each with a SnapshotError naming the run and
    ``needles``: the messages, from latest, history, resume and runs show."""
    messages = []
    for read in (
        lambda: store.latest(run_id).context,
        lambda: [s.context for s in store.history(run_id)],
        lambda: asyncio.run(resumed(store, run_id)),
        lambda: _show(store, run_id, 20),
    ):
        with pytest.raises(SnapshotError) as caught:
            read()
        message = str(caught.value)
        assert repr(store) in message and f"run {run_id!r}" in message, message
        for needle in needles:
            assert needle in message, message
        messages.append(message)
    return messages


# -- a gap, a swap, a change ----------------------------------------------------------------------


def test_a_deleted_record_in_the_middle_is_refused_naming_it(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    Tamper(store, run_id).delete(4)  # part3: a resume that trusted the rest returned 330
    refused(store, run_id, "snapshot 4 of run 'sum' is missing", "the store is damaged")


def test_a_deleted_base_is_refused_when_the_store_forgot_it_was_one(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "runs.db") as store:
        asyncio.run(failed_run(store))
        Tamper(store, "sum").delete(0, keep_base_index=False)
        refused(store, "sum", "snapshot 0 of run 'sum' is missing")


def test_the_first_record_deleted_is_refused(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    Tamper(store, run_id).delete(0)
    refused(store, run_id, "snapshot 0 of run 'sum' is missing")


def test_swapped_records_are_refused_naming_the_first_out_of_place(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    Tamper(store, run_id).swap(2, 4)
    messages = refused(store, run_id, "snapshot 2 of run 'sum' does not follow snapshot 1")
    assert "written after snapshot 3" in messages[0]


def test_a_changed_record_is_refused_naming_it(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    text = tamper.data(4)
    assert '"part3":30' in text
    tamper.set(4, text.replace('"part3":30', '"part3":50'))  # a valid record, another sum
    refused(store, run_id, "snapshot 4 of run 'sum' was changed", "resume('sum', at=3)")


def test_a_changed_kind_is_refused(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    if isinstance(store, MemoryStore):
        log = store._log[run_id]
        log[3] = log[3]._replace(kind="base")
    else:
        with Tamper(store, run_id).sql() as (conn, key):
            conn.execute("UPDATE snapshots SET kind = 'base' WHERE key = ?", (key + 3,))
    with pytest.raises(SnapshotError, match="snapshot 3 of run 'sum' was changed"):
        store.history(run_id)


def test_a_damaged_link_is_refused(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    latest = tamper.data(7)
    assert latest.endswith("]}") and f'"{PREV}":[6,' in latest
    tamper.set(7, latest.replace(f'"{PREV}":[6,', f'"{PREV}":[true,'))
    with pytest.raises(SnapshotError, match="snapshot 7 of run 'sum' cannot be read: its link"):
        store.latest(run_id).context  # noqa: B018 - the property reads the records
    tamper.set(7, latest)
    tamper.set(5, tamper.data(5).replace(f'"{PREV}":[4,', f'"{PREV}":{{"seq":4}},"x":['))
    with pytest.raises(SnapshotError, match="snapshot 5 of run 'sum' was changed"):
        store.latest(run_id)


def test_a_link_put_into_a_record_written_before_the_chain_is_refused(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    tamper.strip_links()
    tamper.set(7, tamper.data(7)[:-1] + f',"{PREV}":true}}')
    with pytest.raises(SnapshotError, match="snapshot 7 of run 'sum' cannot be read: its link"):
        store.latest(run_id).context  # noqa: B018 - the property reads the records


def test_a_base_in_the_place_of_the_latest_record_is_refused(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    tamper.swap(0, 7)  # the run's first record (a base naming none) where its latest was
    if isinstance(store, SQLiteStore):  # and the store's list of bases set to match
        with tamper.sql() as (conn, key):
            conn.execute("INSERT INTO bases VALUES (?)", (key + 7,))
    with pytest.raises(SnapshotError, match="snapshot 7 of run 'sum' is a base that names no"):
        store.latest(run_id)


class LostTail(MemoryStore):
    """A store whose latest record is gone while its record of the run still names it (as
    when Redis loses a record: it keeps the latest number apart from the records)."""

    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        found = super()._records(run_id, first, last)
        return [r for r in found if r.seq != max(self._log[run_id])]


def test_a_lost_tail_is_refused() -> None:
    store = LostTail()
    asyncio.run(failed_run(store))
    with pytest.raises(SnapshotError, match=r"snapshot 7 of run 'sum' is missing \(its latest"):
        store.history("sum")
    with pytest.raises(SnapshotError, match=r"snapshot 7 of run 'sum' is missing"):
        store.latest("sum")


def test_damage_before_the_base_a_snapshot_is_read_from_does_not_stop_it(store: Any) -> None:
    asyncio.run(failed_run(store))
    with pytest.raises(RuntimeError, match="step 7 failed"):
        asyncio.run(resumed(store, "sum", fail_at=7))  # its first record is a base: 8
    tamper = Tamper(store, "sum")
    assert [r.seq for r in tamper.records() if r.kind == "base"] == [0, 8]
    tamper.delete(2)
    assert store.latest("sum").context["store"]["part6"] == 60
    assert store.snapshot("sum", 8).reason == "resume"
    assert asyncio.run(resumed(store, "sum")) == EXPECTED  # base 8 holds part1 still
    with pytest.raises(SnapshotError, match="snapshot 2 of run 'sum' is missing"):
        store.history("sum")
    with pytest.raises(SnapshotError, match="snapshot 2 of run 'sum' is missing"):
        store.snapshot("sum", 5)


# -- records written before the chain, compaction -------------------------------------------------


def test_records_written_before_the_chain_load_and_a_gap_among_them_is_refused(
    store: Any,
) -> None:
    run_id = asyncio.run(failed_run(store))
    before = [s.context for s in store.history(run_id)]
    tamper = Tamper(store, run_id)
    tamper.strip_links()
    assert not any(PREV in r.data for r in tamper.records())
    assert [s.context for s in store.history(run_id)] == before
    assert store.latest(run_id).context == before[-1]
    assert "snapshots (8)" in _show(store, run_id, 20)
    [kept] = [r for r in tamper.records() if r.seq == 3]
    tamper.delete(3)
    refused(store, run_id, "snapshot 3 of run 'sum' is missing")
    tamper.put(kept)
    assert asyncio.run(resumed(store, run_id)) == EXPECTED
    # the resumed run's records chain on from the old ones
    records = tamper.records()
    assert PREV not in records[7].data and f'"{PREV}":[7,' in records[8].data
    assert len(store.history(run_id)) == len(records)


def test_a_compacted_run_loads_and_a_run_resumed_after_it_links_to_the_rewritten_record(
    store: Any,
) -> None:
    run_id = asyncio.run(failed_run(store))
    latest = store.latest(run_id).context
    assert store.prune(compact=True).snapshots_dropped == 7
    assert [(s.seq, s.kind) for s in store.history(run_id)] == [(7, "base")]
    assert store.latest(run_id).context == latest
    assert asyncio.run(resumed(store, run_id)) == EXPECTED
    history = store.history(run_id)
    assert history[0].seq == 7 and history[-1].status == "done"
    tamper = Tamper(store, run_id)
    assert PREV not in tamper.data(7) and f'"{PREV}":[7,' in tamper.data(8)
    tamper.set(7, tamper.data(7).replace('"n":8', '"n":9'))
    with pytest.raises(SnapshotError, match="snapshot 7 of run 'sum' was changed"):
        store.history(run_id)


def test_a_fork_starts_a_chain_of_its_own(store: Any) -> None:
    run_id = asyncio.run(failed_run(store))

    async def fork() -> Any:
        handler = Adder().resume(run_id, store=store, at=3)
        return handler.run_id, await handler

    fork_id, result = asyncio.run(fork())
    assert result == EXPECTED
    tamper = Tamper(store, fork_id)
    records = tamper.records()
    assert PREV not in records[0].data and all(f'"{PREV}":[' in r.data for r in records[1:])
    assert len(store.history(fork_id)) == len(records)
    assert len(store.history(run_id)) == 8  # the original as it was
    assert '"part2":20' in records[0].data
    tamper.set(0, records[0].data.replace('"part2":20', '"part2":21'))
    with pytest.raises(SnapshotError, match=f"snapshot 0 of run {fork_id!r} was changed"):
        store.history(fork_id)


# -- records of the wrong shape -------------------------------------------------------------------


def _reshaped(text: str, key: str, value: Any) -> str:
    """A record's ``text`` with ``key`` set to ``value`` (or removed, for ``KeyError``), its
    link kept where the recorder writes it: last."""
    data = json.loads(text)
    link = data.pop(PREV, None)
    if value is KeyError:
        del data[key]
    else:
        data[key] = value
    if link is not None:
        data[PREV] = link
    return json.dumps(data, separators=(",", ":"))


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("queue_empty", [1], "'queue_empty' is not true or false"),
        ("in_flight_put", True, "'in_flight_put' is not a list of invocations"),
        ("in_flight_put", [{"id": 9, "step": "add"}], "'in_flight_put' is not a list of"),
        ("in_flight_put", [[9, "add"]], "'in_flight_put' is not a list of invocations"),
        ("in_flight_remove", [{"id": 1}], "'in_flight_remove' is not a list of numbers"),
        ("queue_add", [{"seq": "7"}], "'queue_add' is not a list of queued events"),
        ("queue_remove", [None], "'queue_remove' is not a list of numbers"),
        ("store_set", ["total", 99], "'store_set' is not an object"),
        ("store_deleted", "after1", "'store_deleted' is not a list of keys (it is text)"),
        ("collected_add", [{"seq": 1}], "'collected_add' is not a list of collected events"),
        ("collected_remove", [["add"]], "'collected_remove' is not a list of [step, seq]"),
        ("stats", [], "'stats' is not an object of objects"),
        ("stats", {"step_runs": 3}, "'stats' is not an object of objects"),
        ("counters", None, "'counters' is not an object (it is null)"),
        ("steps_done", True, "'steps_done' is not a number (it is true or false)"),
        ("waiters", {}, "'waiters' is not a list"),
    ],
)
def test_a_delta_of_the_wrong_shape_is_refused_naming_the_run_and_the_snapshot(
    store: Any, key: str, value: Any, said: str
) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    tamper.set(7, _reshaped(tamper.data(7), key, value))  # the latest: no record names it
    for read in (
        lambda: store.latest(run_id).context,
        lambda: store.history(run_id)[-1].context,
        lambda: asyncio.run(resumed(store, run_id)),
        lambda: _show(store, run_id, 20),
    ):
        with pytest.raises(SnapshotError) as caught:
            read()
        message = str(caught.value)
        assert f"snapshot 7 of run {run_id!r} cannot be read: its {said}" in message, message
        assert repr(store) in message


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("store", KeyError, "it has no 'store'"),
        ("queue", {}, "its 'queue' is not a list of queued events"),
        ("queue", [{"step": "add"}], "its 'queue' is not a list of queued events"),
        ("in_flight", [{"id": "1", "seq": 1}], "its 'in_flight' is not a list of invocations"),
        ("collected", {"join": {}}, "its 'collected' is not an object of lists"),
        ("graph", {"add": {"accepts": "x"}}, "its 'graph' is not a graph of steps"),
        ("graph", {"add": []}, "its 'graph' is not a graph of steps"),
        ("workflow", 7, "its 'workflow' is not text (it is a number)"),
    ],
)
def test_a_base_of_the_wrong_shape_is_refused(store: Any, key: str, value: Any, said: str) -> None:
    run_id = asyncio.run(failed_run(store))
    tamper = Tamper(store, run_id)
    tamper.strip_links()  # records as written before the chain: only the shape finds this
    tamper.set(0, _reshaped(tamper.data(0), key, value))
    with pytest.raises(SnapshotError, match=r"snapshot 0 of run 'sum' cannot be read: ") as caught:
        store.latest(run_id).context  # noqa: B018 - the property reads the records
    assert said in str(caught.value)
    with pytest.raises(SnapshotError):
        asyncio.run(resumed(store, run_id))


# -- the command line -----------------------------------------------------------------------------


def test_runs_show_says_what_is_damaged_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        asyncio.run(failed_run(store))
        Tamper(store, "sum").delete(4)
    code = main(["runs", "--db", str(path), "show", "sum"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: SQLiteStore(")
    assert "snapshot 4 of run 'sum' is missing" in err and "Traceback" not in err


# -- every store ----------------------------------------------------------------------------------


def rewrite(store: BaseStore, run_id: str, records: list[Record]) -> None:
    """The run kept as ``records``, written back through the store's own ``save``."""
    info = store.run_info(run_id)
    assert info is not None
    store.delete(run_id)
    store.save(records[0], new_run=info)
    for record in records[1:]:
        store.save(record)


def test_every_store_refuses_a_gap_a_swap_and_a_changed_record(any_store: BaseStore) -> None:
    store = any_store
    run_id = asyncio.run(failed_run(store))
    kept = store._records(run_id, 0, 100)
    rewrite(store, run_id, [r for r in kept if r.seq != 3])
    with pytest.raises(SnapshotError, match="snapshot 3 of run 'sum' is missing"):
        store.latest(run_id)
    swapped = [*kept[:2], kept[4]._replace(seq=2), kept[3], kept[2]._replace(seq=4), *kept[5:]]
    rewrite(store, run_id, swapped)
    with pytest.raises(SnapshotError, match="snapshot 2 of run 'sum' does not follow"):
        store.history(run_id)
    changed = kept[4]._replace(data=kept[4].data.replace('"part3":30', '"part3":0'))
    assert changed != kept[4]
    rewrite(store, run_id, [*kept[:4], changed, *kept[5:]])
    with pytest.raises(SnapshotError, match="snapshot 4 of run 'sum' was changed"):
        asyncio.run(resumed(store, run_id))
    rewrite(store, run_id, kept)
    assert asyncio.run(resumed(store, run_id)) == EXPECTED


def test_redis_refuses_a_lost_tail(redis_server: Any) -> None:
    from notebook_workflows.checkpoint import RedisStore

    with RedisStore(redis_server.url) as store:
        asyncio.run(failed_run(store))
        head, data, _ = store._keys("sum")
        store._client.hdel(head, "7")
        store._client.hdel(data, "7")
        with pytest.raises(SnapshotError, match=r"snapshot 7 of run 'sum' is missing \(its"):
            store.latest("sum")
        with pytest.raises(SnapshotError, match="snapshot 7 of run 'sum' is missing"):
            asyncio.run(resumed(store, "sum"))


def test_a_recorder_with_frequent_bases_still_chains(store: Any) -> None:
    async def run() -> Any:
        Adder.fail_at = None
        return await Adder().run(checkpoint=Recorder(store, min_base_gap=0), run_id="b", n=12)

    assert asyncio.run(run()) == 10 * sum(range(1, 13))
    records = Tamper(store, "b").records()
    assert sum(r.kind == "base" for r in records) > 2
    assert [s.seq for s in store.history("b")] == [r.seq for r in records]
    latest = store.latest("b").context
    middle_base = next(r.seq for r in records[1:] if r.kind == "base")
    Tamper(store, "b").set(
        middle_base, Tamper(store, "b").data(middle_base).replace('"n":12', '"n":13')
    )
    with pytest.raises(SnapshotError, match=f"snapshot {middle_base} of run 'b' was changed"):
        store.history("b")
    assert store.latest("b").context == latest  # read from a later base
