"""Store edits: a fork's changes to the store, made and recorded (``workflow.fork(run_id,
at=n, store_edits={...})``).

``apply_store_edits`` sets each value in the fork's store exactly as ``ctx.store.set`` sets it
and returns the ``"edits"`` record that the fork's first snapshot keeps; ``edits_of`` reads that
record back for displays. The record's shape is part of the snapshot format (see ``snapshot``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..serialization import encode

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["apply_store_edits", "edits_of"]


def apply_store_edits(ctx: Context[Any], edits: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Set each ``key: value`` of ``edits`` in ``ctx.store``, as ``ctx.store.set`` does (the
    same checks, the same errors naming the key), and return the ``"edits"`` record of them.
    The first refused value raises; the store may then hold the edits before it, so the caller
    discards ``ctx``."""
    if not isinstance(edits, Mapping):
        raise TypeError(f"store_edits must be a mapping of keys to values, got {type(edits)}")
    store = ctx.store
    record = []
    for key, value in edits.items():
        if not isinstance(key, str):
            raise TypeError(f"store_edits keys are store keys (text), got {key!r}")
        entry: dict[str, Any] = {"key": key}
        with contextlib.suppress(KeyError):  # a new key has no "was"
            entry["was"] = encode(store._get(key), path=key)
        store._set(key, value)
        entry["value"] = encode(store._get(key), path=key)
        record.append(entry)
    return record


def edits_of(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``"edits"`` record of snapshot ``data`` (``[]`` when it has none), the entries that
    have the documented shape; for displays, so a damaged entry is left out, not raised."""
    edits = data.get("edits")
    if not isinstance(edits, list):
        return []
    return [e for e in edits if isinstance(e, Mapping) and isinstance(e.get("key"), str)]
