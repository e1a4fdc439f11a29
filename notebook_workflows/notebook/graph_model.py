"""The graph of a workflow as a plain model: nodes and edges with a kind and a run state.

The printers (``graph_text``: DOT and Mermaid) and the public ``WorkflowGraph`` read this model,
so every picture shows the same nodes and routes. Steps are nodes; every event type is a node of
its own between the steps that produce it and the steps that accept it, so fan-out and fan-in
read at a glance.

- **Events are classes, not names.** Node ids use the qualified name (module and qualname), so
  two ``Result`` classes from different modules stay two nodes; labels use the short name, with
  the module added only when two nodes would otherwise read the same.
- **Deterministic.** Nodes come in step definition order, events in the order steps first
  mention them; nothing depends on ids, addresses, hashing or the clock.
- **Cheap to overlay.** The static model of a class is built once (from
  ``type(workflow)._step_specs()``, read-only); a run's graph lays a ``RunView`` (counts, times,
  running and failed steps) over it, which a live monitor does up to ten times a second.
- **A stored run needs no class.** A checkpoint records its step graph by type names;
  ``model_of_snapshot`` draws that (the run browser shows runs of workflows not defined in this
  kernel).
"""

from __future__ import annotations

import sys
import textwrap
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from ..retry import describe

if TYPE_CHECKING:
    from ..runtime.view import RunView
    from ..step import StepSpec
    from ..workflow import Workflow

_ERROR_WIDTH, _ERROR_LINES = 44, 2  # a failed step's error, wrapped and cut to fit its box

# Node kinds: "step", and for events "event", "start", "stop", "human".
# Run states: "" (static graph or ran normally), "running", "waiting", "failed", "unreached".


@dataclass(frozen=True)
class _Node:
    id: str  # stable and unique: "step:<name>" or "event:<module>.<qualname>"
    kind: str
    title: str  # the short name shown in bold
    notes: tuple[str, ...] = ()  # smaller lines under the title
    state: str = ""


@dataclass(frozen=True)
class _Edge:
    src: str
    dst: str
    count: int | None = None  # None in a static graph; -1: used, how often is not known
    kind: str = "route"  # "route", "human" (question -> answer) or "undeclared" (run only)


def _event_kind(cls: type[Event]) -> str:
    if issubclass(cls, StartEvent):
        return "start"
    if issubclass(cls, StopEvent):
        return "stop"
    if issubclass(cls, (InputRequiredEvent, HumanResponseEvent)):
        return "human"
    return "event"


def _step_notes(spec: StepSpec) -> tuple[str, ...]:
    parts = []
    if spec.num_workers > 1:
        parts.append(f"{spec.num_workers} workers")
    retries = describe(spec.retry_policy)
    if retries:
        parts.append(retries)
    if spec.timeout is not None:
        parts.append(f"timeout {spec.timeout:g} s")
    if spec.gather:  # a join: its inputs are its parameters together, not one event each
        card = getattr(spec.collect, "cardinality", None)
        first = getattr(card, "n", None)
        parts.append(f"joins {spec.inputs_text()}" + (f", first {first}" if first else ""))
    if spec.fans_out:
        parts.append("fans out a list")
    return (" · ".join(parts),) if parts else ()


@dataclass(frozen=True)
class _Model:
    """The static graph of a workflow class, plus what a run overlay needs to find nodes."""

    name: str
    nodes: tuple[_Node, ...]
    edges: tuple[_Edge, ...]
    specs: dict[str, StepSpec]
    event_ids: dict[type[Event], str]


_MODELS: weakref.WeakKeyDictionary[type, _Model] = weakref.WeakKeyDictionary()


def _model_of(cls: type[Workflow]) -> _Model:
    """The class's model, built once: a run graph redrawn ten times a second only overlays."""
    model = _MODELS.get(cls)
    if model is None or model.specs is not cls._step_specs():  # steps read again: rebuild
        model = _MODELS[cls] = _build_model(cls)
    return model


def _build_model(cls: type[Workflow]) -> _Model:
    specs = cls._step_specs()
    # Events in the order steps first mention them; start events lead, stop events close.
    seen: dict[type[Event], None] = {}
    for spec in specs.values():
        for typ in (*spec.accepts, *spec.produces):
            seen.setdefault(typ)
    events = sorted(seen, key=lambda t: {"start": 0, "stop": 2}.get(_event_kind(t), 1))

    event_ids: dict[type[Event], str] = {}
    used: set[str] = set()
    for typ in events:
        base = f"event:{typ.__module__}.{typ.__qualname__}"
        node_id, n = base, 1
        while node_id in used:  # same module and qualname, another class (a factory's product)
            n += 1
            node_id = f"{base}#{n}"
        used.add(node_id)
        event_ids[typ] = node_id

    short_names: dict[str, int] = {}
    for typ in events:
        short_names[typ.__name__] = short_names.get(typ.__name__, 0) + 1

    def event_node(typ: type[Event]) -> _Node:
        notes = (typ.__module__,) if short_names[typ.__name__] > 1 else ()
        return _Node(event_ids[typ], _event_kind(typ), typ.__name__, notes)

    starts = [event_node(t) for t in events if _event_kind(t) == "start"]
    stops = [event_node(t) for t in events if _event_kind(t) == "stop"]
    middle = [event_node(t) for t in events if _event_kind(t) not in ("start", "stop")]
    steps = [_Node(f"step:{name}", "step", name, _step_notes(s)) for name, s in specs.items()]

    edges: list[_Edge] = []
    for name, spec in specs.items():
        for typ in spec.accepts:
            edges.append(_Edge(event_ids[typ], f"step:{name}"))
        for typ in spec.produces:
            edges.append(_Edge(f"step:{name}", event_ids[typ]))
    questions = [t for t in events if issubclass(t, InputRequiredEvent)]
    answers = [t for t in events if issubclass(t, HumanResponseEvent)]
    for q in questions:
        for a in answers:
            edges.append(_Edge(event_ids[q], event_ids[a], kind="human"))

    return _Model(
        name=cls.__qualname__,
        nodes=(*starts, *steps, *middle, *stops),
        edges=tuple(edges),
        specs=specs,
        event_ids=event_ids,
    )


def _overlay_run(model: _Model, stats: RunView) -> tuple[tuple[_Node, ...], tuple[_Edge, ...]]:
    """The static model with a run's counts, times and step states laid over it."""
    specs = model.specs
    counts: dict[tuple[str, str], int] = {}
    extra_nodes: list[_Node] = []
    extra_edges: dict[tuple[str, str], _Edge] = {}
    declared_routes = {(e.src, e.dst) for e in model.edges}
    by_name: dict[str, str] = {}
    for typ, node_id in model.event_ids.items():
        by_name.setdefault(typ.__name__, node_id)

    def event_id(name: str, candidates: Iterable[type[Event]]) -> tuple[str, bool]:
        for typ in candidates:
            if typ.__name__ == name:
                return model.event_ids[typ], True
        if name in by_name:
            return by_name[name], False
        node_id = f"event:?{name}"  # an event type no step declares (sent with ctx.send_event)
        by_name[name] = node_id
        extra_nodes.append(_Node(node_id, "event", name))
        return node_id, False

    for (a, b), n in sorted(stats.flow.items()):
        if a in specs and not (b in specs and any(t.__name__ == a for t in specs[b].accepts)):
            ev, declared = event_id(b, specs[a].produces)
            key = (f"step:{a}", ev)
        elif b in specs:
            ev, declared = event_id(a, specs[b].accepts)
            key = (ev, f"step:{b}")
        else:
            continue
        counts[key] = counts.get(key, 0) + n
        if not declared and key not in declared_routes:
            extra_edges[key] = _Edge(*key, kind="undeclared")

    running: dict[str, int] = {}
    for name in stats.running:
        running[name] = running.get(name, 0) + 1
    waiting: dict[str, int] = {}
    for name in stats.waiting:
        waiting[name] = waiting.get(name, 0) + 1

    def step_node(node: _Node) -> _Node:
        name = node.title
        runs = stats.step_runs.get(name, 0)
        replayed = stats.replayed.get(name, 0)  # a rerun applied their record, no call
        notes = list(node.notes)
        if runs and replayed >= runs:
            notes.append(f"replayed · {runs} {'call' if runs == 1 else 'calls'}, none ran")
        elif runs:
            plural = "run" if runs == 1 else "runs"
            also = f" ({replayed} replayed)" if replayed else ""
            seconds = step_time(runs - replayed, stats.step_seconds.get(name, 0.0))
            notes.append(f"{runs - replayed} {plural}{also} · {seconds}")
            why = stats.ran_because.get(name)
            if why and stats.replayed:  # a rerun: say why this step was called
                notes.extend(_wrap(f"ran: {why}", _ERROR_WIDTH, 2))
        if running.get(name):
            notes.append("running" + (f" ({running[name]} at once)" if running[name] > 1 else ""))
        if waiting.get(name):
            notes.append("waiting for an event")
        if stats.queued.get(name):
            notes.append(f"{stats.queued[name]} queued")
        error = stats.failed.get(name)
        if error is not None:
            notes.extend(_wrap(f"failed: {error or 'unknown error'}", _ERROR_WIDTH, _ERROR_LINES))
            state = "failed"
        elif running.get(name):
            state = "running"
        elif waiting.get(name):
            state = "waiting"
        elif runs and replayed >= runs and not stats.queued.get(name):
            state = "replayed"
        elif runs or stats.queued.get(name):
            state = ""
        else:
            state = "unreached"
        return _Node(node.id, node.kind, name, tuple(notes), state)

    _add_carried(model, stats, counts)
    # Plain constructors rather than dataclasses.replace: this runs on every monitor tick.
    edges = [_Edge(e.src, e.dst, counts.get((e.src, e.dst), 0), e.kind) for e in model.edges]
    edges += [_Edge(*key, counts[key], e.kind) for key, e in extra_edges.items()]
    touched = {e.src for e in edges if e.count} | {e.dst for e in edges if e.count}
    # An open question waits at the question events that were asked in this run.
    asked = {
        node_id
        for typ, node_id in model.event_ids.items()
        if issubclass(typ, InputRequiredEvent) and node_id in touched
    }

    def event_node(node: _Node) -> _Node:
        if node.id not in touched:
            return _Node(node.id, node.kind, node.title, node.notes, "unreached")
        if stats.questions and node.id in asked:
            note = "waiting for a human"
            if len(stats.questions) > 1:
                note += f" ({len(stats.questions)} questions)"
            return _Node(node.id, node.kind, node.title, (*node.notes, note), "waiting")
        return node

    nodes = [
        step_node(n) if n.kind == "step" else event_node(n) for n in (*model.nodes, *extra_nodes)
    ]
    return tuple(nodes), tuple(edges)


def _add_carried(model: _Model, stats: RunView, counts: dict[tuple[str, str], int]) -> None:
    """A resumed run or a fork carries the step counts of the run it continues, but not which
    routes those calls took: the routes of a step that ran before are marked used, how often
    not known (-1), so the steps before a fork point read as run, not as never reached."""
    consumed: dict[str, int] = {}
    for (_, dst), n in counts.items():
        if dst.startswith("step:"):
            consumed[dst] = consumed.get(dst, 0) + n
    for edge in model.edges:
        if edge.kind != "route" or counts.get((edge.src, edge.dst)):
            continue
        step = edge.dst if edge.dst.startswith("step:") else edge.src
        if stats.step_runs.get(step[5:], 0) > consumed.get(step, 0):
            counts[(edge.src, edge.dst)] = -1


def step_time(calls: int, seconds: float) -> str:
    """A step's time as its node shows it: the sum of its invocations' times (retries
    included), said to be a total when there were several: ``16 runs · 10.74 s total`` beside
    a run that lasted 1.2 s means the calls overlapped (workers, a fan-out) or added up."""
    return _duration(seconds) + (" total" if calls > 1 else "")


def _duration(seconds: float) -> str:
    if seconds < 0.0001:
        return "<0.1 ms" if seconds else "0 ms"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """``text`` on at most ``max_lines`` lines of ``width`` characters, control characters
    gone, long words broken, an ellipsis where it was cut."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    lines = [line.strip() for line in textwrap.wrap(flat, width)] or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return lines


# -- a run stored in a checkpoint ---------------------------------------------------------------

_BUILTIN_KINDS = {
    "StartEvent": "start",
    "StopEvent": "stop",
    "InputRequiredEvent": "human",
    "HumanResponseEvent": "human",
}


def _kind_of_name(name: str) -> str:
    """The kind of an event recorded as ``"module:QualName"``: from its class when that module
    is already loaded (nothing is imported: loading never runs code from the data), else from
    the built-in names."""
    module, _, qualname = name.partition(":")
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Event):
        return _event_kind(obj)
    return _BUILTIN_KINDS.get(qualname.rsplit(".", 1)[-1], "event")


def model_of_snapshot(
    context: dict[str, Any],
) -> tuple[str, tuple[_Node, ...], tuple[_Edge, ...]]:
    """The graph a checkpointed context records (``Snapshot.context``), with the run's step
    counts and times at that snapshot, its queued events per step and its failed step.
    Returns ``(workflow name, nodes, edges)``."""
    graph: dict[str, dict[str, Any]] = context.get("graph") or {}
    stats = context.get("stats") or {}
    runs: dict[str, int] = stats.get("step_runs") or {}
    seconds: dict[str, float] = stats.get("step_seconds") or {}
    queued: dict[str, int] = {}
    for item in context.get("queue") or ():
        step = item.get("step") if isinstance(item, dict) else None
        if step:
            queued[step] = queued.get(step, 0) + 1
    failed = {
        item.get("step"): item.get("error")
        for item in context.get("in_flight") or ()
        if isinstance(item, dict) and item.get("error")
    }
    events: dict[str, None] = {}
    for spec in graph.values():
        for name in (*spec.get("accepts", ()), *spec.get("produces", ())):
            events.setdefault(name)
    order = {"start": 0, "stop": 2}
    kinds = {name: _kind_of_name(name) for name in events}
    ordered = sorted(events, key=lambda n: order.get(kinds[n], 1))
    short = [n.rpartition(":")[2].rsplit(".", 1)[-1] for n in ordered]
    nodes: list[_Node] = []
    for name, title in zip(ordered, short, strict=True):
        module = (name.partition(":")[0],) if short.count(title) > 1 else ()
        nodes.append(_Node(f"event:{name}", kinds[name], title, module))
    touched: set[str] = set()
    steps: list[_Node] = []
    edges: list[_Edge] = []
    for step, spec in graph.items():
        n = runs.get(step, 0)
        notes: list[str] = []
        if n:
            notes.append(
                f"{n} {'run' if n == 1 else 'runs'} · {step_time(n, seconds.get(step, 0.0))}"
            )
        if queued.get(step):
            notes.append(f"{queued[step]} queued")
        state = ""
        if step in failed:
            notes.extend(_wrap(f"failed: {failed[step]}", _ERROR_WIDTH, _ERROR_LINES))
            state = "failed"
        elif not n and not queued.get(step):
            state = "unreached"
        steps.append(_Node(f"step:{step}", "step", step, tuple(notes), state))
        accepts = spec.get("accepts", ())
        for name in accepts:
            # how often each event type went in is not kept in a snapshot, only the step's runs
            count = n if len(accepts) == 1 else (-1 if n else 0)
            edges.append(_Edge(f"event:{name}", f"step:{step}", count))
        for name in spec.get("produces", ()):
            edges.append(_Edge(f"step:{step}", f"event:{name}", -1 if n else 0))
        if n:
            touched.update(f"event:{name}" for name in (*accepts, *spec.get("produces", ())))
    starts = [n for n in nodes if n.kind == "start"]
    stops = [n for n in nodes if n.kind == "stop"]
    middle = [
        n if n.id in touched else _Node(n.id, n.kind, n.title, n.notes, "unreached")
        for n in nodes
        if n.kind not in ("start", "stop")
    ]
    workflow = str(context.get("workflow", "")).rpartition(":")[2] or "workflow"
    return workflow, (*starts, *steps, *middle, *stops), tuple(edges)
