"""A checkpointed run read back as what it did, in order: its step calls and its fork edits.

What ``RunDiff`` compares and ``export_html`` lists. Each snapshot a store keeps records the
calls that completed since the one before (``Snapshot.calls``); a run is those, in order,
with the store edits a fork started with as a point of their own. A fork (and a rerun, a fork
of snapshot 0) starts from its parent's state without its parent's calls: the calls of the
parent up to the fork point are put in front of the fork's own, marked shared, so a fork and
its parent agree up to the fork. Values stay the stored (tagged) JSON; nothing is decoded here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .display import short_text
from .fork_form import _shown

MAX_FORK_DEPTH = 64  # forks of forks followed back this far (a loop in a damaged store ends)
_MISSING = object()


@dataclass(frozen=True)
class Call:
    """One point of a run's history: a step call, or the store edits a fork started with.

    ``kind`` is "call" or "edit". For a call: ``step``, a digest of its input event
    (``input``), its code hash, what it emitted, streamed, set and deleted (stored JSON),
    whether a rerun replayed it (and if not, ``ran_because``), the snapshot that recorded it
    (``seq`` of ``run_id``); ``shared`` when it is the parent's, before the fork point. For an
    edit: ``set`` holds the edited keys' new values, ``was`` the old ones."""

    kind: str
    run_id: str
    seq: int
    step: str = ""
    input: str = ""
    code: str = ""
    emitted: tuple[Any, ...] = ()
    stream: tuple[Any, ...] = ()
    set: Mapping[str, Any] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    was: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = False
    ran_because: str = ""
    shared: bool = False

    def same_as(self, other: Call) -> bool:
        """Whether the two runs did the same thing here (where it was recorded aside)."""
        return self._key() == other._key()

    def _key(self) -> str:
        return _canonical(
            [
                self.kind,
                self.step,
                self.input,
                self.code,
                self.emitted,
                self.stream,
                self.set,
                self.deleted,
            ]
        )

    def describe(self) -> str:
        """One line: ``count(Parsed) → Counted(count=3); set count=3 (replayed)``."""
        if self.kind == "edit":
            return "store edited: " + ", ".join(
                f"{k}={_shown(v, k)}"
                + (f" (was {_shown(self.was[k], k)})" if k in self.was else "")
                for k, v in self.set.items()
            )
        outputs = ", ".join(_event_text(e) for e in self.emitted) or "nothing"
        text = f"{self.step} → {outputs}"
        if self.set:
            text += "; set " + ", ".join(f"{k}={_shown(v, k)}" for k, v in self.set.items())
        if self.deleted:
            text += "; deleted " + ", ".join(self.deleted)
        return text

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "run_id": self.run_id, "seq": self.seq}
        if self.kind == "edit":
            data.update(set=dict(self.set), was=dict(self.was))
            return data
        data.update(
            step=self.step,
            input=self.input,
            code=self.code,
            emitted=list(self.emitted),
            set=dict(self.set),
            deleted=list(self.deleted),
            replayed=self.replayed,
            shared=self.shared,
        )
        if self.stream:
            data["stream"] = list(self.stream)
        if self.ran_because:
            data["ran_because"] = self.ran_because
        return data


@dataclass(frozen=True)
class _Run:
    """One side of a diff: what its latest snapshot and its history say."""

    run_id: str
    workflow: str
    status: str
    parent: str | None
    parent_seq: int | None
    calls: tuple[Call, ...]
    context: dict[str, Any]

    @property
    def store(self) -> dict[str, Any]:
        return dict(self.context.get("store") or {})

    @property
    def result(self) -> Any:
        stop = self.context.get("stop")
        if not isinstance(stop, dict):
            return _MISSING
        data = stop.get("data")
        return data.get("result") if isinstance(data, dict) else data

    @property
    def rerun(self) -> bool:
        return any(c.replayed or c.ran_because for c in self.calls if not c.shared)

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """Per step, in the order steps were first called: how many of its calls ran, how
        many a rerun replayed, and how many are the parent's, before the fork point."""
        counts: dict[str, tuple[int, int, int]] = {}
        for call in self.calls:
            if call.kind != "call":
                continue
            ran, replayed, shared = counts.get(call.step, (0, 0, 0))
            if call.shared:
                shared += 1
            elif call.replayed:
                replayed += 1
            else:
                ran += 1
            counts[call.step] = (ran, replayed, shared)
        return counts


def _run_id_of(run: Any) -> str:
    run_id = getattr(run, "run_id", run)
    if not isinstance(run_id, str):
        raise TypeError(f"RunDiff compares runs named by run id (or handler), not {run!r}")
    return run_id


def _store_of(run: Any) -> Any:
    return getattr(run, "checkpoint_store", None)


def _read_run(store: Any, run_id: str) -> _Run:
    latest = store.latest(run_id)  # an unknown run is refused here, naming the store's runs
    info = store.run_info(run_id)
    calls = _calls_of(store, run_id, None, 0)
    return _Run(
        run_id=run_id,
        workflow=latest.workflow,
        status=latest.status,
        parent=getattr(info, "parent", None),
        parent_seq=getattr(info, "parent_seq", None),
        calls=tuple(calls),
        context=latest.context,
    )


def _calls_of(store: Any, run_id: str, upto: int | None, depth: int) -> list[Call]:
    """What run ``run_id`` did up to its snapshot ``upto`` (all of it: None), with what its
    parents did before its fork point in front (marked shared when ``depth`` > 0)."""
    info = store.run_info(run_id)
    calls: list[Call] = []
    shared = depth > 0
    if info is not None and info.parent and depth < MAX_FORK_DEPTH:
        calls = _calls_of(store, info.parent, info.parent_seq, depth + 1)
    for snapshot in store.history(run_id):
        if upto is not None and snapshot.seq > upto:
            break
        edits = snapshot.edits
        if edits:
            calls.append(
                Call(
                    "edit",
                    run_id,
                    snapshot.seq,
                    set={edit["key"]: edit.get("value") for edit in edits},
                    was={edit["key"]: edit["was"] for edit in edits if "was" in edit},
                    shared=shared,
                )
            )
        calls.extend(_call(entry, run_id, snapshot.seq, shared) for entry in snapshot.calls)
    return calls


def _call(entry: dict[str, Any], run_id: str, seq: int, shared: bool) -> Call:
    return Call(
        "call",
        run_id,
        seq,
        step=str(entry.get("step", "")),
        input=str(entry.get("input", "")),
        code=str(entry.get("code", "")),
        emitted=tuple(entry.get("emitted") or ()),
        stream=tuple(entry.get("stream") or ()),
        set=dict(entry.get("set") or {}),
        deleted=tuple(entry.get("deleted") or ()),
        replayed=bool(entry.get("replayed")),
        ran_because=str(entry.get("ran_because") or ""),
        shared=shared,
    )


def _event_text(entry: Any) -> str:
    event = entry.get("event", entry) if isinstance(entry, dict) else entry
    if not isinstance(event, dict):
        return short_text(str(event), 60)
    name = str(event.get("type", "?")).rpartition(":")[2].rsplit(".", 1)[-1]
    data = event.get("data")
    if isinstance(data, dict):
        fields = ", ".join(f"{k}={_shown(v, k)}" for k, v in data.items())
        return short_text(f"{name}({fields})", 80)
    return name


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)
