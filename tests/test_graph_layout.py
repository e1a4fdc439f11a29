"""How a big graph is laid out: loops do not move ranks, branches sit side by side, an early
exit stops where it happens, and a wide graph can run left to right.

The DOT text is checked for the attributes that say so; where Graphviz is installed, the
positions ``dot`` computes (its ``plain`` output) are checked too.
"""

from __future__ import annotations

import shutil

import pytest
from layout_flows import Orders

from notebook_workflows.graph import WorkflowGraph
from notebook_workflows.notebook.graph import _render

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")

EV = "event:layout_flows."


def edge_line(source: str, src: str, dst: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip().startswith(f'"{src}" -> "{dst}"')]
    assert len(lines) == 1, (src, dst)
    return lines[0]


def positions(graph: WorkflowGraph) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y) as ``dot`` places it (y grows upwards)."""
    out = {}
    for line in _render(graph.source, "plain").decode().splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            out[parts[1].strip('"')] = (float(parts[2]), float(parts[3]))
    return out


def test_only_the_edge_that_closes_the_retry_loop_leaves_ranks_alone() -> None:
    source = Orders().draw().source
    assert "constraint=false" in edge_line(source, f"{EV}Retry", "step:classify")
    assert source.count("constraint=false") == 1


def test_branches_of_one_decision_and_their_steps_share_a_rank() -> None:
    source = Orders().draw().source
    assert f'{{rank=same; "{EV}Small"; "{EV}Large"; "{EV}Foreign"}}' in source
    assert '{rank=same; "step:price_small"; "step:price_large"; "step:convert"}' in source
    assert "rank=sink" not in source


def test_a_stop_event_of_several_steps_is_drawn_under_each() -> None:
    source = Orders().draw().source
    stop = "event:notebook_workflows.events.StopEvent"
    for producer in ("intake", "decide", "ship"):
        edge_line(source, f"step:{producer}", f"{stop}@step:{producer}")
    assert f'"{stop}" [' not in source  # no shared node at the bottom


def test_a_run_graph_keeps_the_counts_on_each_stop_copy() -> None:
    from notebook_workflows.notebook.graph_model import _Edge, _Node
    from notebook_workflows.notebook.graph_text import split_stops

    nodes = (_Node("step:a", "step", "a"), _Node("step:b", "step", "b"), _Node("s", "stop", "S"))
    edges = (_Edge("step:a", "s", 2), _Edge("step:b", "s", 0))
    new_nodes, new_edges = split_stops(nodes, edges)
    assert [(n.id, n.state) for n in new_nodes if n.kind == "stop"] == [
        ("s@step:a", ""),
        ("s@step:b", "unreached"),
    ]
    assert [(e.dst, e.count) for e in new_edges] == [("s@step:a", 2), ("s@step:b", 0)]


def test_left_to_right_is_a_choice_and_nothing_else_is() -> None:
    wide = WorkflowGraph.of_workflow(Orders, direction="LR")
    assert "rankdir=LR" in wide.source and "rankdir=TB" in Orders().draw().source
    assert wide.to_mermaid().startswith("flowchart LR")
    with pytest.raises(ValueError, match="'TB' or 'LR'"):
        WorkflowGraph.of_workflow(Orders, direction="sideways")


@needs_dot
def test_dot_places_branches_level_and_the_loop_above_its_check() -> None:
    at = positions(Orders().draw())
    y = {key: xy[1] for key, xy in at.items()}
    assert y[f"{EV}Small"] == y[f"{EV}Large"] == y[f"{EV}Foreign"]
    assert y["step:price_small"] == y["step:price_large"] == y["step:convert"]
    assert y["step:intake"] > y["step:classify"] > y["step:check"] > y["step:ship"]
    assert y[f"{EV}Retry"] == y[f"{EV}Checked"]  # the loop's event stays by its sibling
    stop = "event:notebook_workflows.events.StopEvent"
    assert y[f"{stop}@step:intake"] == y[f"{EV}Parsed"]  # the early exit, right under intake


@needs_dot
def test_dot_lays_a_wide_graph_left_to_right() -> None:
    at = positions(WorkflowGraph.of_workflow(Orders, direction="LR"))
    x = {key: xy[0] for key, xy in at.items()}
    assert x["step:intake"] < x["step:classify"] < x["step:check"] < x["step:ship"]
    assert x[f"{EV}Small"] == x[f"{EV}Large"] == x[f"{EV}Foreign"]
