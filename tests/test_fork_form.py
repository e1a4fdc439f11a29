"""Edit and fork in the notebook: the form in the run browser and in the monitor (widget models
driven directly; ``test_browser.py`` clicks and types into them in a real browser)."""

from __future__ import annotations

from typing import Any

from helpers import result_of, until, waiting, words

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.notebook.fork_form import ForkForm
from notebook_workflows.widgets import RunBrowser


class Counted(Event):
    n: int


class Tally(Workflow):
    """Keeps a factor, then multiplies by it."""

    @step
    async def setup(self, ctx: Context, ev: StartEvent) -> Counted:
        await ctx.store.set("factor", ev.factor)
        await ctx.store.set("cfg", {"unit": "kg"})
        return Counted(n=7)

    @step
    async def multiply(self, ctx: Context, ev: Counted) -> StopEvent:
        factor = await ctx.store.get("factor")
        unit = await ctx.store.get("cfg.unit")
        await ctx.store.set("total", ev.n * factor)
        return StopEvent(result=f"{ev.n * factor} {unit}")


async def finished(store: Any, run_id: str = "tally-1") -> str:
    assert await Tally().run(run_id=run_id, factor=2, checkpoint=store) == "14 kg"
    return run_id


def after_setup(store: Any, run_id: str) -> int:
    return next(s.seq for s in store.history(run_id) if s.step == "setup")


async def test_the_browser_forks_with_an_edit_and_shows_the_new_run() -> None:
    store = MemoryStore()
    run_id = await finished(store)
    browser = RunBrowser(store, workflow=Tally())
    browser.runs.value = run_id
    at = after_setup(store, run_id)
    browser.slider.value = at
    form = browser.fork_form
    assert (form.run_id, form.seq) == (run_id, at)
    assert list(form.key.options) == ["cfg", "factor"]  # the keys at that snapshot
    form.key.value = "factor"
    assert words(form.now.value) == "now 2"  # the value there, beside the key
    form.key.value = "fresh"
    assert words(form.now.value) == "a new key"
    form.key.value = "factor"
    form.value.value = "5"
    form.button.click()
    fork = form.handler
    assert fork is not None and fork.run_id != run_id
    assert await result_of(fork) == "35 kg"
    said = words(form.message.value)
    assert f"Forked snapshot {at} of {run_id} with factor = 5 as run {fork.run_id}" in said
    assert f"await Tally().resume('{fork.run_id}', store=store)" in said
    assert len(form.forks.children) == 1  # the fork's own monitor
    # the fork is in the list, and its first snapshot shows the edit
    browser.reload()
    browser.runs.value = fork.run_id
    browser.slider.value = 0
    assert "forked with the store edited (factor)" in words(browser.snapshot.value)
    assert "factor = 5 (was 2 )" in words(browser.snapshot.value)


async def test_a_dotted_key_reaches_into_a_nested_value() -> None:
    store = MemoryStore()
    run_id = await finished(store)
    browser = RunBrowser(store, workflow=Tally())
    browser.runs.value = run_id
    browser.slider.value = after_setup(store, run_id)
    form = browser.fork_form
    form.key.value, form.value.value = "cfg.unit", '"lb"'
    form.submit()
    assert await result_of(form.handler) == "14 lb"


async def test_a_refused_edit_is_shown_and_nothing_is_written() -> None:
    store = MemoryStore()
    run_id = await finished(store)
    browser = RunBrowser(store, workflow=Tally())
    browser.runs.value = run_id
    browser.slider.value = after_setup(store, run_id)
    form = browser.fork_form
    form.key.value, form.value.value = "cfg.unit.deeper", "1"
    form.submit()
    said = words(form.message.value)
    assert "KeyError" in said and "cfg.unit" in said and "nothing was written" in said
    assert form.handler is None and [i.run_id for i in store.runs()] == [run_id]
    form.key.value, form.value.value = "factor", "five"
    form.submit()
    assert "the value is not JSON" in words(form.message.value)
    form.key.value, form.value.value = "", "5"
    form.submit()
    assert "pick or type the store key" in words(form.message.value)
    # the end of a finished run cannot be forked: nothing would run from it
    browser.slider.value = browser.slider.max
    form.key.value, form.value.value = "factor", "3"
    form.submit()
    assert "SnapshotError" in words(form.message.value)
    assert [i.run_id for i in store.runs()] == [run_id]


async def test_without_a_workflow_the_browser_shows_the_line_that_forks() -> None:
    store = MemoryStore()
    run_id = await finished(store)
    browser = RunBrowser(store)
    browser.runs.value = run_id
    at = after_setup(store, run_id)
    browser.slider.value = at
    browser.fork_form.key.value = "factor"
    browser.fork_form.value.value = "[1, true]"
    browser.fork_form.button.click()
    said = words(browser.fork_form.message.value)
    assert (
        f"handler = Tally().fork('{run_id}', at={at}, store_edits={{'factor': [1, True]}}, "
        f"store=store)" in said
    )
    assert len(store.runs()) == 1


async def test_the_monitor_of_a_finished_run_edits_and_forks() -> None:
    store = MemoryStore()
    handler = Tally().run(run_id="tally-m", factor=3, checkpoint=store)
    monitor = handler.monitor()
    assert monitor.fork_fold is None  # nothing to fork while it runs
    assert await handler == "21 kg"
    await until(lambda: monitor.fork_fold is not None, what="the fork section")
    assert monitor.fork_fold is not None and monitor.fork_form is None  # folded, not yet made
    assert monitor.fork_fold.description == "▸ edit and fork"
    monitor.fork_fold.click()
    form = monitor.fork_form
    assert form is not None and form.widget in monitor.widget.children
    assert monitor.fork_fold.description == "▾ edit and fork"
    # the snapshots before the run's end, the last of them chosen
    seqs = [seq for _, seq in form.at.options]
    history = store.history("tally-m")
    assert seqs == [s.seq for s in history if s.status != "done"]
    assert form.seq == seqs[-1]
    form.at.value = after_setup(store, "tally-m")
    form.key.value, form.value.value = "factor", "10"
    form.button.click()
    assert await result_of(form.handler) == "70 kg"
    said = words(form.message.value)
    assert f"as run {form.handler.run_id}" in said
    assert f"await Tally().resume('{form.handler.run_id}', store=store)" in said
    fork_monitor = form.forks.children[0]
    await until(lambda: "total" in words(str(fork_monitor.children)), what="the fork's store")
    assert "total" in words(str(fork_monitor.children))  # the fork's store, in its monitor
    monitor.fork_fold.click()  # folds away
    assert "nwm-folded" in form.widget._dom_classes


async def test_a_run_in_the_default_store_is_resumed_without_naming_it(
    tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    with SQLiteStore() as store:  # what resume() opens when it is given no store
        handler = Tally(checkpoint=store).run(run_id="own", factor=1)
        monitor = handler.monitor()
        await handler
        await until(lambda: monitor.fork_fold is not None, what="the fork section")
        monitor.fork_fold.click()
        form = monitor.fork_form
        form.key.value, form.value.value = "factor", "4"
        form.at.value = after_setup(store, "own")
        form.submit()
        assert f"await Tally().resume('{form.handler.run_id}')" in words(form.message.value)
        assert await result_of(form.handler) == "28 kg"


async def test_an_unchecked_run_has_no_fork_section() -> None:
    handler = Tally().run(factor=1)
    monitor = handler.monitor()
    await handler
    # the monitor's refresh that shows the end is the one that would add the fork section
    await until(lambda: "done" in words(monitor.header.value), what="the end in the monitor")
    assert monitor.fork_fold is None


def test_a_form_without_a_snapshot_does_nothing() -> None:
    form = ForkForm(MemoryStore())
    assert form.button.disabled is True
    form.submit()
    assert "choose a snapshot" in words(form.message.value)


class Asked(Event):
    pass


class AskTally(Workflow):
    """Keeps a factor, then asks a human for a number."""

    @step
    async def setup(self, ctx: Context, ev: StartEvent) -> Asked:
        await ctx.store.set("factor", ev.factor)
        return Asked()

    @step
    async def ask(self, ctx: Context, ev: Asked) -> StopEvent:
        from notebook_workflows import HumanResponseEvent, InputRequiredEvent

        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="How many?")
        )
        return StopEvent(result=int(answer.response) * await ctx.store.get("factor"))


async def test_a_paused_run_is_forked_from_its_latest_snapshot_and_asks_again() -> None:
    from notebook_workflows import HumanResponseEvent

    store = MemoryStore()
    handler = AskTally().run(run_id="ask-1", factor=2, checkpoint=store)
    monitor = handler.monitor()
    await waiting(handler)
    # paused for a human: it can be forked (once the monitor has refreshed)
    await until(lambda: monitor.fork_fold is not None, what="the fork section")
    monitor.fork_fold.click()
    form = monitor.fork_form
    assert form.seq == store.latest("ask-1").seq  # the pause itself
    form.key.value, form.value.value = "factor", "7"
    form.submit()
    fork = form.handler
    await waiting(fork)
    fork.ctx.send_event(HumanResponseEvent(response="3"))
    assert await result_of(fork) == 21
    handler.ctx.send_event(HumanResponseEvent(response="3"))
    assert await handler == 6  # the original goes on untouched
