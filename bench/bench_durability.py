"""Durability modes and resume time, on SQLite.

1. The 500-step chain of ``bench/checkpoint.py`` (its ``our_chain``) with
   ``checkpoint=SQLiteStore(tmp)`` and ``durability="sync" | "async" | "exit"``, beside the same
   chain without a checkpoint and the bare SQLite commit floor (``checkpoint.run_floor``: an
   INSERT committed in WAL mode with synchronous=NORMAL), all measured in the same run. The
   figure is each mode's extra cost per step over the run without a checkpoint. A 1-step run
   in each mode gives the fixed cost of a run (lease, first and last record), and the
   marginal cost per step leaves it out. The database file exists before the timed runs (a
   first small run made it), as a store used before would. The chain's steps are quick Python,
   so in "async" they share records, one per ``writer.MAX_WAITING`` steps (the floor still
   commits one row per step): what "async" costs a run whose steps never wait.

2. Resume time: from the ``resume`` call to the first resumed step starting (the step records
   ``time.perf_counter()``), for a failed run with 100 and with 10,000 snapshots. "warm" passes
   a store that has already opened the file; "cold" a new ``SQLiteStore`` object, so opening
   (and checking) the file is part of it, as after a kernel restart.

Every variant runs in a fresh process per round and the variants take turns within a round, so
the noise of a shared machine hits them alike; a figure is the median over all rounds' samples,
and its spread (min and max of the samples) is printed beside it.

Run: python bench/bench_durability.py [--rounds 3] [--reps 5]
Prints JSON lines (bench/common.py's ``emit``), the last one a summary.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint as ckpt  # bench/checkpoint.py: the chain and the floor
import common as C

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

N = C.N_CKPT
MODES = ["sync", "async", "exit"]
CHAIN_VARIANTS = ["none", *MODES, "floor"]
FIXED_VARIANTS = [f"fixed/{mode}" for mode in ["none", *MODES]]
RESUME_SIZES = [100, 10_000]


# -- 1. the chain in each mode ------------------------------------------------------------------


def run_chain(variant, reps, tmp):
    import engines

    from notebook_workflows.checkpoint import SQLiteStore
    from notebook_workflows.serialization import register

    fixed = variant.startswith("fixed/")
    mode = variant.removeprefix("fixed/")
    steps = 1 if fixed else N
    workflow = ckpt.our_chain()
    if fixed:
        workflow = engines.chain_workflow(engines.load("notebook_workflows"), steps)
        event = type(workflow)._step_specs()["loop"].accepts[0]
        register(event, name="bench_durability:Loop1")

    async def main():
        samples = []
        for i in range(reps + 1):
            store = None
            if mode != "none":
                store = SQLiteStore(os.path.join(tmp, f"{mode}{i}.db"))
                await workflow.run(checkpoint=store, run_id="makes-the-file")
            gc.collect()
            start = time.perf_counter()
            durability = mode if store is not None else "sync"
            assert await workflow.run(checkpoint=store, durability=durability) == steps
            elapsed = time.perf_counter() - start
            if store is not None:
                info = next(info for info in store.runs() if info.run_id != "makes-the-file")
                assert info.status == "done"
                assert info.seq + 1 <= steps + 3 and (mode != "exit" or info.seq == 1)
                store.close()
            if i:
                samples.append(elapsed)
        return samples

    return asyncio.run(main())


# -- 2. resume time -----------------------------------------------------------------------------


class Hop(Event):
    i: int


class Hops(Workflow):
    """A chain whose step ``fail_at`` fails; the first step to start records when."""

    fail_at = None
    first_hop_at = None

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Hop:
        await ctx.store.set("n", ev.n)
        await ctx.store.set("total", 0)
        return Hop(i=0)

    @step
    async def hop(self, ctx: Context, ev: Hop) -> Hop | StopEvent:
        if self.first_hop_at is None:
            self.first_hop_at = time.perf_counter()
        if ev.i == self.fail_at:
            raise RuntimeError(f"hop {ev.i} failed")
        total = await ctx.store.get("total") + ev.i
        await ctx.store.set("total", total)
        if ev.i + 1 >= await ctx.store.get("n"):
            return StopEvent(result=total)
        return Hop(i=ev.i + 1)


async def failed_run(path, snapshots):
    """A run in ``path`` with ``snapshots`` snapshots whose last step failed: the start, the
    first step, ``snapshots - 3`` hops and the end."""
    from notebook_workflows.checkpoint import SQLiteStore

    workflow = Hops()
    workflow.fail_at = snapshots - 3
    with SQLiteStore(path) as store:
        with contextlib.suppress(RuntimeError):  # the last step fails, as it should
            await workflow.run(checkpoint=store, run_id="long", n=snapshots)
        info = store.run_info("long")
        assert info.status == "failed" and info.seq + 1 == snapshots, info


async def time_resume(path, warm):
    """Seconds from ``resume`` to the first resumed step starting; the run then finishes."""
    from notebook_workflows.checkpoint import SQLiteStore

    store = SQLiteStore(path)
    if warm:
        store.runs()
    workflow = Hops()
    gc.collect()
    start = time.perf_counter()
    handler = workflow.resume("long", store=store)
    await handler
    elapsed = workflow.first_hop_at - start
    store.close()
    return elapsed


def run_resume(snapshots, reps, tmp):
    async def main():
        original = os.path.join(tmp, "original.db")
        await failed_run(original, snapshots)
        out = {"warm": [], "cold": []}
        for i in range(reps + 1):
            for kind in ("warm", "cold"):
                copy = os.path.join(tmp, f"{kind}{i}.db")
                shutil.copyfile(original, copy)  # closed: the log is folded into the file
                elapsed = await time_resume(copy, kind == "warm")
                if i:
                    out[kind].append(elapsed)
        return out

    return asyncio.run(main())


# -- orchestration ------------------------------------------------------------------------------


def child(variant, reps):
    with tempfile.TemporaryDirectory() as tmp:
        if variant == "floor":
            return ckpt.run_floor(reps, tmp)
        if variant.startswith("resume/"):
            return run_resume(int(variant.split("/")[1]), reps, tmp)
        return run_chain(variant, reps, tmp)


def in_child(variant, reps):
    proc = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--reps", str(reps)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        print(f"!! {variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spread(samples, scale):
    return [round(min(samples) * scale, 2), round(max(samples) * scale, 2)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.reps)))
        return

    version = ckpt.VERSIONS["ours"][1]
    resume_variants = [f"resume/{n}" for n in RESUME_SIZES]
    variants = CHAIN_VARIANTS + FIXED_VARIANTS + resume_variants
    samples = {variant: [] for variant in CHAIN_VARIANTS + FIXED_VARIANTS}
    resumes = {variant: {"warm": [], "cold": []} for variant in resume_variants}
    for round_no in range(args.rounds):
        shift = round_no % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            got = in_child(variant, args.reps)
            if got is None:
                continue
            if variant in resumes:
                for kind, values in got.items():
                    resumes[variant][kind].extend(values)
            else:
                samples[variant].extend(got)

    per_step = {v: statistics.median(s) / N * 1e6 for v, s in samples.items() if s}
    fixed_ms = {
        v.split("/")[1]: statistics.median(s) * 1e3
        for v, s in samples.items()
        if s and v.startswith("fixed/")
    }
    for variant, runs in samples.items():
        if not runs:
            continue
        if variant.startswith("fixed/"):
            mode = variant.split("/")[1]
            C.emit(
                "notebook_workflows",
                version,
                f"C_ckpt_durability 1-step run, durability={mode}",
                runs,
                min_max_ms=spread(runs, 1e3),
            )
            continue
        engine = "sqlite3-floor" if variant == "floor" else "notebook_workflows"
        label = "WAL,NORMAL" if variant == "floor" else f"durability={variant}"
        extra = {}
        if variant != "floor" and variant != "none" and "none" in per_step:
            extra["extra_us_per_step"] = round(per_step[variant] - per_step["none"], 2)
        C.emit(
            engine,
            version if engine == "notebook_workflows" else ckpt.VERSIONS["sqlite3-floor"][1],
            f"C_ckpt_durability {label}",
            runs,
            n=N,
            per_step_us=round(per_step[variant], 2),
            per_step_us_min_max=spread(runs, 1e6 / N),
            **extra,
        )
    resume_ms = {}
    for variant, kinds in resumes.items():
        for kind, values in kinds.items():
            if not values:
                continue
            resume_ms[f"{variant.split('/')[1]}/{kind}"] = statistics.median(values) * 1e3
            C.emit(
                "notebook_workflows",
                version,
                f"resume_to_first_step {variant.split('/')[1]} snapshots, {kind} store",
                values,
                min_max_ms=spread(values, 1e3),
            )

    summary = {"engine": "summary", "workload": "C_ckpt_durability"}
    floor = per_step.get("floor")
    if floor:
        summary["floor_us_per_step"] = round(floor, 2)
    for variant in MODES:
        if variant in per_step and "none" in per_step:
            extra = per_step[variant] - per_step["none"]
            summary[f"{variant} extra_us_per_step"] = round(extra, 2)
            if floor:
                summary[f"{variant} extra_over_floor"] = round(extra / floor, 2)
            if variant in fixed_ms and "none" in fixed_ms:
                run_fixed = fixed_ms[variant] - fixed_ms["none"]
                summary[f"{variant} marginal_us_per_step"] = round(extra - run_fixed * 1e3 / N, 2)
    for mode in MODES:
        if mode in fixed_ms and "none" in fixed_ms:
            summary[f"{mode} fixed_ms_per_run"] = round(fixed_ms[mode] - fixed_ms["none"], 2)
    for key, value in resume_ms.items():
        summary[f"resume_ms {key}"] = round(value, 2)
    for kind in ("warm", "cold"):
        small, big = resume_ms.get(f"100/{kind}"), resume_ms.get(f"10000/{kind}")
        if small and big:
            summary[f"resume_10000_over_100 {kind}"] = round(big / small, 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
