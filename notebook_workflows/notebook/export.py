"""export_html: one checkpointed run as one self-contained HTML page, to keep or attach to a bug.

``export_html(store, run_id, path)`` (and ``handler.export_html(path)``, ``python -m
notebook_workflows runs export RUN --store S -o run.html``) writes a single file with the run's
summary, its graph, the timeline of its step calls, every snapshot with the calls it recorded
(the event log), a slider that shows the store as it was at each snapshot, the final store and
the errors.

Design decisions:

* **Offline by construction.** Style, script and graph are inline: the graph is Graphviz's SVG
  put in the page as an ``<svg>`` element (its namespace attributes dropped, which HTML does not
  need), so nothing in the file names a network address, and the page reads the same from a
  mail attachment as from disk. Without Graphviz the page says the graph is not drawn.
* **Everything from the store is text.** Run ids, step names, keys and values are escaped
  wherever they appear; the data the slider reads is JSON inside ``<script
  type="application/json">`` with ``<``, ``>`` and ``&`` written as ``\\u`` escapes, so no value
  can end the script or open a tag. The page works without its script too: the snapshots, the
  timeline and the final store are static HTML; only the slider needs it.
* **Proportionate size.** Each snapshot carries what changed in the store since the one
  before, with values cut to a line (the script folds them), and a call's outputs are one
  line each: a 1,000-step run is a few hundred kilobytes, not a store per snapshot.
* **Light and dark.** The page follows the reader's colour scheme (``prefers-color-scheme``);
  the graph keeps its own light nodes, drawn on a light panel in both.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

from ..checkpoint.listing import _when, plural
from ._run_calls import _call, _event_text
from .fork_form import _shown
from .timeline import spans_from_snapshots, timeline_html

__all__ = ["export_html", "run_page"]

MAX_CALLS_SHOWN = 20  # calls listed under one snapshot; a rerun's batch of replays says the rest


def export_html(store: Any, run_id: str, path: str | os.PathLike[str]) -> Path:
    """Write run ``run_id`` of checkpoint ``store`` to ``path`` as one self-contained HTML
    page (no network needed to read it); returns the path."""
    target = Path(path)
    target.write_text(run_page(store, run_id), encoding="utf-8")
    return target


def run_page(store: Any, run_id: str) -> str:
    """The page ``export_html`` writes, as text."""
    latest = store.latest(run_id)  # an unknown run is refused here, naming the store's runs
    info = store.run_info(run_id)
    history = store.history(run_id)
    context = latest.context
    e = html.escape
    workflow = latest.workflow.rpartition(":")[2] or latest.workflow
    body = [
        f"<h1>{e(workflow)} · run <code>{e(run_id)}</code></h1>",
        _summary(info, latest, context),
        _errors(context, history),
        "<h2>Graph</h2>",
        _graph(context),
        "<h2>Timeline</h2>",
        timeline_html(spans_from_snapshots(history), history[-1].created_at if history else 0)
        or "<p class='dim'>no step calls recorded</p>",
        "<h2>Store at a snapshot</h2>",
        _slider(history),
        "<h2>Snapshots and their calls</h2>",
        _snapshots(history),
        "<h2>Final store</h2>",
        _store_table(context.get("store") or {}),
    ]
    title = f"{workflow} run {run_id}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='notebook_workflows'><title>{e(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}"
        f"<p class='dim'>exported from {e(repr(store))}</p>"
        f"<script type='application/json' id='nw-store'>{_script_json(_store_steps(history))}"
        f"</script><script>{_JS}</script></body></html>\n"
    )


# -- parts ----------------------------------------------------------------------------------------


def _summary(info: Any, latest: Any, context: dict[str, Any]) -> str:
    e = html.escape
    rows = [
        ("workflow", f"<code>{e(latest.workflow)}</code>"),
        ("status", f"<span class='status {e(latest.status)}'>{e(latest.status)}</span>"),
        ("steps", f"{latest.steps} {plural(latest.steps, 'step')} done"),
        ("snapshots", str(latest.seq + 1)),
    ]
    if info is not None:
        rows.append(("created", e(_when(info.created_at))))
        rows.append(("updated", e(_when(info.updated_at))))
        if info.parent:
            rows.append(
                (
                    "parent",
                    f"<code>{e(info.parent)}</code> at snapshot {info.parent_seq} "
                    "(a fork or rerun of it)",
                )
            )
    stop = context.get("stop")
    if isinstance(stop, dict):
        data = stop.get("data")
        result = data.get("result") if isinstance(data, dict) else data
        rows.append(("result", f"<code>{e(_shown(result, 'result'))}</code>"))
    cells = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='summary'>{cells}</table>"


def _errors(context: dict[str, Any], history: list[Any]) -> str:
    e = html.escape
    errors = [
        (str(item.get("step")), str(item.get("error")))
        for item in context.get("in_flight") or ()
        if isinstance(item, dict) and item.get("error")
    ]
    if not errors and context.get("status") != "failed":
        return ""
    items = "".join(f"<li>step <b>{e(s)}</b> failed: <pre>{e(err)}</pre></li>" for s, err in errors)
    if not items:
        items = "<li>the run failed (its snapshots record no step error)</li>"
    return f"<h2>Errors</h2><ul class='errors'>{items}</ul>"


def _graph(context: dict[str, Any]) -> str:
    from .graph import WorkflowGraph, _svg_element

    try:
        svg = _svg_element(WorkflowGraph.of_snapshot(context).to_svg())
    except Exception as exc:  # no Graphviz: the rest of the page is still the run
        return f"<p class='dim'>The graph is not drawn in this page: {html.escape(str(exc))}</p>"
    # HTML needs no namespaces on an inline <svg>: dropped, nothing in the page names a URL
    svg = _NAMESPACES.sub("", svg)
    return f"<div class='graph'>{svg}</div>"


_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def _snapshots(history: list[Any]) -> str:
    e = html.escape
    rows = []
    for snapshot in history:
        calls = [_call(entry, snapshot.run_id, snapshot.seq, False) for entry in snapshot.calls]
        lines = []
        for call in calls[:MAX_CALLS_SHOWN]:
            outputs = ", ".join(_event_text(x) for x in (*call.emitted, *call.stream))
            how = " <i>(replayed)</i>" if call.replayed else ""
            why = f" <i>(ran: {e(call.ran_because)})</i>" if call.ran_because else ""
            sets = ", ".join(f"{k}={_shown(v, k)}" for k, v in call.set.items())
            lines.append(
                f"<li><b>{e(call.step)}</b> → <code>{e(outputs or 'nothing')}</code>"
                + (f"; set <code>{e(sets)}</code>" if sets else "")
                + (f"; deleted <code>{e(', '.join(call.deleted))}</code>" if call.deleted else "")
                + f"{how}{why}</li>"
            )
        if len(calls) > MAX_CALLS_SHOWN:
            lines.append(f"<li>… and {len(calls) - MAX_CALLS_SHOWN} more calls</li>")
        listed = f"<ul>{''.join(lines)}</ul>" if lines else ""
        what = html.escape(snapshot.describe())
        rows.append(
            f"<tr id='snapshot-{snapshot.seq}'><td>{snapshot.seq}</td>"
            f"<td><span class='status {e(snapshot.status)}'>{e(snapshot.status)}</span></td>"
            f"<td>{what}{listed}</td></tr>"
        )
    return (
        "<table class='snapshots'><tr><th>#</th><th>status</th><th>what happened</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _store_table(values: dict[str, Any]) -> str:
    if not values:
        return "<p class='dim'>(empty)</p>"
    e = html.escape
    rows = "".join(
        f"<tr><td><code>{e(key)}</code></td><td><code>{e(_shown(value, key))}</code></td></tr>"
        for key, value in sorted(values.items())
    )
    return f"<table class='store'><tr><th>key</th><th>value</th></tr>{rows}</table>"


def _store_steps(history: list[Any]) -> list[dict[str, Any]]:
    """Per snapshot: its number, its line, and the store keys that changed since the snapshot
    before (their short values; ``None`` for a key deleted), for the slider's script."""
    steps = []
    before: dict[str, str] = {}
    for snapshot in history:
        values = snapshot.context.get("store") or {}
        now = {key: _shown(value, key) for key, value in values.items()}
        changed: dict[str, str | None] = {k: v for k, v in now.items() if before.get(k) != v}
        changed.update({k: None for k in before if k not in now})
        steps.append({"seq": snapshot.seq, "what": snapshot.describe(), "changed": changed})
        before = now
    return steps


def _slider(history: list[Any]) -> str:
    if not history:
        return "<p class='dim'>no snapshots</p>"
    last = len(history) - 1
    return (
        "<div class='slider'><input type='range' id='nw-at' min='0' "
        f"max='{last}' value='{last}' step='1' aria-label='snapshot'>"
        "<div id='nw-what' class='dim'>(the slider needs JavaScript: the final store is below)"
        "</div><div id='nw-table'></div></div>"
    )


def _script_json(data: Any) -> str:
    """``data`` as JSON that cannot end a ``<script>`` element nor open a tag in it."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --dim: #59636e; --bg: #ffffff;
  --line: #d0d7de; --panel: #f6f8fa; --changed: rgba(255, 176, 0, .22);
  --done: #1a7f37; --failed: #cf222e; --running: #0969da; --waiting: #9a6700; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --dim: #9da7b3; --bg: #0d1117; --line: #3d444d; --panel: #161b22;
    --done: #3fb950; --failed: #ff7b72; --running: #58a6ff; --waiting: #d29922; }
}
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px;
  color: var(--fg); background: var(--bg); max-width: 1100px; margin: 24px auto;
  padding: 0 16px; line-height: 1.45; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px;
  border-bottom: 1px solid var(--line); padding-bottom: 2px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; margin: 2px 0; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 3px 10px 3px 0;
  border-bottom: 1px solid var(--line); }
th { color: var(--dim); font-weight: 600; }
td ul { margin: 2px 0 0 0; padding-left: 18px; }
.dim { color: var(--dim); }
.status { font-weight: 600; } .status.done { color: var(--done); }
.status.failed, .errors { color: var(--failed); } .status.running { color: var(--running); }
.status.waiting { color: var(--waiting); }
.graph { background: #ffffff; border-radius: 6px; padding: 8px; overflow: auto;
  max-width: 100%; }
.graph svg { max-width: 100%; height: auto; }
.slider input { width: 100%; }
tr.changed td { background: var(--changed); }
"""

_JS = """
(function () {
  var steps = JSON.parse(document.getElementById('nw-store').textContent);
  var at = document.getElementById('nw-at');
  if (!at) return;
  function cell(tag, text, cls) {
    var td = document.createElement(tag); td.textContent = text;
    if (cls) td.className = cls; return td;
  }
  function show(n) {
    var store = {}, changed = steps[n].changed;
    for (var i = 0; i <= n; i++) {
      var c = steps[i].changed;
      for (var k in c) { if (c[k] === null) delete store[k]; else store[k] = c[k]; }
    }
    document.getElementById('nw-what').textContent = steps[n].what;
    var table = document.createElement('table');
    table.className = 'store';
    var head = document.createElement('tr');
    head.appendChild(cell('th', 'key')); head.appendChild(cell('th', 'value'));
    table.appendChild(head);
    Object.keys(store).sort().forEach(function (k) {
      var tr = document.createElement('tr');
      if (k in changed) tr.className = 'changed';
      tr.appendChild(cell('td', k)); tr.appendChild(cell('td', store[k]));
      table.appendChild(tr);
    });
    var box = document.getElementById('nw-table');
    box.textContent = '';
    box.appendChild(Object.keys(store).length ? table : cell('p', '(empty)', 'dim'));
  }
  at.addEventListener('input', function () { show(+at.value); });
  show(+at.value);
})();
"""
