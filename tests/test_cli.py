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
    assert done.returncode == 1 and "no checkpoint store at '.notebook_workflows" in done.stderr
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
