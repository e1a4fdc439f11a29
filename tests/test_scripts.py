"""run_sync from plain scripts: results, Ctrl-C, questions without a terminal, nesting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import wait_until

SCRIPT = """
import asyncio, sys
from notebook_workflows import *

class Tick(Event):
    n: int

class Ticker(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Tick:
        return Tick(n=0)

    @step
    async def tick(self, ev: Tick) -> Tick | StopEvent:
        with open(sys.argv[1], "a") as f:
            f.write(f"{ev.n}\\n")
        await asyncio.sleep(0.02)
        return StopEvent(result=ev.n) if ev.n >= int(sys.argv[2]) else Tick(n=ev.n + 1)

class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Approve?")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)
"""


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(SCRIPT + textwrap.dedent(body))
    return path


def test_run_sync_in_a_script(tmp_path: Path) -> None:
    path = script(tmp_path, "print(Ticker().run_sync())\n")
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "t.txt"), "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "3"


def test_ctrl_c_during_run_sync_cancels_the_run(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.txt"
    path = script(
        tmp_path,
        """
        try:
            Ticker().run_sync()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            import time; time.sleep(0.6)  # a cancelled run must stay quiet meanwhile
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(path), str(ticks), "1000"], stdout=subprocess.PIPE, text=True
    )
    wait_until(
        lambda: ticks.exists() and len(ticks.read_text().splitlines()) >= 5, what="five ticks"
    )
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert "interrupted" in stdout
    written = len(ticks.read_text().splitlines())
    assert written < 100  # nowhere near the thousand ticks: nothing ran after Ctrl-C


def test_a_question_without_a_terminal_fails_clearly(tmp_path: Path) -> None:
    path = script(tmp_path, "Ask().run_sync()\n")
    out = subprocess.run(
        [sys.executable, str(path), "-", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode != 0
    assert "WorkflowRuntimeError" in out.stderr and "asks a human ('Approve?')" in out.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_question_is_asked_on_the_terminal(tmp_path: Path) -> None:
    path = script(tmp_path, "print('result:', Ask().run_sync())\n")
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(path), "-", "0"],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    os.write(primary, b"yes\n")
    stdout, stderr = proc.communicate(timeout=60)
    os.close(primary)
    assert "result: yes" in stdout, stderr


def test_enable_nested_asyncio_runs_on_the_callers_loop(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        """
        import threading
        from notebook_workflows import enable_nested_asyncio

        class Where(Workflow):
            @step
            async def only(self, ev: StartEvent) -> StopEvent:
                return StopEvent(result=threading.get_ident())

        async def main():
            assert Where().run_sync() != threading.get_ident()  # the helper thread
            enable_nested_asyncio()
            assert Where().run_sync() == threading.get_ident()  # this very loop
            print("ok")

        asyncio.run(main())
    """,
    )
    out = subprocess.run(
        [sys.executable, str(path), "-", "0"], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ok", out.stderr
