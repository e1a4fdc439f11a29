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
* Every call is bounded by ``timeout`` (5 s by default), as Redis's are by its own: the
  session's ``statement_timeout`` and ``lock_timeout`` make the server give up on a statement
  (a lock held elsewhere, an overloaded server) after ``timeout``, its
  ``idle_in_transaction_session_timeout`` (three times ``timeout``) ends a transaction whose
  process froze, and ``connect_timeout`` bounds making a connection (libpq waits 2 s at
  least). A server that does not answer at all (stopped with ``SIGSTOP``, a host gone from
  the network) is not helped by any of those, and psycopg has no socket timeout: a watchdog
  thread (one per store, started by the first call, ending after a minute with nothing to
  watch) shuts the connection's socket down when a call has waited 1.2 times ``timeout``,
  which wakes the call with an error; the next call connects again. Setting a deadline is
  two uncontended lock operations per call; the watchdog wakes about once per ``timeout``
  while calls go on.
* A connection that broke (server restart) is replaced on the next call; the failed call
  comes out as a ``SnapshotError`` naming the server's address and what went wrong: no
  answer within the timeout, a lost connection, or a refusal (a wrong password, database,
  role or ``sslmode``) in the server's own words. The DSN's password is never shown, in a
  URL or a ``password=...`` pair, quoted or not.
* A connection never crosses ``fork()``: a forked child opens its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import SnapshotError
from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError
from .lease import KEEP, LEASE_COLUMNS, Lease

__all__ = ["PostgresStore"]

SCHEMA_VERSION = 1

DEFAULT_TIMEOUT = 5.0  # seconds: the bound of every call (see PostgresStore)

# a call is cut off (its socket shut down) after this many times the timeout: later than the
# server's own statement and lock timeouts, so a server that answers says why it gave up
_CUT_AFTER = 1.2

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
        _inherited.append(store._watchdog)  # its copy of the parent's socket, unused
        store._watchdog = _Watchdog()  # and its thread is not in the child
        if store._conn is not None:
            _inherited.append(store._conn)
            store._conn = None


os.register_at_fork(after_in_child=_forget_connections_after_fork)


class PostgresStore(BaseStore):
    """A ``SnapshotStore`` in a PostgreSQL database (see the module docstring).

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host:5432/dbname``);
    tables are named ``{prefix}_...``. ``timeout`` (seconds, 5 by default) bounds every call:
    the server gives up on a statement or a lock wait longer than that, and a server that
    does not answer at all (stopped, overloaded, unreachable) has its connection closed after
    1.2 times that, failing the call with a ``SnapshotError`` naming the server's address and
    the timeout (a run fails with it, saying how to resume). The bound is for a whole call,
    answer included: give more to a store whose single reads are large (the history of a run
    with hundreds of thousands of records, or of megabytes of state, over a slow network).
    ``connect_timeout`` bounds making a connection (``timeout`` unless given; 2 s at least).
    Other keyword arguments go to ``psycopg.connect``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        prefix: str = "nw",
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
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
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} is a number of seconds above 0, got {value!r}")
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            words = " ".join(str(exc).split())
            raise ValueError(
                f"{_without_password(dsn)!r} is not a PostgreSQL connection string: {words}"
            ) from None
        self._psycopg = psycopg
        self.dsn = dsn
        self.prefix = prefix
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout or timeout)
        self.address = _address({**params, **options})
        self._options = options
        self._lock = threading.RLock()
        self._conn: Any = None
        self._watchdog = _Watchdog()
        self._sql = {name: text.format(p=prefix) for name, text in _SQL.items()}
        ms = math.ceil(self.timeout * 1000)
        self._session = (
            f"SET statement_timeout = {ms}; SET lock_timeout = {ms}; "
            f"SET idle_in_transaction_session_timeout = {3 * ms}"
        )
        _stores.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore({_without_password(self.dsn)!r}, prefix={self.prefix!r})"

    # -- the connection -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[Any]:
        """The connection, for one call of the store: the call has the store to itself and
        is cut off if the server has not answered within the timeout (``_watched``)."""
        with self._lock:
            conn = self._connection()
            with self._watched(conn):
                yield conn

    @contextlib.contextmanager
    def _watched(self, conn: Any) -> Iterator[None]:
        """Shut the connection's socket down if what runs inside waits on the server for
        longer than ``_CUT_AFTER`` times the timeout; the call then fails with
        ``_NoAnswer``."""
        watchdog = self._watchdog
        watchdog.arm(self.timeout * _CUT_AFTER)
        try:
            yield
        except self._psycopg.Error as exc:
            if watchdog.disarm():
                self._drop(conn)
                raise _NoAnswer(f"no answer within {self.timeout:g} s") from exc
            raise
        except BaseException:
            if watchdog.disarm():
                self._drop(conn)
            raise
        if watchdog.disarm():  # cut just as the answer came: connect again next time
            self._drop(conn)

    def _connect_within(self) -> int:
        """``connect_timeout`` as libpq takes it: whole seconds, 2 at least."""
        return max(2, math.ceil(self.connect_timeout))

    def _drop(self, conn: Any) -> None:
        conn.close()
        self._watchdog.detach()

    def _connection(self) -> Any:
        """The store's connection, made (and the tables set up) if there is none; called
        with the lock held."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if conn is not None:  # it broke (the server restarted, the watchdog cut it)
            self._conn = None
            self._drop(conn)
        try:
            conn = self._psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=self._connect_within(),
                **self._options,
            )
        except self._psycopg.OperationalError as exc:
            raise _NotConnected(exc) from exc
        try:
            self._watchdog.attach(conn.fileno())
            with self._watched(conn):
                conn.execute(self._session)
                self._set_up(conn)
        except BaseException:
            self._drop(conn)
            raise
        self._conn = conn
        return conn

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
                self._drop(self._conn)
            self._conn = None
        self._watchdog.stop()

    def _explain(self, exc: BaseException) -> str | None:
        at = f"the PostgreSQL server at {self.address}"
        if isinstance(exc, _NoAnswer):
            return (
                f"{at} did not answer within {self.timeout:g} s (the store's timeout), so the "
                f"connection was closed. Is it running, and not stopped or overloaded?"
            )
        if isinstance(exc, _NotConnected):
            return self._not_connected(exc)
        errors = self._psycopg.errors
        words = _words(exc)
        if isinstance(exc, (errors.QueryCanceled, errors.LockNotAvailable)):
            return (
                f"{at} gave up on a statement after the store's timeout, {self.timeout:g} s "
                f"({words}). Is the server overloaded, or does another session hold a lock on "
                f"the store's tables?"
            )
        if isinstance(exc, self._psycopg.OperationalError):
            return f"the connection to {at} was lost ({words}). Is it still running?"
        return None

    def _not_connected(self, exc: _NotConnected) -> str:
        """Why a connection could not be made, in the server's (or libpq's) own words."""
        cause = exc.__cause__
        at = f"the PostgreSQL server at {self.address}"
        if isinstance(cause, self._psycopg.errors.ConnectionTimeout):
            return (
                f"{at} did not answer within {self._connect_within()} s while connecting (the "
                f"store's connect timeout). Is it running, and not stopped or overloaded?"
            )
        words = _words(cause)
        if _CONFIGURATION.search(words):
            return (
                f"{at} refused the connection: {words}. Check the user, password, database and "
                f"sslmode of the connection string; nothing was saved"
            )
        if "FATAL:" in words:  # the server answered: starting up, too many clients, ...
            return f"{at} refused the connection: {words}"
        return f"{at} could not be reached: {words}"

    def _query(self, name: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._bounded() as conn:
            return conn.execute(self._sql[name], params).fetchall()

    # -- the primitives -------------------------------------------------------------------------

    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        errors = self._psycopg.errors
        values = (*record[1:],)  # seq, kind, reason, step, status, steps, created_at, data
        with self._bounded() as conn:
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
        with self._bounded() as conn:
            try:
                done = conn.execute(self._sql["insert_many"], (*columns, run_id))
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
        with self._bounded() as conn, conn.transaction():
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
        with self._bounded() as conn:
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


class _NoAnswer(Exception):
    """The server did not answer a call in time: the watchdog closed its connection."""


class _NotConnected(Exception):
    """No connection could be made (its cause, psycopg's error, says why)."""


class _Watchdog:
    """Shuts a connection's socket down when a call on it outlives its deadline.

    psycopg's blocking calls wait on the socket with no timeout of their own; shutting the
    socket down makes that wait end with an error at once, in whatever thread it is. The
    watchdog keeps a duplicate of the connection's socket (``attach``), so what it shuts
    down is always that connection, even if psycopg closed its own descriptor meanwhile and
    the number went to another file. One deadline at a time: the store's lock lets one call
    at a time use its connection.
    """

    IDLE = 60.0  # seconds the thread waits with nothing to watch before it ends

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._sock: socket.socket | None = None
        self._due: float | None = None  # time.monotonic() at which to cut
        self._fired = False
        self._idle = False  # the thread waits with no deadline: tell it of a new one
        self._stopped = False
        self._thread: threading.Thread | None = None

    def attach(self, fd: int) -> None:
        """Watch the connection whose socket is ``fd`` from now on."""
        sock = socket.socket(fileno=os.dup(fd))
        with self._cond:
            old, self._sock = self._sock, sock
        if old is not None:
            old.close()

    def detach(self) -> None:
        """Let go of the socket (its connection was closed)."""
        with self._cond:
            old, self._sock, self._due = self._sock, None, None
        if old is not None:
            old.close()

    def arm(self, seconds: float) -> None:
        with self._cond:
            self._due, self._fired = time.monotonic() + seconds, False
            if self._thread is None:
                self._stopped = False
                self._thread = threading.Thread(
                    target=self._watch, name="PostgresStore watchdog", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._cond.notify()
            # else the thread waits for an earlier deadline, and from there sees this one

    def disarm(self) -> bool:
        """Stop watching; True if the deadline passed and the socket was shut down."""
        with self._cond:
            self._due = None
            return self._fired

    def stop(self) -> None:
        self.detach()
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._due is None:
                    self._idle = True
                    woken = self._cond.wait(self.IDLE)
                    self._idle = False
                    if not woken and self._due is None:
                        break
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                if self._sock is not None:
                    with contextlib.suppress(OSError):  # the server closed it already
                        self._sock.shutdown(socket.SHUT_RDWR)
                self._fired, self._due = True, None
            self._thread = None


# libpq's and the server's words for a connection string that cannot work as it is
_CONFIGURATION = re.compile(
    r"authentication|password|does not exist|pg_hba|SSL|sslmode|certificate|"
    r"not permitted|permission denied|invalid \w+ value",
    re.IGNORECASE,
)


def _words(exc: BaseException | None) -> str:
    """psycopg's message on one line, without libpq's "connection to server at ... failed:"
    preamble (the store names the server itself)."""
    text = " ".join(str(exc).split())
    return re.sub(
        r"^connection (?:failed|is bad): (?:connection to server .*? failed: )?", "", text
    )


def _address(params: dict[str, Any]) -> str:
    """``host:port/database`` of the connection parameters, with libpq's defaults."""
    env = os.environ.get
    host = params.get("host") or params.get("hostaddr") or env("PGHOST") or "localhost"
    port = params.get("port") or env("PGPORT") or "5432"
    database = params.get("dbname") or env("PGDATABASE") or params.get("user") or env("PGUSER")
    return f"{host}:{port}" + (f"/{database}" if database else "")


_URL_PASSWORD = re.compile(r"^([\w+.-]+://[^:/@?#]*):[^@/]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*")
# a key=value pair: a quoted value (backslash escapes, maybe never closed) or a bare word
_PAIR_PASSWORD = re.compile(r"(\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|$)|(?:[^\s\\]|\\.)+)")


def _without_password(dsn: str) -> str:
    """The DSN as it may be shown: a URL's password (before the ``@`` or as a query
    parameter) and a ``password=`` pair, quoted or not, masked whole."""
    if "://" in dsn:
        return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", dsn))
    return _PAIR_PASSWORD.sub(r"\1***", dsn)
