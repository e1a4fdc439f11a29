"""The two printers of a graph model: Graphviz DOT and Mermaid.

- **Layout that follows the flow.** Edges that close a cycle (a retry loop) are found by a
  depth-first walk from the start events and drawn with ``constraint=false``, so a loop back
  to an early step never pulls that step down; events that the same steps alone produce (the
  branches of one decision) share a rank, side by side, and so do the steps that take them; a
  stop event that several steps produce is drawn under each of them, so an early exit reads
  where it happens instead of as a long edge to the bottom. ``direction="LR"`` lays a wide
  graph out left to right.
- **Readable in light and dark themes.** The background is transparent; every text sits on a
  fill of its own: nodes have an explicit light fill and a dark font colour, and the edge counts
  and the caption sit on small light chips, so a picture shown as an image (which no page style
  reaches) reads at a contrast of 4.5:1 or more on any background. Where the SVG is inline (the
  run monitor, the run browser), ``dark_theme_css`` repaints it for JupyterLab's dark theme:
  every colour of the light palette is unique to its role, so the stylesheet maps each one to a
  dark counterpart by attribute selector, with no change to the drawing itself.
- **Deterministic text.** The same model gives the same DOT byte for byte, so a rendered SVG can
  be cached by its DOT text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .graph_model import _Edge, _Node

_FONT = "Helvetica,Arial,sans-serif"

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
        "fontcolor": '"#5f6873"',
        "penwidth": "1",
    },
    "differs": {  # RunDiff: this step's calls differ between two runs
        "fillcolor": '"#ffe8b3"',
        "color": '"#b35c00"',
        "fontcolor": '"#3d2000"',
        "penwidth": "2.6",
    },
    "replayed": {  # a rerun replayed its recorded calls: it was not called
        "fillcolor": '"#eef1f5"',
        "color": '"#7d8ea6"',
        "fontcolor": '"#3b4757"',
        "penwidth": "1.2",
    },
}
# Texts outside the nodes sit on chips of their own (see the module docstring).
_CHIP = "#edf0f4"
_CHIP_TEXT = "#2f5597"  # an edge's count
_CHIP_HUMAN = "#7a5200"  # the "human" edge's word
_CAPTION = "#4b5561"
_EDGE_ACTIVE: _Attrs = {"color": '"#4f7fcc"', "penwidth": "1.6"}
_EDGE_IDLE: _Attrs = {"color": '"#b8bec6"', "style": "dashed"}
_EDGE_HUMAN: _Attrs = {
    "style": "dashed",
    "color": '"#c48a0f"',
    "arrowhead": "empty",
    "label": f'<<TABLE BORDER="0" CELLPADDING="1" CELLSPACING="0" BGCOLOR="{_CHIP}" '
    f'STYLE="rounded"><TR><TD><FONT COLOR="{_CHIP_HUMAN}">human</FONT></TD></TR></TABLE>>',
}

# The light palette's colours, each unique to its role, and their dark-theme counterparts.
DARK_COLOURS: dict[str, str] = {
    # step, event, start, stop, human (and waiting): fill, line, text
    "#e3edfb": "#1c2d47", "#4a78c2": "#6f9be0", "#14253d": "#e3edfb",
    "#f3f4f6": "#262a30", "#9aa3ad": "#7b8591", "#2b2f33": "#e6e8eb",
    "#dcf2e1": "#163823", "#2f8a46": "#4caf6e", "#123d1f": "#d5f2de",
    "#e9e3f7": "#2a2145", "#6a55b0": "#9d8ae0", "#281c4d": "#e9e3f7",
    "#fff1cc": "#3a2c07", "#c48a0f": "#d9a53a", "#3d2c05": "#fff1cc",
    # running, failed, unreached, differs, replayed
    "#ffe1bf": "#4a2508", "#e8590c": "#ff8c3a", "#4a1d03": "#ffe1bf",
    "#ffd9d9": "#4a1515", "#c92a2a": "#ff6b6b", "#5c0f0f": "#ffd9d9",
    "#f1f2f4": "#1a1c1f", "#c3c8ce": "#4b525a", "#5f6873": "#9aa3ad",
    "#ffe8b3": "#47300a", "#b35c00": "#e39a3b", "#3d2000": "#ffe8b3",
    "#eef1f5": "#20262e", "#7d8ea6": "#8597b0", "#3b4757": "#c9d3e0",
    # edges, chips and the caption
    "#4f7fcc": "#79a6ea", "#b8bec6": "#5b636c", "#8c949e": "#7b8591",
    _CHIP: "#262b33", _CHIP_TEXT: "#a9c6f5", _CHIP_HUMAN: "#f0c060", _CAPTION: "#c2c9d1",
}  # fmt: skip


def dark_theme_css(scope: str) -> str:
    """CSS that repaints inline graph SVGs under ``scope`` (a selector) in JupyterLab's dark
    theme: each colour of the light palette, as a fill or a line, becomes its dark
    counterpart. Graphviz writes colours as given, so an attribute selector finds them."""
    dark = 'body[data-jp-theme-light="false"]'
    rules = []
    for light, colour in DARK_COLOURS.items():
        rules.append(f'{dark} {scope} [fill="{light}"] {{ fill: {colour}; }}')
        rules.append(f'{dark} {scope} [stroke="{light}"] {{ stroke: {colour}; }}')
    return "\n".join(rules)


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
    if state in ("waiting", "unreached", "replayed"):
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
    label = f", label={_chip(str(edge.count), _CHIP_TEXT)}" if edge.count and edge.count > 0 else ""
    return f" [{_edge_style(edge.kind, bool(edge.count))}{label}]"


def _chip(text: str, colour: str, padding: int = 2) -> str:
    """An HTML-like label: ``text`` on a small light chip, readable on any background."""
    return (
        f'<<TABLE BORDER="0" CELLPADDING="{padding}" CELLSPACING="0" BGCOLOR="{_CHIP}" '
        'STYLE="rounded">'
        f'<TR><TD><FONT COLOR="{colour}">{_html(text)}</FONT></TD></TR></TABLE>>'
    )


DIRECTIONS = ("TB", "LR")


def back_edges(nodes: Iterable[_Node], edges: Iterable[_Edge]) -> set[tuple[str, str]]:
    """The edges that close a cycle (a retry loop, a step that feeds itself), found by a
    depth-first walk from the start events in definition order. Ranking on them would pull the
    loop's first nodes down below its last ones; they are drawn without constraining ranks."""
    order = [n.id for n in nodes]
    out: dict[str, list[str]] = {node_id: [] for node_id in order}
    for edge in edges:
        if edge.kind != "human" and edge.src in out and edge.dst in out:
            out[edge.src].append(edge.dst)
    kinds = {n.id: n.kind for n in nodes}
    roots = [i for i in order if kinds[i] == "start"] + order
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    found: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                found.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))
    return found


def sibling_groups(nodes: Iterable[_Node], edges: Iterable[_Edge]) -> list[list[str]]:
    """The branches of one decision, each kept on one rank, side by side: event nodes that the
    same steps alone produce, and then the steps that accept nothing but those events."""
    producers: dict[str, set[str]] = {}
    accepts: dict[str, set[str]] = {}
    for edge in edges:
        if edge.kind == "route" and edge.src.startswith("step:"):
            producers.setdefault(edge.dst, set()).add(edge.src)
        elif edge.kind == "route" and edge.dst.startswith("step:"):
            accepts.setdefault(edge.dst, set()).add(edge.src)
    groups: dict[frozenset[str], list[str]] = {}
    for node in nodes:
        if node.kind in ("event", "human") and node.id in producers:
            groups.setdefault(frozenset(producers[node.id]), []).append(node.id)
    found = [ids for ids in groups.values() if len(ids) > 1]
    for ids in list(found):
        branch = set(ids)
        steps = [
            n.id
            for n in nodes
            if n.kind == "step" and accepts.get(n.id) and accepts[n.id] <= branch
        ]
        if len(steps) > 1:
            found.append(steps)
    return found


def split_stops(
    nodes: Iterable[_Node], edges: Iterable[_Edge]
) -> tuple[tuple[_Node, ...], tuple[_Edge, ...]]:
    """A stop event produced by several steps drawn once under each of them: an early exit then
    reads where it happens, instead of as a long edge down to one node at the bottom."""
    nodes, edges = tuple(nodes), tuple(edges)
    stops = {n.id: n for n in nodes if n.kind == "stop"}
    into: dict[str, list[_Edge]] = {}
    for edge in edges:
        if edge.dst in stops:
            into.setdefault(edge.dst, []).append(edge)
    split = {stop for stop, ins in into.items() if len(ins) > 1}
    if not split:
        return nodes, edges
    copies: dict[str, list[_Node]] = {}
    new_edges: list[_Edge] = []
    for edge in edges:
        if edge.dst in split:
            node = stops[edge.dst]
            copy_id = f"{edge.dst}@{edge.src}"
            state = "unreached" if edge.count == 0 else node.state
            copies.setdefault(edge.dst, []).append(
                _Node(copy_id, node.kind, node.title, node.notes, state)
            )
            new_edges.append(_Edge(edge.src, copy_id, edge.count, edge.kind))
        else:
            new_edges.append(edge)
    new_nodes: list[_Node] = []
    for node in nodes:
        new_nodes.extend(copies.get(node.id, [node]) if node.id in split else [node])
    return tuple(new_nodes), tuple(new_edges)


def _to_dot(
    name: str,
    caption: str,
    nodes: Iterable[_Node],
    edges: Iterable[_Edge],
    direction: str = "TB",
) -> str:
    nodes, edges = split_stops(nodes, edges)
    wide = direction == "LR"
    lines = [
        f"digraph {_dot_quote(name)} {{",
        f'  graph [rankdir={direction}, bgcolor="transparent", fontname="{_FONT}", fontsize=11, '
        f"labelloc=t, labeljust=l, nodesep={0.22 if wide else 0.3}, "
        f"ranksep={0.4 if wide else 0.32}, pad=0.12, newrank=true, "
        f"label={_chip(caption, _CAPTION, 3)}]",
        f'  node [fontname="{_FONT}", fontsize=11, margin="0.14,0.05", height=0.32, penwidth=1.2]',
        f'  edge [fontname="{_FONT}", fontsize=9, color="#8c949e", arrowsize=0.7]',
    ]
    starts = [_dot_quote(n.id) for n in nodes if n.kind == "start"]
    if starts:
        lines.append(f"  {{rank=source; {'; '.join(starts)}}}")
    for group in sibling_groups(nodes, edges):
        lines.append(f"  {{rank=same; {'; '.join(map(_dot_quote, group))}}}")
    lines.extend(f"  {_dot_quote(n.id)} [{_node_attrs(n)}]" for n in nodes)
    loops = back_edges(nodes, edges)
    for e in edges:
        attrs = _edge_attrs(e)
        if (e.src, e.dst) in loops:
            attrs = f"{attrs[:-1]}, constraint=false]" if attrs else " [constraint=false]"
        lines.append(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)}{attrs}")
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
    "replayed": "fill:#eef1f5,stroke:#7d8ea6,color:#3b4757,stroke-dasharray:4 3",
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


def _to_mermaid(nodes: Iterable[_Node], edges: Iterable[_Edge], direction: str = "TB") -> str:
    nodes = tuple(nodes)
    ids = _mermaid_ids(nodes)
    lines = [f"flowchart {direction}"]
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
        if edge.count and edge.count > 0:
            arrow += f'|"{edge.count}"|'
        lines.append(f"    {ids[edge.src]} {arrow} {ids[edge.dst]}")
    lines.extend(f"    classDef {cls} {_MERMAID_CLASSES[cls]}" for cls in used_classes)
    return "\n".join(lines) + "\n"
