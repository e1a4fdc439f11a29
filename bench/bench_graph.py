"""How fast a 50-step workflow is drawn: the static graph and the graph of a finished run.

Each figure is the median of 7 timed runs after one warm-up, printed as one JSON line. The SVG
figures call ``dot`` every time (the SVG cache is bypassed), so they are what a redraw costs when
the run moved; ``run_graph_source_50_steps`` is the part a live monitor pays on every tick.

Run: .venv/bin/python bench/bench_graph.py [--steps 50] [--reps 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.graph import WorkflowGraph
from notebook_workflows.notebook.graph import _render  # the drawing alone, without display

LIMIT_MS = 200.0  # the budget for drawing a 50-step workflow


def make_workflow(n: int) -> type[Workflow]:
    """A chain of ``n`` steps with side routes: step i takes E<i> and returns E<i+1>; every
    seventh step may also return a Skip<i> that the step three further on accepts; every tenth
    has 4 workers and a retry policy. A run walks the chain once."""
    chain: list[type[Event]] = [StartEvent]
    chain += [type(f"E{i}", (Event,), {"__module__": __name__}) for i in range(1, n)]
    chain.append(StopEvent)
    skips = {i: type(f"Skip{i}", (Event,), {"__module__": __name__}) for i in range(1, n - 3, 7)}
    namespace: dict[str, Any] = {"__module__": __name__}
    for i in range(n):
        accepts: Any = chain[i]
        if i - 3 in skips:
            accepts = accepts | skips[i - 3]
        produces: Any = chain[i + 1] | skips[i] if i in skips else chain[i + 1]
        namespace[f"step_{i:02d}"] = _chain_step(i, chain[i + 1], accepts, produces)
    return type(f"Chain{n}", (Workflow,), namespace)


def _chain_step(i: int, out: type[Event], accepts: Any, produces: Any) -> Any:
    async def run_step(self: Workflow, ev: Event) -> Event:
        return out()

    run_step.__name__ = run_step.__qualname__ = f"step_{i:02d}"
    run_step.__annotations__ = {"ev": accepts, "return": produces}
    if i % 10 == 0:
        policy = ConstantDelayRetryPolicy(delay=0.1, maximum_attempts=3)
        return step(num_workers=4, retry_policy=policy)(run_step)
    return step(run_step)


def measure(name: str, fn: Callable[[], object], reps: int) -> dict[str, Any]:
    fn()  # warm-up: imports, first fork of dot
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "workload": name,
        "median_ms": round(statistics.median(samples), 3),
        "samples_ms": [round(s, 3) for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("dot") is None:
        sys.exit("bench_graph needs the Graphviz `dot` program (apt-get install graphviz)")

    workflow = make_workflow(args.steps)

    async def finished_run() -> Any:
        handler = workflow().run()
        await handler
        return handler

    handler = asyncio.run(finished_run())
    n = args.steps
    figures = [
        measure(
            f"graph_render_{n}_steps",
            lambda: _render(WorkflowGraph.of_workflow(workflow).source, "svg"),
            args.reps,
        ),
        measure(
            f"run_graph_render_{n}_steps",
            lambda: _render(WorkflowGraph.of_run(handler).source, "svg"),
            args.reps,
        ),
        measure(
            f"run_graph_source_{n}_steps",
            lambda: WorkflowGraph.of_run(handler).source,
            args.reps,
        ),
    ]
    for figure in figures:
        if figure["workload"].startswith(("graph_render", "run_graph_render")):
            figure["limit_ms"] = LIMIT_MS
        print(json.dumps(figure))


if __name__ == "__main__":
    main()
