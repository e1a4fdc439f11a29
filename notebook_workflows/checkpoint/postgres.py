"""PostgresStore: checkpoints in a PostgreSQL database, shared by kernels and machines.

Tables, under ``prefix`` (``nw`` by default)::

    {prefix}_schema     one row: the schema version of these tables
    {prefix}_runs       one row per run: its fixed fields (workflow, parent, created_at)
    {prefix}_snapshots  one row per record: (rid, seq) -> kind, reason, ..., data (JSON text)
    {prefix}_leases     one row per owned run: who continues it, until when (lease.py)

Design decisions:

* psycopg 3 (``pip install 'notebook-workflows[postgres]'``, which brings ``psycopg[binary]``
  and its own libpq), imported when the first ``PostgresStore`` is made: importing
  ``notebook_workflows.checkpoint`` never needs it.
* One connection per store, in autocommit mode, used under a lock (a store may be shared by
  threads). A checkpoint is one ``INSERT ... SELECT`` naming the run by id: one statement, one
  round trip, its own transaction; it inserts nothing when the run was deleted meanwhile. The
  first record of a run also inserts the run's row, in one transaction. A batch of records
  (``save_many``, what ``durability="async"`` writes) is one statement too, its columns sent
  as arrays (``unnest``): all of the batch or none of it, one round trip, one commit. The
  primary key ``(rid, seq)`` refuses a second record with the same number, as the other stores do.
* ``runs()`` reads each run's latest record through the primary key (``LATERAL ... ORDER BY
  seq DESC LIMIT 1``): nothing besides the record is written per step.
* The tables are made on first use, in one transaction under an advisory lock (two processes
  starting at once make them once), and versioned in ``{prefix}_schema``: an older version is
  upgraded by the steps in ``_UPGRADES``; a newer one (written by a later notebook_workflows)
  is refused with a message saying so, and nothing is touched.
* A lease change runs in one transaction: ``SELECT ... FOR UPDATE`` locks the run's lease
  row; when there is none, ``INSERT ... ON CONFLICT DO NOTHING`` tells whether another
  process inserted one first (then the change is tried again on its row).
* A connection that broke (server restart) is replaced on the next call; the failed call
  comes out as a ``SnapshotError`` naming the server. The DSN's password is never shown.
* A connection never crosses ``fork()``: a forked child opens its own.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SnapshotError
from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError
from .lease import KEEP, LEASE_COLUMNS, Lease

__all__ = ["PostgresStore"]

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS {p}_runs (
    rid         BIGSERIAL PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,
    workflow    TEXT NOT NULL,
    parent      TEXT,
    parent_seq  INTEGER,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}_snapshots (
    rid         BIGINT NOT NULL REFERENCES {p}_runs (rid) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    step        TEXT,
    status      TEXT NOT NULL,
    steps       INTEGER NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (rid, seq)
);
CREATE INDEX IF NOT EXISTS {p}_bases ON {p}_snapshots (rid, seq) WHERE kind = 'base';
CREATE TABLE IF NOT EXISTS {p}_leases (
    run_id      TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started     BIGINT,
    token       TEXT NOT NULL,
    since       DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
)
"""

# version -> the statements that bring the tables from the version before to it
_UPGRADES: dict[int, str] = {1: _TABLES}

_COLUMNS = "kind, reason, step, status, steps, created_at, data"

# Connections a forked child inherited: closing them there would end the parent's session on
# the server. psycopg already leaves a connection alone in a process other than its own when it
# is collected; keeping them here, unused, until the child exits does not rely on that.
_inherited: list[Any] = []
_stores: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in list(_stores):
        if store._conn is not None:
            _inherited.append(store._conn)
            store._conn = None


os.register_at_fork(after_in_child=_forget_connections_after_fork)


class PostgresStore(BaseStore):
    """A ``SnapshotStore`` in a PostgreSQL database (see the module docstring).

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host:5432/dbname``);
    tables are named ``{prefix}_...``. ``connect_timeout`` bounds making a connection, in
    seconds. Other keyword arguments go to ``psycopg.connect``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        prefix: str = "nw",
        connect_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
            raise ImportError(
                "PostgresStore needs psycopg 3: pip install 'notebook-workflows[postgres]'"
            ) from exc
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", prefix):
            raise ValueError(
                f"prefix names tables: lower-case letters, digits and _, not {prefix!r}"
            )
        self._psycopg = psycopg
        self.dsn = dsn
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self._options = options
        self._lock = threading.RLock()
        self._conn: Any = None
        self._sql = {name: text.format(p=prefix) for name, text in _SQL.items()}
        _stores.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore({_without_password(self.dsn)!r}, prefix={self.prefix!r})"

    # -- the connection -------------------------------------------------------------------------

    def _connection(self) -> Any:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        with self._lock:
            if self._conn is None or self._conn.closed:
                conn = self._psycopg.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=max(1, round(self.connect_timeout)),
                    **self._options,
                )
                try:
                    self._set_up(conn)
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
            return self._conn

    def _set_up(self, conn: Any) -> None:
        p = self.prefix
        with conn.transaction():
            # one process at a time makes or upgrades the tables (CREATE ... IF NOT EXISTS
            # alone can still collide on the catalogue)
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{p}_schema",))
            conn.execute(f"CREATE TABLE IF NOT EXISTS {p}_schema (version INTEGER NOT NULL)")
            row = conn.execute(f"SELECT version FROM {p}_schema").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise SnapshotError(
                    f"{self!r}: its tables were written by a newer notebook_workflows (schema "
                    f"{version}; this one reads schema {SCHEMA_VERSION}): upgrade "
                    f"notebook_workflows to use them; nothing was changed"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[target].format(p=p).split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"DELETE FROM {p}_schema")
                conn.execute(f"INSERT INTO {p}_schema VALUES (%s)", (SCHEMA_VERSION,))

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _explain(self, exc: BaseException) -> str | None:
        if isinstance(exc, self._psycopg.OperationalError):
            text = " ".join(str(exc).split())
            return (
                f"the PostgreSQL server did not answer or refused the connection ({text}). "
                f"Is it running and reachable? What was saved before stays there; once it "
                f"answers, continue a stopped run with workflow.resume(run_id)"
            )
        return None

    def _query(self, name: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection().execute(self._sql[name], params).fetchall()

    # -- the primitives -------------------------------------------------------------------------

    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        errors = self._psycopg.errors
        values = (*record[1:],)  # seq, kind, reason, step, status, steps, created_at, data
        with self._lock:
            conn = self._connection()
            try:
                if new_run is None:
                    if conn.execute(self._sql["insert"], (*values, record.run_id)).rowcount == 0:
                        raise SnapshotError(
                            f"{self!r} no longer has run {record.run_id!r} (it was deleted "
                            f"while the run went on); snapshot {record.seq} was not saved"
                        )
                    return
                with conn.transaction():
                    rid = conn.execute(
                        self._sql["new_run"],
                        (
                            record.run_id,
                            new_run.workflow,
                            new_run.parent,
                            new_run.parent_seq,
                            new_run.created_at,
                        ),
                    ).fetchone()[0]
                    conn.execute(self._sql["insert_first"], (rid, *values))
            except errors.UniqueViolation as exc:
                if f"{self.prefix}_runs_run_id_key" in str(exc):
                    raise RunExistsError(record.run_id) from None
                raise SeqTakenError(record.seq) from None

    def _append_many(self, records: Sequence[Record]) -> None:
        columns = [list(column) for column in zip(*(r[1:] for r in records), strict=True)]
        run_id = records[0].run_id
        with self._lock:
            try:
                done = self._connection().execute(self._sql["insert_many"], (*columns, run_id))
            except self._psycopg.errors.UniqueViolation:
                raise SeqTakenError(None) from None
            if done.rowcount == 0:
                raise self._gone(records)

    def _runs(self) -> list[RunInfo]:
        return [RunInfo(*row) for row in self._query("runs", ())]

    def _run(self, run_id: str) -> RunInfo | None:
        rows = self._query("run", (run_id,))
        return RunInfo(*rows[0]) if rows else None

    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        rows = self._query("records", (run_id, first, last))
        return [Record(run_id, *row) for row in rows]

    def _base_before(self, run_id: str, seq: int) -> int | None:
        rows = self._query("base_before", (run_id, seq))
        return rows[0][0] if rows else None

    def _delete(self, run_id: str) -> bool:
        return bool(self._query("delete", (run_id,)))

    def _rebase(self, record: Record) -> int:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                rows = conn.execute(
                    self._sql["rebase"], (record.data, record.run_id, record.seq)
                ).fetchall()
                if not rows:
                    return 0
                return conn.execute(self._sql["drop_before"], (rows[0][0], record.seq)).rowcount

    def _lease(self, run_id: str) -> Lease | None:
        rows = self._query("lease", (run_id,))
        return Lease.from_row(rows[0]) if rows else None

    def _swap_lease(
        self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
    ) -> Lease | None:
        with self._lock:
            conn = self._connection()
            for _ in range(100):
                with conn.transaction():
                    row = conn.execute(self._sql["lease_for_update"], (run_id,)).fetchone()
                    current = Lease.from_row(row) if row else None
                    new = change(current)
                    if new is KEEP:
                        return current
                    if new is None:
                        conn.execute(self._sql["lease_delete"], (run_id,))
                        return None
                    assert isinstance(new, Lease)
                    if current is not None:
                        conn.execute(self._sql["lease_update"], (*new.row()[1:], run_id))
                        return new
                    if conn.execute(self._sql["lease_insert"], new.row()).rowcount == 1:
                        return new
                # another process inserted a lease between our look and our insert: again
            raise SnapshotError(f"{self!r}: the lease of run {run_id!r} kept changing; try again")


_LATEST = (
    "SELECT r.run_id, r.workflow, s.status, s.steps, s.created_at, r.parent, r.parent_seq, "
    "r.created_at, s.seq FROM {p}_runs r CROSS JOIN LATERAL (SELECT status, steps, created_at, "
    "seq FROM {p}_snapshots WHERE rid = r.rid ORDER BY seq DESC LIMIT 1) s"
)

_SQL = {
    "insert": f"INSERT INTO {{p}}_snapshots (rid, seq, {_COLUMNS}) SELECT rid, %s, %s, %s, %s, "
    f"%s, %s, %s, %s FROM {{p}}_runs WHERE run_id = %s",
    # a batch: one statement (its own transaction), the columns as arrays side by side
    "insert_many": f"INSERT INTO {{p}}_snapshots (rid, seq, {_COLUMNS}) SELECT r.rid, v.* FROM "
    "{p}_runs r, unnest(%s::integer[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::integer[], %s::double precision[], %s::text[]) AS v WHERE r.run_id = %s",
    "insert_first": f"INSERT INTO {{p}}_snapshots (rid, seq, {_COLUMNS}) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
    "new_run": "INSERT INTO {p}_runs (run_id, workflow, parent, parent_seq, created_at) "
    "VALUES (%s, %s, %s, %s, %s) RETURNING rid",
    "runs": _LATEST,
    "run": _LATEST + " WHERE r.run_id = %s",
    "records": f"SELECT seq, {_COLUMNS} FROM {{p}}_snapshots WHERE rid = (SELECT rid FROM "
    f"{{p}}_runs WHERE run_id = %s) AND seq BETWEEN %s AND %s ORDER BY seq",
    "base_before": "SELECT max(seq) FROM {p}_snapshots WHERE rid = (SELECT rid FROM {p}_runs "
    "WHERE run_id = %s) AND kind = 'base' AND seq <= %s HAVING max(seq) IS NOT NULL",
    "delete": "DELETE FROM {p}_runs WHERE run_id = %s RETURNING rid",
    "rebase": "UPDATE {p}_snapshots s SET kind = 'base', data = %s FROM {p}_runs r "
    "WHERE r.rid = s.rid AND r.run_id = %s AND s.seq = %s RETURNING s.rid",
    "drop_before": "DELETE FROM {p}_snapshots WHERE rid = %s AND seq < %s",
    "lease": f"SELECT {LEASE_COLUMNS} FROM {{p}}_leases WHERE run_id = %s",
    "lease_for_update": f"SELECT {LEASE_COLUMNS} FROM {{p}}_leases WHERE run_id = %s FOR UPDATE",
    "lease_delete": "DELETE FROM {p}_leases WHERE run_id = %s",
    "lease_update": "UPDATE {p}_leases SET host = %s, pid = %s, started = %s, token = %s, "
    "since = %s, expires_at = %s WHERE run_id = %s",
    "lease_insert": f"INSERT INTO {{p}}_leases ({LEASE_COLUMNS}) VALUES "
    f"(%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
}


def _without_password(dsn: str) -> str:
    """The DSN as it may be shown: a URL's password and a ``password=`` pair masked."""
    shown = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", shown)
