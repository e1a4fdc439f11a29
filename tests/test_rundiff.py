"""RunDiff: two checkpointed runs side by side, and the first point where they part.

Runs are made as in ``test_rerun``: a workflow class from source text (``cell``), edited by
replacing a line and run again with ``rerun``; forks with ``fork(store_edits=...)``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_rerun import PIPELINE, cell

from notebook_workflows import RunDiff
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.errors import SnapshotError


async def original(store: MemoryStore, text: str = "a b c") -> Any:
    handler = cell(PIPELINE)(checkpoint=store).run(text=text)
    await handler
    return handler


async def test_a_rerun_after_an_edit_differs_at_the_edited_step() -> None:
    store = MemoryStore()
    first = await original(store)
    edited = cell(PIPELINE, **{'f"{ev.count} words"': 'f"{ev.count} words!"'})
    rerun = edited(checkpoint=store).rerun(first.run_id)
    await rerun
    diff = RunDiff(first.run_id, rerun.run_id, store=store)
    difference = diff.first_difference
    assert difference is not None
    assert (difference.position, difference.what) == (3, "events")
    assert difference.a is not None and difference.b is not None
    assert (difference.a.step, difference.b.step) == ("report", "report")
    assert "its code changed" in difference.text and "3 words!" in difference.text
    assert diff.differing_steps == ["report"]
    assert diff.store_differences == {}  # report sets nothing
    data = diff.to_dict()
    assert data["b"]["steps"]["load"] == {"ran": 0, "replayed": 1, "shared": 0}
    assert data["b"]["steps"]["report"] == {"ran": 1, "replayed": 0, "shared": 0}
    assert (data["a"]["result"], data["b"]["result"]) == ("3 words", "3 words!")
    json.dumps(data)  # plain data
    text = str(diff)
    assert "b is a rerun of a" in text
    assert "4 calls (3 replayed, 1 ran)" in text
    assert "≠ report" in text and "≠ load" not in text


async def test_an_unchanged_rerun_has_no_difference() -> None:
    store = MemoryStore()
    first = await original(store)
    rerun = cell(PIPELINE)(checkpoint=store).rerun(first.run_id)
    await rerun
    diff = RunDiff(first, rerun)  # handlers: their checkpoint store is used
    assert diff.first_difference is None
    assert diff.differing_steps == [] and diff.store_differences == {}
    assert diff.to_dict()["same"] is True
    assert "no difference in their calls" in str(diff)


async def test_a_step_fed_another_event_is_a_difference_of_input() -> None:
    store = MemoryStore()
    first = await original(store)
    edited = cell(PIPELINE, **{"source.split()": "source.split()[1:]"})
    rerun = edited(checkpoint=store).rerun(first.run_id)
    await rerun
    diff = RunDiff(first.run_id, rerun.run_id, store=store)
    difference = diff.first_difference
    assert difference is not None and (difference.position, difference.what) == (1, "events")
    assert diff.differing_steps == ["parse", "count", "report"]
    assert diff.store_differences == {"count": (3, 2)}
    assert "count: a 3 | b 2" in str(diff)


async def test_a_fork_with_store_edits_differs_from_its_fork_point() -> None:
    store = MemoryStore()
    first = await original(store)
    fork = cell(PIPELINE)(checkpoint=store).fork(
        first.run_id, at=1, store_edits={"source": "x y z w"}
    )
    assert await fork == "4 words"
    diff = RunDiff(first.run_id, fork.run_id, store=store)
    difference = diff.first_difference
    assert difference is not None
    assert (difference.position, difference.what) == (1, "edit")
    assert difference.b is not None and difference.b.set == {"source": "x y z w"}
    assert difference.b.was == {"source": "a b c"}
    assert difference.text.startswith("at the fork point: b was forked here")
    # the parent's call before the fork point is the fork's too, marked shared
    assert diff.b.calls[0].shared and diff.b.calls[0].step == "load"
    assert diff.differing_steps == ["parse", "count", "report"]
    assert set(diff.store_differences) == {"source", "count"}
    assert "b is a fork of a at snapshot 1" in str(diff)
    assert "1 before the fork" in str(diff)
    # the other way round reads the same, with the names swapped
    back = RunDiff(fork.run_id, first.run_id, store=store).first_difference
    assert back is not None and back.text.startswith("at the fork point: a was forked here")


async def test_two_runs_with_different_inputs_differ_at_the_start() -> None:
    store = MemoryStore()
    one = await original(store, "a b c")
    two = await original(store, "a b")
    diff = RunDiff(one.run_id, two.run_id, store=store)
    difference = diff.first_difference
    assert difference is not None and difference.what == "start" and difference.position == -1
    assert "different inputs (text differs)" in difference.text
    assert diff.store_differences == {"source": ("a b c", "a b"), "count": (3, 2)}
    assert diff.relation() == ""


async def test_the_html_escapes_what_the_store_holds_and_marks_the_graphs() -> None:
    store = MemoryStore()
    first = await original(store, "<script>alert(1)</script> b")
    fork = cell(PIPELINE)(checkpoint=store).fork(
        first.run_id, at=1, store_edits={"source": "<b>bold</b>\nline"}
    )
    await fork
    page = RunDiff(first.run_id, fork.run_id, store=store)._repr_html_()
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "first difference" in page
    # the multi-line value shown as a diff: a removed line and an added one
    assert "-&lt;script&gt;alert(1)&lt;/script&gt; b</div>" in page
    assert "+&lt;b&gt;bold&lt;/b&gt;</div>" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # the graphs (Graphviz is there in the test environment) or a line saying why not
    assert "data:image/svg+xml;base64," in page or "graphs are not drawn" in page


async def test_an_unknown_run_is_refused_naming_it() -> None:
    store = MemoryStore()
    first = await original(store)
    with pytest.raises(SnapshotError, match="nope"):
        RunDiff(first.run_id, "nope", store=store)
