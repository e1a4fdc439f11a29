"""WorkflowGraph: a workflow, or one run of it, drawn as DOT, SVG and Mermaid.

Design decisions:

- **One model, two texts.** A graph is first a plain model (nodes and edges with a kind and a
  run state); DOT and Mermaid are two printers over it, so both show the same nodes and routes.
  Steps are boxes; every event type is a node of its own between the steps that produce it and
  the steps that accept it, so fan-out and fan-in read at a glance. Start and stop events, and
  the human hand-off events (``InputRequiredEvent`` / ``HumanResponseEvent`` and subclasses),
  have styles of their own; the DOT drawing also links a question to its answer with a dashed
  edge, which Mermaid leaves out since it is no route between steps.
- **Events are classes, not names.** Node ids use the qualified name (module and qualname), so two
  ``Result`` classes from different modules stay two nodes; labels use the short name, with the
  module added only when two nodes would otherwise read the same.
- **Deterministic text.** Nodes come in step definition order, events in the order steps first
  mention them; nothing depends on ids, addresses, hashing or the clock. The same workflow gives
  the same DOT byte for byte. A run's graph shows counts and step times but not the elapsed run
  time, so its text only changes when something happened and the SVG cache keeps hitting.
- **Offline and side-effect free.** SVG and PNG come from the Graphviz ``dot`` program through a
  pipe; no temporary files, no network, nothing on disk unless ``save`` is called. ``dot`` is
  looked up on ``PATH`` at render time, so installing it mid-session just works. Without it, the
  notebook still shows the DOT text and a one-line install hint instead of a traceback.
- **Cheap to redraw.** Building a graph is a walk over the step specs and ``handler.stats()``;
  rendered SVG is cached per DOT text, so a live monitor that redraws ten times a second only
  pays for ``dot`` when the run moved.
- **Readable in light and dark themes.** The background is transparent; every node has an explicit
  light fill and dark font colour, and edges use mid-tone greys and blues that show on both.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from .retry import describe

if TYPE_CHECKING:
    from .handler import RunStats, WorkflowHandler
    from .step import StepSpec
    from .workflow import Workflow

__all__ = ["GraphRenderError", "WorkflowGraph"]

INSTALL_HINT = (
    "Install Graphviz to see this graph drawn: "
    "`apt-get install graphviz`, `conda install graphviz` or `brew install graphviz`."
)
SAVE_SUFFIXES = (".svg", ".png", ".dot", ".gv")
_ERROR_WIDTH, _ERROR_LINES = 44, 2  # a failed step's error, wrapped and cut to fit its box
_FONT = "Helvetica,Arial,sans-serif"


class GraphRenderError(RuntimeError):
    """The Graphviz ``dot`` program is missing or could not draw the graph."""


# -- the model --------------------------------------------------------------------------------

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
    count: int | None = None  # None in a static graph
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


def _overlay_run(model: _Model, stats: RunStats) -> tuple[tuple[_Node, ...], tuple[_Edge, ...]]:
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
        notes = list(node.notes)
        if runs:
            plural = "run" if runs == 1 else "runs"
            notes.append(f"{runs} {plural} · {_duration(stats.step_seconds.get(name, 0.0))}")
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
        elif runs or stats.queued.get(name):
            state = ""
        else:
            state = "unreached"
        return _Node(node.id, node.kind, name, tuple(notes), state)

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


# -- DOT --------------------------------------------------------------------------------------

# Explicit light fills with dark text: readable on light and dark notebook themes alike.
_Attrs = dict[str, str]
_NODE_STYLES: dict[str, _Attrs] = {
    "step": {
        "shape": "box",
        "style": '"rounded,filled"',
        "fillcolor": '"#e3edfb"',
        "color": '"#4a78c2"',
        "fontcolor": '"#14253d"',
    },
    "event": {
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": '"#f3f4f6"',
        "color": '"#9aa3ad"',
        "fontcolor": '"#2b2f33"',
        "fontsize": "10",
    },
    "start": {
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": '"#dcf2e1"',
        "color": '"#2f8a46"',
        "fontcolor": '"#123d1f"',
        "fontsize": "10",
        "penwidth": "1.6",
    },
    "stop": {
        "shape": "ellipse",
        "style": "filled",
        "fillcolor": '"#e9e3f7"',
        "color": '"#6a55b0"',
        "fontcolor": '"#281c4d"',
        "fontsize": "10",
        "peripheries": "2",
    },
    "human": {
        "shape": "note",
        "style": "filled",
        "fillcolor": '"#fff1cc"',
        "color": '"#c48a0f"',
        "fontcolor": '"#3d2c05"',
        "fontsize": "10",
    },
}
_STATE_STYLES: dict[str, _Attrs] = {
    "running": {
        "fillcolor": '"#ffe1bf"',
        "color": '"#e8590c"',
        "fontcolor": '"#4a1d03"',
        "penwidth": "2.6",
    },
    "waiting": {
        "fillcolor": '"#fff1cc"',
        "color": '"#c48a0f"',
        "fontcolor": '"#3d2c05"',
        "penwidth": "2.2",
    },
    "failed": {
        "fillcolor": '"#ffd9d9"',
        "color": '"#c92a2a"',
        "fontcolor": '"#5c0f0f"',
        "penwidth": "2.6",
    },
    "unreached": {
        "fillcolor": '"#f1f2f4"',
        "color": '"#c3c8ce"',
        "fontcolor": '"#8a939d"',
        "penwidth": "1",
    },
}
_EDGE_ACTIVE: _Attrs = {"color": '"#4f7fcc"', "fontcolor": '"#4f7fcc"', "penwidth": "1.6"}
_EDGE_IDLE: _Attrs = {"color": '"#b8bec6"', "style": "dashed"}
_EDGE_HUMAN: _Attrs = {
    "style": "dashed",
    "color": '"#c48a0f"',
    "fontcolor": '"#c48a0f"',
    "arrowhead": "empty",
    "label": '" human"',
}


def _dot_quote(text: str) -> str:
    # In a DOT quoted string only \" is an escape; a trailing backslash would eat the quote.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _dot_label(node: _Node) -> str:
    label = f"<B>{_html(node.title)}</B>" if node.kind == "step" else _html(node.title)
    for note in node.notes:
        label += f'<BR/><FONT POINT-SIZE="9">{_html(note)}</FONT>'
    return f"<{label}>"


def _attr_list(attrs: _Attrs) -> str:
    return ", ".join(f"{key}={value}" for key, value in attrs.items())


@functools.cache
def _node_style(kind: str, state: str) -> str:
    attrs = {**_NODE_STYLES[kind], **_STATE_STYLES.get(state, {})}
    if state in ("waiting", "unreached"):
        attrs["style"] = '"rounded,filled,dashed"' if kind == "step" else '"filled,dashed"'
    return _attr_list(attrs)


def _node_attrs(node: _Node) -> str:
    return f"{_node_style(node.kind, node.state)}, label={_dot_label(node)}"


@functools.cache
def _edge_style(kind: str, active: bool) -> str:
    if kind == "human":
        return _attr_list(_EDGE_HUMAN)
    attrs = dict(_EDGE_ACTIVE if active else _EDGE_IDLE)
    if kind == "undeclared":
        attrs["style"] = "dotted"
    return _attr_list(attrs)


def _edge_attrs(edge: _Edge) -> str:
    if edge.kind == "human":
        return f" [{_edge_style(edge.kind, False)}]"
    if edge.count is None:
        return ""
    label = f', label=" {edge.count}"' if edge.count else ""
    return f" [{_edge_style(edge.kind, bool(edge.count))}{label}]"


def _to_dot(name: str, caption: str, nodes: Iterable[_Node], edges: Iterable[_Edge]) -> str:
    nodes = tuple(nodes)
    lines = [
        f"digraph {_dot_quote(name)} {{",
        f'  graph [rankdir=TB, bgcolor="transparent", fontname="{_FONT}", fontsize=12, '
        f'fontcolor="#7a838d", labelloc=t, nodesep=0.3, ranksep=0.32, pad=0.12, '
        f"label={_dot_quote(caption)}]",
        f'  node [fontname="{_FONT}", fontsize=11, margin="0.14,0.05", height=0.32, penwidth=1.2]',
        f'  edge [fontname="{_FONT}", fontsize=9, fontcolor="#7a838d", color="#8c949e", '
        f"arrowsize=0.7]",
    ]
    for rank, kind in (("source", "start"), ("sink", "stop")):
        ids = [_dot_quote(n.id) for n in nodes if n.kind == kind]
        if ids:
            lines.append(f"  {{rank={rank}; {'; '.join(ids)}}}")
    lines.extend(f"  {_dot_quote(n.id)} [{_node_attrs(n)}]" for n in nodes)
    lines.extend(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)}{_edge_attrs(e)}" for e in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid ----------------------------------------------------------------------------------

_MERMAID_CLASSES: dict[str, str] = {
    "step": "fill:#e3edfb,stroke:#4a78c2,color:#14253d",
    "event": "fill:#f3f4f6,stroke:#9aa3ad,color:#2b2f33",
    "start": "fill:#dcf2e1,stroke:#2f8a46,color:#123d1f,stroke-width:2px",
    "stop": "fill:#e9e3f7,stroke:#6a55b0,color:#281c4d,stroke-width:3px",
    "human": "fill:#fff1cc,stroke:#c48a0f,color:#3d2c05",
    "running": "fill:#ffe1bf,stroke:#e8590c,color:#4a1d03,stroke-width:3px",
    "waiting": "fill:#fff1cc,stroke:#c48a0f,color:#3d2c05,stroke-width:2px,stroke-dasharray:4 3",
    "failed": "fill:#ffd9d9,stroke:#c92a2a,color:#5c0f0f,stroke-width:3px",
    "unreached": "fill:#f1f2f4,stroke:#c3c8ce,color:#8a939d,stroke-dasharray:4 3",
}
# Mermaid entity codes; "#" first so the codes themselves are not escaped again.
_MERMAID_ESCAPES = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;", "|": "#124;"}
)


def _mermaid_ids(nodes: Iterable[_Node]) -> dict[str, str]:
    """Node id -> an id Mermaid accepts: ASCII word characters, prefixed so that no id is a
    keyword such as ``end``, and unique."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for node in nodes:
        prefix = "s_" if node.kind == "step" else "e_"
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", node.title)
        mid, n = base, 1
        while mid in used:
            n += 1
            mid = f"{base}_{n}"
        used.add(mid)
        out[node.id] = mid
    return out


def _mermaid_label(node: _Node) -> str:
    lines = [node.title, *node.notes]
    return "<br/>".join(" ".join(line.split()).translate(_MERMAID_ESCAPES) for line in lines)


def _to_mermaid(nodes: Iterable[_Node], edges: Iterable[_Edge]) -> str:
    nodes = tuple(nodes)
    ids = _mermaid_ids(nodes)
    lines = ["flowchart TB"]
    used_classes: dict[str, None] = {}
    for node in nodes:
        cls = node.state or node.kind
        used_classes.setdefault(cls)
        label = f'"{_mermaid_label(node)}"'
        shape = f"({label})" if node.kind == "step" else f"([{label}])"
        lines.append(f"    {ids[node.id]}{shape}:::{cls}")
    for edge in edges:
        if edge.kind == "human":
            continue  # not a route between steps; the DOT drawing shows it
        arrow = "-.->" if edge.kind == "undeclared" else "-->"
        if edge.count:
            arrow += f'|"{edge.count}"|'
        lines.append(f"    {ids[edge.src]} {arrow} {ids[edge.dst]}")
    lines.extend(f"    classDef {cls} {_MERMAID_CLASSES[cls]}" for cls in used_classes)
    return "\n".join(lines) + "\n"


# -- rendering --------------------------------------------------------------------------------

_SVG_CACHE: OrderedDict[str, str] = OrderedDict()
_SVG_CACHE_SIZE = 64
_SVG_LOCK = threading.Lock()


def _render(source: str, fmt: str) -> bytes:
    """``source`` drawn by Graphviz's ``dot -T<fmt>`` through a pipe (no files, no cache)."""
    import graphviz  # the well-kept wrapper: finds `dot`, pipes, reports its errors

    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphRenderError(
            f"the Graphviz `dot` program is not on PATH. {INSTALL_HINT}"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise GraphRenderError(
            f"Graphviz `dot` failed (exit code {exc.returncode})"
            + (f": {detail[0]}" if detail else "")
        ) from None
    except OSError as exc:
        raise GraphRenderError(f"could not run Graphviz `dot`: {exc}") from None


def _svg(source: str) -> str:
    """The SVG document of ``source``, from the cache when this exact text was drawn before."""
    with _SVG_LOCK:
        svg = _SVG_CACHE.get(source)
        if svg is not None:
            _SVG_CACHE.move_to_end(source)
            return svg
    svg = _render(source, "svg").decode("utf-8")
    with _SVG_LOCK:
        _SVG_CACHE[source] = svg
        while len(_SVG_CACHE) > _SVG_CACHE_SIZE:
            _SVG_CACHE.popitem(last=False)
    return svg


def _svg_element(document: str) -> str:
    """The ``<svg>`` element alone: no XML declaration, doctype or generator comment."""
    start = document.find("<svg")
    return document[start:] if start >= 0 else document


# -- the public object ------------------------------------------------------------------------


class WorkflowGraph:
    """A workflow's steps and events, or one run of it, as a graph.

    Shows itself inline as SVG in a notebook. ``source`` is the DOT text, ``to_mermaid()`` the
    Mermaid text, ``save(path)`` writes ``.svg``, ``.png``, ``.dot`` or ``.gv``.
    """

    def __init__(
        self,
        name: str,
        nodes: Iterable[_Node],
        edges: Iterable[_Edge],
        *,
        caption: str = "",
        run: str | None = None,
    ) -> None:
        self._name = name
        self._nodes = tuple(nodes)
        self._edges = tuple(edges)
        self._caption = caption or name
        self._run = run
        self._source: str | None = None

    @classmethod
    def of_workflow(cls, workflow: Workflow | type[Workflow]) -> WorkflowGraph:
        """The static graph of a workflow (an instance or the class)."""
        from .workflow import Workflow

        klass = workflow if isinstance(workflow, type) else type(workflow)
        if not issubclass(klass, Workflow):
            raise TypeError(f"expected a Workflow or Workflow subclass, got {workflow!r}")
        model = _model_of(klass)
        return cls(model.name, model.nodes, model.edges)

    @classmethod
    def of_run(cls, handler: WorkflowHandler) -> WorkflowGraph:
        """The graph of a run so far: runs and time per step, counts on the edges, the running
        step highlighted, a failed step with its error, steps never reached dimmed."""
        model = _model_of(type(handler.ctx.workflow))
        stats = handler.stats()
        nodes, edges = _overlay_run(model, stats)
        caption = f"{model.name} · run {stats.run_id} · {stats.status}"
        return cls(model.name, nodes, edges, caption=caption, run=stats.run_id)

    # -- texts ------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The DOT text (the same workflow always gives the same text)."""
        if self._source is None:
            self._source = _to_dot(self._name, self._caption, self._nodes, self._edges)
        return self._source

    def to_mermaid(self) -> str:
        """Mermaid flowchart text, for GitHub Markdown or a JupyterLab Markdown cell."""
        return _to_mermaid(self._nodes, self._edges)

    def to_svg(self) -> str:
        """The SVG document; raises ``GraphRenderError`` when Graphviz cannot draw it."""
        return _svg(self.source)

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph to ``path``; its suffix picks the format: ``.svg``, ``.png`` (both
        need Graphviz's ``dot``), ``.dot`` or ``.gv`` (DOT text). Returns the path."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in SAVE_SUFFIXES:
            raise ValueError(
                f"cannot save a graph as {target.name!r}: the file name must end in "
                f"{', '.join(SAVE_SUFFIXES[:-1])} or {SAVE_SUFFIXES[-1]}"
            )
        if suffix == ".svg":
            target.write_text(self.to_svg(), encoding="utf-8")
        elif suffix == ".png":
            target.write_bytes(_render(self.source, "png"))
        else:
            target.write_text(self.source, encoding="utf-8")
        return target

    # -- display ----------------------------------------------------------------------------

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        text = repr(self)
        wanted = _wants("image/svg+xml", include, exclude)
        if not wanted:
            return {"text/plain": text}
        try:
            return {"image/svg+xml": _svg_element(self.to_svg()), "text/plain": text}
        except Exception as exc:  # a display must never become a traceback
            return self._fallback_bundle(exc)

    def _repr_svg_(self) -> str | None:
        try:
            return _svg_element(self.to_svg())
        except Exception:
            return None

    def _fallback_bundle(self, error: BaseException) -> dict[str, str]:
        reason = str(error) if isinstance(error, GraphRenderError) else f"{error!r}"
        hint = f"Cannot draw this graph: {reason}"
        if INSTALL_HINT not in hint:
            hint += f" {INSTALL_HINT}"
        html = (
            f"<div><p>{_html(hint)}</p>"
            f"<pre style='font-size: 11px; max-height: 24em; overflow: auto'>"
            f"{_html(self.source)}</pre></div>"
        )
        return {"text/plain": f"{self!r}\n{hint}\n\n{self.source}", "text/html": html}

    def __repr__(self) -> str:
        steps = sum(1 for n in self._nodes if n.kind == "step")
        events = len(self._nodes) - steps
        what = self._name if self._run is None else f"run {self._run!r} of {self._name}"
        return f"<WorkflowGraph of {what}: {steps} steps, {events} event types>"


def _wants(mime: str, include: Iterable[str] | None, exclude: Iterable[str] | None) -> bool:
    if include is not None and mime not in include:
        return False
    return not (exclude is not None and mime in exclude)
