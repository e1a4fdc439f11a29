"""The run monitor in a real browser: JupyterLab, Debian's Chromium, Playwright.

One test walks the whole path a user takes: open a notebook, run all cells, watch the monitor
render (status, store, graph, what a step printed), type answers to two questions key by key
(one sent with the button, one with Enter) while the cell awaits the run, and see the run
finish. The server is started here on a free loopback port with a token, with every Jupyter
directory in a temporary folder; a screenshot is kept under ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
NOTEBOOK = "monitor.ipynb"

DEFINE = '''
import asyncio
from notebook_workflows import *

class Section(Event):
    title: str

class Draft(Event):
    title: str
    words: int

class Review(Workflow):
    """Drafts three sections at once, then asks an editor twice."""

    @step
    async def outline(self, ctx: Context, ev: StartEvent) -> Section | None:
        await ctx.store.set("topic", ev.topic)
        for title in ("intro", "method", "results"):
            ctx.send_event(Section(title=title))

    @step(num_workers=3)
    async def draft(self, ctx: Context, ev: Section) -> Draft:
        await asyncio.sleep(0.3)
        print(f"drafted the {ev.title} section")
        return Draft(title=ev.title, words=100 * len(ev.title))

    @step
    async def edit(self, ctx: Context, ev: Draft) -> StopEvent | None:
        drafts = ctx.collect_events(ev, [Draft] * 3)
        if drafts is None:
            return None
        await ctx.store.set("words", sum(d.words for d in drafts))
        verdict = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Publish the report?")
        )
        await ctx.store.set("verdict", verdict.response)
        title = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Its title?")
        )
        await ctx.store.set("title", title.response)
        return StopEvent(result=f"{title.response}: {verdict.response}")
'''

RUN = """
handler = Review().run(run_id="browser-1", topic="monitors")
display(handler.monitor())
await handler
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _requirements() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (Debian package chromium; `make test` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        return "jupyter is not installed next to this Python"
    return None


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    runtime: Path


def _kernel_pids(runtime: Path) -> list[int]:
    """Processes of kernels this server started: their command line names a connection file
    in this server's own runtime folder."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
            if "ipykernel" in cmdline and str(runtime) in cmdline:
                pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "notebooks", base / "jupyter"
    root.mkdir()
    env = dict(os.environ)
    folders = {
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "IPYTHONDIR": "ipython",
        "TMPDIR": "tmp",
    }
    for var, name in folders.items():
        (home / name).mkdir(parents=True)
        env[var] = str(home / name)
    settings = home / "app-settings"
    settings.mkdir()
    overrides = {
        # every cell rendered, even off screen; no news or update checks
        "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension:notification": {
            "checkForUpdates": False,
            "fetchNews": "false",
        },
    }
    (settings / "overrides.json").write_text(json.dumps(overrides))
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = str(Path(sys.executable).parent / "jupyter")
    command = [
        jupyter,
        "lab",
        "--allow-root",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.app_settings_dir={settings}",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = (base / "server.log").open("w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + (base / "server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.1)
        yield Lab(url, token, root, home / "runtime")
    finally:
        with contextlib.suppress(OSError):
            request = urllib.request.Request(
                f"{url}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
            )
            urllib.request.urlopen(request, timeout=5)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        # Kernels run in process sessions of their own: end any this server left, by id.
        for pid in _kernel_pids(home / "runtime"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(DEFINE.strip()), nbformat.v4.new_code_cell(RUN.strip())]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_the_monitor_renders_takes_answers_and_shows_the_finished_run(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    _write_notebook(lab.root / NOTEBOOK)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        try:
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
            page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=30_000)
            page.wait_for_function(
                """() => {
                    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const kernel = panel && panel.sessionContext && panel.sessionContext.session
                        && panel.sessionContext.session.kernel;
                    return kernel && kernel.status === 'idle';
                }""",
                timeout=30_000,
            )
            # Not awaited: the promise resolves only when every cell has finished.
            page.evaluate("() => { void jupyterapp.commands.execute('notebook:run-all-cells'); }")

            monitor = page.locator(".nwm")
            header = monitor.locator(".nwm-header")
            expect(header).to_contain_text("Review", timeout=30_000)
            expect(header).to_contain_text("browser-1")
            expect(header.locator(".nwm-pill")).to_have_text("waiting", timeout=15_000)
            expect(monitor.locator(".nwm-store")).to_contain_text("topic")
            expect(monitor.locator(".nwm-store")).to_contain_text("'monitors'")
            expect(monitor.locator(".nwm-store")).to_contain_text("words")
            expect(monitor.locator(".nwm-graph svg")).to_be_visible(timeout=15_000)
            expect(monitor.locator(".nwm-graph svg")).to_contain_text("draft")
            expect(monitor.locator(".nwm-logbox")).to_contain_text("InputRequiredEvent")
            # what a step printed, inside the monitor's own output area
            expect(monitor.locator(".nwm-output")).to_contain_text("drafted the intro section")
            expect(monitor.locator(".nwm-output")).to_contain_text("drafted the results section")

            ask = monitor.locator(".nwm-ask")
            expect(ask).to_contain_text("Publish the report?")
            expect(monitor.locator(".nwm-graph svg")).to_contain_text("waiting", timeout=5_000)
            monitor.screenshot(path=str(ARTIFACTS / "monitor-waiting.png"))
            ask.locator("input").press_sequentially("yes, publish", delay=40)
            ask.locator(".nwm-send").click()
            expect(ask).to_contain_text("Its title?", timeout=15_000)
            box = ask.locator("input")
            expect(box).to_be_enabled()
            box.press_sequentially("Live monitors", delay=40)
            box.press("Enter")

            expect(header.locator(".nwm-pill")).to_have_text("done", timeout=15_000)
            expect(header).to_contain_text("result: 'Live monitors: yes, publish'")
            expect(monitor.locator(".nwm-store")).to_contain_text("'yes, publish'")
            expect(monitor.locator(".nwm-logbox")).to_contain_text("RunStatusChanged")
            expect(ask).to_be_hidden()
            # the awaited cell's own result, under the monitor
            expect(page.locator(".jp-OutputArea-output").last).to_contain_text(
                "Live monitors: yes, publish"
            )
            monitor.locator(".nwm-graph svg").scroll_into_view_if_needed()
            page.wait_for_timeout(300)  # let the last graph finish painting for the picture
            monitor.screenshot(path=str(ARTIFACTS / "monitor.png"))
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser-page.png"))
            browser.close()
