"""The benchmark workloads, written once against the LlamaIndex Workflows model and run on
each engine that implements it: code for that model ports by changing the import line, so the
same lines measure both. Run: python bench/engines.py notebook_workflows A_chain

No ``from __future__ import annotations`` here on purpose: the workflows are built inside
functions, and real annotation objects let every engine read their signatures.
"""

import asyncio
import gc
import importlib
import importlib.metadata
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

ENGINES = {
    # engine name: (module with the names, module of the events, keyword arguments of a workflow)
    "notebook_workflows": ("notebook_workflows", "notebook_workflows", {}),
    # llama-index-workflows has a default timeout of 45 s: switch it off like ours
    "llama-index-workflows": ("workflows", "workflows.events", {"timeout": None}),
}


def load(engine):
    module, events_module, kwargs = ENGINES[engine]
    m = importlib.import_module(module)
    ev = importlib.import_module(events_module)
    dist = "notebook-workflows" if engine == "notebook_workflows" else engine
    return SimpleNamespace(
        Workflow=m.Workflow,
        Context=m.Context,
        step=m.step,
        Event=ev.Event,
        StartEvent=ev.StartEvent,
        StopEvent=ev.StopEvent,
        kwargs=kwargs,
        version=importlib.metadata.version(dist),
    )


def chain_workflow(api, n):
    Context, Event, StartEvent, StopEvent, step = (
        api.Context,
        api.Event,
        api.StartEvent,
        api.StopEvent,
        api.step,
    )

    class Loop(Event):
        i: int

    class Chain(api.Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Loop:
            await ctx.store.set("counter", 0)
            return Loop(i=0)

        @step
        async def loop(self, ctx: Context, ev: Loop) -> Loop | StopEvent:
            count = await ctx.store.get("counter")
            await ctx.store.set("counter", count + 1)
            if ev.i + 1 >= n:
                return StopEvent(result=count + 1)
            return Loop(i=ev.i + 1)

    return Chain(**api.kwargs)


def fan_workflow(api, width, sleep=0.0):
    Context, Event, StartEvent, StopEvent, step = (
        api.Context,
        api.Event,
        api.StartEvent,
        api.StopEvent,
        api.step,
    )

    class Work(Event):
        i: int

    class Res(Event):
        v: int

    class Fan(api.Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Work | None:
            for i in range(width):
                ctx.send_event(Work(i=i))
            return None

        @step(num_workers=width)
        async def worker(self, ev: Work) -> Res:
            if sleep:
                await asyncio.sleep(sleep)
            return Res(v=ev.i * 2)

        @step
        async def collect(self, ctx: Context, ev: Res) -> StopEvent | None:
            got = ctx.collect_events(ev, [Res] * width)
            if got is None:
                return None
            return StopEvent(result=sum(e.v for e in got))

    return Fan(**api.kwargs)


def store_workflow(api):
    Context, StartEvent, StopEvent, step = api.Context, api.StartEvent, api.StopEvent, api.step

    class SetItems(api.Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.store.set("items", ev.payload)
            return StopEvent(result=len(ev.payload))

    return SetItems(**api.kwargs)


async def snapshot_figures(api, reps):
    """D: a store of 10,000 small dicts: ``to_dict`` + ``json.dumps``, then ``json.loads`` +
    ``from_dict`` + reading the key back; the parts are timed apart as well."""
    items = C.make_items()
    workflow = store_workflow(api)
    handler = workflow.run(payload=items)
    await handler
    ctx = handler.ctx
    parts = {"to_dict": [], "dumps": [], "loads": [], "from_dict": [], "get": []}
    for rep in range(reps + 1):
        gc.collect()
        t0 = time.perf_counter()
        data = ctx.to_dict()
        t1 = time.perf_counter()
        text = json.dumps(data)
        t2 = time.perf_counter()
        loaded = json.loads(text)
        t3 = time.perf_counter()
        restored = api.Context.from_dict(workflow, loaded)
        t4 = time.perf_counter()
        got = await restored.store.get("items")
        t5 = time.perf_counter()
        assert got["k00042"]["id"] == 42 and len(got) == C.N_ITEMS
        if rep:  # the first round warms up
            for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                parts[name].append(dt)
    # validation at set follows the value set, not the store: a small set beside 1 MB
    extra_set = {}
    for name, context in (("empty_store", api.Context(workflow)), ("1MB_store", ctx)):
        n = 2000
        t0 = time.perf_counter()
        for i in range(n):
            await context.store.set("small", {"n": i, "tags": ["a"]})
        extra_set[f"set_small_in_{name}_us"] = round((time.perf_counter() - t0) / n * 1e6, 2)
    save = [a + b for a, b in zip(parts["to_dict"], parts["dumps"], strict=True)]
    load = [sum(t) for t in zip(parts["loads"], parts["from_dict"], parts["get"], strict=True)]
    extra = {f"{k}_ms": round(statistics.median(v) * 1e3, 2) for k, v in parts.items()}
    return save, load, len(text), {**extra, **extra_set}


WORKLOADS = ["A_chain", "B_fanout", "B_fanout_800", "B2_fanout_sleep", "D_snapshot"]


async def main():
    engine = sys.argv.pop(1)
    a = C.args(WORKLOADS)
    api = load(engine)
    if a.workload == "D_snapshot":
        save, restore, size, extra = await snapshot_figures(api, a.reps)
        C.emit(engine, api.version, "D_snapshot_save", save, json_bytes=size, **extra)
        C.emit(engine, api.version, "D_snapshot_restore", restore, json_bytes=size)
        return
    if a.workload == "A_chain":

        async def chain():
            assert await chain_workflow(api, C.N_CHAIN).run() == C.N_CHAIN

        samples = await C.ameasure(chain, a.reps)
        med = sorted(samples)[len(samples) // 2]
        C.emit(
            engine,
            api.version,
            a.workload,
            samples,
            n=C.N_CHAIN,
            per_step_us=round(med / C.N_CHAIN * 1e6, 2),
        )
        return
    width = 800 if a.workload == "B_fanout_800" else C.N_FANOUT
    sleep = 0.005 if a.workload == "B2_fanout_sleep" else 0.0
    expected = sum(i * 2 for i in range(width))

    async def fan():
        assert await fan_workflow(api, width, sleep).run() == expected

    C.emit(engine, api.version, a.workload, await C.ameasure(fan, a.reps), n=width)


if __name__ == "__main__":
    asyncio.run(main())
