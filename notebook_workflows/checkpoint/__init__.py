"""Durable runs: a checkpoint after every completed step, and resuming from any of them.

``run(..., checkpoint=store)`` (or ``Workflow(checkpoint=store)``) saves the run to ``store``
after every step; ``workflow.resume(run_id)`` continues it after a crash, a kernel restart, a
failure or a cancel, and ``workflow.resume(run_id, at=n)`` forks snapshot ``n`` into a new run.
``SQLiteStore`` is the embedded default, ``RedisStore`` and ``PostgresStore`` share runs
between machines, and ``MemoryStore`` is for tests. ``python -m notebook_workflows runs`` looks
into a store. Every store is a context manager (``with SQLiteStore(path) as store:``) with
``close()``. Run leases (``store.acquire_lease``, ``LeaseKeeper``, ``RunOwnedError``) let one
process at a time continue a run.
Each record also lists the step calls it covers and what they did, so that
``workflow.rerun(run_id)`` can replay the unchanged calls after a step was edited, and
``run(..., cache=store)`` can reuse earlier runs' calls (``rerun``).

Re-exports only; ``RedisStore`` loads redis-py and ``PostgresStore`` psycopg on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    BaseStore,
    LeaseStore,
    PruneResult,
    Record,
    RunInfo,
    RunList,
    Snapshot,
    SnapshotStore,
    StepCodeChangedWarning,
)
from .lease import DEFAULT_TTL, Lease, LeaseKeeper, Owner, RunOwnedError
from .memory import MemoryStore
from .recorder import Recorder
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .redis import RedisStore

__all__ = [
    "DEFAULT_TTL",
    "BaseStore",
    "Lease",
    "LeaseKeeper",
    "LeaseStore",
    "MemoryStore",
    "Owner",
    "PostgresStore",
    "PruneResult",
    "Record",
    "Recorder",
    "RedisStore",
    "RunInfo",
    "RunList",
    "RunOwnedError",
    "SQLiteStore",
    "Snapshot",
    "SnapshotStore",
    "StepCodeChangedWarning",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":  # redis-py is an optional dependency: import it only when asked
        from .redis import RedisStore

        return RedisStore
    if name == "PostgresStore":  # so is psycopg
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
