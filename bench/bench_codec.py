"""A 1 MB state's snapshot written and read (D_snapshot: 10,000 small dicts in one store key),
and where the time goes.

The figures the durability issue asks for are the library's own paths, through a SQLiteStore:

* write: the snapshot of a context holding the state made into a record's JSON text
  (``snapshot_of`` + ``checkpoint.base.dumps``: what a checkpoint base costs before the insert);
* read: what a ``resume`` pays before the state is in the step's hands: ``store.latest(run)``
  (fetch the records), its context as ``resume`` loads it (``Snapshot._raw_context``: the
  record parsed but for its big store value, kept as text, see ``checkpoint.texts``),
  ``Context.from_dict`` of it, and the first ``ctx.store.get`` of the state, which parses
  that text;
* load, state still text: the same without the first get: the context ``resume`` continues,
  its state not parsed yet;
* the floor of the read: pydantic-core's parser on the state's own text, ``orjson`` on it
  (where installed), and ``marshal.loads`` of the same objects (CPython's fastest way to make
  them, from its own binary format: what building 100,000 Python objects costs at least);
* read, public context: the same through ``Snapshot.context`` (every value parsed into data)
  and ``Context.from_dict`` of it (which checks and copies every value), then the first get.

The parts: ``encode`` of the value (what ``ctx.store.set`` does, once, at set time);
``to_json`` (``pydantic_core.to_json``, as ``dumps`` writes); ``parse_json`` (pydantic-core's
strict parser, ``serialization.parse_json``); ``decode`` (the check-and-copy walk of
``Context.from_dict``); the same parse and walk with the garbage collector paused (what the
collector's passes over the new objects cost); the standard library's ``json.dumps``/
``json.loads`` for scale. Medians of ``--reps`` runs after one warm-up, in milliseconds of the
thread's CPU time (``time.thread_time``): all of it is computing in one thread, and on a shared
machine the wall clock also counts the time other processes held the core, which swung these
figures by 2-5x between runs here.

Run: python bench/bench_codec.py [--reps 15]
Prints a table on stderr and JSON lines (``common.emit``) that ``bench/run.py`` gathers into
``bench/STORES.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import marshal
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
from pydantic_core import to_json

from notebook_workflows import Context, StartEvent, StopEvent, Workflow, __version__, step
from notebook_workflows.checkpoint import SQLiteStore
from notebook_workflows.checkpoint.base import dumps
from notebook_workflows.serialization import decode, encode, parse_json
from notebook_workflows.snapshot import snapshot_of


class Holder(Workflow):
    @step
    async def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("items", C.make_items())
        return StopEvent(result=None)


HEAP = 300_000  # other objects alive in the process, as in a notebook with data loaded


def samples_of(fn: Callable[[], Any], reps: int, collect: bool = True) -> list[float]:
    fn()  # warm-up
    samples = []
    for _ in range(reps):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            start = time.thread_time()
            fn()
            samples.append(time.thread_time() - start)
        finally:
            gc.enable()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=15)
    reps = parser.parse_args().reps
    items = C.make_items()
    folder = tempfile.mkdtemp(prefix="nw-codec-")
    store = SQLiteStore(os.path.join(folder, "runs.db"))

    async def run() -> None:
        await Holder().run(checkpoint=store, run_id="big")

    asyncio.run(run())
    data = store.latest("big").context
    ctx = Context.from_dict(Holder(), data)
    text = dumps(data)
    parsed = parse_json(text)["store"]["items"]

    def read() -> Any:
        restored = Context.from_dict(Holder(), store.latest("big")._raw_context())
        return restored.store._get("items")  # what `await ctx.store.get("items")` runs

    def read_public() -> Any:
        restored = Context.from_dict(Holder(), store.latest("big").context)
        return restored.store._get("items")

    def load() -> Any:
        return Context.from_dict(Holder(), store.latest("big")._raw_context())

    value_text = to_json(items).decode()
    value_marshal = marshal.dumps(items)
    assert read() == items and read_public() == items
    parts = {
        "write": lambda: dumps(snapshot_of(ctx)),
        "read": read,
        "load, state still text": load,
        "parse of the state's text": lambda: parse_json(value_text),
        "marshal.loads of the state": lambda: marshal.loads(value_marshal),
        "read, public context": read_public,
        "encode": lambda: encode(items, "items"),
        "to_json": lambda: to_json(data),
        "latest_context": lambda: store.latest("big").context,
        "from_dict": lambda: Context.from_dict(Holder(), data),
        "parse_json": lambda: parse_json(text),
        "decode": lambda: decode(parsed, "store.items"),
        "stdlib json.dumps": lambda: json.dumps(data),
        "stdlib json.loads": lambda: json.loads(text),
    }
    try:  # not a dependency: for scale where it is installed (the bench's peers bring it)
        import orjson

        parts["orjson.loads of the state's text"] = lambda: orjson.loads(value_text)
    except ImportError:
        pass
    figures = {name: samples_of(fn, reps) for name, fn in parts.items()}
    # the same read in a process holding a notebook's worth of other objects, which the
    # collector's full passes walk too
    heap = [{"row": [i]} for i in range(HEAP)]
    figures["read, beside 300,000 objects"] = samples_of(read, reps)
    del heap
    for name in ("read", "parse_json", "decode"):
        figures[f"{name}, gc paused"] = samples_of(parts[name], reps, collect=False)
    store.close()
    for leftover in os.listdir(folder):
        os.unlink(os.path.join(folder, leftover))
    os.rmdir(folder)

    ms = {name: statistics.median(s) * 1e3 for name, s in figures.items()}
    print(f"D_snapshot: {len(items)} dicts, {len(text) / 1e6:.2f} MB of JSON, {reps} reps",
          file=sys.stderr)  # fmt: skip
    for name, value in ms.items():
        print(f"  {name:<24} {value:7.2f} ms", file=sys.stderr)
    for name, samples in figures.items():
        C.emit("notebook_workflows", __version__, f"D_codec {name}", samples, mb=len(text) / 1e6)


if __name__ == "__main__":
    main()
