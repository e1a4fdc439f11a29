"""The command line: look into a checkpoint store without writing code.

    python -m notebook_workflows runs list                 # runs in .notebook_workflows/runs.db
    python -m notebook_workflows runs --db PATH show RUN   # one run: its snapshots and state
    python -m notebook_workflows runs delete RUN
    python -m notebook_workflows runs --redis redis://127.0.0.1:6379/0 list

It only reads, except ``delete``; it never creates a database that is not there. Output is
plain text tables; errors go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint.base import SnapshotStore
from .checkpoint.listing import _when, format_table
from .errors import SnapshotError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "runs" or args.action is None:
        parser.print_help()
        return 2
    try:
        store = _open_store(args)
        if args.action == "list":
            print(store.runs())
        elif args.action == "show":
            print(_show(store, args.run_id, args.limit))
        elif args.action == "delete":
            store.delete(args.run_id)
            print(f"deleted run {args.run_id!r} from {store!r}")
    except (SnapshotError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m notebook_workflows",
        description="Look into the checkpoints of notebook_workflows runs.",
    )
    commands = parser.add_subparsers(dest="command")
    runs = commands.add_parser("runs", help="list, show or delete checkpointed runs")
    where = runs.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="PATH",
        help="the SQLite store (default: .notebook_workflows/runs.db under this directory)",
    )
    where.add_argument("--redis", metavar="URL", help="a Redis store, e.g. redis://host:6379/0")
    runs.add_argument("--prefix", default="nw", help="key prefix of the Redis store (nw)")
    actions = runs.add_subparsers(dest="action")
    actions.add_parser("list", help="every run, the most recent first")
    show = actions.add_parser("show", help="one run: its snapshots and its latest state")
    show.add_argument("run_id", metavar="RUN")
    show.add_argument(
        "--limit", type=int, default=20, help="snapshots to list, the latest (default 20)"
    )
    delete = actions.add_parser("delete", help="remove a run and all its snapshots")
    delete.add_argument("run_id", metavar="RUN")
    return parser


def _open_store(args: argparse.Namespace) -> SnapshotStore:
    if args.redis:
        from .checkpoint.redis import RedisStore

        return RedisStore(args.redis, prefix=args.prefix)
    from .checkpoint.sqlite import DEFAULT_PATH, SQLiteStore

    path = Path(args.db) if args.db else DEFAULT_PATH
    if not path.exists():
        raise SnapshotError(
            f"there is no checkpoint store at {str(path)!r}"
            + ("" if args.db else " (runs checkpointed from this directory go there)")
        )
    return SQLiteStore(path)


def _show(store: SnapshotStore, run_id: str, limit: int) -> str:
    info = store.run_info(run_id)
    latest = store.latest(run_id)  # a SnapshotError naming known runs when there is none
    assert info is not None
    lines = [
        f"run       {info.run_id}",
        f"workflow  {info.workflow}",
        f"status    {info.status}, {info.steps} steps done",
        f"created   {_when(info.created_at)}",
        f"updated   {_when(info.updated_at)}",
    ]
    if info.parent:
        lines.append(f"forked    from {info.parent} at snapshot {info.parent_seq}")
    history = store.history(run_id)
    shown = history[-limit:] if limit > 0 else history
    lines.append("")
    title = f"snapshots ({len(history)}"
    title += f", the last {len(shown)} shown)" if len(shown) < len(history) else ")"
    lines.append(title)
    rows = [
        (
            str(s.seq),
            _what(s.reason, s.step),
            s.status,
            str(s.steps),
            s.kind,
            _when(s.created_at),
        )
        for s in shown
    ]
    lines.append(format_table(("seq", "what", "status", "steps", "kind", "time"), rows))
    lines.append("")
    lines.extend(_state_lines(latest.context))
    return "\n".join(lines)


def _what(reason: str, step: str | None) -> str:
    if reason == "step":
        return f"step {step}"
    return {"start": "started", "fork": "forked", "resume": "resumed", "end": "ended"}.get(
        reason, reason
    )


def _state_lines(context: dict[str, Any]) -> list[str]:
    lines = ["latest state"]
    queue = context.get("queue") or []
    in_flight = context.get("in_flight") or []
    lines.append(f"  queued     {_counted(item.get('step') for item in queue)}")
    running = [
        f"{item.get('step')} (attempt {item.get('attempt', 1)}"
        + (f", failed: {item['error']}" if item.get("error") else "")
        + ")"
        for item in in_flight
    ]
    lines.append(f"  in flight  {', '.join(running) or 'none'}")
    questions = [
        str((q.get("data") or {}).get("prefix", "")) for q in context.get("questions") or []
    ]
    questions += [
        str(((w.get("question") or {}).get("data") or {}).get("prefix", ""))
        for w in context.get("waiters") or []
        if w.get("question") and not w.get("answer")
    ]
    if questions:
        lines.append(f"  questions  {'; '.join(repr(q) for q in questions)}")
    stop = context.get("stop")
    if stop is not None:
        result = (stop.get("data") or {}).get("result", stop.get("data"))
        lines.append(f"  result     {_short(result)}")
    store = context.get("store") or {}
    lines.append(f"  store      {len(store)} keys")
    for key, value in list(store.items())[:20]:
        lines.append(f"    {key} = {_short(value)}")
    if len(store) > 20:
        lines.append(f"    ... and {len(store) - 20} more")
    return lines


def _counted(names: Any) -> str:
    counts = Counter(names)
    return ", ".join(f"{n} x {name}" for name, n in sorted(counts.items())) or "none"


def _short(value: Any, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
