"""The workflow of 09_scaling_out.ipynb (its first code cell writes this file)."""

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step


class Doc(Event):
    n: int


class Scored(Event):
    n: int
    score: int


def score_text(n: int, rounds: int = 800_000) -> int:
    """Pure-Python work standing in for parsing or scoring a document: it holds the GIL."""
    total = n
    for k in range(rounds):
        total = (total * 31 + k) % 1_000_003
    return total


class Scoring(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> list[Doc]:
        await ctx.store.set("docs", ev.docs)
        return [Doc(n=n) for n in range(ev.docs)]

    @step(num_workers=16)
    def score(self, ev: Doc) -> Scored:  # a sync step: it runs on the run's executor
        return Scored(n=ev.n, score=score_text(ev.n))

    @step
    async def total(self, ctx: Context, ev: Scored) -> StopEvent | None:
        scored = ctx.collect_events(ev, [Scored] * await ctx.store.get("docs"))
        if scored is None:
            return None
        await ctx.store.set("scores", {s.n: s.score for s in scored})
        return StopEvent(result=sum(s.score for s in scored))
