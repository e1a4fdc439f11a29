"""The notebook face in a real browser: JupyterLab, Debian's Chromium, Playwright.

- The monitor, the whole path a user takes: open a notebook, run all cells, watch the monitor
  render (status, store, graph, timeline, what a step printed), type answers to two questions
  key by key (one sent with the button, one with Enter) while the cell awaits the run, and see
  the run finish; then the same monitor at 1400, 900 and 700 px wide (the store beside the
  graph while it gets 360 px, under it below that; no store key breaks; the whole graph shows
  and the first view fits 1,150 px) and in the dark theme, and its log folded away and back.
- Graphs and texts measured as drawn, at 1400 and 900 px, in the light and the dark theme: the
  smallest graph text is 10 px or more (the monitor's graph and a long left-to-right rerun
  graph), no arrowhead covers a node's text, nothing is wider than its box, and every text reads
  at a contrast of 4.5:1 or more on what is behind it.
- A notebook opened fresh, without running it (untrusted, as any notebook one did not run
  oneself): its graphs show as images, and the saved monitor shows its graph.
- The run browser clicked through: a fork's graph draws the steps before its fork point as run;
  at 900 px with the file browser open nothing sticks out and each run's line fits; legible in
  both themes; choose a run, move the slider over its snapshots, type a store edit into its
  fork form.
- A checkpointed run interrupted with JupyterLab's own command: the cell's error gives the line
  that resumes it; then its monitor's "edit and fork" form, clicked and typed into, forks it
  with a value changed, and the fork's monitor shows the new value at work.

One server for the module, started here on a free loopback port with a token, with every
Jupyter directory in a temporary folder; one Chromium. Screenshots are kept under
``test-artifacts/``: look at them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
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


def _write_notebook(path: Path, *cells: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell.strip()) for cell in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def _open(
    browser: Any, lab: Lab, name: str, width: int = 1400, height: int = 1100
) -> Iterator[Any]:
    """A page with notebook ``name`` open, its kernel idle and the left sidebar collapsed (so
    the notebook's width follows the window's)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        # A workspace of its own, reset: only this notebook opens (not the ones before)
        page.goto(f"{lab.url}/lab/workspaces/{Path(name).stem}/tree/{name}?token={lab.token}&reset")
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
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"page-{Path(name).stem}.png"))
        with contextlib.suppress(Exception):  # its kernel is not needed any more
            page.evaluate("() => jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()


def _run_all(page: Any) -> None:
    # Not awaited: the promise resolves only when every cell has finished.
    page.evaluate("() => { void jupyterapp.commands.execute('notebook:run-all-cells'); }")


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


# What a user sees, measured in the page: the size of graph text as drawn, the contrast of
# every text with what is behind it (SVG text with the shape under it), and parts that stick out
# of their box. A graph shown as an <img> is measured through a copy of its SVG laid exactly
# over it. WCAG's relative luminance and contrast ratio.
_MEASURE = r"""
window.nwMeasure = (() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]*)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const blend = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]));
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const behind = (el) => {  // the colour an element's text is drawn on, layers composited
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let colour = [255, 255, 255];
    for (let i = layers.length - 1; i >= 0; i--) colour = blend(layers[i], colour);
    return colour;
  };
  const opacity = (el) => {
    let o = 1;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) o *= +getComputedStyle(n).opacity;
    return o;
  };
  const underText = (t, page) => {  // the last painted shape under an SVG text's centre
    const r = t.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    let colour = behind(page);
    for (const s of t.ownerSVGElement.querySelectorAll("path, polygon, ellipse, rect")) {
      if (!(s.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
      const fill = parse(getComputedStyle(s).fill), b = s.getBoundingClientRect();
      if (fill && fill[3] > 0 && b.left <= x && x <= b.right && b.top <= y && y <= b.bottom)
        colour = blend(fill, behind(page));
    }
    return colour;
  };
  const shown = (el) =>
    el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const overlay = (img) => {  // the SVG of an <img>, inline, exactly over it
    const data = img.src.split(",", 2)[1];
    const text = new TextDecoder().decode(Uint8Array.from(atob(data), c => c.charCodeAt(0)));
    const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    const r = img.getBoundingClientRect(), box = document.createElement("div");
    box.style.cssText = `position:fixed;left:${r.left}px;top:${r.top}px;pointer-events:none`;
    svg.setAttribute("width", `${r.width}px`);
    svg.setAttribute("height", `${r.height}px`);
    box.appendChild(document.importNode(svg, true));
    document.body.appendChild(box);
    return box;
  };
  const svgTexts = (container) => [...container.querySelectorAll("svg text")].filter(shown);
  return {
    overlay,
    smallestText(container) {  // [px, text]: the smallest SVG text as drawn
      let best = [Infinity, ""];
      for (const t of svgTexts(container)) {
        const scale = t.getBoundingClientRect().height / t.getBBox().height;
        const px = parseFloat(getComputedStyle(t).fontSize) * scale;
        if (px < best[0]) best = [px, t.textContent];
      }
      return best;
    },
    arrowsOnText(container) {  // texts of nodes an arrowhead covers
      const heads = [...container.querySelectorAll("g.edge polygon")]
        .filter(p => p.getAttribute("stroke") !== "transparent")
        .map(p => p.getBoundingClientRect());
      const hits = [];
      for (const t of container.querySelectorAll("g.node text")) {
        const r = t.getBoundingClientRect();
        for (const h of heads) {
          const w = Math.min(r.right, h.right) - Math.max(r.left, h.left);
          const ht = Math.min(r.bottom, h.bottom) - Math.max(r.top, h.top);
          if (w > 0.5 && ht > 0.5) hits.push(t.textContent);
        }
      }
      return hits;
    },
    lowContrast(container, page) {  // [text, ratio] under 4.5:1
      const low = [];
      const check = (el, fg, bg) => {
        if (!fg || fg[3] === 0) return;
        const drawn = blend([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
        const r = ratio(drawn, bg);
        if (r < 4.5) low.push([el.textContent.trim().slice(0, 50), Math.round(r * 100) / 100]);
      };
      for (const t of svgTexts(container))
        check(t, parse(getComputedStyle(t).fill), underText(t, page || t.ownerSVGElement));
      for (const el of container.querySelectorAll("*")) {
        if (el instanceof SVGElement || !shown(el)) continue;
        if (el.closest("[disabled], option, style")) continue;
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.data.trim());
        if (own) check(el, parse(getComputedStyle(el).color), behind(el));
      }
      return low;
    },
    sticksOut(box) {  // parts wider than their space: [what, pixels]
      const out = [];
      const wider = box.scrollWidth - box.clientWidth;
      if (wider > 0) out.push(["the box scrolls", wider]);
      const r = box.getBoundingClientRect(), right = r.left + box.clientLeft + box.clientWidth;
      for (const el of box.querySelectorAll("*")) {
        let clipped = false;
        for (let n = el.parentElement; n && n !== box; n = n.parentElement)
          if (getComputedStyle(n).overflowX !== "visible") { clipped = true; break; }
        if (clipped || !shown(el) || el instanceof SVGElement && el.tagName !== "svg") continue;
        const over = el.getBoundingClientRect().right - right;
        if (over > 0.5) out.push([`${el.tagName}.${el.getAttribute("class")}`, Math.round(over)]);
      }
      return out;
    },
  };
})();
"""


def _measure(page: Any, what: str, selector: str, *args: Any) -> Any:
    """``nwMeasure[what](element, ...)`` for the first element matching ``selector``."""
    page.evaluate("(js) => { if (!window.nwMeasure) eval(js); }", _MEASURE)
    return page.locator(selector).first.evaluate(
        f"(el, args) => window.nwMeasure.{what}(el, ...args)", list(args)
    )


def _measure_img(page: Any, what: str, img: Any) -> Any:
    """``nwMeasure[what]`` of the SVG an ``<img>`` shows, through a copy laid over it."""
    page.evaluate("(js) => { if (!window.nwMeasure) eval(js); }", _MEASURE)
    return img.evaluate(
        f"""img => {{ const box = window.nwMeasure.overlay(img);
            try {{ return window.nwMeasure.{what}(box, img); }} finally {{ box.remove(); }} }}"""
    )


def _set_theme(page: Any, theme: str, light: bool) -> None:
    page.evaluate("(theme) => jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
    page.wait_for_selector(
        f"body[data-jp-theme-light='{str(light).lower()}']", state="attached", timeout=15_000
    )
    page.wait_for_timeout(400)  # the theme's stylesheet applies


def test_the_monitor_renders_takes_answers_and_shows_the_finished_run(
    lab: Lab, browser: Any
) -> None:
    from playwright.sync_api import expect

    _write_notebook(lab.root / NOTEBOOK, DEFINE, RUN)
    with _open(browser, lab, NOTEBOOK) as page:
        _run_all(page)
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
        # the fan-out in the timeline: three drafts at once
        expect(monitor.locator(".nwm-timeline")).to_contain_text("draft x3")
        expect(monitor.locator(".nwm-timeline")).to_contain_text("at most 3 at once")
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
        # the finished run's graph (its caption says so), then the picture
        expect(monitor.locator(".nwm-graph svg")).to_contain_text("done", timeout=10_000)
        monitor.locator(".nwm-graph").scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # let the last graph finish painting for the picture
        monitor.screenshot(path=str(ARTIFACTS / "monitor.png"))
        # the whole graph shows at a readable size, and the first view still fits a
        # 1,150 px high screen
        svg, frame = _box(monitor.locator(".nwm-svg svg")), _box(monitor.locator(".nwm-svg"))
        assert svg["height"] <= frame["height"] + 1, (svg, frame)
        assert _box(monitor)["height"] <= 1150, _box(monitor)

        # the log folds away under its title, and back
        fold = monitor.locator(".nwm-fold-log")
        fold.click()
        expect(monitor.locator(".nwm-logbox")).to_be_hidden()
        fold.click()
        expect(monitor.locator(".nwm-logbox")).to_be_visible()

        stacked = {}
        for width in (900, 700):
            page.set_viewport_size({"width": width, "height": 1100})
            page.wait_for_timeout(400)
            monitor.screenshot(path=str(ARTIFACTS / f"monitor-{width}.png"))
            graph, store = _box(monitor.locator(".nwm-graph")), _box(monitor.locator(".nwm-store"))
            inner = _box(monitor)["width"] - 26  # its padding and border
            head = _box(monitor.locator(".nwm-header"))
            assert head["width"] > inner / 2 and graph["y"] >= head["y"] + head["height"] - 1
            fold = _box(monitor.locator(".nwm-fold-log"))
            title = monitor.locator(".nwm-fold-log").evaluate(
                "b => { const r = document.createRange(); r.selectNodeContents(b);"
                " return r.getBoundingClientRect().left; }"
            )
            assert title - fold["x"] < 20, (title, fold)  # section titles sit at the left
            stacked[width] = store["y"] >= graph["y"] + graph["height"] - 1
            if stacked[width]:  # only when the store would get less than 360 px beside it
                assert graph["width"] + 360 > inner, (graph, store, inner)
            else:  # side by side, the store not squeezed
                assert store["x"] >= graph["x"] + graph["width"] - 1, (graph, store)
                assert store["width"] >= 359, store
            # a log line's summary wraps in its own column, right of its kind, not under it
            under = monitor.locator(".nwm-logbox").evaluate(
                "box => [...box.querySelectorAll('.m')].filter(m => m.getBoundingClientRect()"
                ".left <= m.previousElementSibling.getBoundingClientRect().right).length"
            )
            assert under == 0, f"{under} log summaries moved under their line at {width} px"
            # no store key or type breaks inside a word: each stays on one line
            for cell in monitor.locator(".nwm-store td.key, .nwm-store td.type").all():
                assert _box(cell)["height"] < 30, cell.inner_text()
        assert stacked == {900: False, 700: True}, stacked

        page.set_viewport_size({"width": 1400, "height": 1100})
        _set_theme(page, "JupyterLab Dark", light=False)
        monitor.screenshot(path=str(ARTIFACTS / "monitor-dark.png"))
        _set_theme(page, "JupyterLab Light", light=True)


def test_a_notebook_opened_fresh_shows_its_graphs_and_saved_monitor(lab: Lab, browser: Any) -> None:
    """Not run, not trusted: JupyterLab renders no SVG output and no widget state then."""
    from playwright.sync_api import expect

    for name in ("01_quickstart.ipynb", "03_watching_a_run.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, lab.root / name)
    with _open(browser, lab, "01_quickstart.ipynb") as page:
        graph = page.locator(".jp-OutputArea-output img[src^='data:image/svg+xml']").first
        expect(graph).to_be_visible(timeout=15_000)
        assert graph.evaluate("img => img.naturalWidth") > 100  # decoded and drawn
        assert page.locator(".jp-OutputArea-output:has-text('<WorkflowGraph of')").count() == 0
        graph.scroll_into_view_if_needed()
        graph.screenshot(path=str(ARTIFACTS / "fresh-graph.png"))
    with _open(browser, lab, "03_watching_a_run.ipynb") as page:
        saved = page.locator(".jp-OutputArea-output:has(.nw-run-monitor), .nwm").first
        expect(saved).to_be_visible(timeout=15_000)
        saved.scroll_into_view_if_needed()
        saved.screenshot(path=str(ARTIFACTS / "fresh-monitor.png"))
        shown = page.locator(".nw-run-monitor img[src^='data:image/svg+xml'], .nwm-graph svg").first
        expect(shown).to_be_visible(timeout=15_000)


BROWSE = """
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.widgets import RunBrowser

class Part(Event):
    n: int

class Parts(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Part | None:
        await ctx.store.set("label", ev.label)
        for n in range(3):
            ctx.send_event(Part(n=n))

    @step(num_workers=3)
    async def work(self, ctx: Context, ev: Part) -> StopEvent | None:
        await asyncio.sleep(0.05)
        async with ctx.store.edit_state() as state:
            state["done"] = state.get("done", 0) + 1
            finished = state["done"] == 3
        return StopEvent(result="all parts") if finished else None

store = MemoryStore()
for run_id in ("alpha", "beta"):
    await Parts().run(run_id=run_id, label=run_id, checkpoint=store)
await Parts().fork("beta", at=1, store_edits={"label": "gamma"}, store=store)
RunBrowser(store)
"""


def test_the_run_browser_is_clicked_through(lab: Lab, browser: Any) -> None:
    from playwright.sync_api import expect

    _write_notebook(
        lab.root / "browse.ipynb", "import asyncio\nfrom notebook_workflows import *", BROWSE
    )
    with _open(browser, lab, "browse.ipynb") as page:
        _run_all(page)
        runs = page.locator(".nwb .nwb-runs select")
        expect(runs.locator("option")).to_have_count(3, timeout=30_000)
        _look_at_the_run_browser(page, runs)
        labels = runs.locator("option").all_inner_texts()
        runs.select_option(index=next(i for i, t in enumerate(labels) if t.startswith("alpha")))
        info = page.locator(".nwb .widget-html").filter(has_text="snapshots").first
        expect(info).to_contain_text("run alpha")
        graph = page.locator(".nwb-graph svg")
        expect(graph).to_be_visible()
        snapshot = page.locator(".nwb .widget-html").filter(has_text="#").first
        last = snapshot.inner_text()
        handle = page.locator(".nwb-slider .noUi-handle")
        handle.focus()
        handle.press("Home")
        handle.press("ArrowRight")
        expect(snapshot).to_contain_text("after step 'split'", timeout=10_000)
        assert snapshot.inner_text() != last
        expect(page.locator(".nwb-store")).to_contain_text("label")
        expect(page.locator(".nwb-store")).not_to_contain_text("done")
        page.locator(".nwb").screenshot(path=str(ARTIFACTS / "run-browser.png"))
        page.locator(".nwb button:has-text('Fork at this snapshot')").click()
        expect(page.locator(".nwb")).to_contain_text("Parts().resume('alpha', store=store, at=1)")
        # an edit typed into the browser's form: without a workflow instance, the line to run
        form = page.locator(".nwb .nwf")
        form.locator(".nwf-key input").press_sequentially("label", delay=30)
        form.locator(".nwf-key input").press("Tab")
        form.locator(".nwf-value input").press_sequentially('"gamma"', delay=30)
        form.locator("button.nwf-fork").click()
        expect(form.locator(".nwf-message")).to_contain_text(
            "Parts().fork('alpha', at=1, store_edits={'label': 'gamma'}, store=store)"
        )


def _look_at_the_run_browser(page: Any, runs: Any) -> None:
    """The fork's graph draws the steps before its fork point as run; at 900 px with the file
    browser open nothing sticks out and each run's line fits; every text reads at 4.5:1 or
    more in both themes."""
    from playwright.sync_api import expect

    labels = [" ".join(t.split()) for t in runs.locator("option").all_inner_texts()]
    forks = [i for i, t in enumerate(labels) if "← beta #1" in t]
    assert len(forks) == 1, labels
    runs.select_option(index=forks[0])
    graph = page.locator(".nwb-graph svg")
    expect(graph).to_contain_text("snapshot", timeout=10_000)
    split = page.locator(".nwb-graph g.node", has=page.locator("title", has_text="step:split"))
    expect(split).to_have_count(1)
    assert split.locator("[stroke-dasharray]").count() == 0  # it ran, before the fork
    page.set_viewport_size({"width": 900, "height": 1100})
    page.evaluate("() => jupyterapp.shell.activateById('filebrowser')")
    page.wait_for_timeout(600)
    page.locator(".nwb").screenshot(path=str(ARTIFACTS / "run-browser-900-files.png"))
    assert _measure(page, "sticksOut", ".nwb") == []
    widest, room = runs.evaluate(
        """select => { const c = document.createElement("canvas").getContext("2d");
            const s = getComputedStyle(select); c.font = `${s.fontSize} ${s.fontFamily}`;
            const pad = parseFloat(s.paddingLeft) + parseFloat(s.paddingRight) + 8;
            return [Math.max(...[...select.options].map(o => c.measureText(o.text).width)),
                    select.clientWidth - pad]; }"""
    )
    assert widest <= room, f"a run's line is {widest:.0f} px in a list {room:.0f} px wide"
    for theme, light in (("JupyterLab Dark", False), ("JupyterLab Light", True)):
        _set_theme(page, theme, light)
        name = "light" if light else "dark"
        page.locator(".nwb").screenshot(path=str(ARTIFACTS / f"run-browser-{name}.png"))
        assert _measure(page, "lowContrast", ".nwb") == [], name
    page.evaluate("() => jupyterapp.shell.collapseLeft()")
    page.set_viewport_size({"width": 1400, "height": 1100})


INTERRUPTED = '''
import asyncio
from notebook_workflows import *
from notebook_workflows.checkpoint import MemoryStore

class Ready(Event):
    pass

class Slow(Workflow):
    """Keeps a pause in its store, then sleeps that long."""

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Ready:
        await ctx.store.set("pause", ev.pause)
        return Ready()

    @step
    async def nap(self, ctx: Context, ev: Ready) -> StopEvent:
        pause = await ctx.store.get("pause")
        await asyncio.sleep(pause)
        return StopEvent(result=f"slept {pause} s")

store = MemoryStore()
'''

RUN_SLOW = """
handler = Slow(checkpoint=store).run(run_id="slow-1", pause=600)
display(handler.monitor())
await handler
"""


def test_an_interrupted_run_shows_its_resume_line_and_is_edited_and_forked(
    lab: Lab, browser: Any
) -> None:
    """A kernel interrupt of a checkpointed run (JupyterLab's own command): the cell's error
    says how to resume it; then its monitor's "edit and fork" form, clicked and typed into,
    forks it with a shorter pause, and the fork's monitor shows the new value at work."""
    from playwright.sync_api import expect

    _write_notebook(lab.root / "interrupt.ipynb", INTERRUPTED, RUN_SLOW)
    with _open(browser, lab, "interrupt.ipynb") as page:
        _run_all(page)
        monitor = page.locator(".nwm").first
        expect(monitor.locator(".nwm-header")).to_contain_text("running (nap)", timeout=30_000)
        page.evaluate("() => jupyterapp.commands.execute('kernelmenu:interrupt')")
        error = page.locator(".jp-OutputArea-output:not(:has(.nwm))").filter(has_text="Error")
        expect(error.last).to_contain_text(
            "await Slow().resume('slow-1', store=store)", timeout=15_000
        )
        expect(error.last).to_contain_text("run 'slow-1' of Slow was cancelled (1 step done)")
        header = monitor.locator(".nwm-header")
        expect(header.locator(".nwm-pill")).to_have_text("cancelled", timeout=10_000)
        expect(header).to_contain_text("await Slow().resume('slow-1', store=store)")
        page.locator(".jp-Cell").last.screenshot(path=str(ARTIFACTS / "interrupted.png"))

        fold = monitor.locator(".nwm-fold-fork")
        expect(fold).to_be_visible(timeout=10_000)
        fold.click()
        form = monitor.locator(".nwf").first
        expect(form.locator(".nwf-at select")).to_contain_text("run ended (cancelled)")
        key = form.locator(".nwf-key input")
        key.press_sequentially("pause", delay=30)
        key.press("Tab")
        value = form.locator(".nwf-value input")
        expect(form.locator(".nwf-now")).to_have_text("now 600", timeout=10_000)
        value.press_sequentially("0", delay=30)
        button, row = _box(form.locator("button.nwf-fork")), _box(form.locator(".nwf-row"))
        assert button["x"] + button["width"] <= row["x"] + row["width"], (button, row)
        form.locator("button.nwf-fork").click()
        message = form.locator(".nwf-message")
        expect(message).to_contain_text("as run slow-", timeout=15_000)
        fork_id = re.search(r"as run (slow-[0-9a-f]+)", message.inner_text()).group(1)
        expect(message).to_contain_text(f"await Slow().resume('{fork_id}', store=store)")
        forked = form.locator(".nwf-forks .nwm")
        expect(forked.locator(".nwm-pill")).to_have_text("done", timeout=20_000)
        expect(forked.locator(".nwm-header")).to_contain_text("result: 'slept 0 s'")
        expect(forked.locator(".nwm-store")).to_contain_text("pause")
        forked.locator(".nwm-graph svg").wait_for(timeout=10_000)
        page.wait_for_timeout(300)
        monitor.screenshot(path=str(ARTIFACTS / "edit-and-fork.png"))
        _set_theme(page, "JupyterLab Dark", light=False)
        form.screenshot(path=str(ARTIFACTS / "edit-and-fork-dark.png"))
        _set_theme(page, "JupyterLab Light", light=True)


LOOK = '''
import asyncio
from notebook_workflows import *
from notebook_workflows.checkpoint import MemoryStore

class Item(Event):
    n: int

class Scored(Event):
    n: int
    score: float

class Scores(Workflow):
    """Scores sixteen items with four workers, then ranks them."""

    @step
    async def plan(self, ctx: Context, ev: StartEvent) -> Item | None:
        await ctx.store.set("items", 16)
        for n in range(16):
            ctx.send_event(Item(n=n))

    @step(num_workers=4)
    async def score(self, ev: Item) -> Scored:
        await asyncio.sleep(0.05)
        return Scored(n=ev.n, score=ev.n / 16)

    @step
    async def rank(self, ctx: Context, ev: Scored) -> StopEvent | None:
        got = ctx.collect_events(ev, [Scored] * 16)
        if got is None:
            return None
        best = max(got, key=lambda s: s.score)
        await ctx.store.set("best", best.n)
        return StopEvent(result=f"best item: {best.n}\\nscored: {len(got)}")
'''

LOOK_RUN = """
handler = Scores().run(run_id="look-1")
display(handler.monitor())
await handler
"""

LOOK_RERUN = """
class Fetched(Event):
    text: str

class Parsed(Event):
    words: list[str]

class Cleaned(Event):
    words: list[str]

class Counted(Event):
    counts: dict[str, int]

class WordReport(Workflow):
    @step
    async def fetch(self, ctx: Context, ev: StartEvent) -> Fetched:
        await ctx.store.set("source", ev.url)
        return Fetched(text="the cat and the dog and the bird")

    @step
    async def parse(self, ev: Fetched) -> Parsed:
        return Parsed(words=ev.text.split())

    @step
    async def clean(self, ev: Parsed) -> Cleaned:
        return Cleaned(words=[w.lower() for w in ev.words])

    @step
    async def count(self, ev: Cleaned) -> Counted:
        return Counted(counts={w: ev.words.count(w) for w in ev.words})

    @step
    async def report(self, ev: Counted) -> StopEvent:
        return StopEvent(result=sorted(ev.counts.items())[:3])

store = MemoryStore()
first = WordReport(checkpoint=store).run(url="https://example.org/story")
await first
rerun = WordReport(checkpoint=store).rerun(first.run_id)
await rerun
rerun.draw(direction="LR")
"""


def test_graphs_and_texts_stay_readable_at_900_and_1400_px_in_both_themes(
    lab: Lab, browser: Any
) -> None:
    """Measured as drawn: the smallest text of the monitor's graph and of a long left-to-right
    rerun graph is 10 px or more at 1400 and 900 px, no arrowhead covers a node's text, nothing
    sticks out of the monitor, and every text reads at 4.5:1 or more in the light and the dark
    theme. The screenshots are kept: look at them."""
    from playwright.sync_api import expect

    _write_notebook(lab.root / "look.ipynb", LOOK, LOOK_RUN, LOOK_RERUN)
    with _open(browser, lab, "look.ipynb") as page:
        _run_all(page)
        monitor = page.locator(".nwm").first
        expect(monitor.locator(".nwm-pill")).to_have_text("done", timeout=30_000)
        expect(monitor.locator(".nwm-graph svg")).to_contain_text("done", timeout=10_000)
        # several calls of a step: their time is said to be a total
        expect(monitor.locator(".nwm-graph svg")).to_contain_text("16 runs")
        expect(monitor.locator(".nwm-graph svg")).to_contain_text("total")
        # a result of two lines shows them as two lines, not as \n
        header = monitor.locator(".nwm-header")
        expect(header).not_to_contain_text("\\n")
        rerun = page.locator(".jp-Cell").last.locator("img[src^='data:image/svg+xml']")
        expect(rerun).to_be_visible(timeout=30_000)
        for width in (1400, 900):
            page.set_viewport_size({"width": width, "height": 1100})
            page.wait_for_timeout(400)
            px, text = _measure(page, "smallestText", ".nwm-graph")
            assert px >= 10, f"monitor graph text {text!r} is {px:.1f} px at {width} px"
            assert _measure(page, "arrowsOnText", ".nwm-graph") == []
            px, text = _measure_img(page, "smallestText", rerun)
            assert px >= 10, f"rerun graph text {text!r} is {px:.1f} px at {width} px"
            assert _measure_img(page, "arrowsOnText", rerun) == []
            assert _measure(page, "sticksOut", ".nwm") == []
            assert _measure(page, "sticksOut", ".jp-Cell:last-child .jp-OutputArea") == []
            monitor.screenshot(path=str(ARTIFACTS / f"look-monitor-{width}.png"))
            rerun.scroll_into_view_if_needed()
            page.locator(".jp-Cell").last.locator(".jp-OutputArea").screenshot(
                path=str(ARTIFACTS / f"look-rerun-{width}.png")
            )
        for theme, light in (("JupyterLab Dark", False), ("JupyterLab Light", True)):
            _set_theme(page, theme, light)
            name = "light" if light else "dark"
            monitor.scroll_into_view_if_needed()
            monitor.screenshot(path=str(ARTIFACTS / f"look-monitor-{name}.png"))
            assert _measure(page, "lowContrast", ".nwm") == [], name
            assert _measure_img(page, "lowContrast", rerun) == [], name
