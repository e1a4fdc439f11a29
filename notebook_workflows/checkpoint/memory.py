"""MemoryStore: checkpoints kept in this process only, for tests and quick experiments.

It keeps the very records the other stores write (JSON text, never live objects), so a run
checkpointed here behaves on resume exactly as one read back from SQLite or Redis: what a step
left in the store is copied, and cannot change behind the snapshot's back. Leases are kept per
process too: they keep two runs of this process apart, nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError
from .lease import KEEP, Lease

__all__ = ["MemoryStore"]


class MemoryStore(BaseStore):
    """A ``SnapshotStore`` in a dict; gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infos: dict[str, RunInfo] = {}  # run id -> the run's fixed fields
        self._log: dict[str, dict[int, Record]] = {}  # run id -> seq -> record
        self._leases: dict[str, Lease] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._infos)} runs>)"

    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        with self._lock:
            if new_run is not None:
                if record.run_id in self._infos:
                    raise RunExistsError(record.run_id)
                self._infos[record.run_id] = new_run
                self._log[record.run_id] = {}
            records = self._log[record.run_id]
            if record.seq in records:
                raise SeqTakenError(record.seq)
            records[record.seq] = record

    def _append_many(self, records: Sequence[Record]) -> None:
        run_id = records[0].run_id
        with self._lock:
            if run_id not in self._infos:
                raise self._gone(records)
            kept = self._log[run_id]
            for record in records:
                if record.seq in kept:
                    raise SeqTakenError(record.seq)
            for record in records:
                kept[record.seq] = record

    def _runs(self) -> list[RunInfo]:
        with self._lock:
            ids = list(self._infos)
        return [info for info in map(self._run, ids) if info is not None]

    def _run(self, run_id: str) -> RunInfo | None:
        with self._lock:
            info = self._infos.get(run_id)
            if info is None:
                return None
            records = self._log[run_id]
            last = records[max(records)]
        return RunInfo(
            run_id=run_id,
            workflow=info.workflow,
            status=last.status,
            steps=last.steps,
            updated_at=last.created_at,
            parent=info.parent,
            parent_seq=info.parent_seq,
            created_at=info.created_at,
            seq=last.seq,
        )

    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        with self._lock:
            records = self._log.get(run_id, {})
            return [records[seq] for seq in sorted(records) if first <= seq <= last]

    def _base_before(self, run_id: str, seq: int) -> int | None:
        with self._lock:
            records = self._log.get(run_id, {})
            bases = [s for s, r in records.items() if s <= seq and r.kind == "base"]
        return max(bases) if bases else None

    def _delete(self, run_id: str) -> bool:
        with self._lock:
            self._log.pop(run_id, None)
            return self._infos.pop(run_id, None) is not None

    def _rebase(self, record: Record) -> int:
        with self._lock:
            records = self._log[record.run_id]
            older = [seq for seq in records if seq < record.seq]
            for seq in older:
                del records[seq]
            records[record.seq] = record
        return len(older)

    def _lease(self, run_id: str) -> Lease | None:
        with self._lock:
            return self._leases.get(run_id)

    def _swap_lease(
        self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
    ) -> Lease | None:
        with self._lock:
            current = self._leases.get(run_id)
            new = change(current)
            if new is KEEP:
                return current
            if new is None:
                self._leases.pop(run_id, None)
                return None
            assert isinstance(new, Lease)
            self._leases[run_id] = new
            return new
