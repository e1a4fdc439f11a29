"""Edit a step, re-run only what changed: ``Workflow.rerun`` and ``run(cache=store)``.

A workflow is "edited" the way a notebook does it: the cell defining the class runs again with
one step's body changed. Here each version of the class is made from source text executed in
the same module namespace (``cell``), so both versions have the same name and the steps whose
text did not change have the same code hash. Every step counts its calls in ``CALLS``.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import pytest
from helpers import waiting

from notebook_workflows import Event, HumanResponseEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.checkpoint.rerun import recorded_calls
from notebook_workflows.errors import SnapshotError


class Loaded(Event):
    text: str


class Parsed(Event):
    words: list[str]


class Counted(Event):
    count: int


class Ping(Event):
    n: int


CALLS: list[str] = []

HEADER = """
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows import HumanResponseEvent, InputRequiredEvent
"""

PIPELINE = """
class Pipeline(Workflow):
    @step
    async def load(self, ctx: Context, ev: StartEvent) -> Loaded:
        CALLS.append("load")
        await ctx.store.set("source", ev.text)
        ctx.write_event_to_stream(Ping(n=1))
        return Loaded(text=ev.text)

    @step
    async def parse(self, ctx: Context, ev: Loaded) -> Parsed:
        CALLS.append("parse")
        source = await ctx.store.get("source")
        return Parsed(words=source.split() + ev.text.split()[:0])

    @step
    async def count(self, ctx: Context, ev: Parsed) -> Counted:
        CALLS.append("count")
        await ctx.store.set("count", len(ev.words))
        return Counted(count=len(ev.words))

    @step
    async def report(self, ctx: Context, ev: Counted) -> StopEvent:
        CALLS.append("report")
        return StopEvent(result=f"{ev.count} words")
"""


def cell(source: str, name: str = "Pipeline", **replace: str) -> type[Workflow]:
    """Run a "cell" defining a workflow class, with some lines of it replaced."""
    for old, new in replace.items():
        assert old in source, old
        source = source.replace(old, new)
    namespace: dict[str, Any] = {"__name__": "rerun_cells", **globals()}
    exec(textwrap.dedent(HEADER + source), namespace)
    return namespace[name]


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


async def first_run(workflow: Workflow, **fields: Any) -> Any:
    handler = workflow.run(**fields)
    result = await handler
    assert CALLS == ["load", "parse", "count", "report"]
    CALLS.clear()
    return handler, result


async def test_an_unchanged_rerun_calls_no_step_and_gives_the_same_result() -> None:
    store = MemoryStore()
    original, result = await first_run(cell(PIPELINE)(checkpoint=store), text="a b c")
    records_before = [s.describe() for s in store.history(original.run_id)]
    rerun = cell(PIPELINE)(checkpoint=store).rerun(original.run_id)
    assert await rerun == result == "3 words"
    assert CALLS == []
    assert rerun.run_id != original.run_id
    assert [s.describe() for s in store.history(original.run_id)] == records_before
    info = store.run_info(rerun.run_id)
    assert (info.parent, info.parent_seq) == (original.run_id, 0)
    view = rerun.view()
    assert view.replayed == {"load": 1, "parse": 1, "count": 1, "report": 1}
    assert rerun.ctx.store.to_dict() == {"source": "a b c", "count": 3}
    assert [type(e).__name__ for e in view.log] == ["Ping", "StopEvent"]  # streamed again


async def test_editing_the_last_step_runs_only_that_step() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="a b c")
    edited = cell(PIPELINE, **{'f"{ev.count} words"': 'f"{ev.count} words!"'})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    assert await rerun == "3 words!"
    assert CALLS == ["report"]
    # the history says, per step call, whether it was replayed or ran (and why it ran)
    calls = [call for snapshot in store.history(rerun.run_id) for call in snapshot.calls]
    assert [(c["step"], bool(c.get("replayed"))) for c in calls] == [
        ("load", True),
        ("parse", True),
        ("count", True),
        ("report", False),
    ]
    [ran] = [c for c in recorded_calls(store, rerun.run_id) if not c.get("replayed")]
    assert (ran["step"], ran["ran_because"]) == (
        "report",
        "its code changed since the recorded run",
    )


async def test_a_changed_step_and_every_step_fed_different_events_run() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="a b c")
    # parse now drops a word: count gets another event and runs, report too
    edited = cell(PIPELINE, **{"source.split()": "source.split()[1:]"})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    assert await rerun == "2 words"
    assert CALLS == ["parse", "count", "report"]
    # parse read the store as the replayed load had left it
    assert rerun.ctx.store.to_dict() == {"source": "a b c", "count": 2}
    assert rerun.view().replayed == {"load": 1}


async def test_a_changed_step_with_the_same_output_lets_the_rest_replay() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="a b c")
    edited = cell(PIPELINE, **{"source.split()": "list(source.split())"})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    assert await rerun == "3 words"
    assert CALLS == ["parse"]


async def test_a_rerun_of_a_rerun_replays_from_its_own_record() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="x y")
    edited = cell(PIPELINE, **{'f"{ev.count} words"': 'f"{ev.count} words!"'})
    second = edited(checkpoint=store).rerun(original.run_id)
    assert await second == "2 words!"
    CALLS.clear()
    third = edited(checkpoint=store).rerun(second.run_id)
    assert await third == "2 words!"
    assert CALLS == []


async def test_a_step_marked_replay_false_always_runs() -> None:
    source = PIPELINE.replace(
        "    @step\n    async def report", "    @step(replay=False)\n    async def report"
    )
    store = MemoryStore()
    original, _ = await first_run(cell(source)(checkpoint=store), text="a")
    rerun = cell(source)(checkpoint=store).rerun(original.run_id)
    assert await rerun == "1 words"
    assert CALLS == ["report"]
    [ran] = [c for c in recorded_calls(store, rerun.run_id) if not c.get("replayed")]
    assert ran["ran_because"] == "it is marked @step(replay=False)"


ASKING = """
class Asking(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> Loaded:
        CALLS.append("ask")
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="name?")
        )
        receipt = await ctx.once("charge", lambda: CALLS.append("charged") or "r-1")
        return Loaded(text=f"{answer.response}:{receipt}")

    @step
    async def finish(self, ev: Loaded) -> StopEvent:
        CALLS.append("finish")
        return StopEvent(result=ev.text)
"""


async def test_a_step_that_asked_a_human_and_used_once_replays_its_answer() -> None:
    store = MemoryStore()
    original = cell(ASKING, "Asking")(checkpoint=store).run()
    await waiting(original)
    original.ctx.send_event(HumanResponseEvent(response="ada"))
    assert await original == "ada:r-1"
    assert CALLS == ["ask", "charged", "finish"]
    CALLS.clear()
    edited = cell(ASKING, "Asking", **{"result=ev.text": "result=ev.text.upper()"})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    # no question is asked (the run would wait forever), nothing is charged again
    assert await asyncio.wait_for(rerun, 5) == "ADA:R-1"
    assert CALLS == ["finish"]


QUESTIONING = """
class Questioning(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        CALLS.append("ask")
        return InputRequiredEvent(prefix="colour?")

    @step
    async def answered(self, ev: HumanResponseEvent) -> StopEvent:
        CALLS.append("answered")
        return StopEvent(result=ev.response)
"""


async def answer_when_asked(handler: Any, response: str) -> None:
    await waiting(handler)
    handler.ctx.send_event(HumanResponseEvent(response=response))


async def test_a_question_the_recorded_run_had_answered_gets_the_recorded_answer() -> None:
    store = MemoryStore()
    original = cell(QUESTIONING, "Questioning")(checkpoint=store).run()
    await answer_when_asked(original, "blue")
    assert await original == "blue"
    CALLS.clear()
    # the step that takes the answer changed: the question is asked again by the replayed
    # step, and answered from the record without a human
    edited = cell(QUESTIONING, "Questioning", **{"result=ev.response": "result=ev.response * 2"})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    assert await asyncio.wait_for(rerun, 5) == "blueblue"
    assert CALLS == ["answered"]
    # the step that waits in wait_for_event changed and runs: it is answered from the record
    CALLS.clear()
    asking = cell(ASKING, "Asking")
    first = asking(checkpoint=store).run()
    await answer_when_asked(first, "ada")
    assert await first == "ada:r-1"
    CALLS.clear()
    edited = cell(ASKING, "Asking", **{'f"{answer.response}:': 'f"{answer.response}!:'})
    rerun = edited(checkpoint=store).rerun(first.run_id)
    assert await asyncio.wait_for(rerun, 5) == "ada!:r-1"
    assert CALLS == ["ask", "finish"]  # its ctx.once result is the recorded one: no charge
    # and a rerun of that rerun has the answer too
    CALLS.clear()
    again = edited(checkpoint=store).rerun(rerun.run_id)
    assert await asyncio.wait_for(again, 5) == "ada!:r-1"
    assert CALLS == []


COLLECTING = """
class Joining(Workflow):
    @step
    async def fan(self, ctx: Context, ev: StartEvent) -> Ping:
        CALLS.append("fan")
        for n in range(3):
            ctx.send_event(Ping(n=n))
        return None

    @step
    async def join(self, ctx: Context, ev: Ping) -> StopEvent | None:
        CALLS.append("join")
        got = ctx.collect_events(ev, [Ping, Ping, Ping])
        if got is None:
            return None
        return StopEvent(result=sorted(p.n for p in got))
"""


async def test_a_step_that_collects_events_is_not_replayed_and_says_why() -> None:
    store = MemoryStore()
    original = cell(COLLECTING, "Joining")(checkpoint=store).run()
    assert await original == [0, 1, 2]
    CALLS.clear()
    rerun = cell(COLLECTING, "Joining")(checkpoint=store).rerun(original.run_id)
    assert await rerun == [0, 1, 2]
    assert CALLS == ["join", "join", "join"]
    reasons = {
        c.get("ran_because") for c in recorded_calls(store, rerun.run_id) if c["step"] == "join"
    }
    assert reasons == {"it calls ctx.collect_events, whose buffer a replay cannot rebuild"}


CACHED = """
class Fetch(Workflow):
    @step(cache=True, cache_key=lambda ev: ev.url.lower())
    async def fetch(self, ctx: Context, ev: StartEvent) -> Loaded:
        CALLS.append("fetch")
        await ctx.store.set("fetched", ev.url)
        return Loaded(text="page of " + ev.url.lower())

    @step
    async def use(self, ev: Loaded) -> StopEvent:
        CALLS.append("use")
        return StopEvent(result=ev.text)
"""


async def test_run_with_cache_reuses_recorded_calls_of_earlier_runs_by_key(tmp_path: Any) -> None:
    with SQLiteStore(tmp_path / "cache.db") as store:
        fetch = cell(CACHED, "Fetch")
        assert await fetch().run(url="HTTP://X", cache=store) == "page of http://x"
        assert CALLS == ["fetch", "use"]
        CALLS.clear()
        # another run, another input with the same key: fetch is reused, use (not cached) runs
        second = fetch().run(url="http://x", cache=store)
        assert await second == "page of http://x"
        assert CALLS == ["use"]
        assert second.ctx.store.to_dict() == {"fetched": "HTTP://X"}
        CALLS.clear()
        assert await fetch().run(url="http://y", cache=store) == "page of http://y"
        assert CALLS == ["fetch", "use"]
        CALLS.clear()
        # without cache= nothing is reused
        assert await fetch().run(url="http://x") == "page of http://x"
        assert CALLS == ["fetch", "use"]


async def test_a_run_recorded_without_calls_reruns_everything() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="a")
    assert [c["step"] for c in recorded_calls(store, original.run_id)] == [
        "load",
        "parse",
        "count",
        "report",
    ]
    # as a store written before calls were recorded: records without their "done" lists
    old = MemoryStore()
    for snapshot in store.history(original.run_id):
        [record] = [r for r in snapshot._chain.records if r.seq == snapshot.seq]
        data = json.loads(record.data)
        data.pop("done", None)
        info = store.run_info(original.run_id) if record.seq == 0 else None
        old.save(record._replace(data=json.dumps(data)), new_run=info)
    assert recorded_calls(old, original.run_id) == []
    rerun = cell(PIPELINE)(checkpoint=old).rerun(original.run_id)
    assert await rerun == "1 words"
    assert CALLS == ["load", "parse", "count", "report"]


async def test_rerun_of_an_unknown_run_names_the_store() -> None:
    with pytest.raises(SnapshotError, match="nope"):
        cell(PIPELINE)(checkpoint=MemoryStore()).rerun("nope")


async def test_the_run_graph_draws_replayed_steps_apart() -> None:
    store = MemoryStore()
    wf = cell(PIPELINE)
    original, _ = await first_run(wf(checkpoint=store), text="a b")
    edited = cell(PIPELINE, **{'f"{ev.count} words"': 'f"{ev.count}!"'})
    rerun = edited(checkpoint=store).rerun(original.run_id)
    await rerun
    view = rerun.view()
    assert view.replayed == {"load": 1, "parse": 1, "count": 1}
    assert view.step_runs["report"] == 1 and "report" not in view.replayed
    graph = rerun.draw()
    by_name = {n.title: n for n in graph._nodes if n.kind == "step"}
    assert by_name["load"].state == "replayed" and by_name["report"].state == ""
    assert by_name["load"].notes[-1] == "replayed · 1 call, none ran"
    assert by_name["report"].notes[-2].startswith("1 run · ")
    assert by_name["report"].notes[-1] == "ran: its code changed since the recorded run"
    assert view.ran_because == {"report": "its code changed since the recorded run"}
    load_line = next(line for line in graph.source.splitlines() if "<B>load</B>" in line)
    assert "dashed" in load_line and "#7d8ea6" in load_line
    assert ":::replayed" in graph.to_mermaid()


async def test_a_failed_run_reruns_with_the_fixed_step_and_replays_the_rest() -> None:
    store = MemoryStore()
    bug = '        CALLS.append("count")\n        raise ValueError("bug")\n'
    broken = cell(PIPELINE, **{'        CALLS.append("count")\n': bug})
    original = broken(checkpoint=store).run(text="a b")
    with pytest.raises(ValueError, match="bug"):
        await original
    assert CALLS == ["load", "parse", "count"]
    CALLS.clear()
    rerun = cell(PIPELINE)(checkpoint=store).rerun(original.run_id)
    assert await rerun == "2 words"
    assert CALLS == ["count", "report"]
    assert store.latest(original.run_id).status == "failed"  # the original stays as it was


def test_rerun_sync_from_plain_code_and_the_monitor_counts_replays() -> None:
    from notebook_workflows.notebook.monitor.panels import progress_html

    store = MemoryStore()
    workflow = cell(PIPELINE)(checkpoint=store)
    handler_ids: list[str] = []

    async def first() -> Any:
        handler = workflow.run(text="x")
        handler_ids.append(handler.run_id)
        return await handler

    assert asyncio.run(first()) == "1 words"
    CALLS.clear()
    assert workflow.rerun_sync(handler_ids[0]) == "1 words"
    assert CALLS == []

    async def again() -> str:
        rerun = workflow.rerun(handler_ids[0])
        await rerun
        return progress_html(rerun.view())

    html = asyncio.run(again())
    assert '<b class="replayed">4</b> replayed: count, load, parse, report' in html


def test_step_options_for_rerun_and_cache_are_checked() -> None:
    with pytest.raises(TypeError, match="cache_key must be a function"):
        step(cache_key="url")  # type: ignore[arg-type]
    spec = cell(CACHED, "Fetch")._step_specs()["fetch"]
    assert (spec.replay, spec.cache, spec.cache_key is not None) == (True, True, True)


async def test_a_value_a_step_set_is_written_once_per_record() -> None:
    store = MemoryStore()
    original, _ = await first_run(cell(PIPELINE)(checkpoint=store), text="a b c")
    history = store.history(original.run_id)
    [record] = [s for s in history if s.step == "load"]
    raw = json.loads(next(r for r in record._chain.records if r.seq == record.seq).data)
    [call] = raw["done"]
    assert call["same"] == ["source"] and "set" not in call
    assert raw["store_set"]["source"] == "a b c"
    # read back whole, by the history and by a rerun
    assert record.calls[0]["set"] == {"source": "a b c"}
    assert recorded_calls(store, original.run_id)[0]["set"] == {"source": "a b c"}


JOINING = """
class Batching(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Ping]:
        CALLS.append("fan_out")
        return [Ping(n=n) for n in range(3)]

    @step
    async def join(self, events: list[Ping]) -> StopEvent:
        CALLS.append("join")
        return StopEvent(result=sorted(e.n for e in events))
"""


async def test_a_workflow_with_joins_runs_every_step_and_says_why() -> None:
    store = MemoryStore()
    original = cell(JOINING, "Batching")(checkpoint=store).run()
    assert await original == [0, 1, 2]
    CALLS.clear()
    rerun = cell(JOINING, "Batching")(checkpoint=store).rerun(original.run_id)
    assert await rerun == [0, 1, 2]
    assert CALLS == ["fan_out", "join"]
    reasons = {c.get("ran_because") for c in recorded_calls(store, rerun.run_id)}
    assert reasons == {
        "the workflow has joins or counted recoveries, which a replay does not rebuild"
    }
