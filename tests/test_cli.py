"""python -m notebook_workflows runs: look into a store without writing code."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ckpt_flows import Counter

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.__main__ import main
from notebook_workflows.checkpoint import SQLiteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)

    async def runs() -> None:
        await Counter().run(checkpoint=store, n=3, run_id="first")
        with pytest.raises(TypeError):
            await Counter().run(checkpoint=store, n="oops", run_id="broken")  # type: ignore[arg-type]

    import asyncio

    asyncio.run(runs())
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_a_table_of_runs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runs", "--db", str(db), "list")
    assert code == 0 and err == ""
    header, rule, *rows = out.splitlines()
    assert header.split() == [
        "run",
        "workflow",
        "status",
        "steps",
        "snapshots",
        "updated",
        "parent",
    ]
    assert set(rule) <= {"-", " "}
    assert [row.split()[:4] for row in rows] == [
        ["broken", "Counter", "failed", "1"],
        ["first", "Counter", "done", "4"],
    ]


def test_show_prints_a_run_its_snapshots_and_its_state(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "runs", "--db", str(db), "show", "first")
    assert code == 0
    assert "workflow  ckpt_flows:Counter" in out and "status    done, 4 steps done" in out
    assert "snapshots (6)" in out and "step tick" in out and "ended" in out
    assert "result     3" in out and "counter = 3" in out
    code, out, _ = run(capsys, "runs", "--db", str(db), "show", "broken", "--limit", "2")
    assert "snapshots (3, the last 2 shown)" in out
    assert "in flight  tick (attempt 1, failed: TypeError:" in out


def test_delete_removes_a_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "runs", "--db", str(db), "delete", "broken")
    assert code == 0 and "deleted run 'broken'" in out
    assert [r.run_id for r in SQLiteStore(db).runs()] == ["first"]


def test_errors_are_one_line_on_stderr(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runs", "--db", str(db), "show", "nope")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "has no run 'nope'" in err and "'first'" in err
    missing = db.parent / "missing.db"
    code, _, err = run(capsys, "runs", "--db", str(missing), "list")
    assert code == 1 and "there is no checkpoint store at" in err
    assert not missing.exists()  # looking never creates a store


def test_the_module_runs_from_the_shell(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "notebook_workflows", "runs", "list"],
        cwd=db.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    default = db.parent / ".notebook_workflows" / "runs.db"
    assert done.returncode == 1 and f"no checkpoint store at {default} (the default" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "notebook_workflows", "runs", "--db", str(db), "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "first" in done.stdout


HOSTILE_ID = "evil\x1b]0;pwned\x07\x1b[2J\nfake-row\r\u202ereversed"
HOSTILE_WORKFLOW = "ckpt_flows:\x1b]2;title\x07Evil\x1b[31m"
HOSTILE_KEY = "key\x1b[2J\nsecond-line"
CONTROL = set(map(chr, range(32))) - {"\n"} | {"\x7f", "\u202e"}


@pytest.fixture
def hostile_db(db: Path) -> Path:
    """A store holding a run whose id, workflow name and store key carry terminal escape
    sequences, newlines and a right-to-left override."""
    from notebook_workflows.checkpoint import Record, RunInfo
    from notebook_workflows.checkpoint.base import dumps

    with SQLiteStore(db) as store:
        context = dict(store.latest("first").context)
        context["store"] = {**context["store"], HOSTILE_KEY: "\x1b[5mvalue"}
        context["run_id"] = HOSTILE_ID
        now = 1_700_000_000.0
        store.save(
            Record(HOSTILE_ID, 0, "base", "start", None, "running", 0, now, dumps(context)),
            new_run=RunInfo(HOSTILE_ID, HOSTILE_WORKFLOW, "running", 0, now, created_at=now),
        )
        store.save(Record(HOSTILE_ID, 1, "delta", "step", "ti\x1b[8mck", "running", 1, now, "{}"))
    return db


def assert_inert(text: str) -> None:
    assert not CONTROL & set(text), [c for c in text if c in CONTROL]


def test_list_escapes_control_characters_in_names(
    hostile_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "runs", "--db", str(hostile_db), "list")
    assert code == 0 and err == ""
    assert_inert(out)
    lines = out.splitlines()
    assert len(lines) == 2 + 3  # header, rule, one line per run: no line was broken
    [row] = [line for line in lines if line.startswith("evil")]
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\nfake-row\\r\\u202ereversed" in row
    assert "\\x1b]2;title\\x07Evil\\x1b[31m" in row


def test_show_escapes_control_characters_in_ids_steps_and_keys(
    hostile_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "runs", "--db", str(hostile_db), "show", HOSTILE_ID)
    assert code == 0 and err == ""
    assert_inert(out)
    assert "run       evil\\x1b]0;pwned" in out and "step ti\\x1b[8mck" in out
    assert "key\\x1b[2J\\nsecond-line = " in out
    code, out, err = run(capsys, "runs", "--db", str(hostile_db), "show", "x\x1b[2Jy")
    assert code == 1 and out == ""
    assert_inert(err) and len(err.strip().splitlines()) == 1


def test_the_html_table_escapes_markup_and_control_characters(hostile_db: Path) -> None:
    from notebook_workflows.checkpoint import RunInfo, RunList

    runs = RunList(
        [*SQLiteStore(hostile_db).runs(), RunInfo("<script>alert(1)</script>", "m:<b>W</b>",
                                                  "done", 1, 1.0)]
    )  # fmt: skip
    html = runs._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;W&lt;/b&gt;" in html
    assert_inert(html)
    assert "evil\\x1b]0;pwned" in html


def test_store_takes_a_path_a_redis_url_or_a_postgresql_dsn(
    db: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    code, out, _ = run(capsys, "runs", "--store", str(db), "list")
    assert code == 0 and "first" in out
    code, out, _ = run(capsys, "runs", "--store", f"sqlite:///{db}", "list")
    assert code == 0 and "first" in out
    code, _, err = run(capsys, "runs", "--store", "mysql://x/y", "list")
    assert code == 1 and "redis:// URL or a postgresql:// DSN" in err
    for fixture in ("redis_server", "postgres_dsn"):
        server = request.getfixturevalue(fixture)
        where = server.url if fixture == "redis_server" else server
        from notebook_workflows.__main__ import _open_store
        from notebook_workflows.__main__ import _parser as parser

        with _open_store(parser().parse_args(["runs", "--store", where, "list"])) as store:
            Counter().run_sync(checkpoint=store, n=2, run_id=f"on-{fixture}")
        code, out, err = run(capsys, "runs", "--store", where, "list")
        assert code == 0 and f"on-{fixture}" in out, err
        code, out, _ = run(capsys, "runs", "--store", where, "show", f"on-{fixture}")
        assert code == 0 and "status    done, 3 steps done" in out


def test_show_names_the_owner_of_a_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from notebook_workflows.checkpoint import Owner

    with SQLiteStore(db) as store:
        store.acquire_lease("first", Owner.current(), ttl=60)
    code, out, _ = run(capsys, "runs", "--db", str(db), "show", "first")
    assert code == 0 and f"owned by  process {os.getpid()} on host" in out
    assert "(lease expires in 60 s)" in out or "(lease expires in 59 s)" in out


# -- a damaged store ------------------------------------------------------------------------------


def _tamper(db: Path, run_id: str, seq: int, data: str | None) -> None:
    """Replace the text of record ``seq`` of the run in the file (None: delete the record)."""
    conn = sqlite3.connect(db)
    (rid,) = conn.execute("SELECT rid FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if data is None:
        conn.execute("DELETE FROM snapshots WHERE key = ?", (rid * 2**32 + seq,))
    else:
        conn.execute("UPDATE snapshots SET data = ? WHERE key = ?", (data, rid * 2**32 + seq))
    conn.commit()
    conn.close()


def test_show_of_a_damaged_history_is_one_line_never_a_traceback(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(db, "first", 2, None)
    code, out, err = run(capsys, "runs", "--db", str(db), "show", "first")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: SQLiteStore(") and "snapshot 2 of run 'first' is missing" in err
    done = subprocess.run(
        [sys.executable, "-m", "notebook_workflows", "runs", "--db", str(db), "show", "first"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == "" and done.stderr == err


def test_show_prints_entries_of_an_odd_shape_as_they_are(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the latest record (which no other names) with entries of other JSON types inside
    odd = {
        "queue_add": [{"seq": 9, "step": ["tick"], "event": 1}, {"seq": 10, "event": 2}],
        "in_flight_put": [{"id": 4, "seq": 3, "step": {"a": 1}, "attempt": "two"}],
        "questions": [5, {"data": []}],
        "waiters": [{"question": 7}, 8],
        "stop": {"data": [1, 2]},
    }
    _tamper(db, "first", 5, json.dumps(odd))
    code, out, err = run(capsys, "runs", "--db", str(db), "show", "first")
    assert code == 0 and err == ""
    assert "queued     1 x None, 1 x ['tick']" in out
    assert "in flight  {'a': 1} (attempt two)" in out
    assert "questions  '';" in out and "result     [1, 2]" in out


def test_an_unforeseen_failure_is_one_line_too(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import notebook_workflows.__main__ as cli

    def broken(*args: object) -> str:
        raise KeyError("queue")

    monkeypatch.setattr(cli, "_show", broken)
    code, out, err = run(capsys, "runs", "--db", str(db), "show", "first")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: KeyError: 'queue' (a bug in notebook_workflows")


# -- where the store is, and how a person names it ------------------------------------------------


def test_store_options_go_after_every_command_too(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "runs", "list", "--store", str(db))
    assert code == 0 and "first" in out and "broken" in out
    code, out, _ = run(capsys, "runs", "show", "first", "--store", str(db), "--limit", "1")
    assert code == 0 and "snapshots (6, the last 1 shown)" in out
    code, out, _ = run(capsys, "runs", "show", "--db", str(db), "first")
    assert code == 0 and "status    done, 4 steps done" in out
    code, out, _ = run(capsys, "runs", "delete", "broken", "--store", f"sqlite:///{db}")
    assert code == 0 and "deleted run 'broken'" in out
    assert [r.run_id for r in SQLiteStore(db).runs()] == ["first"]


def test_options_given_before_a_command_are_not_reset_by_it() -> None:
    from notebook_workflows.__main__ import _parser as parser

    args = parser().parse_args(["runs", "--store", "a.db", "--prefix", "p", "list"])
    assert (args.store, args.prefix) == ("a.db", "p")
    args = parser().parse_args(["runs", "--prefix", "p", "show", "R", "--redis", "redis://h"])
    assert (args.redis, args.prefix, args.store) == ("redis://h", "p", None)


def test_a_store_named_twice_is_one_line(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runs", "--db", str(db), "list", "--store", str(db))
    assert code == 1 and out == ""
    assert err == "error: --store and --db both name a store: give one\n"


@pytest.mark.parametrize("command", ["list", "show", "delete"])
def test_every_command_help_lists_its_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["runs", command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    options = ["--store WHERE", "--db PATH", "--redis URL", "--prefix PREFIX"]
    options += {"list": [], "show": ["--limit N", "RUN"], "delete": ["RUN"]}[command]
    for option in options:
        # the option and its one-line description, on one line
        [line] = [line for line in out.splitlines() if line.strip().startswith(option + " ")]
        assert len(line.split(option, 1)[1].strip()) > 10, line
    assert "default: .notebook_workflows/runs.db under the working directory" in out


def test_runs_without_a_command_shows_its_commands_and_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "runs")
    assert code == 2
    assert "list" in out and "show" in out and "delete" in out and "--store WHERE" in out
    assert "runs list --store notebooks/.notebook_workflows/runs.db" in out  # an example


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project's root as a person leaves it: a notebook in notebooks/ made its store there
    (SQLiteStore() in the kernel's working directory); the command runs from the root."""
    with SQLiteStore(tmp_path / "notebooks" / ".notebook_workflows" / "runs.db") as store:
        Counter().run_sync(checkpoint=store, n=1, run_id="from-a-notebook")
    (tmp_path / "notebooks" / ".notebook_workflows" / "other.db").touch()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_store_says_where_it_looked_the_stores_nearby_and_how_to_name_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "runs", "show", "from-a-notebook")
    assert code == 1 and out == "" and err.count("\n") == 1
    default = project / ".notebook_workflows" / "runs.db"
    assert err.startswith(
        f"error: there is no checkpoint store at {default} (the default: "
        f".notebook_workflows/runs.db under the working directory, {project}); "
    )
    assert "; stores nearby: notebooks/.notebook_workflows/ holds runs.db, other.db; " in err
    suggestion = "python -m notebook_workflows runs show from-a-notebook --store "
    suggestion += "notebooks/.notebook_workflows/runs.db"
    assert f"; try: {suggestion}; " in err
    assert err.endswith(
        "; or name a store with --store PATH (a SQLite file), --store redis://HOST:6379/0 or "
        "--store postgresql://USER@HOST/DB\n"
    )
    code, out, _ = run(capsys, *suggestion.split()[3:])  # what it says to try works
    assert code == 0 and "run       from-a-notebook" in out


def test_a_missing_store_named_by_a_person_is_said_as_an_absolute_path(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "runs", "list", "--store", "notebooks/runs.db")
    assert code == 1 and err.count("\n") == 1
    missing = project / "notebooks" / "runs.db"
    assert f"there is no checkpoint store at {missing} (the working directory is {project})" in err
    assert "stores nearby: notebooks/.notebook_workflows/" in err
    code, _, err = run(capsys, "runs", "list", "--store", "notebooks/.notebook_workflows")
    assert code == 1 and err.count("\n") == 1
    assert f"{project / 'notebooks' / '.notebook_workflows'} is a folder, not a checkpoint" in err
    assert "runs list --store notebooks/.notebook_workflows/runs.db" in err
    assert not missing.exists()  # looking never creates a store


def test_no_store_anywhere_near_says_so_and_how_to_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "notebook_workflows", "runs", "list"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert f"no .notebook_workflows/*.db file in, under or just above {tmp_path}" in done.stderr
    assert "name a store with --store PATH (a SQLite file), --store redis://" in done.stderr


# -- reruns and forks -----------------------------------------------------------------------------


class Loaded(Event):
    text: str


class Wordy(Workflow):
    @step
    async def load(self, ctx: Context, ev: StartEvent) -> Loaded:
        await ctx.store.set("source", ev.text)
        return Loaded(text=ev.text)

    @step(replay=False)
    async def report(self, ctx: Context, ev: Loaded) -> StopEvent:
        return StopEvent(result=len(ev.text.split()))


@pytest.fixture
def reruns(db: Path) -> dict[str, str]:
    """In ``db``: run "words", a rerun of it (``load`` replayed, ``report`` ran) and a fork of
    it at its snapshot 1."""

    async def runs() -> dict[str, str]:
        with SQLiteStore(db) as store:
            await Wordy().run(checkpoint=store, text="a b c", run_id="words")
            rerun = Wordy().rerun("words", store=store)
            await rerun
            fork = Wordy().resume("words", store=store, at=1)
            await fork
            return {"rerun": rerun.run_id, "fork": fork.run_id}

    import asyncio

    return asyncio.run(runs())


def test_list_says_which_runs_are_reruns_and_which_forks(
    db: Path, reruns: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "runs", "--store", str(db), "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows[reruns["rerun"]].endswith("rerun of words: 1 replayed, 1 ran")
    assert rows[reruns["fork"]].endswith("fork of words at #1")
    assert len(rows["words"].split()) == 7  # run ... updated (a date and a time): no parent


def test_show_describes_a_rerun_as_a_rerun(
    db: Path, reruns: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "runs", "--store", str(db), "show", reruns["rerun"])
    assert code == 0 and "forked" not in out
    assert "rerun     of words: 1 call replayed, 1 ran\n" in out
    assert "  ran     report (1 call): it is marked @step(replay=False)\n" in out
    assert "rerun started" in out and "step report (+1 replayed)" in out
    code, out, _ = run(capsys, "runs", "--store", str(db), "show", reruns["fork"])
    assert code == 0 and "forked    from words at snapshot 1" in out and "rerun" not in out
