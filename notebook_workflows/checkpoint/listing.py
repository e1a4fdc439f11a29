"""How the durable layer shows runs to people: ``RunInfo``, the ``RunList`` table, and the
small text helpers the stores and the command line share.

This layer imports nothing from the notebook face (``notebook/``, ``widgets``): its helpers are
its own. Everything that reaches a terminal goes through ``printable``: run ids, workflow names,
step names and store keys come from users and from a shared store, and a control character in
one would otherwise retitle or clear the terminal, or break a table's lines.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["RunInfo", "RunList", "format_table", "plural", "printable"]


@dataclass(frozen=True)
class RunInfo:
    """One checkpointed run, as ``store.runs()`` lists it."""

    run_id: str
    workflow: str  # "module:QualName" of the workflow class
    status: str  # as ``WorkflowHandler.status`` at the latest snapshot
    steps: int  # completed step invocations at the latest snapshot
    updated_at: float  # when the latest snapshot was written (seconds since the epoch)
    parent: str | None = None  # the run this one was forked from (``resume(at=...)``)
    parent_seq: int | None = None  # the snapshot of ``parent`` it was forked from
    created_at: float = 0.0
    seq: int = 0  # number of the latest snapshot

    @property
    def snapshots(self) -> int:
        """How many snapshots the run has had (pruning may have dropped the older ones)."""
        return self.seq + 1


class RunList(list[RunInfo]):
    """A list of ``RunInfo`` that shows itself as a table (HTML in a notebook)."""

    _HEADERS = ("run", "workflow", "status", "steps", "snapshots", "updated", "parent")

    def _rows(self) -> list[tuple[str, ...]]:
        # run ids and workflow names come from users and from the store: a control character
        # in one would otherwise retitle or clear the terminal, or break the table's lines
        return [
            (
                printable(info.run_id),
                printable(info.workflow.rpartition(":")[2] or info.workflow),
                printable(info.status),
                str(info.steps),
                str(info.snapshots),
                _when(info.updated_at),
                f"{printable(info.parent)} #{info.parent_seq}" if info.parent else "",
            )
            for info in self
        ]

    def __str__(self) -> str:
        if not self:
            return "(no runs)"
        return format_table(self._HEADERS, self._rows())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>no checkpointed runs</em></p>"
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in self._HEADERS)
        # the rows are printable() already; html.escape makes them text, never markup
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
            for row in self._rows()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plural(n: int, word: str) -> str:
    """``word`` as ``n`` of them: "1 step", "2 steps"."""
    return word if n == 1 else word + "s"


# C0 and C1 control characters, DEL, the line and paragraph separators, and the bidirectional
# overrides and isolates (which reorder what follows them on screen)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal or in a table: control characters (escape
    sequences, newlines, carriage returns, bidirectional overrides) shown escaped, as
    Python would (``\\x1b``, ``\\n``, ``\\u202e``); everything else, accents and emoji
    included, as it is."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def _when(timestamp: float) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows
    )
    return "\n".join(lines)
