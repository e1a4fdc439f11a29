"""The command line: look into a checkpoint store without writing code.

    python -m notebook_workflows runs list                 # runs in .notebook_workflows/runs.db
    python -m notebook_workflows runs show RUN --store PATH   # one run: its snapshots and state
    python -m notebook_workflows runs export RUN -o run.html   # one offline HTML page
    python -m notebook_workflows runs delete RUN
    python -m notebook_workflows runs list --store redis://127.0.0.1:6379/0
    python -m notebook_workflows runs list --store postgresql://user@host/db

``--store`` takes a SQLite file's path (or ``sqlite:///PATH``), a ``redis://`` / ``rediss://``
URL or a ``postgresql://`` / ``postgres://`` DSN; ``--db`` and ``--redis`` are kept as they were.
These options go before the command or after it (``runs --store S list`` and ``runs list
--store S``), and every command's ``--help`` lists them. Without one, the store is
``.notebook_workflows/runs.db`` under the working directory, where ``SQLiteStore()`` puts it;
a notebook's kernel runs in the notebook's folder, so from a project's root that file is often
not there: the error then says where it looked, names the ``.notebook_workflows/*.db`` files
in, under and just above the working directory, and how to name a store.

A run made by ``workflow.rerun`` is shown as a rerun ("rerun of X: 3 calls replayed, 1 ran",
and why each step ran), told from a fork by its records, which mark every call replayed or say
why it ran; a fork (``resume(at=...)``, ``fork``) is shown as a fork of a snapshot.

It only reads the store, except ``delete``, and writes no file except the page ``export``
writes (``notebook.export``: self-contained, nothing in it fetched); it never creates a
database that is not there. Output is plain text tables; errors go to stderr, on one line,
with exit status 1 (a mistyped command line is argparse's usage and error, exit status 2). A
damaged store (a history whose records do not chain, a record of the wrong shape) is such an
error, the ``SnapshotError`` naming the run and the snapshot; anything unforeseen is one line
too, never a traceback.

Everything printed that comes from the store (run ids, workflow and step names, store keys,
error texts) goes through ``printable``: a run id holding a terminal escape sequence would
otherwise retitle or clear the terminal, and a newline in one would break the table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint.base import BaseStore, SnapshotStore
from .checkpoint.listing import RunInfo, RunList, _when, format_table, plural, printable
from .errors import SnapshotError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "runs":
        parser.print_help()
        return 2
    if args.action is None:
        args.runs_help()
        return 2
    try:
        store = _open_store(args)
        try:
            if args.action == "list":
                print(_list(store))
            elif args.action == "show":
                print(_show(store, args.run_id, args.limit))
            elif args.action == "export":
                print(_export(store, args.run_id, args.output))
            elif args.action == "delete":
                store.delete(args.run_id)
                print(printable(f"deleted run {args.run_id!r} from {store!r}"))
        finally:
            if isinstance(store, BaseStore):
                store.close()
    except BrokenPipeError:  # `runs show RUN | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
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


PROG = "python -m notebook_workflows"
NAME_A_STORE = (
    "name a store with --store PATH (a SQLite file), --store redis://HOST:6379/0 or "
    "--store postgresql://USER@HOST/DB"
)
EXAMPLES = f"""\
examples:
  {PROG} runs list
  {PROG} runs list --store notebooks/.notebook_workflows/runs.db
  {PROG} runs show RUN --store redis://127.0.0.1:6379/0
  {PROG} runs export RUN --store PATH -o run.html
  {PROG} runs delete RUN --store postgresql://user@host/db

--store and the other options of where the runs are go before or after the command."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Look into the checkpoints of notebook_workflows runs."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    runs = commands.add_parser(
        "runs",
        help="list, show or delete checkpointed runs",
        description="List, show or delete the runs a checkpoint store holds.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.set_defaults(runs_help=runs.print_help)
    _store_options(runs, after=False)
    actions = runs.add_subparsers(dest="action", metavar="COMMAND")
    _action(
        actions,
        "list",
        "every run, the most recent first",
        "Every run, the most recent first; its parent column says of which run each rerun or "
        "fork is.",
    )
    show = _action(actions, "show", "one run: its snapshots and its latest state")
    show.add_argument("run_id", metavar="RUN", help="the run's id, as `runs list` shows it")
    show.add_argument(
        "--limit",
        metavar="N",
        type=int,
        default=20,
        help="how many snapshots to list, the latest (default 20)",
    )
    export = _action(
        actions,
        "export",
        "one run as one self-contained HTML page",
        "One run as one self-contained HTML page (graph, timeline, snapshots and their calls, "
        "the store at each snapshot, errors), readable offline in any browser.",
    )
    export.add_argument("run_id", metavar="RUN", help="the run's id, as `runs list` shows it")
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="where to write the page (default: RUN.html in the working directory)",
    )
    delete = _action(actions, "delete", "remove a run and all its snapshots")
    delete.add_argument("run_id", metavar="RUN", help="the run's id, as `runs list` shows it")
    return parser


def _action(
    actions: Any, name: str, about: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A command of ``runs``, which takes the options of where the runs are too: a person
    writes ``runs list --store PATH`` as often as ``runs --store PATH list``."""
    description = description or about[:1].upper() + about[1:] + "."
    action = actions.add_parser(name, help=about, description=description)
    _store_options(action, after=True)
    return action


def _store_options(parser: argparse.ArgumentParser, *, after: bool) -> None:
    # Given after the command, an option must not reset what was given before it: argparse
    # copies every value of the command's namespace over the outer one, so there the options
    # have no default at all (SUPPRESS) and only what was typed is copied.
    default = argparse.SUPPRESS if after else None
    group = parser.add_argument_group(
        "where the runs are",
        "default: .notebook_workflows/runs.db under the working directory",
    )
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--store",
        metavar="WHERE",
        default=default,
        help="a SQLite file's path, a redis:// URL or a postgresql:// DSN",
    )
    where.add_argument(
        "--db", metavar="PATH", default=default, help="a SQLite file's path (as --store PATH)"
    )
    where.add_argument(
        "--redis", metavar="URL", default=default, help="a Redis URL (as --store redis://...)"
    )
    group.add_argument(
        "--prefix",
        default=argparse.SUPPRESS if after else "nw",
        help="key prefix (Redis) or table prefix (PostgreSQL), default nw",
    )


def _open_store(args: argparse.Namespace) -> SnapshotStore:
    named = [f"--{name}" for name in ("store", "db", "redis") if getattr(args, name)]
    if len(named) > 1:
        raise ValueError(f"{' and '.join(named)} both name a store: give one")
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
    path = Path(given).expanduser() if given else DEFAULT_PATH
    if not path.is_file():
        raise SnapshotError(_no_store_at(path, bool(given), args))
    return SQLiteStore(path)


def _no_store_at(path: Path, given: bool, args: argparse.Namespace) -> str:
    """The error for a SQLite store that is not there: where it looked, the stores nearby,
    and how to name one (a person who ran a notebook in ``notebooks/`` and then the command
    from the project's root gets the store the notebook made named to them)."""
    cwd = Path.cwd()
    looked = os.path.abspath(path)
    found = _stores_near(cwd)
    if path.is_dir():
        inside = [os.path.relpath(p) for p in glob.glob(os.path.join(looked, "*.db"))]
        found = list(dict.fromkeys([*_default_first(inside), *found]))  # its own first, once
        said = f"{looked} is a folder, not a checkpoint store"
    elif given:
        said = f"there is no checkpoint store at {looked} (the working directory is {cwd})"
    else:
        said = (
            f"there is no checkpoint store at {looked} (the default: "
            f".notebook_workflows/runs.db under the working directory, {cwd})"
        )
    parts = [said]
    found = [p for p in found if os.path.abspath(p) != looked]
    if found:
        parts.append(f"stores nearby: {_by_folder(found)}")
        command = ["runs", args.action]
        if getattr(args, "run_id", None) is not None:
            command.append(args.run_id)
        parts.append(f"try: {PROG} {shlex.join([*command, '--store', found[0]])}")
    else:
        parts.append(f"no .notebook_workflows/*.db file in, under or just above {cwd}")
    parts.append(f"or {NAME_A_STORE}" if found else NAME_A_STORE)
    return "; ".join(parts)


def _by_folder(paths: list[str], folders: int = 3) -> str:
    """ "notebooks/.notebook_workflows/ holds runs.db, agents.db; ../.notebook_workflows/
    holds runs.db": shorter than every path in full, and each folder is named once."""
    held: dict[str, list[str]] = {}
    for path in paths:
        folder, name = os.path.split(path)
        held.setdefault(folder, []).append(name)
    said = [
        f"{os.path.join(folder, '')} holds {', '.join(names)}"
        for folder, names in list(held.items())[:folders]
    ]
    if len(held) > folders:
        said.append(f"and {len(held) - folders} more folders")
    return "; ".join(said)


# where notebooks make their stores: SQLiteStore() makes .notebook_workflows/runs.db under the
# working directory of the kernel, which is the notebook's folder, often one or two below the
# project's root (glob's "*" skips hidden folders: no .venv or .git is searched)
_NEARBY = (".notebook_workflows/*.db", "*/.notebook_workflows/*.db", "*/*/.notebook_workflows/*.db")


def _stores_near(cwd: Path) -> list[str]:
    """SQLite files in ``.notebook_workflows`` folders in, under and just above ``cwd``,
    as paths relative to it: those named ``runs.db`` (the default) first, nearest first."""
    found = {path for pattern in _NEARBY for path in glob.glob(pattern, root_dir=cwd)}
    for up in list(cwd.parents)[:2]:
        found.update(
            os.path.relpath(path, cwd)
            for path in glob.glob(os.path.join(glob.escape(str(up)), ".notebook_workflows", "*.db"))
        )
    return _default_first(found)


def _default_first(paths: Any) -> list[str]:
    return sorted(paths, key=lambda p: (Path(p).name != "runs.db", p.count(os.sep), p))


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
    rerun = _rerun_of(store, info)
    if rerun is not None:
        replayed, ran = rerun
        lines.append(f"rerun     of {info.parent}: {_replayed_and_ran(replayed, ran)}")
        for step, (calls, why) in list(ran.items())[:10]:
            because = f": {why}" if why else ""
            lines.append(f"  ran     {step} ({calls} {plural(calls, 'call')}){because}")
        if len(ran) > 10:
            lines.append(f"  ran     ... and {len(ran) - 10} more steps")
    elif info.parent:
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
            printable(_what(s, rerun is not None)),
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


def _export(store: SnapshotStore, run_id: str, output: str | None) -> str:
    from .notebook.export import export_html

    # a run id may hold characters a file name cannot: the default name keeps the safe ones
    path = export_html(store, run_id, output or re.sub(r"[^\w.-]", "_", run_id) + ".html")
    size = path.stat().st_size
    return printable(f"wrote run {run_id!r} to {path} ({size / 1024:.0f} KiB, one offline page)")


def _list(store: SnapshotStore) -> str:
    runs = store.runs()
    if not runs:
        return f"(no runs in {store!r})"
    # the parent column in words: of what a run is a rerun, or a fork (RunList says "X #N")
    rows = [(*row[:-1], _parent(store, info)) for info, row in zip(runs, runs._rows(), strict=True)]
    return format_table(RunList._HEADERS, rows)


def _parent(store: SnapshotStore, info: RunInfo) -> str:
    if not info.parent:
        return ""
    parent = printable(info.parent)
    try:
        rerun = _rerun_of(store, info)
    except SnapshotError:  # a damaged run: the listing goes on, `runs show` says what is wrong
        return f"{parent} #{info.parent_seq} (its records cannot be read)"
    if rerun is not None:
        return f"rerun of {parent}: {_replayed_and_ran(*rerun, short=True)}"
    return f"fork of {parent} at #{info.parent_seq}"


def _rerun_of(store: SnapshotStore, info: RunInfo) -> tuple[int, dict[str, tuple[int, str]]] | None:
    """For a run made by ``workflow.rerun``: how many calls it replayed, and for each step
    that ran instead, how many calls and why (the last reason recorded). None for any other
    run. A rerun is a fork whose records mark each call ``replayed`` or say why it ran
    (``ran_because``, see ``snapshot``); a fork made by ``resume(at=...)`` or ``fork`` has
    neither (a rerun of a run recorded before calls were is told apart from a fork by nothing).
    """
    if not info.parent:
        return None
    from .checkpoint.rerun import recorded_calls

    calls = recorded_calls(store, info.run_id)
    if not any(call.get("replayed") or call.get("ran_because") for call in calls):
        return None
    replayed = 0
    ran: dict[str, tuple[int, str]] = {}
    for call in calls:
        if call.get("replayed"):
            replayed += 1
            continue
        step = printable(str(call.get("step")))
        count, why = ran.get(step, (0, ""))
        ran[step] = (count + 1, printable(str(call.get("ran_because") or why)))
    return replayed, ran


def _replayed_and_ran(replayed: int, ran: dict[str, tuple[int, str]], short: bool = False) -> str:
    """ "3 calls replayed, 1 ran" (short, for a table's column: "3 replayed, 1 ran")."""
    calls = sum(count for count, _ in ran.values())
    if short:
        return f"{replayed} replayed, {calls} ran"
    return f"{replayed} {plural(replayed, 'call')} replayed, {calls or 'none'} ran"


def _replays_in(snapshot: Any) -> int:
    return sum(1 for call in getattr(snapshot, "calls", ()) if call.get("replayed"))


def _lease_of(store: SnapshotStore, run_id: str) -> Any:
    lease_of = getattr(store, "lease_of", None)
    if lease_of is None:
        return None
    try:
        return lease_of(run_id)
    except SnapshotError:
        return None  # a store without leases: nothing to show


def _what(snapshot: Any, in_rerun: bool) -> str:
    reason, step = snapshot.reason, snapshot.step
    # a rerun writes its replayed calls a batch at a time, or with the next record
    replays = _replays_in(snapshot) if in_rerun or reason == "replay" else 0
    if reason == "replay":
        count = f"{replays} {plural(replays, 'call')}" if replays else "calls"
        return f"replayed {count}, the last {step}"
    if reason == "step":
        what = f"step {step}"
    elif reason == "fork" and in_rerun:
        what = "rerun started"
    else:
        what = {"start": "started", "fork": "forked", "resume": "resumed", "end": "ended"}.get(
            reason, reason
        )
    return f"{what} (+{replays} replayed)" if replays else what


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
