"""export_html: one checkpointed run as one self-contained, offline HTML page."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from test_rerun import PIPELINE, cell

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, export_html, step
from notebook_workflows.__main__ import main
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.graph import GraphRenderError

SCRIPT = "<script>alert('boom')</script>"


async def pipeline_run(store: Any, text: str = f"{SCRIPT} b c") -> Any:
    handler = cell(PIPELINE)(checkpoint=store).run(text=text)
    await handler
    return handler


def offline(page: str) -> None:
    """Nothing in the page points at the network, and the only scripts are its own two."""
    assert re.search(r"https?://", page) is None
    assert page.count("<script") == 2
    assert "<link" not in page and "@import" not in page and " src=" not in page


async def test_a_run_exports_as_one_offline_page(tmp_path: Path) -> None:
    store = MemoryStore()
    handler = await pipeline_run(store)
    path = export_html(store, handler.run_id, tmp_path / "run.html")
    page = path.read_text(encoding="utf-8")
    offline(page)
    assert page.startswith("<!DOCTYPE html>")
    assert handler.run_id in page and "Pipeline" in page
    assert "<svg" in page  # the graph, inline (Graphviz is in the test environment)
    # the snapshots with their calls, the final store and the result
    for seq in range(len(store.history(handler.run_id))):
        assert f"id='snapshot-{seq}'" in page
    assert "<b>count</b> → <code>Counted(count=3)</code>" in page
    assert "&#x27;3 words&#x27;" in page  # the result, escaped
    assert "Timeline" in page and "nw-at" in page  # timeline strip and snapshot slider


async def test_store_values_are_escaped_everywhere(tmp_path: Path) -> None:
    store = MemoryStore()
    handler = await pipeline_run(store)
    page = export_html(store, handler.run_id, tmp_path / "run.html").read_text()
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(&#x27;boom&#x27;)&lt;/script&gt;" in page  # in the tables
    assert "\\u003cscript\\u003ealert" in page  # in the slider's data, as JSON escapes


async def test_the_page_says_so_when_graphviz_cannot_draw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notebook_workflows.notebook import graph

    def no_dot(source: str, fmt: str) -> bytes:
        raise GraphRenderError("the Graphviz `dot` program is not on PATH")

    monkeypatch.setattr(graph, "_render", no_dot)
    monkeypatch.setattr(graph, "_SVG_CACHE", graph.OrderedDict())
    store = MemoryStore()
    handler = await pipeline_run(store, "x y")
    page = export_html(store, handler.run_id, tmp_path / "run.html").read_text()
    assert "<svg" not in page
    assert "The graph is not drawn in this page" in page and "not on PATH" in page
    offline(page)


class Breaks(Workflow):
    @step
    async def explode(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("note", SCRIPT)
        raise ValueError(f"bad input {SCRIPT}")


async def test_a_failed_run_shows_its_error(tmp_path: Path) -> None:
    store = MemoryStore()
    handler = Breaks(checkpoint=store).run()
    with pytest.raises(ValueError):
        await handler
    page = handler.export_html(tmp_path / "failed.html").read_text()
    assert "<h2>Errors</h2>" in page
    assert "step <b>explode</b> failed" in page
    assert "bad input &lt;script&gt;" in page
    offline(page)


async def test_a_rerun_page_says_which_calls_were_replayed(tmp_path: Path) -> None:
    store = MemoryStore()
    first = await pipeline_run(store, "a b c")
    edited = cell(PIPELINE, **{'f"{ev.count} words"': 'f"{ev.count} words!"'})
    rerun = edited(checkpoint=store).rerun(first.run_id)
    await rerun
    page = rerun.export_html(tmp_path / "rerun.html").read_text()
    assert page.count("<i>(replayed)</i>") == 3
    assert "(ran: its code changed since the recorded run)" in page
    assert f"<code>{first.run_id}</code> at snapshot 0" in page


def test_a_handler_without_checkpoints_says_there_is_nothing_to_export(tmp_path: Path) -> None:
    async def go() -> Any:
        handler = cell(PIPELINE)().run(text="a")
        await handler
        return handler

    handler = asyncio.run(go())
    with pytest.raises(ValueError, match="writes no checkpoints"):
        handler.export_html(tmp_path / "x.html")


def test_the_command_line_exports_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs.db"
    with SQLiteStore(db) as store:
        handler = asyncio.run(pipeline_run(store))
    out = tmp_path / "page.html"
    assert main(["runs", "export", handler.run_id, "--store", str(db), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote run {handler.run_id!r} to {out}" in said and "one offline page" in said
    page = out.read_text()
    offline(page)
    assert SCRIPT not in page and handler.run_id in page
    # without -o: RUN.html in the working directory; --store may come first too
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--store", str(db), "export", handler.run_id]) == 0
    assert (tmp_path / f"{handler.run_id}.html").is_file()
    # an unknown run: one line on stderr, exit status 1
    assert main(["runs", "export", "nope", "--store", str(db)]) == 1
    assert "nope" in capsys.readouterr().err


class Tick(Event):
    n: int


class Loop(Workflow):
    """A thousand steps, each writing a store value."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Tick:
        return Tick(n=0)

    @step
    async def tick(self, ctx: Context, ev: Tick) -> Tick | StopEvent:
        await ctx.store.set("last", f"tick {ev.n} " + "x" * 40)
        return StopEvent(result=ev.n) if ev.n >= 998 else Tick(n=ev.n + 1)


async def test_a_thousand_step_run_stays_under_two_megabytes(tmp_path: Path) -> None:
    store = MemoryStore()
    handler = Loop(checkpoint=store).run()
    assert await handler == 998
    path = export_html(store, handler.run_id, tmp_path / "long.html")
    size = path.stat().st_size
    assert size < 2 * 1024 * 1024, size
    page = path.read_text()
    assert "id='snapshot-1000'" in page  # every snapshot listed
    offline(page)
