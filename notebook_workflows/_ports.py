"""What the engine needs from the layers built on it, and where those layers plug in.

The engine's objects have doors into the layers above them: ``Workflow.resume``, ``fork``,
``rerun``, ``debug_step``, ``run(checkpoint=..., cache=...)`` and the handler's "how to
resume" note open the durable layer (``checkpoint/``); ``Workflow.draw``, ``handler.draw``,
``handler.monitor`` and the handler's rich display open the notebook face (``notebook/``), and
so does every run started in a notebook kernel, for the line of status its cell shows. Those
layers import the engine, so the engine must not import them back, not even inside a method:
that would be a circle. Instead the engine says here, as a protocol, what it needs from each
(a *port*); the layer provides it, and the package's public face plugs the two together
(``_wiring``), loading the layer on first use so that ``import notebook_workflows`` stays
cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from .checkpoint.debug import StepCall
    from .handler import WorkflowHandler
    from .notebook.graph import WorkflowGraph
    from .notebook.monitor import RunMonitor
    from .workflow import Workflow

__all__ = [
    "DURABILITY",
    "DurableLayer",
    "NotebookFace",
    "durable",
    "notebook_face",
    "plug_durable",
    "plug_notebook_face",
]

# When a run's records reach its store: "sync" before the next step runs, "async" by a writer
# thread while the next steps run, "exit" at the end of the run. The engine checks the word
# when a run starts, whatever the store; the recorder in ``checkpoint/`` carries it out.
DURABILITY = ("sync", "async", "exit")


class DurableLayer(Protocol):
    """What the engine's doors need from ``checkpoint/``."""

    def wrap(self, checkpoint: Any, *, continuing: bool, durability: str) -> Any:
        """What ``run(checkpoint=...)`` hands to the driver: a store wrapped in a recorder."""
        ...

    def cache_table(self, workflow: Workflow, store: Any) -> Any:
        """The calls recorded in ``store`` that ``run(cache=store)`` may reuse."""
        ...

    def resume_run(
        self,
        workflow: Workflow,
        run_id: str,
        *,
        store: Any,
        at: int | None,
        force: bool,
        durability: str,
    ) -> WorkflowHandler: ...

    def fork_run(
        self,
        workflow: Workflow,
        run_id: str,
        *,
        at: int | None,
        store_edits: Any,
        store: Any,
        durability: str,
    ) -> WorkflowHandler: ...

    def rerun_run(
        self, workflow: Workflow, run_id: str, *, store: Any, durability: str
    ) -> WorkflowHandler: ...

    def debug_step(
        self,
        workflow: Workflow,
        run_id: str,
        *,
        store: Any,
        at: int | None,
        step: str | None,
    ) -> StepCall:
        """The call of a step of ``run_id`` that ``workflow.debug_step`` gives back."""
        ...

    def resume_call(self, workflow: Any, run_id: str, store: Any) -> str:
        """The ``await workflow.resume(...)`` line that continues ``run_id``."""
        ...


_durable: Callable[[], DurableLayer] | None = None


def plug_durable(load: Callable[[], DurableLayer]) -> None:
    """Give the engine the durable layer: ``load`` imports it when a door first needs it."""
    global _durable
    _durable = load


def durable() -> DurableLayer:
    if _durable is None:  # only if notebook_workflows/__init__ was bypassed
        raise RuntimeError("no durable layer is plugged in: import notebook_workflows first")
    return _durable()


class NotebookFace(Protocol):
    """What the engine's doors need from ``notebook/``."""

    def workflow_graph(self, workflow: Workflow, direction: str) -> WorkflowGraph: ...

    def run_graph(self, handler: WorkflowHandler, direction: str) -> WorkflowGraph: ...

    def monitor(self, handler: WorkflowHandler) -> RunMonitor: ...

    def handler_text(self, handler: WorkflowHandler) -> str: ...

    def handler_html(self, handler: WorkflowHandler) -> str: ...

    def export_html(self, store: Any, run_id: str, path: Any) -> Path: ...

    def status_line(self, handler: WorkflowHandler) -> None:
        """Follow a run just started in a notebook kernel with its status on: if the cell
        that started it still awaits it after about half a second, show one line of status
        there, updated on a timer (never per step), ending as a one-line summary."""
        ...


_notebook_face: Callable[[], NotebookFace] | None = None


def plug_notebook_face(load: Callable[[], NotebookFace]) -> None:
    """Give the engine the notebook face: ``load`` imports it when a door first needs it."""
    global _notebook_face
    _notebook_face = load


def notebook_face() -> NotebookFace:
    if _notebook_face is None:  # only if notebook_workflows/__init__ was bypassed
        raise RuntimeError("no notebook face is plugged in: import notebook_workflows first")
    return _notebook_face()
