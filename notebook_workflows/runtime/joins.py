"""Joins: steps that run once several events have arrived, and the fan-out streams they close.

Two kinds of step are joins (``StepSpec.gather``):

* A step with **several event parameters** (``async def join(self, a: A, b: B)``) runs once
  one event of each parameter's type has arrived, with the oldest of each. Arrivals wait in a
  collect buffer named ``"<step>#join"`` (so snapshots and checkpoint deltas keep them like the
  buffers of ``ctx.collect_events``).
* A step with one **``list[E]`` parameter** (a *collect step*) runs with the members of a
  fan-out. A step whose return annotation declares ``list[...]`` and that returns a list opens a
  *stream*: its events, and everything the steps make from them, carry the stream's id (a
  *scope*, innermost stream last). The stream counts its open work items (an event queued for
  a step, or an invocation running on one) and *closes* when none is left. A collect step
  *bound* to the stream's producer (see ``bind``) buffers the members that reach it, in
  arrival order, in ``"<step>#<stream id>"``, and is released once per stream: with all of
  them when the stream closes (``Collect(All())``, the default, also for an empty stream), or
  with the first ``n`` at the ``n``-th arrival (``Collect(Take(n))``; later members are
  dropped for it, and a stream that closes with fewer releases those). A release queues one
  ``Gathered`` event in the scope that opened the stream, so nested fan-outs join level by
  level; the producer's own work item in that scope stays open, one per bound collect step,
  until each release has run.

Events sent with ``ctx.send_event`` belong to no stream: they do not hold a stream open, and a
collect step ignores them (a send aimed at one with ``step=`` is an error).

Also here: the **lines of events** of ``@catch_error``. An event made by a step inherits the
recoveries counted along its line (``RunState.lineage``, by queue seq); a handler recovers a
failure only while its count on that line is below its ``max_recoveries``.

Scopes and lines are kept by queue seq (an invocation keeps the seq of its event), so a run
without joins or handlers pays nothing for them. Plain functions of a ``RunState``, with no
clock and no I/O, called by ``routing`` and the reducer. The data they work on (``Joins``,
``Stream`` and ``bind``, which fixes the bindings from the signatures) is part of the run's
state and lives with it in ``state.py``, so the state never has to import these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import WorkflowRuntimeError
from ..events import Event, Gathered
from .state import CollectBuffer, Joins, Stream

# -- queueing ------------------------------------------------------------------------------------


def deliver(
    state: Any,
    event: Event,
    steps: Sequence[str],
    scope: tuple[int, ...],
    lineage: dict[str, int] | None,
    targeted: bool,
) -> None:
    """Queue ``event`` for ``steps`` with its scope and line; joins take it into a buffer."""
    joins: Joins | None = state.joins
    for name in steps:
        if joins is not None and name in joins.names:
            # what it took counts as its input in the run's flow (not the Gathered it runs on)
            counts = state.consumed_counts[name]
            counts[event.__class__] = counts.get(event.__class__, 0) + 1
            if name in joins.multi:
                _arrive(state, joins, name, event, scope, lineage)
            else:
                _member(state, joins, name, event, scope, targeted)
        else:
            enqueue(state, name, event, scope, lineage)


def enqueue(
    state: Any,
    name: str,
    event: Event,
    scope: tuple[int, ...],
    lineage: dict[str, int] | None,
    count: bool = True,
) -> None:
    """Queue ``event`` for step ``name``: a work item of the innermost stream of ``scope``
    (counted unless ``count`` is False: a release, counted when its stream opened)."""
    state.seq += 1
    seq = state.seq
    state.queues[name].append((seq, event))
    state.fed.add(name)
    state.queued += 1
    if state.changes is not None:
        state.changes.queued[seq] = (name, event)
    if scope:
        state.joins.scopes[seq] = scope
        stream = state.joins.streams.get(scope[-1])
        if count and stream is not None:
            stream.open += 1
    if lineage:
        state.lineage[seq] = lineage


def _arrive(
    state: Any,
    joins: Joins,
    name: str,
    event: Event,
    scope: tuple[int, ...],
    lineage: dict[str, int] | None,
) -> None:
    """An event for a step with several event parameters: buffered until one of each type has
    arrived, then the step is queued with them (in the scope and line of the last arrival)."""
    got = buffer_add(state, f"{name}#join", event, joins.multi[name])
    if got is not None:
        events = dict(zip(joins.names[name], got, strict=True))
        enqueue(state, name, Gathered(events=events), scope, lineage)


def _member(
    state: Any, joins: Joins, name: str, event: Event, scope: tuple[int, ...], targeted: bool
) -> None:
    """An event for a collect step: a member of the innermost stream bound to the step."""
    stream = None
    for sid in reversed(scope):
        found = joins.streams.get(sid)
        if found is not None and name in joins.bindings.get(found.source, ()):
            stream = found
            break
    if stream is None:
        if targeted:
            raise WorkflowRuntimeError(
                f"send_event(..., step={name!r}): step {name!r} takes a list[...] of the members "
                f"of a fan-out, and a sent event is a member of none; return a list from a step "
                f"declared `-> list[...]` instead"
            )
        return  # a sent event (or one from outside any bound stream): not for a collect step
    if name in stream.released:
        return  # Take(n) has had its n members from this stream
    key = f"{name}#{stream.id}"
    buffer_add(state, key, event, None)
    n = joins.take[name]
    if n is not None and state.collected[key].total >= n:
        _release(state, joins, stream, name)


def buffer_add(
    state: Any, key: str, event: Event, expected: list[type[Event]] | None
) -> list[Event] | None:
    """Put ``event`` into the collect buffer ``key`` (recorded for checkpoints); with
    ``expected``, take one of each type out if all are there and return them in order."""
    state.seq += 1
    seq = state.seq
    store = state.collected.get(key)
    if store is None:
        store = state.collected[key] = CollectBuffer()
    store.add(seq, event)
    changes = state.changes
    if changes is not None:
        changes.collected[(key, seq)] = event
    if expected is None:
        return None
    taken: list[int] = []
    got = store.take(expected, taken)
    if changes is not None:
        for taken_seq in taken:
            if changes.collected.pop((key, taken_seq), None) is None:
                changes.uncollected.add((key, taken_seq))
    return got


def _release(state: Any, joins: Joins, stream: Stream, name: str) -> None:
    """Queue collect step ``name`` with its members of ``stream`` (the first n for Take(n)),
    in the scope that opened the stream, and empty its buffer."""
    stream.released.add(name)
    key = f"{name}#{stream.id}"
    store = state.collected.pop(key, None)
    items = store.items() if store is not None else []
    changes = state.changes
    if changes is not None:
        for seq, _ in items:
            if changes.collected.pop((key, seq), None) is None:
                changes.uncollected.add((key, seq))
    members = [event for _, event in items]
    n = joins.take[name]
    if n is not None:
        members = members[:n]
    events = {joins.names[name][0]: members}
    enqueue(state, name, Gathered(events=events), stream.scope, None, count=False)


# -- what an invocation's end does to its stream -------------------------------------------------


def scope_of(state: Any, seq: int) -> tuple[int, ...]:
    joins = state.joins
    return joins.scopes.get(seq, ()) if joins is not None else ()


def fan_out(state: Any, step: str, seq: int) -> tuple[int, ...]:
    """Invocation ``seq`` of ``step`` returned a list: open a stream for it if some collect
    step is bound to ``step``; return the scope its events get (``()``: no stream)."""
    joins: Joins = state.joins
    bound = joins.bindings.get(step, ())
    if not bound:
        return ()
    scope = joins.scopes.get(seq, ())
    joins.next_stream += 1
    stream = joins.streams[joins.next_stream] = Stream(joins.next_stream, step, scope)
    if scope and scope[-1] in joins.streams:
        # its work item in the enclosing stream stays open until each release has run
        joins.streams[scope[-1]].open += len(bound)
    return (*scope, stream.id)


def finished(state: Any, seq: int, opened: tuple[int, ...] = ()) -> None:
    """Invocation ``seq`` is done with (it returned, or a handler took its failure): its
    work item leaves its stream. ``opened``: the scope of a stream it opened, which closes now
    if nothing reached a step that does work."""
    joins: Joins = state.joins
    if opened:
        stream = joins.streams.get(opened[-1])
        if stream is not None and stream.open <= 0:
            _close(state, joins, stream)
    scope = joins.scopes.pop(seq, ())
    if scope:
        stream = joins.streams.get(scope[-1])
        if stream is not None:
            stream.open -= 1
            if stream.open <= 0:
                _close(state, joins, stream)


def _close(state: Any, joins: Joins, stream: Stream) -> None:
    """Nothing of ``stream`` is left: release each bound collect step not released yet."""
    del joins.streams[stream.id]
    for name in joins.bindings.get(stream.source, ()):
        if name not in stream.released:
            _release(state, joins, stream, name)


# -- snapshots -----------------------------------------------------------------------------------


def joins_out(state: Any) -> dict[str, Any] | None:
    """The scopes, streams and lines of ``state`` as plain JSON data (None: nothing to keep)."""
    joins: Joins | None = state.joins
    if joins is None and not state.lineage:
        return None
    out: dict[str, Any] = {}
    if joins is not None:
        out["streams"] = [
            {
                "id": s.id,
                "source": s.source,
                "scope": list(s.scope),
                "open": s.open,
                "released": sorted(s.released),
            }
            for s in joins.streams.values()
        ]
        out["scopes"] = {str(seq): list(scope) for seq, scope in sorted(joins.scopes.items())}
        out["next_stream"] = joins.next_stream
    if state.lineage:
        out["lines"] = {str(seq): dict(line) for seq, line in sorted(state.lineage.items())}
    return out


def joins_in(state: Any, data: Any) -> None:
    """Read back what ``joins_out`` wrote; raise ``ValueError`` naming what is wrong."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError("'joins' is not a mapping")
    joins: Joins | None = state.joins
    streams = data.get("streams") or []
    scopes = data.get("scopes") or {}
    if (streams or scopes) and joins is None:
        raise ValueError("'joins' holds fan-out streams, but this workflow has no join steps")
    if joins is not None:
        for i, item in enumerate(_listed(streams, "joins.streams")):
            where = f"joins.streams[{i}]"
            source = item.get("source") if isinstance(item, dict) else None
            if source not in joins.bindings:
                raise ValueError(f"{where} names {source!r}, which is no fan-out step here")
            stream = Stream(_whole(item.get("id"), where), source, _ids(item.get("scope"), where))
            stream.open = _whole(item.get("open"), where)
            released = item.get("released") or []
            if not isinstance(released, list) or any(
                r not in joins.bindings[source] for r in released
            ):
                raise ValueError(f"{where}.released names steps not bound to {source!r}")
            stream.released = set(released)
            joins.streams[stream.id] = stream
        if not isinstance(scopes, dict):
            raise ValueError("joins.scopes is not a mapping")
        for key, scope in scopes.items():
            joins.scopes[_whole(key, "joins.scopes")] = _ids(scope, f"joins.scopes.{key}")
        joins.next_stream = max(
            [_whole(data.get("next_stream", 0), "joins.next_stream"), *joins.streams]
        )
    lines = data.get("lines") or {}
    if not isinstance(lines, dict):
        raise ValueError("joins.lines is not a mapping")
    for key, line in lines.items():
        where = f"joins.lines.{key}"
        if not isinstance(line, dict) or any(h not in state.max_recoveries for h in line):
            raise ValueError(f"{where} must map @catch_error handlers of this workflow to counts")
        state.lineage[_whole(key, "joins.lines")] = {h: _whole(n, where) for h, n in line.items()}


def _listed(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where} is not a list")
    return value


def _whole(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is not int or value < 0:
        raise ValueError(f"{where}: expected a whole number, got {value!r}")
    return value


def _ids(value: Any, where: str) -> tuple[int, ...]:
    return tuple(_whole(v, where) for v in _listed(value or [], where))
