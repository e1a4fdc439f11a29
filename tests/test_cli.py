"""python -m notebook_workflows runs: look into a store without writing code."""

from __future__ import annotations

import os
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
