"""RunDiff: two checkpointed runs side by side, and the first point where they part.

``RunDiff(run_a, run_b, store=...)`` reads both runs' histories from a checkpoint store and
shows which steps each called (and how many of those calls a rerun replayed), the first point
where they diverge, the store keys whose values differ at the end (each shown as a diff), the
results, and the two graphs with the differing steps marked. ``first_difference`` and
``to_dict()`` give the same to code.

Design decisions:

* **Runs are compared call by call, not snapshot by snapshot.** A run's snapshots are not
  aligned with another's: a rerun writes its replayed calls a batch at a time, and
  ``durability="async"`` groups several steps in one record. The calls each snapshot records
  (``Snapshot.calls``: the step, a digest of its input event, its code hash, what it emitted,
  streamed, set and deleted) are what a run did, in order, whatever its records; so a run is
  read as that sequence, and two runs are compared position by position. A fork's store edits
  are a point of that sequence too, where the fork starts.
* **A fork diffs from its fork point.** A fork (and a rerun, a fork of snapshot 0) starts
  from its parent's state without its parent's calls; the calls of the parent up to the fork
  point are put in front of the fork's own, marked shared, so a fork and its parent agree up to
  the fork and the first difference is where the fork went another way.
* **Each step compared as a whole for the graphs.** After the first difference positions may
  drift (a fan-out of another width); a step is marked on the graphs when the list of its own
  calls (input, code, outputs) differs between the runs, which does not depend on positions.
* **Nothing is called, nothing imported.** Values are shown from their stored JSON (decoded
  only as ``serialization.decode`` does, which finds classes but never imports a module), cut
  to a line; the HTML uses inline styles and translucent highlights on the theme's own text
  colour, so it reads in light and dark JupyterLab themes, in a notebook that is not trusted
  and on GitHub. Graphs need Graphviz's ``dot``; without it the diff says so and shows the rest.
"""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..checkpoint.listing import printable
from ._run_calls import (
    _MISSING,
    Call,
    _canonical,
    _read_run,
    _Run,
    _run_id_of,
    _store_of,
)
from .display import plural, short_text
from .fork_form import _shown

__all__ = ["Call", "Difference", "RunDiff"]


@dataclass(frozen=True)
class Difference:
    """The first point where two runs diverge: ``position`` in their call sequences (-1: at
    the start, before any call), ``what`` differs ("start", "edit", "step", "input", "code",
    "events", "store", "missing"), the two runs' calls there (None where one has none), and a
    ``text`` for people."""

    position: int
    what: str
    a: Call | None
    b: Call | None
    text: str

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "what": self.what,
            "a": None if self.a is None else self.a.to_dict(),
            "b": None if self.b is None else self.b.to_dict(),
            "text": self.text,
        }


class RunDiff:
    """Two checkpointed runs side by side: ``RunDiff(run_a, run_b, store=store)``.

    ``run_a`` and ``run_b`` are run ids (or handlers of checkpointed runs, whose store is then
    the default). ``store`` defaults to the handlers' store, else to ``SQLiteStore()``. Works
    for any two runs of one workflow: a run and its rerun after an edit, a fork with store
    edits (compared from its fork point), two runs with different inputs.

    Shows itself in a notebook (the steps, the first difference, the differing store values
    as diffs, the results, the graphs with the differing steps marked) and as text in a
    terminal; ``first_difference``, ``differing_steps``, ``store_differences`` and
    ``to_dict()`` are the same for code.
    """

    def __init__(self, run_a: Any, run_b: Any, *, store: Any = None) -> None:
        store = store or _store_of(run_a) or _store_of(run_b)
        if store is None:
            from ..checkpoint.resume import default_store

            store = default_store()
        self.store = store
        self.a = _read_run(store, _run_id_of(run_a))
        self.b = _read_run(store, _run_id_of(run_b))

    # -- what differs -------------------------------------------------------------------------

    @property
    def first_difference(self) -> Difference | None:
        """The first point where the runs diverge, or None when they did the same."""
        start_a, start_b = self.a.context.get("start"), self.b.context.get("start")
        if _canonical(start_a) != _canonical(start_b):
            return Difference(-1, "start", None, None, _start_text(start_a, start_b))
        for position in range(max(len(self.a.calls), len(self.b.calls))):
            a = self.a.calls[position] if position < len(self.a.calls) else None
            b = self.b.calls[position] if position < len(self.b.calls) else None
            if a is not None and b is not None and a.same_as(b):
                continue
            what, text = _what_differs(a, b)
            where = "at the fork point" if what == "edit" else f"call {position + 1}"
            return Difference(position, what, a, b, f"{where}: {text}")
        return None

    @property
    def differing_steps(self) -> list[str]:
        """The steps whose calls (inputs, code or outputs) differ between the runs, or that
        only one of them called; in the order the runs first called them."""

        def by_step(run: _Run) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for call in run.calls:
                if call.kind == "call":
                    found.setdefault(call.step, []).append(call._key())
            return found

        a, b = by_step(self.a), by_step(self.b)
        return [step for step in {**a, **b} if a.get(step) != b.get(step)]

    @property
    def store_differences(self) -> dict[str, tuple[Any, Any]]:
        """The store keys whose values differ at the end: ``{key: (value in a, value in b)}``,
        values as stored (tagged JSON); a key one run does not have is ``None`` there (see
        ``to_dict`` for ``missing``)."""
        a, b = self.a.store, self.b.store
        return {
            key: (a.get(key), b.get(key))
            for key in sorted({*a, *b})
            if _canonical(a.get(key, _MISSING)) != _canonical(b.get(key, _MISSING))
        }

    def to_dict(self) -> dict[str, Any]:
        """The diff as plain data (JSON-ready)."""
        first = self.first_difference
        a_store, b_store = self.a.store, self.b.store
        return {
            "a": self._side(self.a),
            "b": self._side(self.b),
            "same": first is None and not self.store_differences,
            "first_difference": None if first is None else first.to_dict(),
            "differing_steps": self.differing_steps,
            "store": {
                key: {
                    "a": a_store.get(key),
                    "b": b_store.get(key),
                    "missing": [
                        side for side, s in (("a", a_store), ("b", b_store)) if key not in s
                    ],
                }
                for key in self.store_differences
            },
        }

    def _side(self, run: _Run) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "status": run.status,
            "parent": run.parent,
            "parent_seq": run.parent_seq,
            "result": None if run.result is _MISSING else run.result,
            "steps": {
                step: {"ran": ran, "replayed": replayed, "shared": shared}
                for step, (ran, replayed, shared) in run.counts().items()
            },
            "calls": [c.to_dict() for c in run.calls],
        }

    # -- text -----------------------------------------------------------------------------------

    def relation(self) -> str:
        """How the runs are related, in words: "b is a rerun of a", "b is a fork of a at
        snapshot 2", or ""."""
        for x, y, xn, yn in ((self.a, self.b, "a", "b"), (self.b, self.a, "b", "a")):
            if x.parent == y.run_id:
                if x.rerun:
                    return f"{xn} is a rerun of {yn}"
                return f"{xn} is a fork of {yn} at snapshot {x.parent_seq}"
        if self.a.parent and self.a.parent == self.b.parent:
            return "both are forks or reruns of one run"
        return ""

    def __str__(self) -> str:
        a, b = self.a, self.b
        lines = [f"RunDiff of {printable(_short_name(a.workflow))} runs"]
        for name, run in (("a", a), ("b", b)):
            lines.append(
                f"  {name}: {printable(run.run_id)}  {printable(run.status)}, "
                f"{_calls_text(run)}, result {_result_text(run)}"
            )
        if _short_name(a.workflow) != _short_name(b.workflow):
            lines.append(f"  (of two workflows: {a.workflow} and {b.workflow})")
        relation = self.relation()
        if relation:
            lines.append(f"  {relation}")
        first = self.first_difference
        shared = sum(1 for c in b.calls if c.shared) or sum(1 for c in a.calls if c.shared)
        if first is None:
            lines.append("  no difference in their calls")
        else:
            lines.append(f"  first difference: {printable(first.text)}")
        if shared:
            lines.append(f"  ({shared} {plural(shared, 'call')} before the fork point shared)")
        lines.append("  steps (calls):")
        marked = set(self.differing_steps)
        for step, (ca, cb) in self._step_rows().items():
            mark = "≠" if step in marked else " "
            lines.append(f"   {mark} {printable(step):<16} a {ca:<22} b {cb}")
        differences = self.store_differences
        if not differences:
            lines.append(f"  store: the same at the end ({_keys(len(a.store))})")
        else:
            count = len(differences)
            lines.append(f"  store: {count} {plural(count, 'key')} {_differ(count)} at the end")
            for key in differences:
                lines.append(
                    f"    {printable(key)}: a {_value(a.store, key)} | b {_value(b.store, key)}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _step_rows(self) -> dict[str, tuple[str, str]]:
        counts_a, counts_b = self.a.counts(), self.b.counts()
        return {
            step: (_counted(counts_a.get(step)), _counted(counts_b.get(step)))
            for step in {**counts_a, **counts_b}
        }

    # -- HTML -----------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        e = html.escape
        a, b = self.a, self.b
        first = self.first_difference
        marked = set(self.differing_steps)
        parts = [
            f'<div style="{_BOX}">',
            f"<div><b>RunDiff</b> of <b>{e(_short_name(a.workflow))}</b> runs"
            + (f" · {e(self.relation())}" if self.relation() else "")
            + "</div>",
        ]
        head = "".join(
            f'<th style="{_CELL}">{h}</th>' for h in ("", "run", "status", "calls", "result")
        )
        rows = "".join(
            _row(
                f"<b>{name}</b>",
                f"<code>{e(run.run_id)}</code>",
                e(run.status),
                e(_calls_text(run)),
                f"<code>{e(_result_text(run))}</code>",
            )
            for name, run in (("a", a), ("b", b))
        )
        parts.append(f'<table style="{_TABLE}"><tr>{head}</tr>{rows}</table>')
        if first is None:
            parts.append(f'<div style="{_NOTE}">no difference in their calls</div>')
        else:
            parts.append(
                f'<div style="{_NOTE};background:{_DIFFERS}">first difference: '
                f"{e(first.text)}</div>"
            )
        parts.append(self._calls_html(first))
        step_rows = "".join(
            f"<tr style='background:{_DIFFERS if step in marked else 'transparent'}'>"
            f"<td style='{_CELL}'><code>{e(step)}</code>{' ≠' if step in marked else ''}</td>"
            f"<td style='{_CELL}'>{e(ca)}</td><td style='{_CELL}'>{e(cb)}</td></tr>"
            for step, (ca, cb) in self._step_rows().items()
        )
        parts.append(
            f"<div style='{_TITLE}'>steps (calls)</div><table style='{_TABLE}'>"
            f"{_row('step', 'a', 'b', cell='th')}"
            f"{step_rows}</table>"
        )
        parts.append(self._store_html())
        parts.append(self._graphs_html(marked))
        parts.append("</div>")
        return "".join(parts)

    def _calls_html(self, first: Difference | None) -> str:
        """The calls side by side, from a little before the first difference."""
        a, b = self.a.calls, self.b.calls
        end = max(len(a), len(b))
        start = 0 if first is None else max(0, first.position - 2)
        if first is None or end == 0:
            return ""
        shown = range(start, min(end, start + 12))
        rows = []
        for i in shown:
            ca = a[i] if i < len(a) else None
            cb = b[i] if i < len(b) else None
            same = ca is not None and cb is not None and ca.same_as(cb)
            colour = "transparent" if same else _DIFFERS
            rows.append(_row(str(i + 1), _call_cell(ca), _call_cell(cb), background=colour))
        more = end - shown.stop
        tail = (
            f"<div style='{_DIM}'>… and {more} more {plural(more, 'call')}</div>"
            if more > 0
            else ""
        )
        before = f"<div style='{_DIM}'>calls 1 to {start} are the same</div>" if start else ""
        return (
            f"<div style='{_TITLE}'>calls</div>{before}<table style='{_TABLE}'>"
            f"{_row('#', 'a', 'b', cell='th')}"
            f"{''.join(rows)}</table>{tail}"
        )

    def _store_html(self) -> str:
        e = html.escape
        differences = self.store_differences
        a, b = self.a.store, self.b.store
        if not differences:
            return (
                f"<div style='{_TITLE}'>store</div><div>the same at the end ({_keys(len(a))})</div>"
            )
        blocks = []
        for key in differences:
            blocks.append(
                f"<div style='margin:4px 0'><code><b>{e(key)}</b></code>: a "
                f"<code>{e(_value(a, key))}</code> · b <code>{e(_value(b, key))}</code>"
                f"{_diff_html(a.get(key, _MISSING), b.get(key, _MISSING))}</div>"
            )
        count = len(differences)
        return (
            f"<div style='{_TITLE}'>store: {count} {plural(count, 'key')} {_differ(count)} at the "
            "end</div>" + "".join(blocks)
        )

    def _graphs_html(self, marked: set[str]) -> str:
        from .graph import _svg_element, svg_img

        e = html.escape
        pictures = []
        for name, run in (("a", self.a), ("b", self.b)):
            try:
                svg = marked_graph(run.context, marked).to_svg()
            except Exception as exc:  # no Graphviz: the diff is still worth reading
                return f"<div style='{_DIM}'>(the graphs are not drawn: {e(str(exc))})</div>"
            picture = svg_img(_svg_element(svg), alt=f"graph of run {run.run_id}", max_height=420)
            pictures.append(
                f"<div style='flex:1 1 320px;min-width:0'><div style='{_TITLE}'>{name}: "
                f"<code>{e(run.run_id)}</code></div>{picture}</div>"
            )
        note = f"<div style='{_DIM}'>steps marked ≠ differ between the runs</div>" if marked else ""
        return f"<div style='{_SIDE_BY_SIDE}'>{''.join(pictures)}</div>{note}"


def marked_graph(context: dict[str, Any], marked: set[str]) -> Any:
    """The graph a snapshot's context records, with the steps in ``marked`` drawn as
    differing (state "differs", a "≠ differs" line under the name)."""
    from .graph import WorkflowGraph
    from .graph_model import _Node, model_of_snapshot

    name, nodes, edges = model_of_snapshot(context)
    nodes = tuple(
        _Node(n.id, n.kind, n.title, (*n.notes, "≠ differs"), "differs")
        if n.kind == "step" and n.title in marked
        else n
        for n in nodes
    )
    run = str(context.get("run_id", ""))
    caption = f"{name} · run {run} · {context.get('status', '')}"
    return WorkflowGraph(name, nodes, edges, caption=caption, run=run)


# -- words ------------------------------------------------------------------------------------


def _what_differs(a: Call | None, b: Call | None) -> tuple[str, str]:
    """What differs between two calls at one position, and a sentence saying it."""
    if a is None or b is None:
        there, name = (b, "a") if a is None else (a, "b")
        assert there is not None
        doing = "its store edited" if there.kind == "edit" else f"a call of {there.step!r}"
        return "missing", f"{name} has nothing more, the other has {doing}"
    if a.kind == "edit" or b.kind == "edit":
        edited, other, names = (a, b, "ab") if a.kind == "edit" else (b, a, "ba")
        then = "its store edited too" if other.kind == "edit" else other.describe()
        return "edit", (
            f"{names[0]} was forked here with its {edited.describe()}; {names[1]} went on: {then}"
        )
    if a.step != b.step:
        return "step", f"a called {a.step!r}, b called {b.step!r}"
    why = _ran_because(b, "b") or _ran_because(a, "a")
    if a.input != b.input:
        return "input", f"{a.step!r} got another input event (a: {a.describe()}; b: {b.describe()})"
    if _canonical([a.emitted, a.stream]) != _canonical([b.emitted, b.stream]):
        return (
            "events",
            f"{a.step!r} emitted other events (a: {a.describe()}; b: {b.describe()}){why}",
        )
    if _canonical([a.set, a.deleted]) != _canonical([b.set, b.deleted]):
        return (
            "store",
            f"{a.step!r} wrote other store values (a: {a.describe()}; b: {b.describe()}){why}",
        )
    return "code", f"{a.step!r} ran other code with the same outcome{why}"


def _ran_because(call: Call, name: str) -> str:
    return f" ({name} ran it: {call.ran_because})" if call.ran_because else ""


def _start_text(a: Any, b: Any) -> str:
    fields_a = (a or {}).get("fields") or {}
    fields_b = (b or {}).get("fields") or {}
    if (a or {}).get("type") != (b or {}).get("type"):
        return "the runs started with different start events"
    names = sorted(k for k in {*fields_a, *fields_b} if fields_a.get(k) != fields_b.get(k))
    return f"the runs started with different inputs ({', '.join(names)} {_differ(len(names))})"


def _calls_text(run: _Run) -> str:
    calls = [c for c in run.calls if c.kind == "call"]
    replayed = sum(1 for c in calls if c.replayed)
    ran = len(calls) - replayed
    if replayed:
        return f"{len(calls)} {plural(len(calls), 'call')} ({replayed} replayed, {ran} ran)"
    return f"{len(calls)} {plural(len(calls), 'call')}"


def _counted(counts: tuple[int, int, int] | None) -> str:
    if counts is None:
        return "—"
    ran, replayed, shared = counts
    parts = [f"{ran} ran"] if ran else []
    if replayed:
        parts.append(f"{replayed} replayed")
    if shared:
        parts.append(f"{shared} before the fork")
    return ", ".join(parts)


def _result_text(run: _Run) -> str:
    return "(none)" if run.result is _MISSING else _shown(run.result, "result")


def _value(values: Mapping[str, Any], key: str) -> str:
    return _shown(values[key], key) if key in values else "(no such key)"


def _keys(count: int) -> str:
    return f"{count} {plural(count, 'key')}"


def _differ(count: int) -> str:
    return "differs" if count == 1 else "differ"


def _short_name(workflow: str) -> str:
    return workflow.rpartition(":")[2] or workflow


def _lines(value: Any) -> list[str]:
    if value is _MISSING:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(
        value, indent=1, sort_keys=True, default=repr, ensure_ascii=False
    ).splitlines()


MAX_DIFF_LINES = 40


def _diff_html(a: Any, b: Any) -> str:
    """A unified diff of two stored values' lines, when either has more than one."""
    lines_a, lines_b = _lines(a), _lines(b)
    if len(lines_a) <= 1 and len(lines_b) <= 1:
        return ""
    out = []
    for line in list(difflib.unified_diff(lines_a, lines_b, "a", "b", n=2, lineterm=""))[2:]:
        colour = {"+": _ADDED, "-": _REMOVED}.get(line[:1], "transparent")
        out.append(f"<div style='background:{colour}'>{html.escape(short_text(line, 200))}</div>")
    if len(out) > MAX_DIFF_LINES:
        out = [*out[:MAX_DIFF_LINES], f"<div>… {len(out) - MAX_DIFF_LINES} more lines</div>"]
    return f"<div style='{_PRE}'>{''.join(out)}</div>"


def _row(*cells: str, cell: str = "td", background: str = "") -> str:
    """A table row of cells already HTML (left-aligned: JupyterLab right-aligns otherwise)."""
    shaded = f" style='background:{background}'" if background else ""
    return (
        f"<tr{shaded}>" + "".join(f"<{cell} style='{_CELL}'>{c}</{cell}>" for c in cells) + "</tr>"
    )


def _call_cell(call: Call | None) -> str:
    if call is None:
        return "<span style='opacity:.7'>—</span>"
    how = " <i>(replayed)</i>" if call.replayed else ""
    shared = " <i>(shared, before the fork)</i>" if call.shared else ""
    return f"<code>{html.escape(call.describe())}</code>{how}{shared}"


# Inline styles (a notebook that is not trusted drops <style>); text keeps the theme's colour,
# highlights are translucent so they read on a light and a dark background alike.
_BOX = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
    "color:var(--jp-ui-font-color1,inherit);border:1px solid var(--jp-border-color2,#8c959f);"
    "border-radius:6px;padding:8px 12px;max-width:1100px;text-align:left;line-height:1.45"
)
_CELL = "text-align:left;vertical-align:top;padding:2px 10px 2px 0"
_TABLE = "border-collapse:collapse;margin:2px 0 6px 0"
_TITLE = "font-weight:600;margin-top:8px"
_NOTE = "margin:6px 0;padding:3px 6px;border-radius:4px"
_DIM = "opacity:.8;font-size:12px"
_PRE = (
    "font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap;"
    "border-left:3px solid rgba(128,128,128,.5);margin:2px 0 4px 0;padding-left:6px"
)
_SIDE_BY_SIDE = "display:flex;flex-wrap:wrap;gap:12px;margin-top:8px"
_DIFFERS = "rgba(255,176,0,.22)"
_ADDED = "rgba(46,160,67,.25)"
_REMOVED = "rgba(248,81,73,.25)"
