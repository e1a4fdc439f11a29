"""RunBrowser: the runs a checkpoint store keeps, filtered, looked into snapshot by snapshot,
deleted, resumed and forked (widget models read directly; ``test_browser.py`` clicks it)."""

from __future__ import annotations

import shutil

import pytest
from helpers import words

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.notebook.graph import WorkflowGraph
from notebook_workflows.widgets import RunBrowser

HAS_DOT = shutil.which("dot") is not None


class Part(Event):
    n: int


class Parts(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Part | None:
        await ctx.store.set("label", ev.label)
        for n in range(3):
            ctx.send_event(Part(n=n))
        return None

    @step(num_workers=3)
    async def work(self, ctx: Context, ev: Part) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            state["done"] = state.get("done", 0) + 1
            finished = state["done"] == 3
        return StopEvent(result="all parts") if finished else None


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    Parts().run_sync(run_id="alpha", label="a", checkpoint=store)
    Parts().run_sync(run_id="beta", label="b", checkpoint=store)
    return store


def test_it_lists_the_runs_newest_first_and_filters_them(store: MemoryStore) -> None:
    browser = RunBrowser(store)
    assert [value for _, value in browser.runs.options] == ["beta", "alpha"]
    assert browser.status.options == ("(all)", "done")
    assert browser.workflow_filter.options == ("(all)", "Parts")
    browser.search.value = "alp"
    assert [value for _, value in browser.runs.options] == ["alpha"]
    assert browser.runs.value == "alpha"
    browser.search.value = "nothing like it"
    assert browser.runs.options == ()
    assert browser.detail.layout.display == "none"
    assert repr(browser) == "RunBrowser(MemoryStore, 0 runs shown)"


def test_choosing_a_run_shows_its_last_snapshot_and_the_slider_moves_back(
    store: MemoryStore,
) -> None:
    browser = RunBrowser(store)
    browser.runs.value = "alpha"
    history = store.history("alpha")
    assert browser.slider.max == len(history) - 1 == browser.slider.value
    assert "run alpha · done · 4 steps done" in words(browser.info.value)
    assert "label str 'a'" in words(browser.store_view.value)
    assert "done int 3" in words(browser.store_view.value)
    assert "work x3" in words(browser.timeline.value)
    if HAS_DOT:
        assert browser.graph.value.startswith('<div class="nwm-svg"><svg ')  # inline: themed
    browser.slider.value = 1  # after the first step: the label is set, no part done yet
    assert "after step 'split'" in words(browser.snapshot.value)
    assert "label str 'a'" in words(browser.store_view.value)
    assert "done" not in words(browser.store_view.value).split("label")[0]
    assert "work" not in words(browser.timeline.value)


def test_a_snapshot_graph_counts_the_runs_of_each_step(store: MemoryStore) -> None:
    graph = WorkflowGraph.of_snapshot(store.latest("alpha"))
    assert "3 runs" in graph.source and "1 run " in graph.source
    assert "run alpha" in graph.source
    first = WorkflowGraph.of_snapshot(store.history("alpha")[0])
    assert 'fillcolor="#f1f2f4"' in first.source  # nothing ran yet: steps dimmed


def test_deleting_asks_first(store: MemoryStore) -> None:
    browser = RunBrowser(store)
    browser.runs.value = "alpha"
    browser.delete_button.click()
    assert "Really delete alpha?" in browser.delete_button.description
    assert {i.run_id for i in store.runs()} == {"alpha", "beta"}
    browser.delete_button.click()
    assert {i.run_id for i in store.runs()} == {"beta"}
    assert [value for _, value in browser.runs.options] == ["beta"]


def test_without_a_workflow_it_shows_the_code_to_resume_or_fork(store: MemoryStore) -> None:
    browser = RunBrowser(store)
    browser.runs.value = "alpha"
    browser.slider.value = 1
    seq = store.history("alpha")[1].seq
    browser.fork_button.click()
    assert f"Parts().resume('alpha', store=store, at={seq})" in words(browser.message.value)


async def test_with_a_workflow_it_forks_a_snapshot_into_a_new_run(store: MemoryStore) -> None:
    browser = RunBrowser(store, workflow=Parts())
    browser.runs.value = "alpha"
    browser.slider.value = 1
    browser.fork_button.click()
    assert browser.handler is not None, browser.message.value
    assert await browser.handler == "all parts"
    assert f"as run {browser.handler.run_id}" in words(browser.message.value)
    browser.reload()
    forked = [i for i in store.runs() if i.parent == "alpha"]
    assert [i.run_id for i in forked] == [browser.handler.run_id]
