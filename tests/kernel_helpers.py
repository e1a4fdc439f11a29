"""A real Jupyter kernel for tests: start it, run cells, read what each cell showed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    data: list[dict[str, Any]] = field(default_factory=list)  # execute_result / display_data
    error: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        shown = [d.get("text/plain", "") for d in self.data]
        return self.stdout + "".join(shown)


class Kernel:
    """One kernel started in ``cwd``; ``run(code)`` returns what the cell showed."""

    def __init__(self, cwd: Path) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def submit(self, code: str) -> str:
        return self.client.execute(code, allow_stdin=False)

    def collect(self, msg_id: str, timeout: float = 60) -> CellResult:
        result = CellResult()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {result}")
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                result.data.append(content["data"])
            elif kind == "error":
                result.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                return result

    def run(self, code: str, timeout: float = 60) -> CellResult:
        return self.collect(self.submit(code), timeout)

    def check(self, code: str, timeout: float = 60) -> CellResult:
        """Run a cell that must not fail."""
        result = self.run(code, timeout)
        if result.error is not None:
            tb = "\n".join(result.error.get("traceback", []))
            raise AssertionError(
                f"cell failed: {result.error['ename']}: {result.error['evalue']}\n{tb}"
            )
        return result

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def restart(self) -> None:
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=60)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
