"""The codec's share of a 1 MB snapshot (D_snapshot: 10,000 small dicts in one store key).

Write = ``encode`` of the store value (what ``ctx.store.set`` does) + the snapshot as JSON text
(``pydantic_core.to_json``, as ``checkpoint.base.dumps`` writes it). Read = the text parsed
(``serialization.parse_json``: pydantic-core, strict) + ``decode`` of the store value (what
``Context.from_dict`` checks and hands to the first ``get``). The standard library's
``json.dumps``/``json.loads`` of the same data are shown for scale. Medians of ``--reps`` runs
after one warm-up, in milliseconds.

Run: python bench/bench_codec.py [--reps 15]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
from pydantic_core import to_json

from notebook_workflows import Context, StartEvent, StopEvent, Workflow, step
from notebook_workflows.serialization import decode, encode, parse_json


class Holder(Workflow):
    @step
    async def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        return StopEvent(result=None)


def median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=15)
    reps = parser.parse_args().reps
    items = C.make_items()
    ctx = Context(Holder())
    ctx.store._set("items", items)
    snapshot = ctx.to_dict()
    text = to_json(snapshot)
    encoded = snapshot["store"]["items"]
    parsed = parse_json(text)["store"]["items"]

    figures = {
        "encode": median_ms(lambda: encode(items, "items"), reps),
        "to_json": median_ms(lambda: to_json(ctx.to_dict()), reps),
        "parse_json": median_ms(lambda: parse_json(text), reps),
        "decode": median_ms(lambda: decode(parsed, "store.items"), reps),
        "stdlib json.dumps": median_ms(lambda: json.dumps(snapshot), reps),
        "stdlib json.loads": median_ms(lambda: json.loads(text), reps),
        "from_dict (whole)": median_ms(lambda: Context.from_dict(Holder(), parse_json(text)), reps),
    }
    assert decode(encoded) == items
    write = figures["encode"] + figures["to_json"]
    read = figures["parse_json"] + figures["decode"]
    print(f"D_snapshot: {len(C.make_items())} dicts, {len(text) / 1e6:.2f} MB of JSON, {reps} reps")
    for name, ms in figures.items():
        print(f"  {name:<20} {ms:7.2f} ms")
    print(f"  write (encode + to_json)     {write:7.2f} ms")
    print(f"  read (parse_json + decode)   {read:7.2f} ms")


if __name__ == "__main__":
    main()
