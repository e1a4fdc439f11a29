"""WorkflowGraph: a workflow, one run of it, or one stored snapshot, drawn as DOT, SVG, Mermaid.

The model lives in ``graph_model``, the DOT and Mermaid printers in ``graph_text``; this module
draws and shows. Design decisions:

- **Offline and side-effect free.** SVG and PNG come from the Graphviz ``dot`` program through a
  pipe; no temporary files, no network, nothing on disk unless ``save`` is called. ``dot`` is
  looked up on ``PATH`` at render time, so installing it mid-session just works. Without it, the
  notebook still shows the DOT text and a one-line install hint instead of a traceback.
- **Visible in every notebook.** The display bundle carries the SVG and the same SVG as an
  ``<img>`` in HTML, so a notebook opened fresh (untrusted: JupyterLab renders no SVG output
  then) or on GitHub still shows the picture.
- **Cheap to redraw.** A run's graph reads one ``handler.view()``; rendered SVG is cached per DOT
  text, so a live monitor that redraws ten times a second only pays for ``dot`` when the run
  moved. A run's graph shows counts and step times but not the elapsed run time, so its text
  only changes when something happened.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .graph_model import _Edge, _model_of, _Node, _overlay_run, model_of_snapshot
from .graph_text import DIRECTIONS, _html, _to_dot, _to_mermaid

if TYPE_CHECKING:
    from ..handler import WorkflowHandler
    from ..runtime.view import RunView
    from ..workflow import Workflow

__all__ = ["GraphRenderError", "WorkflowGraph"]

INSTALL_HINT = (
    "Install Graphviz to see this graph drawn: "
    "`apt-get install graphviz`, `conda install graphviz` or `brew install graphviz`."
)
SAVE_SUFFIXES = (".svg", ".png", ".dot", ".gv")


class GraphRenderError(RuntimeError):
    """The Graphviz ``dot`` program is missing or could not draw the graph."""


# -- rendering --------------------------------------------------------------------------------

_SVG_CACHE: OrderedDict[str, str] = OrderedDict()
_SVG_CACHE_SIZE = 64
_SVG_LOCK = threading.Lock()


def _render(source: str, fmt: str) -> bytes:
    """``source`` drawn by Graphviz's ``dot -T<fmt>`` through a pipe (no files, no cache)."""
    import graphviz  # the well-kept wrapper: finds `dot`, pipes, reports its errors

    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphRenderError(
            f"the Graphviz `dot` program is not on PATH. {INSTALL_HINT}"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise GraphRenderError(
            f"Graphviz `dot` failed (exit code {exc.returncode})"
            + (f": {detail[0]}" if detail else "")
        ) from None
    except OSError as exc:
        raise GraphRenderError(f"could not run Graphviz `dot`: {exc}") from None


def _svg(source: str) -> str:
    """The SVG document of ``source``, from the cache when this exact text was drawn before."""
    with _SVG_LOCK:
        svg = _SVG_CACHE.get(source)
        if svg is not None:
            _SVG_CACHE.move_to_end(source)
            return svg
    svg = _render(source, "svg").decode("utf-8")
    with _SVG_LOCK:
        _SVG_CACHE[source] = svg
        while len(_SVG_CACHE) > _SVG_CACHE_SIZE:
            _SVG_CACHE.popitem(last=False)
    return svg


def _svg_element(document: str) -> str:
    """The ``<svg>`` element alone: no XML declaration, doctype or generator comment."""
    start = document.find("<svg")
    return document[start:] if start >= 0 else document


_SVG_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


def svg_size(svg: str) -> tuple[float, float] | None:
    """The drawing's size in CSS pixels (Graphviz writes points), if it says."""
    size = _SVG_SIZE.search(svg[:500])
    if size is None:
        return None
    width, height = (float(v) * 4 / 3 for v in size.groups())
    return width, height


# A drawing is scaled down to fit its space, but never below this: its smallest text (9 pt,
# 12 px at full size) stays at 10 px or more; a box around it scrolls instead.
MIN_SCALE = 0.85


def readable_size(
    size: tuple[float, float], max_height: float | None = None
) -> tuple[float, float, float]:
    """``(width, height, smallest width)`` in CSS pixels to show a drawing of ``size`` at: its
    natural size, or smaller to fit ``max_height`` but not below ``MIN_SCALE``."""
    width, height = size
    scale = 1.0
    if max_height is not None and height > max_height:
        scale = max(MIN_SCALE, max_height / height)
    return width * scale, height * scale, width * min(scale, MIN_SCALE)


def svg_img(svg: str, *, alt: str = "", max_height: int | None = None) -> str:
    """The SVG as an ``<img>`` with a ``data:`` URI: shown by untrusted notebooks, GitHub and
    nbviewer alike, and no script inside an SVG image ever runs. Drawn at its natural size,
    smaller where the output area is narrower (or to keep it under ``max_height`` pixels), but
    never below a readable size (``MIN_SCALE``): then the box around it scrolls sideways."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    size = svg_size(svg)
    style = "max-width:100%;height:auto"
    if size is not None:
        width, _, smallest = readable_size(size, max_height)
        style += f";width:{width:.0f}px;min-width:{smallest:.0f}px"
    return (
        '<div class="nw-graph-img" style="overflow-x:auto;max-width:100%">'
        f'<img src="data:image/svg+xml;base64,{data}" alt="{_html(alt)}" style="{style}"/></div>'
    )


# -- the public object ------------------------------------------------------------------------


class WorkflowGraph:
    """A workflow's steps and events, or one run of it, as a graph.

    Shows itself inline as SVG in a notebook. ``source`` is the DOT text, ``to_mermaid()`` the
    Mermaid text, ``save(path)`` writes ``.svg``, ``.png``, ``.dot`` or ``.gv``.
    """

    def __init__(
        self,
        name: str,
        nodes: Iterable[_Node],
        edges: Iterable[_Edge],
        *,
        caption: str = "",
        run: str | None = None,
        direction: str = "TB",
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(
                f"direction must be {' or '.join(map(repr, DIRECTIONS))} (top to bottom, or left "
                f"to right for a wide graph), not {direction!r}"
            )
        self._name = name
        self._nodes = tuple(nodes)
        self._edges = tuple(edges)
        self._caption = caption or name
        self._run = run
        self.direction = direction
        self._source: str | None = None

    @classmethod
    def of_workflow(
        cls, workflow: Workflow | type[Workflow], *, direction: str = "TB"
    ) -> WorkflowGraph:
        """The static graph of a workflow (an instance or the class); ``direction="LR"`` lays
        it out left to right."""
        from ..workflow import Workflow

        klass = workflow if isinstance(workflow, type) else type(workflow)
        if not issubclass(klass, Workflow):
            raise TypeError(f"expected a Workflow or Workflow subclass, got {workflow!r}")
        model = _model_of(klass)
        return cls(model.name, model.nodes, model.edges, direction=direction)

    @classmethod
    def of_run(
        cls, handler: WorkflowHandler, *, view: RunView | None = None, direction: str = "TB"
    ) -> WorkflowGraph:
        """The graph of a run so far: runs and time per step, counts on the edges, the running
        step highlighted, a failed step with its error, steps never reached dimmed. A step's
        time is the sum of its invocations' times, retries included (``16 runs · 10.74 s
        total``): with several workers or a fan-out it can exceed the run's own time. ``view``
        is a ``handler.view()`` already taken (the monitor passes the one of its refresh)."""
        model = _model_of(type(handler.ctx.workflow))
        if view is None:
            view = handler.view()
        nodes, edges = _overlay_run(model, view)
        caption = f"{model.name} · run {view.run_id} · {view.status}"
        return cls(model.name, nodes, edges, caption=caption, run=view.run_id, direction=direction)

    @classmethod
    def of_snapshot(cls, snapshot: Any, *, direction: str = "TB") -> WorkflowGraph:
        """The graph a checkpoint snapshot records, with the step counts and times at that
        snapshot (``store.history(run_id)[n]``, or its ``context`` dict). Needs no workflow
        class: the snapshot names its steps and event types."""
        context = snapshot if isinstance(snapshot, dict) else snapshot.context
        name, nodes, edges = model_of_snapshot(context)
        run = str(context.get("run_id", ""))
        seq = getattr(snapshot, "seq", None)
        at = f" · snapshot {seq}" if seq is not None else ""
        caption = f"{name} · run {run}{at} · {context.get('status', '')}"
        return cls(name, nodes, edges, caption=caption, run=run, direction=direction)

    # -- texts ------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The DOT text (the same workflow always gives the same text)."""
        if self._source is None:
            self._source = _to_dot(
                self._name, self._caption, self._nodes, self._edges, self.direction
            )
        return self._source

    def to_mermaid(self) -> str:
        """Mermaid flowchart text, for GitHub Markdown or a JupyterLab Markdown cell."""
        return _to_mermaid(self._nodes, self._edges, self.direction)

    def to_svg(self) -> str:
        """The SVG document; raises ``GraphRenderError`` when Graphviz cannot draw it."""
        return _svg(self.source)

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph to ``path``; its suffix picks the format: ``.svg``, ``.png`` (both
        need Graphviz's ``dot``), ``.dot`` or ``.gv`` (DOT text). Returns the path."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in SAVE_SUFFIXES:
            raise ValueError(
                f"cannot save a graph as {target.name!r}: the file name must end in "
                f"{', '.join(SAVE_SUFFIXES[:-1])} or {SAVE_SUFFIXES[-1]}"
            )
        if suffix == ".svg":
            target.write_text(self.to_svg(), encoding="utf-8")
        elif suffix == ".png":
            target.write_bytes(_render(self.source, "png"))
        else:
            target.write_text(self.source, encoding="utf-8")
        return target

    # -- display ----------------------------------------------------------------------------

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        """SVG, and the same SVG as an ``<img>`` in HTML: JupyterLab renders no SVG output of a
        notebook it does not trust (one just opened, or from someone else), but it renders
        sanitized HTML, and its sanitizer keeps an ``<img>`` with a ``data:`` source. HTML ranks
        above SVG, so every frontend shows the picture; the SVG stays for tools that read it."""
        text = repr(self)
        svg_wanted = _wants("image/svg+xml", include, exclude)
        html_wanted = _wants("text/html", include, exclude)
        if not svg_wanted and not html_wanted:
            return {"text/plain": text}
        try:
            svg = _svg_element(self.to_svg())
        except Exception as exc:  # a display must never become a traceback
            return self._fallback_bundle(exc)
        bundle = {"text/plain": text}
        if html_wanted:
            bundle["text/html"] = svg_img(svg, alt=text)
        if svg_wanted:
            bundle["image/svg+xml"] = svg
        return bundle

    def _repr_svg_(self) -> str | None:
        try:
            return _svg_element(self.to_svg())
        except Exception:
            return None

    def _fallback_bundle(self, error: BaseException) -> dict[str, str]:
        reason = str(error) if isinstance(error, GraphRenderError) else f"{error!r}"
        hint = f"Cannot draw this graph: {reason}"
        if INSTALL_HINT not in hint:
            hint += f" {INSTALL_HINT}"
        html = (
            f"<div><p>{_html(hint)}</p>"
            f"<pre style='font-size: 11px; max-height: 24em; overflow: auto'>"
            f"{_html(self.source)}</pre></div>"
        )
        return {"text/plain": f"{self!r}\n{hint}\n\n{self.source}", "text/html": html}

    def __repr__(self) -> str:
        steps = sum(1 for n in self._nodes if n.kind == "step")
        events = len(self._nodes) - steps
        what = self._name if self._run is None else f"run {self._run!r} of {self._name}"
        return f"<WorkflowGraph of {what}: {steps} steps, {events} event types>"


def _wants(mime: str, include: Iterable[str] | None, exclude: Iterable[str] | None) -> bool:
    if include is not None and mime not in include:
        return False
    return not (exclude is not None and mime in exclude)
