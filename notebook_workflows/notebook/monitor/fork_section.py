"""The monitor's "edit and fork" section: a checkpointed run that paused or ended can be forked
at one of its snapshots with a store value changed (``fork_form.ForkForm``).

A mixin of ``RunMonitor`` (it shares the monitor's widgets and its loop-thread helpers). The
section's title appears, folded, once the run is checkpointed and not running (waiting for a
human, done, failed or cancelled); the form is made the first time it is unfolded, and its
snapshot list is read again from the store each time, so a monitor costs nothing more until a
person asks for it. The run's store and workflow come from the handler's public contract
(``handler.checkpoint_store``, ``handler.ctx.workflow``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..fork_form import ForkForm
from .style import FOLDED

if TYPE_CHECKING:
    from ...runtime.view import RunView

TITLE = "edit and fork"


class ForkSection:
    """The fold title and form for editing and forking (mixed into ``RunMonitor``)."""

    handler: Any
    widget: Any
    _post: Any
    _button: Any
    fork_fold: Any = None
    fork_form: ForkForm | None = None

    def _render_fork(self, view: RunView) -> None:
        if self.fork_fold is not None or not view.checkpointed or view.status == "running":
            return
        if self.handler.checkpoint_store is None:
            return  # checkpointed through hooks of its own: no snapshots to fork here
        fold = self._button(
            f"▸ {TITLE}",
            "",
            "change a store value at a snapshot and fork the run from there",
            "nwm-fold-fork",
        )
        fold.add_class("nwm-fold")
        fold.on_click(lambda _: self._post(self._toggle_fork))
        self.fork_fold = fold
        self.widget.children = (*self.widget.children, fold)

    def _toggle_fork(self) -> None:
        form = self.fork_form
        if form is None:
            store = self.handler.checkpoint_store
            workflow = self.handler.ctx.workflow
            form = ForkForm(store, workflow=workflow, post=self._post, picker=True)
            form.widget.add_class("nwm-fork")
            self.fork_form = form
            self.widget.children = (*self.widget.children, form.widget)
            opened = True
        else:
            opened = FOLDED in form.widget._dom_classes
            (form.widget.remove_class if opened else form.widget.add_class)(FOLDED)
        self.fork_fold.description = ("▾ " if opened else "▸ ") + TITLE
        if opened:
            form.load(self.handler.run_id)


__all__ = ["ForkSection"]
