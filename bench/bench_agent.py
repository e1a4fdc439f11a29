"""One agent turn of LlamaIndex's ``FunctionAgent``, on llama-index-workflows and on ours.

A turn is ``await agent.run(user_msg=...)`` to its result, for a ``FunctionAgent`` with one
tool and the scripted ``MockFunctionCallingLLM`` (no network): the LLM asks for the tool, the
tool runs, the LLM answers (two LLM calls, one tool call, a fresh context each turn). Variants:

- ``peer``: llama-index-workflows as installed (the ``workflows`` package);
- ``ours``: notebook_workflows, switched in by ``notebook_workflows.install_as_workflows()``
  before anything imports ``llama_index`` or ``workflows``;
- ``ours+memory``, ``ours+sqlite``: ours with ``agent.run(..., checkpoint=store)``, a
  ``MemoryStore`` or a ``SQLiteStore`` in a temporary directory (one store per process, a new
  run each turn, ``durability="sync"``): what durability costs an agent turn.

Each variant runs in a fresh process per round (the switch is per process); the variants take
turns within a round, the order rotating each round, so the noise of a shared machine hits them
alike. A process makes the agent, runs warm-up turns, collects garbage once, then times
``--turns`` turns back to back (the collector's own passes fall within turns, as in use; the
mean per turn, beside the median, counts them). A figure is the median over rounds of each
round's median per turn; ``peer_over_ours`` in the summary line is the peer's over ours.

Run: python bench/bench_agent.py [--rounds 3] [--turns 200] [--warmup 20]
Prints JSON lines (bench/common.py's ``emit``), the last one a summary.
"""

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

VARIANTS = ["peer", "ours", "ours+memory", "ours+sqlite"]
WORKLOAD = "agent_turn FunctionAgent, mock LLM, 1 tool"


def add(a: int = 2, b: int = 3) -> int:
    """Add two numbers."""
    return a + b


def child(variant: str, turns: int, warmup: int) -> dict:
    """Time ``turns`` turns in this process; the engine is chosen before llama_index loads."""
    if variant != "peer":
        import notebook_workflows

        notebook_workflows.install_as_workflows()
    from importlib.metadata import version

    import workflows
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    assert workflows.Workflow.__module__.startswith("notebook_workflows") == (variant != "peer")
    agent = FunctionAgent(tools=[add], llm=MockFunctionCallingLLM(), system_prompt="calc")
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {}
        if variant == "ours+memory":
            from notebook_workflows.checkpoint import MemoryStore

            kwargs["checkpoint"] = MemoryStore()
        elif variant == "ours+sqlite":
            from notebook_workflows.checkpoint import SQLiteStore

            kwargs["checkpoint"] = SQLiteStore(os.path.join(tmp, "agent.db"))

        async def main() -> list[float]:
            samples = []
            for i in range(warmup + turns):
                if i == warmup:
                    gc.collect()  # once: collecting before every turn would take longer than it
                start = time.perf_counter()
                result = await agent.run(user_msg="what is 2+3?", **kwargs)
                elapsed = time.perf_counter() - start
                (call,) = result.tool_calls  # the mock asked for the tool once
                assert call.tool_output.content == "5"
                if i >= warmup:
                    samples.append(elapsed)
            return samples

        samples = asyncio.run(main())
        store = kwargs.get("checkpoint")
        if store is not None:  # every turn was recorded, to its end
            runs = list(store.runs())
            assert len(runs) == warmup + turns and all(r.status == "done" for r in runs)
            store.close()
    package = "llama-index-workflows" if variant == "peer" else "notebook_workflows"
    return {"samples": samples, "version": version(package)}


def in_child(variant: str, turns: int, warmup: int) -> dict | None:
    argv = [sys.executable, __file__, "--child", variant, "--turns", str(turns)]
    proc = subprocess.run(
        [*argv, "--warmup", str(warmup)], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        print(f"!! {variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.turns, args.warmup)))
        return

    round_medians = {variant: [] for variant in VARIANTS}
    round_means = {variant: [] for variant in VARIANTS}
    versions = {}
    for round_no in range(args.rounds):
        shift = round_no % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            got = in_child(variant, args.turns, args.warmup)
            if got is not None:
                round_medians[variant].append(statistics.median(got["samples"]))
                round_means[variant].append(statistics.mean(got["samples"]))
                versions[variant] = got["version"]

    figure = {}
    for variant, medians in round_medians.items():
        if not medians:
            continue
        figure[variant] = statistics.median(medians) * 1e3
        store = {"ours+memory": "MemoryStore", "ours+sqlite": "SQLiteStore"}.get(variant)
        C.emit(
            "llama-index-workflows" if variant == "peer" else "notebook_workflows",
            versions[variant],
            WORKLOAD + (f", checkpoint={store}" if store else ""),
            medians,  # each round's median per turn: median_ms is the median of them
            mean_ms=round(statistics.median(round_means[variant]) * 1e3, 3),
            turns_per_round=args.turns,
            warmup_turns=args.warmup,
        )
    summary = {"engine": "summary", "workload": "agent_turn"}
    summary.update({f"{v} median_ms": round(ms, 3) for v, ms in figure.items()})
    if "peer" in figure and "ours" in figure:
        summary["peer_over_ours"] = round(figure["peer"] / figure["ours"], 2)
    for variant in ("ours+memory", "ours+sqlite"):
        if variant in figure and "ours" in figure:
            summary[f"{variant} extra_ms"] = round(figure[variant] - figure["ours"], 3)
            summary[f"{variant} over_ours"] = round(figure[variant] / figure["ours"], 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
