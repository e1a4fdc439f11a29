"""Fan-out width scaling of notebook_workflows alone: 200, 1,000 and 10,000 events to a worker
step, then collected, with the garbage collector on and the list of expected types built once
by the workflow (as a real fan-in would keep it). Time per event should stay flat: the
figure is the time per event at 10,000 over the time per event at 200.

Run: python bench/fanout_scaling.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

WIDTHS = (200, 1_000, 10_000)


class Work(Event):
    i: int


class Res(Event):
    v: int


def fan(width: int) -> Workflow:
    expected = [Res] * width  # built once, as a workflow would keep it

    class Fan(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Work | None:
            for i in range(width):
                ctx.send_event(Work(i=i))
            return None

        @step(num_workers=width)
        async def worker(self, ev: Work) -> Res:
            return Res(v=ev.i * 2)

        @step
        async def collect(self, ctx: Context, ev: Res) -> StopEvent | None:
            got = ctx.collect_events(ev, expected)
            return None if got is None else StopEvent(result=len(got))

    return Fan()


async def main() -> None:
    import importlib.metadata

    version = importlib.metadata.version("notebook-workflows")
    per_event = {}
    for width in WIDTHS:
        workflow = fan(width)

        async def run(w: Workflow = workflow, n: int = width) -> None:
            assert await w.run() == n

        reps = 7 if width < 10_000 else 3
        samples: list[float] = []
        await run()  # warm-up; the collector stays on (no gc.collect between runs either)
        for _ in range(reps):
            start = time.perf_counter()
            await run()
            samples.append(time.perf_counter() - start)
        median = sorted(samples)[len(samples) // 2]
        per_event[width] = median / width
        C.emit(
            "notebook_workflows",
            version,
            f"B_fanout_scaling_{width}",
            samples,
            n=width,
            per_event_us=round(median / width * 1e6, 2),
        )
    C.emit(
        "notebook_workflows",
        version,
        "B_fanout_scaling",
        [per_event[WIDTHS[-1]] / per_event[WIDTHS[0]] / 1e3],  # the ratio, as "ms"
        ratio_10000_to_200=round(per_event[WIDTHS[-1]] / per_event[WIDTHS[0]], 2),
    )


if __name__ == "__main__":
    asyncio.run(main())
