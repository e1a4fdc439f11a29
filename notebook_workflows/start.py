"""The start event of a run: built from ``run(...)``'s arguments, and checked against the
recorded one when a run that had not finished is given its start fields again."""

from __future__ import annotations

from typing import Any

from .errors import WorkflowRuntimeError
from .events import Event, StartEvent
from .runtime.state import RunState
from .serialization import fields_digest

__all__ = ["build_start_event", "check_same_start"]


def build_start_event(
    start_type: type[StartEvent], given: StartEvent | None, fields: dict[str, Any]
) -> StartEvent:
    """``start_event`` as given, or a ``start_type`` made of ``fields`` (not both)."""
    if given is not None:
        if fields:
            raise TypeError("pass either start_event or start fields, not both")
        if not isinstance(given, start_type):
            raise TypeError(
                f"start_event must be a {start_type.__name__}, got {type(given).__name__}"
            )
        return given
    return start_type(**fields)


def check_same_start(state: RunState, event: Event) -> None:
    """A run that continues may be given its start fields again (the seed restarts "with
    the same input"), but not different ones: they would silently be ignored, so they raise
    ``WorkflowRuntimeError`` naming each field that differs with its recorded value."""
    where = (
        f"run {state.run_id!r} had not finished ({state.status} when it was saved) and "
        f"continues where it stopped"
    )
    recorded = state.start_digest
    if recorded is None and state.start_event is not None:
        recorded = fields_digest(state.start_event)
    if recorded is None:
        raise WorkflowRuntimeError(
            f"{where}; its start event was not recorded, so call run(ctx=ctx) alone"
        )
    now = fields_digest(event)
    if now == recorded:
        return
    old, new = recorded.get("fields", {}), now["fields"]
    if now.get("type") == recorded.get("type"):
        # A field left None or at its default was not given: LlamaIndex's agents pass every
        # field of their start event (``agent.run(ctx=restored)`` sends ``user_msg=None``).
        values = event.fields()
        new = {k: d for k, d in new.items() if not _left_unset(type(event), k, values.get(k))}
        differ = sorted(k for k in new if old.get(k) != new[k])
        if not differ:
            return
    else:
        differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    live = state.start_event.fields() if state.start_event is not None else {}
    shown = (
        ", ".join(
            f"{k}={event.fields().get(k, '<missing>')!r}"
            + (f" (recorded {live.get(k, '<missing>')!r})" if live else "")
            for k in differ
        )
        or f"a {type(event).__name__} instead of a {recorded.get('type')}"
    )
    raise WorkflowRuntimeError(
        f"{where}, but it started with other input: {shown}; call run(ctx=ctx) alone, "
        f"or with the same start fields, or start a new run without ctx"
    )


def _left_unset(event_type: type[Event], name: str, value: Any) -> bool:
    """``value`` of field ``name`` is None or the field's declared default."""
    if value is None:
        return True
    field = event_type.model_fields.get(name)
    if field is None or field.is_required():
        return False
    try:
        return bool(value == field.get_default(call_default_factory=True))
    except Exception:  # a default that cannot be made or compared: counts as given
        return False
