"""Deltas: what a checkpoint after one step writes, and how the snapshots are rebuilt from them.

A checkpoint store keeps a base (the whole ``ctx.to_dict()``) now and then and, after every
step, a delta: the store keys that step set or deleted, the queue entries and in-flight
invocations it added or removed, the collect buffers it changed, and the small parts of the
run (status, counters, waiters, stats) when they changed. ``apply_delta(previous, delta)`` is
the snapshot after the step, so loading any snapshot folds a bounded number of deltas onto the
nearest base. The changes come from the run's own change tracking (``RunState.changes`` and the
store's changed keys), never from diffing whole states: a delta costs what the step changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..events import Event
from ..runtime.joins import joins_out
from ..runtime.replay import input_key
from ..runtime.state import Changes, Invocation
from ..serialization import encode_event
from ..snapshot import invocation_out, waiter_out

if TYPE_CHECKING:
    from ..context import Context


# -- deltas: what a checkpoint after one step writes -----------------------------------------------

# The parts of a snapshot that stay small whatever the run does; a delta carries each one whole
# when it changed (``stats`` per step: only the steps whose figures changed).
SMALL_PARTS = (
    "run_id",
    "status",
    "steps_done",
    "waiters",
    "questions",
    "stop",
    "counters",
    "recoveries",
    "joins",
    "stats",
)


def delta_of(
    ctx: Context[Any],
    changes: Changes,
    store_changes: Mapping[str, Any],
    since: dict[str, Any] | None = None,
    encoded: dict[int, tuple[Event, Any]] | None = None,
) -> dict[str, Any]:
    """The change since the previous checkpoint, so that ``apply_delta(previous, delta)`` is
    the snapshot now. ``store_changes`` maps changed keys to their encoded value, or to
    ``DELETED`` for a key that is gone. Its size follows what changed, not the run's size.

    A delta holds only the entries that changed: a step that set one key and sent one event
    writes just that, plus the counters. ``since`` (kept by the caller from one delta to the
    next, first filled by ``delta_baseline``) leaves out the small parts that did not change since
    the previous delta (``stats``: the steps whose figures did not change), and the parts that
    did not change at all; without it every part is there, empty when nothing changed.
    ``encoded`` (kept by the caller too) is filled with the queued events' encodings, by
    ``id``, so ``calls_done`` does not encode the same events again."""
    state = ctx._state
    delta: dict[str, Any] = {}
    if store_changes:
        # (``in`` compares by identity first; encoded values, plain JSON data, never equal it)
        if DELETED in store_changes.values():
            store_set = {k: v for k, v in store_changes.items() if v is not DELETED}
            delta["store_deleted"] = sorted(k for k, v in store_changes.items() if v is DELETED)
        else:
            store_set = dict(store_changes)
        if store_set:
            delta["store_set"] = store_set
    # An empty queue or in-flight table is said in one word: that also covers a finished run,
    # whose tables ``Driver._done`` empties wholesale rather than through tracked transitions.
    if not state.queued:
        delta["queue_empty"] = True
    else:
        if changes.queued:
            delta["queue_add"] = [
                {"seq": seq, "step": step, "event": _encode(ev, encoded)}
                for seq, (step, ev) in sorted(changes.queued.items())
            ]
        if changes.dequeued:
            delta["queue_remove"] = sorted(changes.dequeued)
    in_flight = state.in_flight
    if not in_flight:
        delta["in_flight_empty"] = True
    elif changes.invocations:
        ev_out = encode_event if encoded is None else lambda ev: _encode(ev, encoded)
        put = []
        removed = []
        for ident in sorted(changes.invocations):
            inv = in_flight.get(ident)
            if inv is None:
                removed.append(ident)
            else:
                put.append(invocation_out(inv, ev_out))
        if put:
            delta["in_flight_put"] = put
        if removed:
            delta["in_flight_remove"] = removed
    if changes.collected:
        delta["collected_add"] = [
            {"step": step, "seq": seq, "event": encode_event(ev)}
            for (step, seq), ev in sorted(changes.collected.items(), key=lambda kv: kv[0][1])
        ]
    if changes.uncollected:
        delta["collected_remove"] = [[step, seq] for step, seq in sorted(changes.uncollected)]
    if since is None:
        for key in _CHANGE_PARTS:
            delta.setdefault(key, {} if key == "store_set" else [])
        delta.update(small_parts(ctx))
        return delta
    _small_changes(state, ctx, since, delta)
    return delta


def _small_changes(
    state: Any, ctx: Context[Any], since: dict[str, Any], delta: dict[str, Any]
) -> None:
    """Put into ``delta`` the small parts that changed since ``since`` (updated to match).
    This runs after every step: the common case (status, counters and one step's figures
    changed) is a few comparisons of plain values."""
    last = since.get
    if last("run_id") != state.run_id:
        delta["run_id"] = since["run_id"] = state.run_id
    if last("status") != state.status:
        delta["status"] = since["status"] = state.status
    if last("steps_done") != state.steps_done:
        delta["steps_done"] = since["steps_done"] = state.steps_done
    counters = {"seq": state.seq, "next_id": state.next_id}  # they change at every step
    if last("counters") != counters:
        delta["counters"] = since["counters"] = counters
    recoveries = state.recoveries
    if (recoveries or last("recoveries")) and last("recoveries", {}) != recoveries:
        delta["recoveries"] = since["recoveries"] = dict(recoveries)
    if state.joins is not None or state.lineage or last("joins") is not None:
        joins = joins_out(state)
        if last("joins") != joins:
            delta["joins"] = since["joins"] = joins
    if state.waiters or state.questions or last("waiters") or last("questions"):
        parts = small_parts(ctx)
        for key in ("waiters", "questions"):
            if last(key) != parts[key]:
                delta[key] = since[key] = parts[key]
    if state.stop is not None or last("stop") is not None:
        stop = encode_event(state.stop) if state.stop is not None else None
        if last("stop") != stop:
            delta["stop"] = since["stop"] = stop
    runs, seconds = state.step_runs, state.step_seconds
    last_runs, last_seconds = last("_step_runs"), last("_step_seconds")
    if (
        last_runs is None
        or last_seconds is None
        or len(runs) != len(last_runs)
        or len(seconds) != len(last_seconds)
    ):
        if runs == last_runs and seconds == last_seconds:
            return
        last_runs, last_seconds = last_runs or {}, last_seconds or {}
        delta["stats"] = {
            "step_runs": {k: n for k, n in runs.items() if last_runs.get(k) != n},
            "step_seconds": {
                k: round(v, 6) for k, v in seconds.items() if last_seconds.get(k) != v
            },
        }
        since["_step_runs"] = dict(runs)
        since["_step_seconds"] = dict(seconds)
        return
    # the same steps as last time: only those whose figures changed (the step that just ran,
    # as a rule), and ``since`` keeps up by changing just those
    new_runs = {}
    for k, n in runs.items():
        if last_runs.get(k) != n:
            new_runs[k] = last_runs[k] = n
    new_seconds = {}
    for k, v in seconds.items():
        if last_seconds.get(k) != v:
            last_seconds[k] = v
            new_seconds[k] = round(v, 6)
    if not (new_runs or new_seconds):
        return
    delta["stats"] = {"step_runs": new_runs, "step_seconds": new_seconds}
    if len(last_runs) != len(runs) or len(last_seconds) != len(seconds):
        since["_step_runs"] = dict(runs)  # a step that was not there before: start afresh
        since["_step_seconds"] = dict(seconds)


def delta_baseline(ctx: Context[Any]) -> dict[str, Any]:
    """What ``delta_of(..., since=...)`` compares with, right after a whole snapshot of ``ctx``
    was written: the next delta then carries only the small parts that changed after it."""
    state = ctx._state
    since = small_parts(ctx)
    del since["stats"]
    since["_step_runs"] = dict(state.step_runs)
    since["_step_seconds"] = dict(state.step_seconds)
    return since


_UNSET: Any = object()
_CHANGE_PARTS = (
    "store_set",
    "store_deleted",
    "queue_add",
    "queue_remove",
    "in_flight_put",
    "in_flight_remove",
    "collected_add",
    "collected_remove",
)
DELETED: Any = object()


def apply_delta(snapshot: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot after ``delta``; a new dict (``snapshot`` itself is left as it was)."""
    out = dict(snapshot)
    out.pop("edits", None)  # a fork's store edits belong to its first snapshot alone
    out.pop("done", None)  # the calls of one record, not a part of the run's state
    out.pop("answers", None)
    store_set = delta.get("store_set")
    store_deleted = delta.get("store_deleted")
    if store_set or store_deleted:
        store = dict(snapshot["store"])
        store.update(store_set or {})
        for key in store_deleted or ():
            store.pop(key, None)
        out["store"] = store
    if delta.get("queue_empty"):
        out["queue"] = []
    elif "queue_add" in delta or "queue_remove" in delta:
        removed = set(delta.get("queue_remove") or ())
        queue = [item for item in snapshot["queue"] if item["seq"] not in removed]
        queue.extend(delta.get("queue_add") or ())
        queue.sort(key=lambda item: item["seq"])
        out["queue"] = queue
    if delta.get("in_flight_empty"):
        out["in_flight"] = []
    elif "in_flight_put" in delta or "in_flight_remove" in delta:
        flights = {item["id"]: item for item in snapshot["in_flight"]}
        for ident in delta.get("in_flight_remove") or ():
            flights.pop(ident, None)
        for item in delta.get("in_flight_put") or ():
            flights[item["id"]] = item
        out["in_flight"] = sorted(flights.values(), key=lambda item: item["seq"])
    if "collected_add" in delta or "collected_remove" in delta:
        collected = {step: list(items) for step, items in (snapshot.get("collected") or {}).items()}
        gone = {(step, seq) for step, seq in delta.get("collected_remove") or ()}
        if gone:
            collected = {
                step: [item for item in items if (step, item["seq"]) not in gone]
                for step, items in collected.items()
            }
        for item in delta.get("collected_add") or ():
            collected.setdefault(item["step"], []).append(
                {"seq": item["seq"], "event": item["event"]}
            )
        out["collected"] = {step: items for step, items in collected.items() if items}
    for key in SMALL_PARTS:
        if key not in delta:
            continue
        if key == "stats":
            stats = {part: dict(figures) for part, figures in (out.get("stats") or {}).items()}
            for part, figures in delta["stats"].items():
                stats.setdefault(part, {}).update(figures)
            out["stats"] = stats
        else:
            out[key] = delta[key]
    return out


def _encode(event: Event, encoded: dict[int, tuple[Event, Any]] | None) -> Any:
    data = encode_event(event)
    if encoded is not None:
        encoded[id(event)] = (event, data)  # the event is kept: its id stays its own
    return data


def _known(event: Event, encoded: dict[int, tuple[Event, Any]] | None, used: bool) -> Any:
    """``encode_event(event)``, from ``encoded`` if ``delta_of`` or an earlier call of the
    same list encoded it already (then forgotten once ``used`` as a call's input: it is not
    needed again); an emitted event is kept there for the call that takes it."""
    if encoded:
        hit = encoded.pop(id(event), None) if used else encoded.get(id(event))
        if hit is not None and hit[0] is event:
            return hit[1]
    if encoded is None or used:
        return encode_event(event)
    return _encode(event, encoded)  # emitted: the input of a call the same list may hold


def calls_done(
    ctx: Context[Any],
    changes: Changes,
    codes: Mapping[str, str],
    encoded: dict[int, tuple[Event, Any]] | None = None,
    store: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a rerun replays, as a record keeps it (see ``snapshot``): ``done``, what each
    invocation that completed did (its step's code hash, a digest of its input event
    (``runtime.replay.input_key``), the events it emitted, with the step each was sent to if
    one was named, the events it streamed, the store keys it set or deleted, and whether it
    was itself replayed, or why it ran although a rerun could have replayed it); and
    ``answers``, the answers sent from outside to the run's questions (each with the digest
    of the question it answered).

    ``store`` is what the same record keeps of the store (a delta's ``store_set``, a base's
    ``store``): a value a call set that is there, the very same, is named in the call's
    ``same`` list instead of written twice (``calls_of`` puts it back)."""
    out: dict[str, Any] = {}
    if changes.completed:
        out["done"] = _done(ctx, changes.completed, codes, encoded, store or {})
    if changes.answers:
        out["answers"] = [
            {"question": input_key(None, question), "answer": encode_event(answer)}
            for question, answer in changes.answers
        ]
    return out


def _add_writes(entry: dict[str, Any], writes: dict[str, Any], store: Mapping[str, Any]) -> None:
    """A call's store writes in its record: ``set`` values, ``same`` for a value the record's
    store holds already (the very same object), ``deleted`` keys."""
    values = {}
    same = []
    deleted = []
    for key, value in writes.items():
        if value is None:
            deleted.append(key)
        elif store.get(key) is value:
            same.append(key)
        else:
            values[key] = value
    if values:
        entry["set"] = values
    if same:
        entry["same"] = same
    if deleted:
        entry["deleted"] = sorted(deleted)


def _done(
    ctx: Context[Any],
    completed: list[Invocation],
    codes: Mapping[str, str],
    encoded: dict[int, tuple[Event, Any]] | None,
    store: Mapping[str, Any],
) -> list[dict[str, Any]]:
    specs = ctx._specs
    done = []
    for inv in completed:
        step = inv.step
        entry: dict[str, Any] = {"id": inv.id, "step": step, "code": codes.get(step, "")}
        try:
            entry["input"] = inv.input_key or input_key(
                specs[step].cache_key, inv.event, _known(inv.event, encoded, True)
            )
        except Exception as exc:
            entry["input"] = None
            entry["unsafe"] = f"its input could not be keyed ({type(exc).__name__}: {exc})"
        targets = inv.targets
        if targets:
            emitted = []
            for event in inv.produced:
                item = {"event": _known(event, encoded, False)}
                if id(event) in targets:
                    item["to"] = targets[id(event)]
                emitted.append(item)
        else:
            emitted = [{"event": _known(event, encoded, False)} for event in inv.produced]
        entry["emitted"] = emitted
        if inv.streamed:
            entry["stream"] = [encode_event(event) for event in inv.streamed]
        if inv.writes:
            _add_writes(entry, inv.writes, store)
        if inv.reads:
            digest = ctx.store._digest
            entry["reads"] = {key: digest(key, value) for key, value in inv.reads.items()}
        if inv.collects:
            entry["unsafe"] = "it calls ctx.collect_events, whose buffer a replay cannot rebuild"
        if inv.journal:
            entry["journal"] = dict(inv.journal)  # already tagged JSON
        if inv.replayed:
            entry["replayed"] = True
        elif inv.ran_because:
            entry["ran_because"] = inv.ran_because
        done.append(entry)
    return done


def calls_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The calls a record's ``data`` (a delta or a base, parsed) lists in ``done``, each with
    the store values it names as ``same`` put back into its ``set``. Raises ``ValueError``
    for data that is not what ``calls_done`` writes."""
    done = data.get("done") or []
    store = data.get("store_set") or data.get("store") or {}
    if not isinstance(done, list) or not isinstance(store, Mapping):
        raise ValueError("its 'done' is not a list of calls")
    calls = []
    for entry in done:
        if not isinstance(entry, Mapping):
            raise ValueError("its 'done' lists a call that is not a mapping")
        call = dict(entry)
        same = call.pop("same", None)
        if same:
            values = call.get("set") or {}
            if not isinstance(same, list) or not isinstance(values, Mapping):
                raise ValueError("a call's 'same' or 'set' is malformed")
            missing = [k for k in same if k not in store]
            if missing:
                raise ValueError(f"a call names store keys the record lacks: {missing[:3]}")
            call["set"] = {**values, **{k: store[k] for k in same}}
        calls.append(call)
    return calls


def small_parts(ctx: Context[Any]) -> dict[str, Any]:
    """The parts of ``ctx``'s snapshot that a delta carries whole (see ``delta_of``)."""
    state = ctx._state
    waiters = state.waiters
    questions = state.questions
    if waiters:
        asked = {id(w.question) for w in waiters if w.question is not None}
        questions = [q for q in questions if id(q) not in asked]
    return {
        "run_id": state.run_id,
        "status": state.status,
        "steps_done": state.steps_done,
        "waiters": [waiter_out(w, encode_event) for w in waiters] if waiters else [],
        "questions": [encode_event(q) for q in questions] if questions else [],
        "stop": encode_event(state.stop) if state.stop is not None else None,
        "counters": {"seq": state.seq, "next_id": state.next_id},
        "recoveries": dict(state.recoveries),
        "joins": joins_out(state),
        "stats": {
            "step_runs": dict(state.step_runs),
            "step_seconds": {k: round(v, 6) for k, v in state.step_seconds.items()},
        },
    }
