"""What the monitor says and how it reads: a multi-line result, step times said to be totals, a
monitor made after its run ended, the docs a user reads in the notebook, and colours that keep
their text legible in light and dark themes (``test_browser.py`` measures the drawn page)."""

from __future__ import annotations

import inspect
import re

from helpers import text, until, words

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.notebook.display import STATUS_COLOURS
from notebook_workflows.notebook.graph_model import _model_of, _overlay_run, step_time
from notebook_workflows.notebook.monitor.panels import result_html
from notebook_workflows.widgets import RunMonitor


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""

    def luminance(colour: str) -> float:
        def channel(c: float) -> float:
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class Got(Event):
    n: int


class Two(Workflow):
    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Got:
        await ctx.store.set("seen", 1)
        return Got(n=1)

    @step
    async def second(self, ev: Got) -> StopEvent:
        return StopEvent(result="line one\nline two")


# -- what it says ------------------------------------------------------------------------------


def test_a_result_of_several_lines_opens_to_its_text_with_real_line_breaks() -> None:
    page = result_html("Summary\n- cats: 2\n- dogs: 1")
    assert "\\n" not in page  # not the repr's escapes
    assert "- cats: 2\n- dogs: 1" in text(page)
    assert words(page).startswith("✔ result: 'Summary… (3 lines: show all)")


def test_a_step_time_of_several_calls_says_it_is_their_total() -> None:
    assert step_time(1, 1.05) == "1.05 s"
    assert step_time(16, 10.74) == "10.74 s total"


async def test_a_monitor_made_after_a_checkpointed_run_shows_its_timeline_and_snapshots() -> None:
    store = MemoryStore()
    handler = Two(checkpoint=store).run(run_id="late-ckpt")
    assert await handler == "line one\nline two"
    monitor = RunMonitor(handler)
    await until(lambda: monitor.timeline is not None)
    assert "first x1" in words(monitor.timeline.value)
    assert "second x1" in words(monitor.timeline.value)
    log = words(monitor.log.value)
    assert "#1 after step 'first'" in log and "#2 after step 'second'" in log
    assert "StopEvent" in log  # and the run's stream, as before


async def test_a_monitor_made_after_a_run_without_checkpoints_says_what_it_cannot_show() -> None:
    handler = Two().run(run_id="late-plain")
    await handler
    monitor = RunMonitor(handler)
    assert "made after the run ended, and the run kept no checkpoints" in words(monitor.log.value)


async def test_a_fork_draws_the_steps_before_its_fork_point_as_run() -> None:
    store = MemoryStore()
    await Two(checkpoint=store).run(run_id="orig")
    fork = Two(checkpoint=store).fork("orig", at=1, store_edits={"seen": 2})
    await fork
    nodes, edges = _overlay_run(_model_of(Two), fork.view())
    states = {n.id.rpartition(".")[2]: n.state for n in nodes}
    assert states["step:first"] == "" and states["Got"] == "" and states["StartEvent"] == ""
    assert all(e.count for e in edges), edges  # no route drawn dashed as never taken


# -- the docs read in the notebook -------------------------------------------------------------


def test_the_run_doors_have_their_docs_where_tab_completion_reads_them() -> None:
    workflow = Two()
    for name in ("resume", "resume_sync", "rerun", "rerun_sync", "fork", "run", "run_sync"):
        doc = inspect.getdoc(getattr(workflow, name))
        assert doc and len(doc) > 40, name
        assert inspect.signature(getattr(workflow, name)).parameters  # not a (*args) wrapper


def test_the_monitor_door_has_a_real_docstring() -> None:
    from notebook_workflows.handler import WorkflowHandler

    doc = inspect.getdoc(WorkflowHandler.monitor) or ""
    assert len(doc.splitlines()) > 5
    assert "display(handler.monitor())" in doc and "checkpoint" in doc


# -- colours -----------------------------------------------------------------------------------


def test_every_node_text_reads_on_its_fill_in_the_light_and_the_dark_palette() -> None:
    from notebook_workflows.notebook.graph_text import (
        _CAPTION,
        _CHIP,
        _CHIP_HUMAN,
        _CHIP_TEXT,
        _NODE_STYLES,
        _STATE_STYLES,
        DARK_COLOURS,
    )

    pairs = [(_CHIP_TEXT, _CHIP), (_CHIP_HUMAN, _CHIP), (_CAPTION, _CHIP)]
    for style in _NODE_STYLES.values():
        for state in ("", *_STATE_STYLES):
            attrs = {**style, **_STATE_STYLES.get(state, {})}
            pairs.append((attrs["fontcolor"].strip('"'), attrs["fillcolor"].strip('"')))
    for fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, (fg, bg)
        assert contrast(DARK_COLOURS[fg], DARK_COLOURS[bg]) >= 4.5, (fg, bg)
    every = set()
    for style in (*_NODE_STYLES.values(), *_STATE_STYLES.values()):
        every |= {v.strip('"') for k, v in style.items() if k in ("fillcolor", "color")}
    assert every <= set(DARK_COLOURS)  # each light colour has a dark counterpart


def test_status_pills_keep_white_text_legible() -> None:
    for status, colour in STATUS_COLOURS.items():
        assert contrast("#ffffff", colour) >= 4.5, status


def test_the_monitor_palette_reads_on_its_light_and_dark_backgrounds() -> None:
    from notebook_workflows.notebook.monitor.style import PALETTE

    light, dark = PALETTE.split("body[", 1)
    for block, backgrounds in ((light, ("#ffffff", "#f5f5f5")), (dark, ("#111111", "#1d1d1d"))):
        colours = dict(re.findall(r"--nw-(\w+): (#[0-9a-f]{6})", block))
        assert len(colours) == 7, colours
        for name, colour in colours.items():
            for bg in backgrounds:
                assert contrast(colour, bg) >= 4.5, (name, colour, bg)
