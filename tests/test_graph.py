"""WorkflowGraph: a workflow and a run drawn inline, offline, deterministic, with a fallback."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import until, waiting
from IPython.core.formatters import DisplayFormatter

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.graph import GraphRenderError, WorkflowGraph

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="needs the Graphviz `dot` program (apt-get install graphviz)",
)


class Chunk(Event):
    index: int


class Summary(Event):
    text: str


class Digest(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Chunk | None:
        for i in range(3):
            ctx.send_event(Chunk(index=i))
        return None

    @step(num_workers=4, retry_policy=ConstantDelayRetryPolicy(delay=0.01, maximum_attempts=3))
    async def summarize(self, ev: Chunk) -> Summary:
        return Summary(text=f"part {ev.index}")

    @step
    async def combine(self, ctx: Context, ev: Summary) -> StopEvent | None:
        got = ctx.collect_events(ev, [Summary] * 3)
        return None if got is None else StopEvent(result=len(got))


class Review(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Approve?")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)


class Parsed(Event):
    pass


class Broken(Workflow):
    @step
    async def parse(self, ev: StartEvent) -> Parsed:
        raise ValueError('bad <input> & "line" 3')

    @step
    async def report(self, ev: Parsed) -> StopEvent:
        return StopEvent()


# Two event classes with the same name from two modules.
ResultA = type("Result", (Event,), {"__module__": "shop.orders"})
ResultB = type("Result", (Event,), {"__module__": "shop.refunds"})


class TwoResults(Workflow):
    @step
    async def order(self, ev: StartEvent) -> ResultA:
        return ResultA()

    @step
    async def refund(self, ev: ResultA) -> ResultB:
        return ResultB()

    @step
    async def close(self, ev: ResultB) -> StopEvent:
        return StopEvent()


def node_line(source: str, node_id: str) -> str:
    lines = [line for line in source.splitlines() if line.strip().startswith(f'"{node_id}" [')]
    assert len(lines) == 1, f"expected one declaration of {node_id!r}"
    return lines[0]


def edge_count(source: str, src: str, dst: str) -> str | None:
    """The count drawn on the edge ``src -> dst`` (its chip's text), if any."""
    for line in source.splitlines():
        if re.match(rf'\s*"{re.escape(src)}" -> "{re.escape(dst)}"', line):
            found = re.search(r"<FONT COLOR=\"#[0-9a-f]+\">([^<]*)</FONT>", line)
            return found.group(1) if found else None
    raise AssertionError(f"no edge {src} -> {dst}")


def svg_text(svg: str) -> str:
    """The words drawn in an SVG, without markup."""
    return " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))


# -- the static graph -------------------------------------------------------------------------


@needs_dot
def test_every_step_and_event_name_appears_in_the_svg() -> None:
    text = svg_text(WorkflowGraph.of_workflow(Digest).to_svg())
    for name in ("split", "summarize", "combine", "StartEvent", "Chunk", "Summary", "StopEvent"):
        assert name in text


def test_the_same_workflow_gives_the_same_dot_text() -> None:
    first = WorkflowGraph.of_workflow(Digest()).source
    assert first == WorkflowGraph.of_workflow(Digest).source == Digest().draw().source
    assert "0x" not in first and "run" not in first.split("\n", 1)[0]


def test_steps_are_boxes_and_events_nodes_between_them() -> None:
    source = Digest().draw().source
    assert "shape=box" in node_line(source, "step:split")
    chunk = f"event:{__name__}.Chunk"
    assert "shape=ellipse" in node_line(source, chunk)
    assert f'"step:split" -> "{chunk}"' in source
    assert f'"{chunk}" -> "step:summarize"' in source


def test_start_stop_and_human_events_are_set_apart() -> None:
    source = Review().draw().source
    start = "event:notebook_workflows.events.StartEvent"
    stop = "event:notebook_workflows.events.StopEvent"
    question = "event:notebook_workflows.events.InputRequiredEvent"
    answer = "event:notebook_workflows.events.HumanResponseEvent"
    assert f'{{rank=source; "{start}"}}' in source
    assert "rank=sink" not in source  # a stop event sits under its producers (test_graph_layout)
    assert "peripheries=2" in node_line(source, stop)
    assert "#dcf2e1" in node_line(source, start)
    for human in (question, answer):
        assert "shape=note" in node_line(source, human)
    assert f'"{question}" -> "{answer}" [style=dashed' in source  # the human's hand-off


def test_workers_and_retries_are_noted_on_the_step() -> None:
    line = node_line(Digest().draw().source, "step:summarize")
    assert "4 workers" in line and "retries: 2" in line
    assert "workers" not in node_line(Digest().draw().source, "step:split")


def test_same_named_event_classes_from_two_modules_stay_distinct() -> None:
    graph = TwoResults().draw()
    source = graph.source
    node_line(source, "event:shop.orders.Result")
    node_line(source, "event:shop.refunds.Result")
    assert '"step:order" -> "event:shop.orders.Result"' in source
    assert '"event:shop.orders.Result" -> "step:refund"' in source
    assert '"step:refund" -> "event:shop.refunds.Result"' in source
    # the labels say which is which
    assert "shop.orders" in node_line(source, "event:shop.orders.Result").split("label=")[1]
    mermaid = graph.to_mermaid()
    assert len(re.findall(r'\(\["Result<br/>shop\.(orders|refunds)"\]\)', mermaid)) == 2


def test_repr_is_short_and_deterministic() -> None:
    assert repr(Digest().draw()) == "<WorkflowGraph of Digest: 3 steps, 4 event types>"


def test_a_graph_needs_a_workflow() -> None:
    with pytest.raises(TypeError, match="Workflow"):
        WorkflowGraph.of_workflow(object())  # type: ignore[arg-type]


# -- Mermaid ----------------------------------------------------------------------------------


def mermaid_parts(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    node_ids = re.findall(r"^    (\w+)\(.*:::\w+$", text, flags=re.MULTILINE)
    edges = re.findall(r"^    (\w+) -\.?->(?:\|[^|]*\|)? (\w+)$", text, flags=re.MULTILINE)
    return node_ids, edges


def test_mermaid_has_one_node_per_step_and_event_and_one_edge_per_route() -> None:
    text = Digest().draw().to_mermaid()
    assert text.startswith("flowchart TB\n")
    node_ids, edges = mermaid_parts(text)
    assert sorted(node_ids) == sorted(
        [
            "s_split",
            "s_summarize",
            "s_combine",
            "e_StartEvent",
            "e_Chunk",
            "e_Summary",
            "e_StopEvent",
        ]
    )
    routes = [
        ("e_StartEvent", "s_split"),
        ("s_split", "e_Chunk"),
        ("e_Chunk", "s_summarize"),
        ("s_summarize", "e_Summary"),
        ("e_Summary", "s_combine"),
        ("s_combine", "e_StopEvent"),
    ]
    assert sorted(edges) == sorted(routes)
    assert len([line for line in text.splitlines() if "-->" in line]) == len(routes)


def test_mermaid_ids_are_sanitized_and_labels_escaped() -> None:
    class Événement(Event):
        pass

    class Odd(Workflow):
        @step
        async def end(self, ev: StartEvent) -> Événement:
            return Événement()

        @step
        async def graph(self, ev: Événement) -> StopEvent:
            return StopEvent()

    text = Odd().draw().to_mermaid()
    node_ids, edges = mermaid_parts(text)
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in node_ids)
    assert "end" not in node_ids and "s_end" in node_ids
    assert len(edges) == 4
    assert '(["Événement"])' in text  # labels keep the real name

    async def failed_run() -> str:
        handler = Broken().run()
        with pytest.raises(ValueError):
            await handler
        return handler.draw().to_mermaid()

    text = asyncio.run(failed_run())
    assert "bad #lt;input#gt; #amp; #quot;line#quot; 3" in text
    assert '"line"' not in text and "<input>" not in text


# -- the graph of a run -----------------------------------------------------------------------


async def test_a_run_graph_has_counts_on_edges_and_runs_and_time_per_step() -> None:
    handler = Digest().run()
    assert await handler == 3
    source = handler.draw().source
    chunk = f"event:{__name__}.Chunk"
    assert edge_count(source, "step:split", chunk) == "3"
    assert edge_count(source, chunk, "step:summarize") == "3"
    assert edge_count(source, "event:notebook_workflows.events.StartEvent", "step:split") == "1"
    summarize = node_line(source, "step:summarize")
    # several invocations: their times add up, and the label says it is a total
    assert re.search(r"3 runs · (&lt;)?[\d.]+ (ms|s) total", summarize)
    assert "1 run ·" in node_line(source, "step:split")
    assert f"run {handler.run_id} · done" in source


async def test_a_failed_step_is_marked_with_its_error_escaped() -> None:
    handler = Broken().run()
    with pytest.raises(ValueError):
        await handler
    graph = handler.draw()
    parse = node_line(graph.source, "step:parse")
    assert "#c92a2a" in parse  # the failed colour
    assert "failed:" in parse
    assert "ValueError: bad &lt;input&gt; &amp; &quot;line&quot; 3" in parse
    report = node_line(graph.source, "step:report")
    assert "dashed" in report and "#5f6873" in report  # never reached: dimmed


async def test_a_long_error_is_shortened() -> None:
    class Loud(Workflow):
        @step
        async def shout(self, ev: StartEvent) -> StopEvent:
            raise RuntimeError("A" * 500 + "\n" + "tail")

    handler = Loud().run()
    with pytest.raises(RuntimeError):
        await handler
    line = node_line(handler.draw().source, "step:shout")
    assert "…" in line and "tail" not in line and "A" * 100 not in line


async def test_the_running_step_is_highlighted() -> None:
    gate = asyncio.Event()

    class Slow(Workflow):
        @step
        async def fetch(self, ev: StartEvent) -> Chunk:
            await gate.wait()
            return Chunk(index=0)

        @step
        async def finish(self, ev: Chunk) -> StopEvent:
            return StopEvent(result=ev.index)

    handler = Slow().run()
    await until(lambda: handler.view().running == ("fetch",), what="fetch running")
    running = handler.draw().source
    assert "#e8590c" in node_line(running, "step:fetch")  # the running colour
    assert "running" in node_line(running, "step:fetch")
    assert "#5f6873" in node_line(running, "step:finish")  # not reached yet
    gate.set()
    assert await handler == 0
    done = handler.draw().source
    assert "#e8590c" not in done
    assert "1 run" in node_line(done, "step:finish")


async def test_a_stepwise_run_graph_follows_each_step() -> None:
    handler = Digest().run(stepwise=True)
    before = handler.draw().source
    assert "1 queued" in node_line(before, "step:split")
    assert "#5f6873" in node_line(before, "step:summarize")
    await handler.step()
    after = handler.draw().source
    assert "1 run" in node_line(after, "step:split")
    assert "3 queued" in node_line(after, "step:summarize")
    assert after != before
    assert await handler == 3


async def test_an_event_sent_without_being_declared_gets_a_dotted_edge() -> None:
    class Sneaky(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> Chunk | None:
            ctx.send_event(Summary(text="not declared here"))
            return Chunk(index=1)

        @step
        async def chunk(self, ev: Chunk) -> Summary:
            return Summary(text="declared")

        @step
        async def end(self, ctx: Context, ev: Summary) -> StopEvent | None:
            got = ctx.collect_events(ev, [Summary, Summary])
            return None if got is None else StopEvent(result=len(got))

    handler = Sneaky().run()
    assert await handler == 2
    graph = handler.draw()
    summary = f"event:{__name__}.Summary"
    edges = [line for line in graph.source.splitlines() if f'"step:begin" -> "{summary}"' in line]
    assert len(edges) == 1
    assert "style=dotted" in edges[0]
    assert edge_count(graph.source, "step:begin", summary) == "1"
    assert 's_begin -.->|"1"| e_Summary' in graph.to_mermaid()


async def test_a_question_to_a_human_is_shown_as_waiting() -> None:
    handler = Review().run()
    await waiting(handler)
    source = handler.draw().source
    question = node_line(source, "event:notebook_workflows.events.InputRequiredEvent")
    assert "waiting for a human" in question
    handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == "yes"
    assert "waiting for a human" not in handler.draw().source


async def test_redrawing_a_run_is_cheap() -> None:
    handler = Digest().run()
    await handler
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(20):
        WorkflowGraph.of_run(handler).source  # noqa: B018 - building the text is the point
    # about a millisecond here; the bound is generous for a loaded machine and still far
    # below what laying the graph out with graphviz on every refresh would cost
    assert (loop.time() - start) / 20 < 0.25


# -- display, files and the fallback ----------------------------------------------------------


@needs_dot
def test_ipython_displays_a_graph_as_svg() -> None:
    data, _ = DisplayFormatter().format(Digest().draw())
    assert data["image/svg+xml"].startswith("<svg")
    assert "summarize" in data["image/svg+xml"]
    assert data["text/plain"] == "<WorkflowGraph of Digest: 3 steps, 4 event types>"


@needs_dot
def test_the_html_form_is_the_same_svg_as_an_image_untrusted_notebooks_show() -> None:
    import base64

    data, _ = DisplayFormatter().format(Digest().draw())
    page = data["text/html"]
    match = re.fullmatch(
        r'<div class="nw-graph-img" style="overflow-x:auto;max-width:100%">'
        r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"'
        r' style="max-width:100%;height:auto;width:(\d+)px;min-width:(\d+)px"/></div>',
        page,
    )
    assert match is not None, page[:200]
    assert base64.b64decode(match.group(1)).decode() == data["image/svg+xml"]
    assert match.group(2) == "&lt;WorkflowGraph of Digest: 3 steps, 4 event types&gt;"
    # narrower where the output area is, but never below a readable size: then it scrolls
    assert abs(int(match.group(4)) - int(match.group(3)) * 0.85) <= 1
    assert "<script" not in page and "<svg" not in page  # nothing a sanitizer would strip


@needs_dot
def test_a_workflow_instance_displays_its_graph() -> None:
    data, _ = DisplayFormatter().format(Digest())
    assert data["image/svg+xml"] == Digest().draw()._repr_svg_()


@needs_dot
def test_the_svg_is_rendered_once_per_dot_text(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = TwoResults().draw()
    first = graph.to_svg()
    calls = []
    real_run = subprocess.run

    def counting_run(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counting_run)
    assert TwoResults().draw().to_svg() == first
    assert calls == []


def test_without_dot_it_shows_the_dot_text_and_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class NeverDrawn(Workflow):  # its own text, so no SVG can come from the cache
        @step
        async def only(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    monkeypatch.setenv("PATH", str(tmp_path))
    graph = NeverDrawn().draw()
    bundle = graph._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    assert graph.source in bundle["text/plain"]
    assert "apt-get install graphviz" in bundle["text/plain"]
    assert "conda install graphviz" in bundle["text/plain"]
    assert (
        "digraph &quot;" in bundle["text/html"]
        and "apt-get install graphviz" in bundle["text/html"]
    )
    assert graph._repr_svg_() is None
    data, _ = DisplayFormatter().format(NeverDrawn())
    assert "apt-get install graphviz" in data["text/plain"]
    assert "image/svg+xml" not in data
    with pytest.raises(GraphRenderError, match="apt-get install graphviz"):
        graph.to_svg()
    with pytest.raises(GraphRenderError):
        graph.save(tmp_path / "g.svg")
    graph.save(tmp_path / "g.dot")  # text needs no Graphviz
    assert (tmp_path / "g.dot").read_text() == graph.source


def test_excluding_the_pictures_does_not_run_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dot(*args: object, **kwargs: object) -> None:
        raise AssertionError("dot was run")

    monkeypatch.setattr(subprocess, "run", no_dot)
    graph = Review().draw()
    pictures = ["image/svg+xml", "text/html"]
    assert graph._repr_mimebundle_(exclude=pictures) == {"text/plain": repr(graph)}
    assert graph._repr_mimebundle_(include=["text/plain"]) == {"text/plain": repr(graph)}


@needs_dot
def test_save_writes_the_format_its_suffix_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    graph = Digest().draw()
    graph._repr_mimebundle_()
    graph.to_mermaid()
    DisplayFormatter().format(Digest())
    assert list(cwd.iterdir()) == []  # nothing is written unless save is called

    out = tmp_path / "out"
    out.mkdir()
    assert graph.save(out / "g.svg") == out / "g.svg"
    assert "<svg" in (out / "g.svg").read_text()
    graph.save(str(out / "g.png"))
    assert (out / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    graph.save(out / "g.dot")
    graph.save(out / "g.GV")
    assert (out / "g.dot").read_text() == (out / "g.GV").read_text() == graph.source
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.dot or \.gv"):
        graph.save(out / "g.pdf")
    assert sorted(p.name for p in out.iterdir()) == ["g.GV", "g.dot", "g.png", "g.svg"]
    assert list(cwd.iterdir()) == []
