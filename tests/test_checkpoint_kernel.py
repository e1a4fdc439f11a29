"""A Jupyter kernel restarted in the middle of a checkpointed run; the new kernel resumes it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

DEFINE = """
import asyncio, os
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import SQLiteStore

class Page(Event):
    n: int

class Book(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Page:
        await ctx.store.set("pages", [])
        return Page(n=0)

    @step
    async def write(self, ctx: Context, ev: Page) -> Page | StopEvent:
        await asyncio.sleep(0.05)
        with open("pages.log", "a") as log:
            log.write(f"{ev.n} {os.getpid()}\\n")
        async with ctx.store.edit_state() as state:
            state["pages"] = [*state["pages"], ev.n]
        if ev.n + 1 == 30:
            return StopEvent(result=await ctx.store.get("pages"))
        return Page(n=ev.n + 1)
"""

START = """
handler = Book().run(checkpoint=SQLiteStore(), run_id="book")
while handler.ctx.store.keys() == [] or len(await handler.ctx.store.get("pages")) < 5:
    await asyncio.sleep(0.01)
print("written so far:", len(await handler.ctx.store.get("pages")))
"""

RESUME = """
result = await Book().resume("book")
print("result:", result == list(range(30)), len(result))
"""


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    jupyter_client = pytest.importorskip("jupyter_client")
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.kernel_spec.argv[0] = sys.executable  # this environment's ipykernel
    manager.start_kernel(cwd=str(tmp_path))
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


def execute(manager: Any, code: str) -> str:
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        out: list[str] = []

        def collect(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(content["traceback"]))

        reply = client.execute_interactive(code, timeout=60, output_hook=collect)
        text = "".join(out)
        assert reply["content"]["status"] == "ok", text
        return text
    finally:
        client.stop_channels()


def test_a_run_survives_a_kernel_restart(kernel: Any, tmp_path: Path) -> None:
    execute(kernel, DEFINE)
    assert "written so far:" in execute(kernel, START)
    kernel.restart_kernel(now=True)  # the run dies with the kernel, mid-step
    execute(kernel, DEFINE)  # the notebook's cells run again in the new kernel
    out = execute(kernel, RESUME)
    assert "result: True 30" in out
    lines = [line.split() for line in (tmp_path / "pages.log").read_text().splitlines()]
    pids = list(dict.fromkeys(pid for _, pid in lines))
    assert len(pids) == 2  # the old kernel and the new one
    before = [int(n) for n, pid in lines if pid == pids[0]]
    after = [int(n) for n, pid in lines if pid == pids[1]]
    assert before == list(range(len(before))) and len(before) >= 5
    # the new kernel starts where the checkpoints ended: at most the page in flight is redone
    assert after == list(range(after[0], 30)) and after[0] in (len(before) - 1, len(before))
    assert (tmp_path / ".notebook_workflows" / "runs.db").exists()
