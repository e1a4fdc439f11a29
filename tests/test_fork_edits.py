"""Edit and fork: ``workflow.fork(run_id, at=n, store_edits={...})`` changes a store value at a
snapshot and goes on from there as a new run, checked like ``ctx.store.set`` and recorded in the
fork's history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from notebook_workflows import (
    Context,
    ContextSerdeError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    SnapshotError,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.__main__ import main as cli
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore


class Asked(Event):
    pass


class Greet(Workflow):
    """Keeps a greeting and a config, then asks for a name."""

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Asked:
        await ctx.store.set("greeting", ev.greeting)
        await ctx.store.set("cfg", {"punct": "."})
        return Asked()

    @step
    async def ask(self, ctx: Context, ev: Asked) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Your name?")
        )
        greeting = await ctx.store.get("greeting")
        punct = await ctx.store.get("cfg.punct")
        return StopEvent(result=f"{greeting} {answer.response}{punct}")


class Settings(BaseModel):
    limit: int = 1
    label: str = ""


class Limited(Workflow):
    @step
    async def go(self, ctx: Context[Settings], ev: StartEvent) -> Asked:
        await ctx.store.set("label", "first")
        return Asked()

    @step
    async def end(self, ctx: Context[Settings], ev: Asked) -> StopEvent:
        return StopEvent(result=(await ctx.store.get("label")) * (await ctx.store.get("limit")))


async def answered(handler: Any, name: str) -> Any:
    """Answer the run's question with ``name`` once it asks, and return its result."""
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response=name))
    return await handler


async def a_finished_run(store: Any) -> str:
    handler = Greet().run(run_id="greet-1", greeting="hello", checkpoint=store)
    assert await answered(handler, "Ada") == "hello Ada."
    return handler.run_id


def seq_after(store: Any, run_id: str, step_name: str) -> int:
    return next(s.seq for s in store.history(run_id) if s.step == step_name)


async def test_a_fork_with_an_edit_runs_on_with_the_edited_value() -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    before = [(s.seq, s.reason, s.context["store"]) for s in store.history(run_id)]
    at = seq_after(store, run_id, "prepare")

    fork = Greet().fork(run_id, at=at, store_edits={"greeting": "bonjour"}, store=store)
    assert fork.run_id != run_id
    assert await answered(fork, "Ada") == "bonjour Ada."
    info = store.run_info(fork.run_id)
    assert (info.parent, info.parent_seq, info.status) == (run_id, at, "done")
    # the original is as it was
    assert [(s.seq, s.reason, s.context["store"]) for s in store.history(run_id)] == before


async def test_a_dotted_key_and_a_new_key_are_edited_like_store_set() -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    at = seq_after(store, run_id, "prepare")
    fork = Greet().fork(run_id, at=at, store_edits={"cfg.punct": "!", "note": [1, 2]}, store=store)
    assert await answered(fork, "Bo") == "hello Bo!"
    first = store.history(fork.run_id)[0]
    assert first.edits == [
        {"key": "cfg.punct", "was": ".", "value": "!"},
        {"key": "note", "value": [1, 2]},  # no "was": the key was new
    ]
    assert first.context["store"]["cfg"] == {"punct": "!"}


async def test_the_history_records_the_edit_on_the_forks_first_snapshot(capsys: Any) -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    at = seq_after(store, run_id, "prepare")
    fork = Greet().fork(run_id, at=at, store_edits={"greeting": "hi"}, store=store)
    await answered(fork, "Cy")
    history = store.history(fork.run_id)
    assert history[0].reason == "fork"
    assert history[0].edits == [{"key": "greeting", "was": "hello", "value": "hi"}]
    assert "forked with the store edited (greeting)" in history[0].describe()
    assert all(s.edits == [] and "edits" not in s.context for s in history[1:])
    assert all(s.edits == [] for s in store.history(run_id))  # the original has none
    # a plain fork (resume at=n) records no edits
    plain = Greet().resume(run_id, at=at, store=store)
    await answered(plain, "Di")
    assert store.history(plain.run_id)[0].edits == []


async def test_the_command_line_shows_the_edit(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        run_id = await a_finished_run(store)
        at = seq_after(store, run_id, "prepare")
        fork = Greet().fork(run_id, at=at, store_edits={"greeting": "hey"}, store=store)
        await answered(fork, "Ed")
    assert cli(["runs", "--db", str(path), "show", fork.run_id]) == 0
    out = capsys.readouterr().out
    assert f"forked    from {run_id} at snapshot {at}" in out
    assert 'edited  greeting = "hey" (was "hello")' in out


async def test_a_refused_edit_raises_the_store_error_and_writes_nothing() -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    at = seq_after(store, run_id, "prepare")
    runs = [(i.run_id, i.seq) for i in store.runs()]
    with pytest.raises(ContextSerdeError, match="cannot store greeting") as caught:
        # the first edit is fine, the second refused: neither is kept
        Greet().fork(
            run_id, at=at, store_edits={"cfg.punct": "?", "greeting": object()}, store=store
        )
    assert any("nothing was written" in note for note in caught.value.__notes__)
    assert [(i.run_id, i.seq) for i in store.runs()] == runs
    # ctx.store.set refuses the same value with the same message
    ctx = Context(Greet())
    with pytest.raises(ContextSerdeError) as by_set:
        await ctx.store.set("greeting", object())
    assert str(by_set.value) == str(caught.value)


async def test_a_typed_state_checks_edits_as_it_checks_set() -> None:
    store = MemoryStore()
    handler = Limited().run(run_id="lim", checkpoint=store)
    assert await handler == "first"
    at = seq_after(store, "lim", "go")
    runs = len(store.runs())
    with pytest.raises(ValidationError, match="limit"):
        Limited().fork("lim", at=at, store_edits={"limit": "many"}, store=store)
    with pytest.raises(KeyError, match="Settings has no field 'size'"):
        Limited().fork("lim", at=at, store_edits={"size": 3}, store=store)
    assert len(store.runs()) == runs
    fork = Limited().fork("lim", at=at, store_edits={"limit": "3"}, store=store)
    assert await fork == "firstfirstfirst"
    assert store.history(fork.run_id)[0].edits == [{"key": "limit", "was": 1, "value": 3}]


async def test_a_resumed_edited_fork_sees_the_edited_value(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    run_id = await a_finished_run(store)
    at = seq_after(store, run_id, "prepare")
    fork = Greet().fork(run_id, at=at, store_edits={"greeting": "salut"}, store=store)
    async for ev in fork.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    await fork.cancel()  # the fork stops at its question, as a kernel interrupt would stop it
    assert fork.status == "cancelled"
    resumed = Greet().resume(fork.run_id, store=SQLiteStore(tmp_path / "runs.db"))
    assert await answered(resumed, "Flo") == "salut Flo."
    store.close()


async def test_a_fork_at_the_runs_end_is_refused_naming_an_earlier_snapshot() -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    last_open = max(s.seq for s in store.history(run_id) if s.status != "done")
    with pytest.raises(SnapshotError, match=f"at={last_open} is the last before its end"):
        Greet().fork(run_id, store_edits={"greeting": "yo"}, store=store)
    # the latest snapshot of a run that has not ended is the default
    handler = Greet().run(run_id="greet-2", greeting="hello", checkpoint=store)
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    await handler.cancel()
    fork = Greet().fork("greet-2", store_edits={"greeting": "ciao"}, store=store)
    assert await answered(fork, "Gil") == "ciao Gil."
    assert store.run_info(fork.run_id).parent_seq == store.latest("greet-2").seq


def test_fork_needs_a_running_loop() -> None:
    with pytest.raises(Exception, match=r"Greet.fork\(\) needs a running event loop"):
        Greet().fork("nothing", store=MemoryStore())


async def test_store_edits_must_be_a_mapping_of_text_keys() -> None:
    store = MemoryStore()
    run_id = await a_finished_run(store)
    at = seq_after(store, run_id, "prepare")
    with pytest.raises(TypeError, match="store_edits must be a mapping"):
        Greet().fork(run_id, at=at, store_edits=[("greeting", "x")], store=store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys are store keys"):
        Greet().fork(run_id, at=at, store_edits={1: "x"}, store=store)  # type: ignore[dict-item]
    await asyncio.sleep(0)


CELL = """
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

class Go(Event):
    pass

class Cell(Workflow):
    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Go:
        await ctx.store.set("n", 1)
        return Go()

    @step
    async def second(self, ctx: Context, ev: Go) -> StopEvent:
        return StopEvent(result=(await ctx.store.get("n")) * FACTOR)
"""


async def test_a_fork_with_new_step_code_warns_once_it_goes_ahead() -> None:
    import sys
    import types
    import warnings

    from notebook_workflows.checkpoint import StepCodeChangedWarning

    module = types.ModuleType("fork_cell")
    sys.modules[module.__name__] = module
    try:
        exec(CELL.replace("FACTOR", "1"), module.__dict__)
        store = MemoryStore()
        assert await module.Cell().run(run_id="cell", checkpoint=store) == 1
        at = seq_after(store, "cell", "first")
        exec(CELL.replace("FACTOR", "10"), module.__dict__)  # the cell edited and run again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ContextSerdeError):
                module.Cell().fork("cell", at=at, store_edits={"n": object()}, store=store)
        assert caught == []  # refused: no run, so no word about its code
        with pytest.warns(StepCodeChangedWarning, match="forking run 'cell'") as warned:
            fork = module.Cell().fork("cell", at=at, store_edits={"n": 5}, store=store)
        assert warned[0].filename == "Cell.fork"
        assert await fork == 50
    finally:
        del sys.modules[module.__name__]


def test_the_resume_line_names_the_store_only_when_a_new_instance_would_not_find_it(
    tmp_path: Any, monkeypatch: Any
) -> None:
    from notebook_workflows.checkpoint.resume import resume_call

    monkeypatch.chdir(tmp_path)
    memory = MemoryStore()
    with SQLiteStore() as default, SQLiteStore(tmp_path / "elsewhere.db") as other:
        assert resume_call(Greet(), "r1", default) == "Greet().resume('r1')"
        assert resume_call(Greet(), "r1", other) == "Greet().resume('r1', store=store)"
        assert resume_call(Greet(checkpoint=other), "r1", other).endswith("store=store)")
    assert resume_call(Greet(), "r1", memory) == "Greet().resume('r1', store=store)"
    assert resume_call(Greet(), "r1", None) == "Greet().resume('r1')"
