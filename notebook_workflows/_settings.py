"""``notebook_workflows.settings``: the few settings that hold for every run in this process.

One object rather than module globals, so that a misspelt setting is an error that names the
settings there are, instead of a new attribute nobody reads. A run's own keyword (such as
``run(..., progress=False)``) overrides the setting for that run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "settings"]


class Settings:
    """Settings for every run in this process; change them on ``notebook_workflows.settings``.

    ``progress`` (``True`` by default): a run awaited in a notebook cell that takes longer than
    about half a second shows one line of status above the cell's result while it runs (its
    run id, steps done, the running step, elapsed time, a bar for a long fan-out), which ends
    as a one-line summary such as ``run 'summarize-1f3a9c0e' · 12 steps · 3.4 s · done``.
    ``notebook_workflows.settings.progress = False`` turns it off for every run;
    ``run(..., progress=False)`` for one. Plain scripts, terminals and runs whose monitor is
    shown never show it.
    """

    __slots__ = ("_progress",)

    def __init__(self) -> None:
        self._progress = True

    @property
    def progress(self) -> bool:
        """Whether runs awaited in a notebook cell show their one-line status."""
        return self._progress

    @progress.setter
    def progress(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"notebook_workflows.settings.progress is True or False, got {value!r}")
        self._progress = value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ("_progress", "progress"):
            raise AttributeError(
                f"notebook_workflows.settings has no setting {name!r}; its settings are: progress"
            )
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"notebook_workflows.settings(progress={self._progress})"


settings = Settings()
