"""The command line: look into a checkpoint store without writing code.

    python -m notebook_workflows runs list                 # runs in .notebook_workflows/runs.db
    python -m notebook_workflows runs --db PATH show RUN   # one run: its snapshots and state
    python -m notebook_workflows runs delete RUN
    python -m notebook_workflows runs --store redis://127.0.0.1:6379/0 list
    python -m notebook_workflows runs --store postgresql://user@host/db list

``--store`` takes a SQLite file's path (or ``sqlite:///PATH``), a ``redis://`` / ``rediss://``
URL or a ``postgresql://`` / ``postgres://`` DSN; ``--db`` and ``--redis`` are kept as they were.
It only reads, except ``delete``; it never creates a database that is not there. Output is
plain text tables; errors go to stderr, on one line, with exit status 1. A damaged store (a
history whose records do not chain, a record of the wrong shape) is such an error, the
``SnapshotError`` naming the run and the snapshot; anything unforeseen is one line too, never a
traceback.

Everything printed that comes from the store (run ids, workflow and step names, store keys,
error texts) goes through ``printable``: a run id holding a terminal escape sequence would
otherwise retitle or clear the terminal, and a newline in one would break the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint.base import BaseStore, SnapshotStore
from .checkpoint.listing import _when, format_table, plural, printable
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
        try:
            if args.action == "list":
                print(store.runs())
            elif args.action == "show":
                print(_show(store, args.run_id, args.limit))
            elif args.action == "delete":
                store.delete(args.run_id)
                print(printable(f"deleted run {args.run_id!r} from {store!r}"))
        finally:
            if isinstance(store, BaseStore):
                store.close()
    except (SnapshotError, OSError, ImportError, ValueError) as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback: one line, naming what went wrong
        print(
            f"error: {printable(f'{type(exc).__name__}: {exc}')} (a bug in notebook_workflows: "
            f"please report it with this line)",
            file=sys.stderr,
        )
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
    where.add_argument(
        "--store",
        metavar="WHERE",
        help="a SQLite file's path, a redis:// URL or a postgresql:// DSN",
    )
    runs.add_argument(
        "--prefix", default="nw", help="key prefix (Redis) or table prefix (PostgreSQL): nw"
    )
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
    where = args.store or ""
    scheme = where.partition("://")[0].lower() if "://" in where else ""
    if args.redis or scheme in ("redis", "rediss", "unix"):
        from .checkpoint.redis import RedisStore

        return RedisStore(args.redis or where, prefix=args.prefix)
    if scheme in ("postgresql", "postgres"):
        from .checkpoint.postgres import PostgresStore

        return PostgresStore(where, prefix=args.prefix)
    if scheme and scheme != "sqlite":
        raise ValueError(
            f"--store {where!r}: give a SQLite file's path (or sqlite:///PATH), a redis:// "
            f"URL or a postgresql:// DSN"
        )
    from .checkpoint.sqlite import DEFAULT_PATH, SQLiteStore

    given = where.partition("://")[2] if scheme == "sqlite" else (where or args.db)
    path = Path(given) if given else DEFAULT_PATH
    if not path.exists():
        raise SnapshotError(
            f"there is no checkpoint store at {str(path)!r}"
            + ("" if given else " (runs checkpointed from this directory go there)")
        )
    return SQLiteStore(path)


def _show(store: SnapshotStore, run_id: str, limit: int) -> str:
    info = store.run_info(run_id)
    latest = store.latest(run_id)  # a SnapshotError naming known runs when there is none
    assert info is not None
    history = store.history(run_id)
    lines = [
        f"run       {info.run_id}",
        f"workflow  {info.workflow}",
        f"status    {info.status}, {info.steps} {plural(info.steps, 'step')} done",
        f"created   {_when(info.created_at)}",
        f"updated   {_when(info.updated_at)}",
    ]
    if info.parent:
        lines.append(f"forked    from {info.parent} at snapshot {info.parent_seq}")
        # what a person changed in the store before the fork ran
        for edit in history[0].edits if history else ():
            was = f" (was {_short(edit['was'])})" if "was" in edit else " (a new key)"
            lines.append(f"  edited  {edit['key']} = {_short(edit.get('value'))}{was}")
    lease = _lease_of(store, run_id)
    if lease is not None:
        lines.append(
            f"owned by  {lease.owner.describe()} since {_when(lease.since)} "
            f"(lease expires in {lease.expires_in():.0f} s)"
        )
    shown = history[-limit:] if limit > 0 else history
    lines.append("")
    title = f"snapshots ({len(history)}"
    title += f", the last {len(shown)} shown)" if len(shown) < len(history) else ")"
    lines.append(title)
    rows = [
        (
            str(s.seq),
            printable(_what(s.reason, s.step)),
            printable(s.status),
            str(s.steps),
            printable(s.kind),
            _when(s.created_at),
        )
        for s in shown
    ]
    lines = [printable(line) for line in lines]
    lines.append(format_table(("seq", "what", "status", "steps", "kind", "time"), rows))
    lines.append("")
    lines.extend(printable(line) for line in _state_lines(latest.context))
    return "\n".join(lines)


def _lease_of(store: SnapshotStore, run_id: str) -> Any:
    lease_of = getattr(store, "lease_of", None)
    if lease_of is None:
        return None
    try:
        return lease_of(run_id)
    except SnapshotError:
        return None  # a store without leases: nothing to show


def _what(reason: str, step: str | None) -> str:
    if reason == "step":
        return f"step {step}"
    if reason == "replay":
        return f"step {step} (replayed)"
    return {"start": "started", "fork": "forked", "resume": "resumed", "end": "ended"}.get(
        reason, reason
    )


def _state_lines(context: dict[str, Any]) -> list[str]:
    # the parts read here were checked when the snapshot was read (checkpoint.schema), not
    # what each entry holds: a damaged entry is shown as what it is, never a traceback
    lines = ["latest state"]
    queue = context.get("queue") or []
    in_flight = context.get("in_flight") or []
    lines.append(f"  queued     {_counted(str(_at(item, 'step')) for item in queue)}")
    running = [
        f"{_at(item, 'step')} (attempt {_at(item, 'attempt') or 1}"
        + (f", failed: {_at(item, 'error')}" if _at(item, "error") else "")
        + ")"
        for item in in_flight
    ]
    lines.append(f"  in flight  {', '.join(running) or 'none'}")
    questions = [str(_at(q, "data", "prefix") or "") for q in context.get("questions") or []]
    questions += [
        str(_at(w, "question", "data", "prefix") or "")
        for w in context.get("waiters") or []
        if _at(w, "question") and not _at(w, "answer")
    ]
    if questions:
        lines.append(f"  questions  {'; '.join(repr(q) for q in questions)}")
    stop = context.get("stop")
    if stop is not None:
        data = _at(stop, "data")
        result = data.get("result", data) if isinstance(data, dict) else data
        lines.append(f"  result     {_short(result)}")
    store = context.get("store") or {}
    lines.append(f"  store      {len(store)} keys")
    for key, value in list(store.items())[:20]:
        lines.append(f"    {key} = {_short(value)}")
    if len(store) > 20:
        lines.append(f"    ... and {len(store) - 20} more")
    return lines


def _at(value: Any, *keys: str) -> Any:
    """``value[keys[0]][keys[1]]...``, or None where a part is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _counted(names: Any) -> str:
    counts = Counter(names)
    return ", ".join(f"{n} x {name}" for name, n in sorted(counts.items())) or "none"


def _short(value: Any, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
