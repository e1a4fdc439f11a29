"""The context snapshot format: a whole run as plain, readable JSON data.

``ctx.to_dict()`` writes the run's explicit state (``runtime.RunState``) and its store;
``Context.from_dict`` reads it back, checking everything a person could get wrong before any of
it is used. A snapshot looks like this (values use the tags of ``serialization``)::

    {
      "format": "notebook_workflows.context", "version": 1, "serializer": "json",
      "workflow": "__main__:Pipeline", "fingerprint": "5be1c0a7d3e9f412",
      "graph": {"load": {"accepts": ["__main__:Doc"], "produces": ["__main__:Parsed"]}, ...},
      "run_id": "pipeline-1a2b3c4d", "status": "running", "steps_done": 7,
      "start": {"type": "notebook_workflows.events:StartEvent", "fields": {"ids": "9f2c..."}},
      "store": {"converted": {"$set": [1, 2]}, "started": {"$datetime": "2026-..."}},
      "queue": [{"seq": 12, "step": "load", "event": {"type": "__main__:Doc", "data": {"id": 3}}}],
      "in_flight": [{"id": 9, "step": "parse", "seq": 11, "attempt": 1, "event": {...}}],
      "collected": {"join": [{"seq": 8, "event": {...}}]},
      "waiters": [], "questions": [], "stop": null,
      "counters": {"seq": 12, "next_id": 9}, "recoveries": {},
      "stats": {"step_runs": {...}, ...}
    }

``queue`` lists every event waiting for a step, oldest first; ``in_flight`` every invocation
that had started and not completed (a restore runs them again: at-least-once); ``collected`` the
buffers of ``collect_events``; ``waiters`` the ``wait_for_event`` calls with the answer if one had
arrived; ``questions`` the ``InputRequiredEvent``s still unanswered; ``start`` a digest of each
field the run was started with (so a continuing run given other input is refused, naming the
fields); ``recoveries`` how many failures each ``@catch_error`` handler took; ``joins`` (null
when the workflow has no join steps and no recovery was counted) the fan-out streams still
open, which streams each queued or running event belongs to, and the recoveries counted along
each event's line (``runtime.joins``). An in-flight
invocation keeps its ``ctx.once`` results in ``journal``. The ``graph`` is kept so a snapshot
of a changed workflow can be refused with the differences listed.

A checkpoint store's records may also carry ``done``: the step calls that completed since the
record before, each as ``{"id", "step", "code", "input", "emitted", ...}`` (its step's code
hash, a digest of its input event, the events it emitted with the step each was sent to
(``"to"``), the events it streamed (``"stream"``), the store keys it set (``"set"``, encoded) or
deleted (``"deleted"``), and ``"replayed": true`` or ``"ran_because"`` in a rerun, or
``"unsafe"`` with the reason it can never be replayed). That is what ``Workflow.rerun`` replays
(``checkpoint.rerun``); it is not part of the run's state, ``Context.from_dict`` ignores it,
and records written before it existed simply have none (a rerun of them replays nothing).

The first snapshot of a fork whose store was edited (``workflow.fork(run_id, at=n,
store_edits={...})``) records the edits, in the order they were made::

    "edits": [{"key": "cfg.retries", "value": 5, "was": 3},
              {"key": "note", "value": "try again"}]

``key`` is the key path as given (dotted paths reach into nested values), ``value`` the value
the store then held there and ``was`` the value before (left out when there was none), both
tagged JSON as in ``store``. The ``store`` of that snapshot already holds the edited values:
``edits`` is the record of what a person changed, read by displays (``Snapshot.edits``, the
run browser, ``python -m notebook_workflows runs show``), never by a restore. It belongs to
that one snapshot: the snapshots after it do not carry it. ``checkpoint.edits`` makes and
reads it.

Pickle is available only when asked for on both sides: ``to_dict(serializer="pickle")`` writes
the store and the events as base64 pickles, and only ``from_dict(..., allow_pickle=True)`` reads
them, because unpickling runs code chosen by whoever wrote the data.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import pickle
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._agent_tools import TOOL_STEPS, tool_functions
from .codec import RawJSON, parsed_values
from .errors import ContextSerdeError
from .events import Event
from .runtime import CollectBuffer, Invocation, Waiter
from .runtime.joins import joins_in, joins_out
from .serialization import (
    decode,
    decode_event,
    encode,
    encode_event,
    fields_digest,
    find_class,
    qualified_name,
)

if TYPE_CHECKING:
    from .context import Context
    from .step import StepSpec

FORMAT = "notebook_workflows.context"
VERSION = 1
SERIALIZERS = ("json", "pickle")
_REQUIRED = ("workflow", "graph", "run_id", "status", "store", "queue", "in_flight")
_STATUSES = ("new", "running", "waiting", "done", "failed", "cancelled")


# -- the graph ------------------------------------------------------------------------------------


def graph_of(specs: Mapping[str, StepSpec], workflow: Any = None) -> dict[str, dict[str, Any]]:
    """Each step with the event types it accepts and produces, by qualified name, and a hash
    of its code (``code``), so a resumed run can name the steps whose body changed."""
    codes = step_codes(specs, workflow)
    return {
        name: {
            "accepts": sorted(qualified_name(t) for t in spec.accepts),
            "produces": sorted(qualified_name(t) for t in spec.produces),
            "code": codes[name],
        }
        for name, spec in specs.items()
    }


def step_codes(specs: Mapping[str, StepSpec], workflow: Any = None) -> dict[str, str]:
    """Each step's code hash; a step that calls an agent's tools (``_agent_tools``) counts the
    tools' code too, so editing a tool is a change of that step for ``rerun`` and ``resume``."""
    codes = {name: code_hash(spec.fn) for name, spec in specs.items()}
    if workflow is None:
        return codes
    tools = [code_hash(fn) for fn in tool_functions(workflow)]
    if tools:
        for name in TOOL_STEPS:
            if name in codes:
                joined = "/".join((codes[name], *tools)).encode()
                codes[name] = hashlib.sha256(joined).hexdigest()[:12]
    return codes


def fingerprint(graph: Mapping[str, Any]) -> str:
    """A short hash of the graph's shape; step bodies (``code``) do not count."""
    shape = {name: {k: v for k, v in entry.items() if k != "code"} for name, entry in graph.items()}
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_hash(fn: Any) -> str:
    """A hash of a function's compiled body: its bytecode, constants and names, not its line
    numbers, so moving a step around a notebook cell does not count as a change. It differs
    between Python versions, which is harmless: a changed hash only names a step in a warning.
    """
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    digest = hashlib.sha256()
    _hash_code(digest, code)
    return digest.hexdigest()[:12]


def _hash_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(digest, const)  # nested functions, comprehensions, lambdas
        else:
            digest.update(_stable_repr(const).encode())


def _stable_repr(value: Any) -> str:
    # A frozenset's order follows string hashing, which changes from process to process.
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_stable_repr(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_stable_repr(v) for v in value) + ")"
    return repr(value)


def code_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The steps present in both graphs whose code hash differs (sorted). Graphs written before
    code hashes existed have none, and then nothing is reported."""
    changed = []
    for name in sorted(set(old) & set(new)):
        before = old[name].get("code") if isinstance(old[name], Mapping) else None
        after = new[name].get("code")
        if before and after and before != after:
            changed.append(name)
    return changed


def graph_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What a snapshot's graph has that the workflow's graph no longer has (what would break a
    restore), then what is new (harmless): one line each."""
    gone: list[str] = []
    added: list[str] = []
    for step in sorted(set(old) - set(new)):
        gone.append(f"step {step!r} is gone")
    for step in sorted(set(new) - set(old)):
        added.append(f"step {step!r} is new")
    for step in sorted(set(old) & set(new)):
        for key, verb in (("accepts", "accept"), ("produces", "produce")):
            before, after = set(old[step].get(key, ())), set(new[step].get(key, ()))
            for name in sorted(before - after):
                gone.append(f"step {step!r} no longer {verb}s {name}")
            for name in sorted(after - before):
                added.append(f"step {step!r} now {verb}s {name}")
    return gone + added


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [
        line for line in graph_changes(old, new) if " is new" not in line and " now " not in line
    ]


# -- writing --------------------------------------------------------------------------------------


def snapshot_of(ctx: Context[Any], serializer: str = "json", raw: bool = False) -> dict[str, Any]:
    """The whole run held by ``ctx`` as JSON-ready data (see the module docstring). With
    ``raw``, a store value still held as the text it was loaded from stays a ``RawJSON``
    (what a checkpoint's record writer takes, see ``checkpoint.texts``)."""
    if serializer not in SERIALIZERS:
        raise ValueError(f"serializer must be one of {', '.join(SERIALIZERS)}, not {serializer!r}")
    state = ctx._state
    graph = graph_of(ctx._specs, ctx.workflow)
    if serializer == "pickle":
        ev_out: Callable[[Event], Any] = _pickle_out
        parsed = parsed_values(ctx.store._encoded())
        store = {k: _pickle_out(decode(v, path=k)) for k, v in parsed.items()}
    else:
        ev_out = encode_event
        store = ctx.store._encoded(raw=True) if raw else parsed_values(ctx.store._encoded())
    waiter_questions = {id(w.question) for w in state.waiters if w.question is not None}
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "serializer": serializer,
        "workflow": qualified_name(type(ctx.workflow)),
        "fingerprint": fingerprint(graph),
        "graph": graph,
        "run_id": state.run_id,
        "status": state.status,
        "start": start_record(state),
        "steps_done": state.steps_done,
        "state_type": qualified_name(ctx.store._state_type) if ctx.store._state_type else None,
        "store": store,
        "queue": [
            {"seq": seq, "step": step, "event": ev_out(ev)}
            for seq, step, ev in state.queued_events()
        ],
        "in_flight": [invocation_out(inv, ev_out) for inv in _in_flight(state)],
        "collected": {
            step: [{"seq": seq, "event": ev_out(ev)} for seq, ev in buffer.items()]
            for step, buffer in state.collected.items()
            if buffer.total
        },
        "waiters": [waiter_out(w, ev_out) for w in state.waiters],
        "questions": [ev_out(q) for q in state.questions if id(q) not in waiter_questions],
        "stop": ev_out(state.stop) if state.stop is not None else None,
        "counters": {"seq": state.seq, "next_id": state.next_id},
        "recoveries": dict(state.recoveries),
        "joins": joins_out(state),
        "stats": {
            "step_runs": dict(state.step_runs),
            "step_seconds": {k: round(v, 6) for k, v in state.step_seconds.items()},
        },
    }
    return data


def _in_flight(state: Any) -> list[Invocation]:
    return sorted(state.in_flight.values(), key=lambda inv: inv.seq)


def start_record(state: Any) -> dict[str, Any] | None:
    """The run's start event as a snapshot keeps it: a digest of each field (computed once)."""
    if state.start_digest is None and state.start_event is not None:
        state.start_digest = fields_digest(state.start_event)
    return state.start_digest


def invocation_out(inv: Invocation, ev_out: Callable[[Event], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inv.id,
        "step": inv.step,
        "seq": inv.seq,
        "attempt": inv.attempt,
        "event": ev_out(inv.event),
    }
    if inv.waits:
        out["answers"] = {str(i): ev_out(ev) for i, ev in sorted(inv.waits.items())}
    if inv.journal:
        out["journal"] = dict(inv.journal)  # already tagged JSON
    if inv.error is not None:
        out["error"] = inv.error
    return out


def waiter_out(w: Waiter, ev_out: Callable[[Event], Any]) -> dict[str, Any]:
    return {
        "invocation": w.invocation,
        "index": w.index,
        "types": [qualified_name(t) for t in w.types],
        "requirements": encode(w.requirements, path="requirements"),
        "question": ev_out(w.question) if w.question is not None else None,
        "answer": ev_out(w.resolved) if w.resolved is not None else None,
    }


def _pickle_out(value: Any) -> dict[str, str]:
    return {"$pickle": base64.b64encode(pickle.dumps(value)).decode("ascii")}


def _pickle_in(data: Any, path: str) -> Any:
    if not (isinstance(data, dict) and isinstance(data.get("$pickle"), str)):
        raise ContextSerdeError(f"{path}: expected a pickled value, got {type(data).__name__}")
    try:
        return pickle.loads(base64.b64decode(data["$pickle"]))  # allowed explicitly by the caller
    except Exception as exc:
        raise ContextSerdeError(f"{path}: the pickled value cannot be loaded: {exc}") from exc


# -- reading --------------------------------------------------------------------------------------


def restore_into(ctx: Context[Any], data: Any, *, allow_pickle: bool = False) -> None:
    """Fill the fresh ``ctx`` from snapshot ``data``; ``ContextSerdeError`` says what is wrong."""
    workflow_name = type(ctx.workflow).__qualname__
    if not isinstance(data, Mapping):
        raise ContextSerdeError(
            f"a context snapshot is the mapping ctx.to_dict() returns, got {type(data).__name__}"
        )
    if data.get("format") != FORMAT:
        raise ContextSerdeError(
            "this is not a notebook_workflows context snapshot (it has no "
            f"'format': {FORMAT!r} entry); keys found: "
            f"{', '.join(_shown(k) for k in list(data)[:12]) or 'none'}"
        )
    version = data.get("version")
    if version != VERSION:
        raise ContextSerdeError(
            f"unknown snapshot format version {_shown(version)}: this notebook_workflows reads "
            f"version {VERSION} (was it written by a newer release?)"
        )
    serializer = data.get("serializer", "json")
    if serializer not in SERIALIZERS:
        raise ContextSerdeError(f"unknown serializer {_shown(serializer)} in the snapshot")
    if serializer == "pickle" and not allow_pickle:
        raise ContextSerdeError(
            "this snapshot was written with the pickle serializer, and loading a pickle can run "
            "any code its author chose; pass allow_pickle=True only if you trust where it "
            "came from"
        )
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ContextSerdeError(f"the snapshot is missing {', '.join(map(repr, missing))}")
    saved_workflow = data["workflow"]
    if not isinstance(saved_workflow, str) or saved_workflow.rpartition(":")[2] != workflow_name:
        raise ContextSerdeError(
            f"this snapshot is of workflow {_shown(saved_workflow)}, not of {workflow_name!r}; "
            f"load it with an instance of the workflow that wrote it"
        )
    graph = graph_of(ctx._specs, ctx.workflow)
    saved_graph = data["graph"]
    _check_graph(saved_graph)
    broken = breaking_changes(saved_graph, graph)
    if broken:
        lines = [_shown(line, 160)[1:-1] for line in graph_changes(saved_graph, graph)]
        if len(lines) > 12:
            lines[11:] = [f"and {len(lines) - 11} more"]
        raise ContextSerdeError(
            f"{workflow_name} has changed since this snapshot was taken, so it cannot continue "
            f"it:\n" + "\n".join(f"  - {line}" for line in lines)
        )
    status = data["status"]
    if type(status) is not str or status not in _STATUSES:
        raise ContextSerdeError(f"unknown run status {_shown(status)} in the snapshot")

    ev_in: Callable[[Any, str], Event]
    if serializer == "pickle":

        def ev_in(d: Any, path: str) -> Event:
            ev = _pickle_in(d, path)
            if not isinstance(ev, Event):
                raise ContextSerdeError(f"{path}: the pickled value is not an Event")
            return ev

    else:
        ev_in = decode_event

    specs = ctx._specs
    state = ctx._state
    # The store: check every value now, so a bad or tampered one is reported at load time
    # (but for values held as text: below).
    store = data["store"]
    if not isinstance(store, Mapping):
        raise ContextSerdeError("the snapshot's 'store' is not a mapping")
    state_type = data.get("state_type")
    expected_type = ctx.store._state_type
    if (state_type or None) != (qualified_name(expected_type) if expected_type else None):
        raise ContextSerdeError(
            f"the snapshot's typed state is {_shown(state_type)}, but {workflow_name} uses "
            f"{qualified_name(expected_type) if expected_type else 'an untyped store'}"
        )
    for key in store:
        _text(key, "a store key")
    if serializer == "pickle":
        store = parsed_values(dict(store), "store.")
        encoded = {k: encode(_pickle_in(v, f"store.{k}"), path=k) for k, v in store.items()}
    decoded: dict[str, Any] = {}
    if serializer != "pickle":
        encoded = {}
        for key, value in store.items():
            # A big value a checkpoint store kept as text (``RawJSON``) stays text: it is
            # parsed and checked by the first get that reads it (see ``codec._raw``).
            if type(value) is not RawJSON:
                decoded[key] = decode(value, path=f"store.{key}")
            encoded[key] = value
    ctx.store._load(encoded, decoded)

    queue = []
    for i, item in enumerate(_list(data, "queue")):
        where = f"queue[{i}]"
        step = _step_name(item, where, specs)
        queue.append((_int(item, "seq", where), step, ev_in(item.get("event"), f"{where}.event")))
    state.load_queue(queue)

    for i, item in enumerate(_list(data, "in_flight")):
        where = f"in_flight[{i}]"
        step = _step_name(item, where, specs)
        inv = Invocation(
            _int(item, "id", where),
            step,
            ev_in(item.get("event"), f"{where}.event"),
            _int(item, "seq", where),
            attempt=_int(item, "attempt", where, default=1),
        )
        answers = item.get("answers") or {}
        if not isinstance(answers, Mapping):
            raise ContextSerdeError(f"{where}.answers is not a mapping")
        if answers:
            inv.waits = {
                _index(k, f"{where}.answers"): ev_in(v, f"{where}.answers.{k}")
                for k, v in answers.items()
            }
        journal = item.get("journal") or {}
        if not isinstance(journal, Mapping):
            raise ContextSerdeError(f"{where}.journal is not a mapping of names")
        if journal:
            for key, value in journal.items():
                key = _text(key, f"a key of {where}.journal")
                decode(value, path=f"{where}.journal.{key}")  # checked now, decoded on use
            inv.journal = dict(journal)
        error = item.get("error")
        inv.error = _text(error, f"{where}.error") if error is not None else None
        state.in_flight[inv.id] = inv

    collected = data.get("collected") or {}
    if not isinstance(collected, Mapping):
        raise ContextSerdeError("the snapshot's 'collected' is not a mapping")
    for step, items in collected.items():
        step = _text(step, "a key of 'collected'")
        buffer = CollectBuffer()
        if not isinstance(items, list):
            raise ContextSerdeError(f"collected.{step} is not a list")
        for i, item in enumerate(items):
            where = f"collected.{step}[{i}]"
            if not isinstance(item, Mapping):
                raise ContextSerdeError(f"{where} is not a mapping")
            buffer.add(_int(item, "seq", where), ev_in(item.get("event"), f"{where}.event"))
        state.collected[step] = buffer

    for i, item in enumerate(_list(data, "waiters", required=False)):
        where = f"waiters[{i}]"
        types_ = []
        names = item.get("types") or []
        if not isinstance(names, list):
            raise ContextSerdeError(f"{where}.types must be a list of event class names")
        for name in names:
            try:
                cls = find_class(_text(name, f"{where}.types"), kinds=(Event,))
            except ContextSerdeError as exc:
                raise ContextSerdeError(f"cannot load {where}.types: {exc}") from None
            types_.append(cls)
        requirements = decode(item.get("requirements") or {}, path=f"{where}.requirements")
        if type(requirements) is not dict:
            raise ContextSerdeError(f"{where}.requirements must be a mapping")
        question = item.get("question")
        answer = item.get("answer")
        state.waiters.append(
            Waiter(
                _int(item, "invocation", where),
                _int(item, "index", where),
                tuple(types_),
                dict(requirements),
                ev_in(question, f"{where}.question") if question is not None else None,
                ev_in(answer, f"{where}.answer") if answer is not None else None,
            )
        )
    for waiter in state.waiters:
        if waiter.question is not None and waiter.resolved is None:
            state.questions.append(waiter.question)
    for i, item in enumerate(_list(data, "questions", required=False)):
        state.questions.append(ev_in(item, f"questions[{i}]"))
    stop = data.get("stop")
    if stop is not None:
        # a StopEvent in any snapshot a run wrote (the stop is not checked to be one)
        state.stop = ev_in(stop, "stop")  # type: ignore[assignment]

    counters = data.get("counters") or {}
    if not isinstance(counters, Mapping):
        raise ContextSerdeError("the snapshot's 'counters' is not a mapping")
    state.seq = max(state.seq, _int(counters, "seq", "counters", default=0))
    state.next_id = max([_int(counters, "next_id", "counters", default=0), *state.in_flight.keys()])
    state.steps_done = _int(data, "steps_done", "snapshot", default=0)
    stats = data.get("stats") or {}
    if isinstance(stats, Mapping):
        for key, target in (("step_runs", state.step_runs), ("step_seconds", state.step_seconds)):
            values = stats.get(key) or {}
            if isinstance(values, Mapping):
                for name, value in values.items():
                    # Figures only inform; a damaged one is dropped, not carried into new JSON.
                    if name in target and type(value) in (int, float) and 0 <= value < _MAX_INT:
                        target[name] = value
    recoveries = data.get("recoveries") or {}
    if not isinstance(recoveries, Mapping):
        raise ContextSerdeError("the snapshot's 'recoveries' is not a mapping")
    for name in recoveries:
        if name not in state.max_recoveries:
            raise ContextSerdeError(f"recoveries names {_shown(name)}, which is no handler here")
        state.recoveries[name] = _int(recoveries, name, "recoveries")
    try:
        joins_in(state, data.get("joins"))
    except ValueError as exc:
        raise ContextSerdeError(f"the snapshot's {exc}") from None
    run_id = data["run_id"]
    if run_id is not None:
        _text(run_id, "run_id")
    state.run_id = run_id
    state.status = status
    start = data.get("start")
    if start is not None:
        fields = start.get("fields") if isinstance(start, Mapping) else None
        if not (
            isinstance(fields, Mapping)
            and isinstance(start.get("type"), str)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
        ):
            raise ContextSerdeError(
                "the snapshot's 'start' must be {'type': name, 'fields': {name: digest}}"
            )
        state.start_digest = {"type": _text(start["type"], "start.type"), "fields": dict(fields)}


def _list(data: Mapping[str, Any], key: str, required: bool = True) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ContextSerdeError(f"the snapshot's {key!r} is not a list")
    for i, item in enumerate(value):
        if key != "questions" and not isinstance(item, Mapping):
            raise ContextSerdeError(f"{key}[{i}] is not a mapping")
    return value


def _int(item: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = item.get(key, default)
    if type(value) is not int or not 0 <= value < _MAX_INT:
        raise ContextSerdeError(f"{where}.{key} must be a whole number, got {_shown(value)}")
    return value


def _step_name(item: Mapping[str, Any], where: str, specs: Mapping[str, Any]) -> str:
    step = item.get("step")
    if type(step) is not str or step not in specs:
        raise ContextSerdeError(
            f"{where} names step {_shown(step)}, which the workflow does not have"
        )
    return step


# Counters, ids and figures beyond this are damage, not history (and JSON readers differ there).
_MAX_INT = 2**63


def _shown(value: Any, limit: int = 60) -> str:
    from .serialization import short_repr  # a repr that never fails, whatever the data holds

    return short_repr(value, limit)


def _text(value: Any, what: str) -> str:
    """``value`` if it is a str that JSON text can hold, else ContextSerdeError about ``what``."""
    if type(value) is not str:
        raise ContextSerdeError(f"{what} must be a string, got {_shown(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ContextSerdeError(f"{what} {_shown(value)} has a lone surrogate") from None
    return value


def _index(key: Any, where: str) -> int:
    if type(key) is not str or not (key.isascii() and key.isdigit()) or len(key) > 18:
        raise ContextSerdeError(f"{where} has the key {_shown(key)}, which is not a number")
    return int(key)


def _check_graph(graph: Any) -> None:
    """The snapshot's graph: step name -> {"accepts": [names], "produces": [names], ...}."""
    if not isinstance(graph, Mapping):
        raise ContextSerdeError("the snapshot's 'graph' is not a mapping of steps")
    for step, entry in graph.items():
        if type(step) is not str or not isinstance(entry, Mapping):
            raise ContextSerdeError(f"the snapshot's 'graph' has a bad entry for {_shown(step)}")
        for key in ("accepts", "produces"):
            names = entry.get(key, [])
            if not isinstance(names, list) or not all(type(n) is str for n in names):
                raise ContextSerdeError(
                    f"graph.{_shown(step, 40)[1:-1]}.{key} must be a list of event class names"
                )
