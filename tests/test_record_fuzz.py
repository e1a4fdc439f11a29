"""Fuzzing a store's records: a damaged history reads right, or is refused with SnapshotError.

Real runs are kept in a MemoryStore and in a SQLite file: runs that failed half-way (so a
resume has steps to run, and a sum every record counts towards), one with a big store value
kept as raw text, one with a base every few records, one resumed once already, a fan-out with
collected events, one compacted by ``prune(compact=True)`` and resumed, and one whose records
were written before records named the one before them. Each iteration takes a fresh copy of
one of them and damages one or two records the way a broken disk or a hand edit would: a
record deleted, two records swapped, a field of its JSON (at any depth, the link included)
replaced by another JSON type or removed, or its text changed (a digit, a character cut or
added). Then ``latest`` (and its context), ``history`` (and every context), ``runs show`` and
``resume`` of the run must each either give exactly what they give on the undamaged copy, or
raise ``SnapshotError`` naming the run; never another exception, never a wrong result.

Some damage cannot be seen by any reader, and there a different result is allowed (but still
never another exception from reading): a change to the run's latest record, which no record
names (it is refused only where it breaks the record's shape or the snapshot), the latest
record deleted (from a store that counts a run's snapshots by the records it keeps, that is a
shorter run), and any change but a deleted record in the run written before the chain.

The quick test damages 1,000 records; the slow one 4,000 more with another seed, or as many
as ``NOTEBOOK_WORKFLOWS_RECORD_FUZZ`` says (its seed: ``NOTEBOOK_WORKFLOWS_RECORD_FUZZ_SEED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Docs
from test_record_chain import Adder, Tamper, failed_run, resumed

from notebook_workflows import SnapshotError, Workflow
from notebook_workflows.__main__ import _show, main
from notebook_workflows.checkpoint import MemoryStore, Recorder, SQLiteStore
from notebook_workflows.checkpoint.base import Record, StepCodeChangedWarning
from notebook_workflows.checkpoint.chain import PREV

# -- the runs -------------------------------------------------------------------------------------


@dataclass
class Kept:
    """One run as the fuzz damages it: where its pristine copies are, and what reading them
    gives (per kind of store)."""

    name: str
    workflow: type[Workflow]
    run_id: str
    chained: bool = True  # False: written before records named the one before them
    memory: MemoryStore = field(default_factory=MemoryStore)
    path: Path = Path()
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)


async def _fill(store: Any, name: str) -> tuple[type[Workflow], str]:
    """Run ``name`` into ``store``; the workflow and the run id."""
    if name == "raw":  # a big store value in every base: records with the raw text layout
        Adder.fail_at = 6
        with pytest.raises(RuntimeError):
            await Adder().run(checkpoint=store, run_id=name, n=8, blob=True)
    elif name == "bases":  # a base every few records
        Adder.fail_at = 9
        recorder = Recorder(store, min_base_gap=0)
        with pytest.raises(RuntimeError):
            await Adder().run(checkpoint=recorder, run_id=name, n=11)
    elif name == "resumed":  # failed, resumed, failed again: a chain across a resume base
        await failed_run(store, name, fail_at=3)
        with pytest.raises(RuntimeError):
            await resumed(store, name, fail_at=6)
    elif name == "fan":  # a fan-out and a join that collects: queue, in flight, collected
        await Docs().run(checkpoint=store, run_id=name, ids=[3, 1, 2], log=os.devnull)
        return Docs, name
    elif name == "compacted":  # its history starts at the base a compacting prune left
        await failed_run(store, name, fail_at=4)
        store.prune(compact=True)
        with pytest.raises(RuntimeError):
            await resumed(store, name, fail_at=6)
    else:  # "sum", "old": a plain failed run
        await failed_run(store, name)
        if name == "old":
            Tamper(store, name).strip_links()
    Adder.fail_at = None
    return Adder, name


NAMES = ["sum", "raw", "bases", "resumed", "fan", "compacted", "old"]


async def _expected(kept: Kept, store: Any, kind: str) -> dict[str, Any]:
    """What reading the undamaged run gives: the fuzz's measure of a right result."""
    latest = store.latest(kept.run_id)
    history = store.history(kept.run_id)
    out = {
        "latest": (latest.seq, latest.context),
        "history": [(s.seq, s.kind, s.reason, s.status, s.steps, s.context) for s in history],
        "show": _show(store, kept.run_id, 20),
    }
    out["resume"] = await kept.workflow().resume(kept.run_id, store=store)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Kept]:
    folder = tmp_path_factory.mktemp("record-fuzz")

    async def build() -> list[Kept]:
        out = []
        for name in NAMES:
            kept = Kept(name, Adder, name, chained=name != "old")
            kept.workflow, _ = await _fill(kept.memory, name)
            kept.path = folder / f"{name}.db"
            with SQLiteStore(kept.path) as sqlite:
                await _fill(sqlite, name)
            for kind in ("memory", "sqlite"):
                with _copy(kept, kind, folder / "expected.db") as store:
                    kept.expected[kind] = await _expected(kept, store, kind)
            out.append(kept)
        return out

    return asyncio.run(build())


@contextlib.contextmanager
def _copy(kept: Kept, kind: str, path: Path) -> Iterator[Any]:
    """A fresh copy of the pristine run, in a store of ``kind`` (SQLite: at ``path``)."""
    if kind == "memory":
        store = MemoryStore()
        store._infos = dict(kept.memory._infos)
        store._log = {run_id: dict(log) for run_id, log in kept.memory._log.items()}
        yield store
        return
    shutil.copyfile(kept.path, path)
    with SQLiteStore(path) as sqlite:
        yield sqlite


def assert_the_corpus_holds_every_kind_of_record(corpus: list[Kept]) -> None:
    """The runs read alike from both stores, and their records hold every part of a record."""
    keys: set[str] = set()
    for kept in corpus:
        memory, sqlite = kept.expected["memory"], kept.expected["sqlite"]
        assert [h[:5] for h in memory["history"]] == [h[:5] for h in sqlite["history"]]
        assert memory["resume"] == sqlite["resume"]
        records = kept.memory._records(kept.run_id, 0, 2**31)
        for record in records:
            keys |= set(json.loads(record.data))
        assert all(PREV in r.data for r in records[1:]) == kept.chained, kept.name
    assert {"$raw", "queue_add", "in_flight_put", "collected_add", "store_set"} <= keys
    assert {"store_deleted", "queue_remove", "in_flight_remove"} & keys
    results = {kept.name: kept.expected["memory"]["resume"] for kept in corpus}
    sums = {"sum": 360, "raw": 360, "bases": 660, "resumed": 360, "compacted": 360, "old": 360}
    assert results == {**sums, "fan": [1, 2, 3]}


# -- damage ---------------------------------------------------------------------------------------


def _places(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in ``node``, at any depth."""
    out: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        items = current.items() if type(current) is dict else enumerate(current)
        for key, value in items:
            out.append((current, key))
            if type(value) in (dict, list):
                stack.append(value)
    return out


OTHERS: list[Any] = [None, True, False, 0, 7, -1, 2.5, "", "x", "add", [], [1], {}, {"seq": 1}]


def _retyped(text: str, rng: random.Random) -> str:
    """``text`` (a record) with one field at any depth replaced by a value of another JSON
    type, or removed; written back as the recorder writes JSON (compact)."""
    data = json.loads(text)
    places = _places(data)
    if rng.random() < 0.2:  # the link itself, the most exposed field
        places = [(data, PREV)] if PREV in data else places
    container, key = rng.choice(places)
    if type(container) is dict and rng.random() < 0.15:
        del container[key]
    else:
        now = type(container[key])
        container[key] = rng.choice([v for v in OTHERS if type(v) is not now])
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _edited(text: str, rng: random.Random) -> str:
    """``text`` with a digit changed (45 -> 65), or a character cut or put in."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    how = rng.randrange(3)
    if how == 0 and digits:
        at = rng.choice(digits)
        return text[:at] + rng.choice([d for d in "0123456789" if d != text[at]]) + text[at + 1 :]
    at = rng.randrange(len(text))
    if how == 1:
        return text[:at] + text[at + 1 :]
    return text[:at] + rng.choice('{}[]",:0a \\') + text[at:]


@dataclass
class Damage:
    """What was done to a run's records: the new records, and whether a reader can know."""

    what: str
    records: dict[int, Record]
    blind: bool  # no reader can tell (see the module docstring): any right-typed outcome


def damage(kept: Kept, store: Any, rng: random.Random) -> Damage:
    """Damage to one or two of the run's records in ``store`` (not yet put there)."""
    records = {r.seq: r for r in store._records(kept.run_id, 0, 2**31)}
    seqs = sorted(records)
    last = seqs[-1]
    op = rng.choice(["delete", "swap", "retype", "retype", "edit"])
    if op == "swap":
        a, b = rng.sample(seqs, 2)
        records[a], records[b] = records[b]._replace(seq=a), records[a]._replace(seq=b)
        return Damage(f"swap {a} {b}", records, blind=not kept.chained)
    seq = rng.choice(seqs)
    if op == "delete":
        del records[seq]
        return Damage(f"delete {seq}", records, blind=seq == last)
    change = _retyped if op == "retype" else _edited
    records[seq] = records[seq]._replace(data=change(records[seq].data, rng))
    return Damage(f"{op} {seq}", records, blind=seq == last or not kept.chained)


def apply(store: Any, run_id: str, damage: Damage, rng: random.Random) -> None:
    """Put the damaged records in ``store`` behind its back, as a hand edit would."""
    if isinstance(store, MemoryStore):
        store._log[run_id] = dict(damage.records)
        return
    columns = "kind, reason, step, status, steps, created_at, data"
    with Tamper(store, run_id).sql() as (conn, key):
        kept = {seq for (seq,) in conn.execute(_SEQS, (key, key, key + 2**32 - 1))}
        for seq in kept - set(damage.records):
            conn.execute("DELETE FROM snapshots WHERE key = ?", (key + seq,))
        for seq, record in damage.records.items():
            conn.execute(
                f"UPDATE snapshots SET ({columns}) = (?, ?, ?, ?, ?, ?, ?) WHERE key = ?",
                (*record[2:], key + seq),
            )
        if rng.random() < 0.5:  # a careful hand edit also sets the store's list of bases right
            span = (key, key + 2**32 - 1)
            conn.execute("DELETE FROM bases WHERE key BETWEEN ? AND ?", span)
            conn.execute(
                "INSERT INTO bases SELECT key FROM snapshots "
                "WHERE kind = 'base' AND key BETWEEN ? AND ?",
                span,
            )


_SEQS = "SELECT key - ? FROM snapshots WHERE key BETWEEN ? AND ?"


# -- reading a damaged run ------------------------------------------------------------------------


@dataclass
class Tally:
    right: int = 0  # the undamaged result, the damage did not matter to this reader
    refused: int = 0  # SnapshotError naming the run
    blind: int = 0  # damage no reader can know of, read another way (allowed)
    by_op: dict[str, int] = field(default_factory=dict)


def judge(
    tally: Tally, kept: Kept, harm: Damage, reader: str, read: Callable[[], Any], expected: Any
) -> None:
    """Read, and hold the outcome against what the undamaged run gives."""
    try:
        got = read()
    except SnapshotError as exc:
        message = str(exc)
        assert f"run {kept.run_id!r}" in message and "snapshot" in message, message
        tally.refused += 1
        tally.by_op[harm.what.split()[0]] = tally.by_op.get(harm.what.split()[0], 0) + 1
        return
    if got == expected:
        tally.right += 1
        return
    assert harm.blind, f"{reader} gave a wrong result, with no error"
    tally.blind += 1


def _latest(store: Any, run_id: str) -> Any:
    latest = store.latest(run_id)
    return (latest.seq, latest.context)


def _history(store: Any, run_id: str) -> Any:
    return [(s.seq, s.kind, s.reason, s.status, s.steps, s.context) for s in store.history(run_id)]


def _cli(path: Path, run_id: str) -> str:
    """``python -m notebook_workflows runs show``: its output, or SnapshotError with its one
    line when it refuses (anything else fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["runs", "--db", str(path), "show", run_id])
    if code == 0:
        assert err.getvalue() == ""
        return out.getvalue()[:-1]
    line = err.getvalue()
    assert code == 1 and out.getvalue() == "" and line.count("\n") == 1, (code, line)
    assert line.startswith("error: ") and "a bug in notebook_workflows" not in line, line
    raise SnapshotError(line)


async def _resume(kept: Kept, store: Any, harm: Damage) -> Any:
    """What resuming the damaged run returns. Loading it raises SnapshotError or nothing; a
    run resumed from damage no reader can know of may then fail or stall in its own way."""
    with warnings.catch_warnings():  # a graph changed by the damage: its steps' code hashes
        warnings.simplefilter("ignore", StepCodeChangedWarning)
        handler = kept.workflow().resume(kept.run_id, store=store)

    async def result() -> Any:
        return await handler

    try:
        return await asyncio.wait_for(result(), 10)
    except Exception:
        if not harm.blind:
            raise
        with contextlib.suppress(Exception):
            await handler.cancel()
        return _Failed()


class _Failed:
    """The outcome of a run resumed from unknowable damage that did not finish."""


async def read_all(tally: Tally, kept: Kept, kind: str, store: Any, harm: Damage) -> None:
    expected = kept.expected[kind]
    run_id = kept.run_id
    judge(tally, kept, harm, "latest", lambda: _latest(store, run_id), expected["latest"])
    judge(tally, kept, harm, "history", lambda: _history(store, run_id), expected["history"])
    if kind == "sqlite":
        read = lambda: _cli(store.path, run_id)  # noqa: E731 - one line, like the others
    else:
        read = lambda: _show(store, run_id, 20)  # noqa: E731
    judge(tally, kept, harm, "runs show", read, expected["show"])
    try:
        result: Any = await _resume(kept, store, harm)
    except SnapshotError as exc:
        result = exc

    def resumed_result() -> Any:
        if isinstance(result, SnapshotError):
            raise result
        return result

    judge(tally, kept, harm, "resume", resumed_result, expected["resume"])


async def fuzz(corpus: list[Kept], folder: Path, count: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    Adder.fail_at = None
    for i in range(count):
        kept = corpus[i % len(corpus)]
        kind = "sqlite" if i % 3 == 2 else "memory"
        what = "no damage yet"
        try:
            with _copy(kept, kind, folder / "damaged.db") as store:
                harm = damage(kept, store, rng)
                what = harm.what
                apply(store, kept.run_id, harm, rng)
                await read_all(tally, kept, kind, store, harm)
        except Exception as exc:  # pragma: no cover - the message is the test's report
            raise AssertionError(
                f"damage #{i} (seed {seed}), {what} of run {kept.name!r} in a {kind} "
                f"store: {type(exc).__name__}: {exc!s:.400}"
            ) from exc
    return tally


async def test_a_thousand_damaged_records_read_right_or_are_refused(
    corpus: list[Kept], tmp_path: Path
) -> None:
    assert_the_corpus_holds_every_kind_of_record(corpus)
    tally = await fuzz(corpus, tmp_path, 1_000, seed=23)
    # both sides exercised: most damage is refused, some is out of a reader's way
    assert tally.refused > 2_000 and tally.right > 300, tally
    assert set(tally.by_op) == {"delete", "swap", "retype", "edit"}, tally


@pytest.mark.slow
async def test_many_more_damaged_records_read_right_or_are_refused(
    corpus: list[Kept], tmp_path: Path
) -> None:
    count = int(os.environ.get("NOTEBOOK_WORKFLOWS_RECORD_FUZZ", "4000"))
    seed = int(os.environ.get("NOTEBOOK_WORKFLOWS_RECORD_FUZZ_SEED", "2027"))
    await fuzz(corpus, tmp_path, count, seed)
