"""SQLiteStore: the embedded default, one file under ``.notebook_workflows/runs.db``.

Design decisions:

* WAL journal mode: a commit appends to the write-ahead log instead of rewriting pages, so a
  checkpoint costs one small append, and readers (``runs()`` in another kernel, the command
  line) never block the writer. WAL needs a local file system (not NFS or SMB shares).
* Two kernels or processes may write the same file at once: SQLite serializes writers, and a
  busy timeout (``timeout``, 30 s by default) makes a writer wait for the other's transaction
  instead of failing. A checkpoint is one transaction, so they interleave per step.
* Durability is ``synchronous``:

  - ``"NORMAL"`` (the default): a commit is safe from the crash of the process or the kernel
    (the case that matters in a notebook) because it is in the log before the call returns;
    a power cut or an operating-system crash can lose the last few commits, never corrupt the
    file. It costs one ``write`` per checkpoint.
  - ``"FULL"``: also ``fsync`` at every commit, so a checkpoint survives a power cut; on
    ordinary disks this costs several times more per step (hundreds of microseconds to
    milliseconds instead of tens of microseconds).

* Each step's checkpoint is a single ``INSERT`` committed on its own (an autocommit statement
  is its own transaction) into a table keyed by its rowid alone, so a commit writes one B-tree
  page (an extra index measured about 50 us more per step here). The first record of a run
  also writes the run's row, in one ``BEGIN IMMEDIATE`` transaction. Nothing else is written
  per step: ``runs()`` reads status and step counts from each run's latest record.
* A batch of records (``save_many``, what ``durability="async"`` writes) is one multi-row
  ``INSERT``: a single statement is a transaction of its own, so the batch costs one commit
  and the writer thread gives up the GIL once for it (measured here: about 5 us a record in
  batches of 16, against about 22 us for a commit each). A batch holding a base also writes
  the ``bases`` rows, in one ``BEGIN IMMEDIATE`` transaction.
* The file is created on the first write only; reading a store whose file does not exist yet
  finds no runs, so looking (``runs()``, the command line) never leaves files behind.
* A new file is set up (WAL, tables) under a temporary name and then linked into place, so a
  file at the store's path is never half made, and an empty (zero-byte) file there is damage:
  a disk that filled up, a copy that was cut short. A damaged file is never read as an empty
  store: opening checks that the file is as long as its header says (instant), and runs
  ``PRAGMA quick_check`` when the file is up to ``QUICK_CHECK_LIMIT`` (16 MiB) long or its
  length looks wrong. Measured here, quick_check costs about 1.3 ms per MiB (0.7 ms for a
  0.2 MiB store, 22 ms for 21 MiB, 143 ms for 103 MiB), paid once per store object, so bigger
  files rely on the length check and on SQLite's own errors ("malformed", "not a database"),
  which come out as a ``SnapshotError`` saying the file is damaged and naming it.
* Leases (``lease.py``) are rows of a ``leases`` table, taken in one ``BEGIN IMMEDIATE``
  transaction so two processes cannot both win. The table is created when first needed
  (``CREATE TABLE IF NOT EXISTS``), so files of schema 1 keep working both ways without a
  version bump.
* ``close()`` closes the connection for good; with ``with SQLiteStore(path) as store:`` it
  happens at the end of the block.
* A connection never crosses ``fork()``: a forked child opens its own (and leaves the
  inherited one alone, as SQLite requires).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SnapshotError
from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError
from .lease import KEEP, LEASE_COLUMNS, Lease

__all__ = ["SQLiteStore"]

DEFAULT_PATH = Path(".notebook_workflows") / "runs.db"
SCHEMA_VERSION = 1
SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    rid         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: see _key
    run_id      TEXT NOT NULL UNIQUE,
    workflow    TEXT NOT NULL,
    parent      TEXT,
    parent_seq  INTEGER,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    key         INTEGER PRIMARY KEY,  -- rid * 2**32 + seq
    kind        TEXT NOT NULL,        -- 'base' (a whole snapshot) or 'delta'
    reason      TEXT NOT NULL,        -- start, fork, resume, step, end
    step        TEXT,
    status      TEXT NOT NULL,
    steps       INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    data        TEXT NOT NULL         -- JSON
);
CREATE TABLE IF NOT EXISTS bases (
    key         INTEGER PRIMARY KEY   -- the snapshots that are bases
);
"""

_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    run_id      TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started     INTEGER,              -- the owner process's start time, against pid reuse
    token       TEXT NOT NULL,
    since       REAL NOT NULL,
    expires_at  REAL NOT NULL
)
"""

QUICK_CHECK_LIMIT = 16 * 1024 * 1024  # files up to this size get PRAGMA quick_check on open
_DAMAGE = ("file is not a database", "malformed", "disk image")

# A snapshot's key is its run's number times 2**32 plus its seq: the table's own rowid, so a
# checkpoint inserts into one B-tree only (a separate (run_id, seq) index doubled the pages
# written per commit), and a run's records are one contiguous range of keys.
_SPAN = 1 << 32
_COLUMNS = "kind, reason, step, status, steps, created_at, data"
_INSERT = (
    f"INSERT INTO snapshots (key, {_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
    f"WHERE EXISTS (SELECT 1 FROM runs WHERE rid = ?)"
)
# A batch of records (save_many) is one INSERT of many rows: one statement, one commit, and
# one release of the GIL for the whole batch. Rows per statement stay below SQLite's oldest
# limit of 999 bound values.
_ROWS_PER_INSERT = 100


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_many(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO snapshots (key, {_COLUMNS}) SELECT * FROM (VALUES {values}) "
        f"WHERE EXISTS (SELECT 1 FROM runs WHERE rid = ?)"
    )


_INSERT_FIRST = f"INSERT INTO snapshots (key, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_LATEST = (
    "SELECT r.run_id, r.workflow, s.status, s.steps, s.created_at, r.parent, r.parent_seq, "
    "r.created_at, s.key - r.rid * 4294967296 FROM runs r JOIN snapshots s ON s.key = ("
    "SELECT max(key) FROM snapshots WHERE key BETWEEN r.rid * 4294967296 "
    "AND r.rid * 4294967296 + 4294967295)"
)

# Connections a forked child inherited: closing them there could make SQLite checkpoint and
# remove the parent's log, so they are kept, unused, until the child exits. (Asking the pid on
# every write instead would cost a system call per checkpoint, dearer than it sounds in a VM.)
_inherited: list[sqlite3.Connection] = []
_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in list(_stores):
        if store._conn is not None:
            _inherited.append(store._conn)
            store._conn = None
            store._rids.clear()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


class SQLiteStore(BaseStore):
    """A ``SnapshotStore`` in one SQLite file (see the module docstring for the trade-offs).

    ``path`` defaults to ``.notebook_workflows/runs.db`` under the current directory (fixed
    when the store is made). ``synchronous`` is ``"NORMAL"`` (safe from process crashes, the
    default) or ``"FULL"`` (also from power loss, slower). ``timeout`` is how long a write waits
    for another process's transaction, in seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "NORMAL",
        timeout: float = 30.0,
    ) -> None:
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}"
            )
        self.path = Path(path if path is not None else DEFAULT_PATH).expanduser().absolute()
        self.synchronous = mode
        self.timeout = timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        _stores.add(self)
        self._rids: dict[str, int] = {}  # run id -> the run's number in the file

    def __repr__(self) -> str:
        # relative to the working directory when under it: shorter, and the same on every
        # machine (a notebook's saved warnings do not show where it was executed)
        try:
            shown = self.path.resolve().relative_to(Path.cwd().resolve())
        except (ValueError, OSError):
            shown = self.path
        return f"SQLiteStore({str(shown)!r})"

    # -- the connection -------------------------------------------------------------------------

    def _connection(self, create: bool = True) -> sqlite3.Connection | None:
        conn = self._conn
        if conn is not None:
            return conn
        with self._lock:
            if self._conn is None:
                if not create and not self.path.exists():
                    return None
                self._conn = self._open()
            return self._conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suspicious = False
        if self.path.exists():
            suspicious = self._check_length()
        else:
            self._create()
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # A new file's journal mode and schema are set up while another process may be
            # doing the same: SQLite can answer "locked" there without waiting, so retry.
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    self._set_up(conn)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            if suspicious or self.path.stat().st_size <= QUICK_CHECK_LIMIT:
                found = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
                if found != "ok":
                    raise SnapshotError(self._damaged(f"quick_check: {found}"))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SnapshotError(self._explain(exc) or str(exc)) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _create(self) -> None:
        """Set a new file up under a temporary name, then link it into place: a file at
        ``path`` is never half made (and another process creating it at the same moment
        wins or loses whole)."""
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}")
        try:
            conn = sqlite3.connect(temp, isolation_level=None)
            try:
                self._set_up(conn)
            finally:
                conn.close()  # the last connection folds the log into the file
            try:
                os.link(temp, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            except OSError:  # a file system without hard links
                if not self.path.exists():
                    os.replace(temp, self.path)
        finally:
            for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def _check_length(self) -> bool:
        """Refuse an empty file; return True when the file is shorter than its header says
        (truncated, or caught in the middle of another process's checkpoint: quick_check,
        which reads in a transaction, tells which)."""
        size = self.path.stat().st_size
        if size == 0:
            wal = Path(f"{self.path}-wal")
            if not (wal.exists() and wal.stat().st_size > 0):
                raise SnapshotError(
                    self._damaged("the file is empty, 0 bytes")
                    + "; if you made this empty file yourself, delete it and the store "
                    "starts afresh"
                )
            return True
        with open(self.path, "rb") as f:
            header = f.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
            raise SnapshotError(self._damaged("it does not start with an SQLite header"))
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        # the header's page count is only valid when its two change counters agree
        return header[24:28] == header[92:96] and pages * page_size > size

    def _damaged(self, why: str) -> str:
        return (
            f"{self!r} is damaged: the file {str(self.path)!r} is not a whole SQLite database "
            f"({why}), so its runs cannot be read; it was left as it is. Move it aside (keep "
            f"it: `sqlite3 FILE .recover` may save some runs) and restore a backup, or use "
            f"another path"
        )

    def _explain(self, exc: BaseException) -> str | None:
        if isinstance(exc, sqlite3.DatabaseError):
            text = str(exc)
            if any(sign in text for sign in _DAMAGE):
                return self._damaged(f"SQLite says: {text}")
            if "locked" in text:
                return (
                    f"another process held the file's write lock for more than {self.timeout:g}"
                    f" s (the store's timeout): {text}"
                )
        return None

    def _set_up(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SnapshotError(
                f"{self!r} was written by a newer notebook_workflows (schema {version}; this "
                f"one reads schema {SCHEMA_VERSION}): upgrade notebook_workflows to read it"
            )
        if version < SCHEMA_VERSION:
            # pages freed by delete() and prune() go back to the file system (see _after_prune)
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    for statement in (*_SCHEMA.split(";"), _LEASES):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    # -- the primitives -------------------------------------------------------------------------

    def _rid(self, run_id: str) -> int | None:
        """The run's number (cached: a run keeps its number until it is deleted, and numbers
        are never reused, so a stale entry can only point at nothing)."""
        rid = self._rids.get(run_id)
        if rid is None:
            rows = self._query("SELECT rid FROM runs WHERE run_id = ?", (run_id,))
            if not rows:
                return None
            rid = self._rids[run_id] = rows[0][0]
        return rid

    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        conn = self._connection()
        assert conn is not None
        run_id, seq, kind = record.run_id, record.seq, record.kind
        values = record[2:]  # kind, reason, step, status, steps, created_at, data: the columns
        with self._lock:
            try:
                if new_run is None:
                    rid = self._rid(run_id)
                    if rid is None:
                        raise SnapshotError(f"{self!r} has no run {run_id!r}")
                    key = rid * _SPAN + seq
                    if kind == "base":
                        self._in_transaction(conn, lambda: self._insert_base(conn, key, values))
                    elif conn.execute(_INSERT, (key, *values, rid)).rowcount == 0:
                        self._rids.pop(run_id, None)
                        raise SnapshotError(
                            f"{self!r} no longer has run {run_id!r} (it was deleted while the "
                            f"run went on); snapshot {seq} was not saved"
                        )
                    return

                def first() -> None:
                    rid = conn.execute(
                        "INSERT INTO runs (run_id, workflow, parent, parent_seq, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (
                            run_id,
                            new_run.workflow,
                            new_run.parent,
                            new_run.parent_seq,
                            new_run.created_at,
                        ),
                    ).lastrowid
                    assert rid is not None
                    self._insert_base(conn, rid * _SPAN + seq, values)
                    self._rids[run_id] = rid

                self._in_transaction(conn, first)
            except sqlite3.IntegrityError as exc:
                if "runs.run_id" in str(exc):
                    raise RunExistsError(run_id) from None
                raise SeqTakenError(seq) from None

    def _append_many(self, records: Sequence[Record]) -> None:
        conn = self._connection()
        assert conn is not None
        run_id = records[0].run_id
        with self._lock:
            rid = self._rid(run_id)
            if rid is None:
                raise self._gone(records)
            rows = [(rid * _SPAN + record.seq, *record[2:]) for record in records]
            bases = [(row[0],) for row in rows if row[1] == "base"]

            def insert() -> int:
                done = 0
                for at in range(0, len(rows), _ROWS_PER_INSERT):
                    chunk = rows[at : at + _ROWS_PER_INSERT]
                    values = [value for row in chunk for value in row]
                    done += conn.execute(_insert_many(len(chunk)), (*values, rid)).rowcount
                if bases:
                    conn.executemany("INSERT INTO bases (key) VALUES (?)", bases)
                return done

            try:
                if bases or len(rows) > _ROWS_PER_INSERT:
                    done = self._in_transaction(conn, insert)
                else:
                    done = insert()  # one statement: a transaction of its own
            except sqlite3.IntegrityError:
                raise SeqTakenError(None) from None
            if done == 0:
                self._rids.pop(run_id, None)
                raise self._gone(records)

    @staticmethod
    def _insert_base(conn: sqlite3.Connection, key: int, values: tuple[Any, ...]) -> None:
        conn.execute(_INSERT_FIRST, (key, *values))
        conn.execute("INSERT INTO bases (key) VALUES (?)", (key,))

    def _runs(self) -> list[RunInfo]:
        return [RunInfo(*row) for row in self._query(_LATEST, ())]

    def _run(self, run_id: str) -> RunInfo | None:
        rows = self._query(f"{_LATEST} WHERE r.run_id = ?", (run_id,))
        return RunInfo(*rows[0]) if rows else None

    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        rid = self._rid(run_id)
        if rid is None:
            return []
        rows = self._query(
            f"SELECT key - ?, {_COLUMNS} FROM snapshots WHERE key BETWEEN ? AND ? ORDER BY key",
            (rid * _SPAN, rid * _SPAN + max(first, 0), rid * _SPAN + min(last, _SPAN - 1)),
        )
        return [Record(run_id, *row) for row in rows]

    def _base_before(self, run_id: str, seq: int) -> int | None:
        rid = self._rid(run_id)
        if rid is None or seq < 0:
            return None
        rows = self._query(
            "SELECT max(key) - ? FROM bases WHERE key BETWEEN ? AND ?",
            (rid * _SPAN, rid * _SPAN, rid * _SPAN + seq),
        )
        return rows[0][0] if rows else None

    def _delete(self, run_id: str) -> bool:
        rid = self._rid(run_id)
        if rid is None:
            return False
        self._rids.pop(run_id, None)

        def delete(conn: sqlite3.Connection) -> bool:
            span = (rid * _SPAN, rid * _SPAN + _SPAN - 1)
            conn.execute("DELETE FROM snapshots WHERE key BETWEEN ? AND ?", span)
            conn.execute("DELETE FROM bases WHERE key BETWEEN ? AND ?", span)
            return conn.execute("DELETE FROM runs WHERE rid = ?", (rid,)).rowcount > 0

        return self._transaction(delete, default=False)

    def _rebase(self, record: Record) -> int:
        rid = self._rid(record.run_id)
        if rid is None:
            return 0
        key = rid * _SPAN + record.seq

        def rebase(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE snapshots SET kind = 'base', data = ? WHERE key = ?", (record.data, key)
            )
            conn.execute("INSERT OR IGNORE INTO bases (key) VALUES (?)", (key,))
            conn.execute("DELETE FROM bases WHERE key BETWEEN ? AND ?", (rid * _SPAN, key - 1))
            return conn.execute(
                "DELETE FROM snapshots WHERE key BETWEEN ? AND ?", (rid * _SPAN, key - 1)
            ).rowcount

        return self._transaction(rebase, default=0)

    def _after_prune(self) -> None:
        conn = self._connection(create=False)
        if conn is not None:
            with self._lock:
                conn.execute("PRAGMA incremental_vacuum").fetchall()

    def _lease(self, run_id: str) -> Lease | None:
        try:
            rows = self._query(f"SELECT {LEASE_COLUMNS} FROM leases WHERE run_id = ?", (run_id,))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None  # a file no lease was ever taken in
            raise
        return Lease.from_row(rows[0]) if rows else None

    def _swap_lease(
        self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
    ) -> Lease | None:
        conn = self._connection()
        assert conn is not None

        def swap() -> Lease | None:
            conn.execute(_LEASES)
            row = conn.execute(
                f"SELECT {LEASE_COLUMNS} FROM leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            current = Lease.from_row(row) if row else None
            new = change(current)
            if new is KEEP:
                return current
            if new is None:
                conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
                return None
            assert isinstance(new, Lease)
            conn.execute(
                f"INSERT OR REPLACE INTO leases ({LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                new.row(),
            )
            return new

        with self._lock:
            return self._in_transaction(conn, swap)

    # -- helpers --------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = self._connection(create=False)
        if conn is None:
            return []  # no file yet: no runs
        with self._lock:
            return conn.execute(sql, params).fetchall()

    def _transaction(self, work: Any, default: Any) -> Any:
        conn = self._connection(create=False)
        if conn is None:
            return default
        with self._lock:
            return self._in_transaction(conn, lambda: work(conn))

    @staticmethod
    def _in_transaction(conn: sqlite3.Connection, work: Any) -> Any:
        # IMMEDIATE takes the write lock first (waiting up to the busy timeout), so the
        # transaction cannot fail halfway because another process started writing.
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
