"""The monitor's look: one stylesheet, shared by every monitor in the kernel.

Colours come from a small palette of CSS variables (``--nw-*``) with a light and a dark set,
the dark one chosen by JupyterLab's dark theme (``body[data-jp-theme-light="false"]``); each
text colour reads at a contrast of 4.5:1 or more on the monitor's background and on its striped
rows in its theme (the graph's own colours are repainted by ``graph_text.dark_theme_css``).
Neutral text uses JupyterLab's font colours. The parts are the children of one box, laid out by
class with a wrapping flex row; parts share one ``Layout`` model, so sizes and visibility live
here. The graph takes its drawing's width (never squeezed: a drawing wider than the monitor
scrolls in its box) and the store the rest, at least 360 px: where that does not fit (a narrow
window, or a wide graph) the store moves under the graph instead of being squeezed. The monitor
is a size container: below 800 px wide, log lines wrap instead of cutting their summaries. Store
keys and types never break inside a word; a value too long for its column scrolls the table
sideways. The first view fits one screen: the graph is scaled towards ``GRAPH_HEIGHT`` (not
below a readable size), the store, timeline, log and output scroll within a bounded height (the
log kept at its newest line), and the timeline, log, output and the edit-and-fork form fold away
under their titles.
"""

from __future__ import annotations

from ..graph_text import dark_theme_css

HIDDEN = "nwm-hidden"
FOLDED = "nwm-folded"

# The text colours of the monitor and the run browser, light and dark (see the docstring).
PALETTE = """
.nwm, .nwb { --nw-dim: #57606a; --nw-green: #116329; --nw-red: #b42318; --nw-orange: #953800;
  --nw-amber: #7d4e00; --nw-purple: #6a55b0; --nw-blue: #0550ae; --nw-stripe: rgba(0,0,0,.04);
  --nw-code: rgba(0,0,0,.06); }
body[data-jp-theme-light="false"] .nwm, body[data-jp-theme-light="false"] .nwb {
  --nw-dim: #a8b1bb; --nw-green: #5cc98a; --nw-red: #ff7b72; --nw-orange: #ffa657;
  --nw-amber: #e3b341; --nw-purple: #b7a4f5; --nw-blue: #79b8ff;
  --nw-stripe: rgba(255,255,255,.05); --nw-code: rgba(255,255,255,.09); }
"""

_RULES = """
.nwm { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #1f2328); border: 1px solid var(--jp-border-color2, #d0d7de);
  border-radius: 8px; padding: 8px 12px 10px; max-width: 1100px; box-sizing: border-box;
  container: nwm / inline-size; text-align: left;
  display: flex !important; flex-flow: row wrap; align-items: flex-start; gap: 0; }
.nwm > .nwm-style, .nwm .nwm-hidden, .nwm > .nwm-folded { display: none !important; }
.nwm::before { content: ""; order: 4; flex: 0 0 100%; height: 0; }  /* ends the header's line */
.nwm > * { flex: 1 1 100%; min-width: 0; margin: 0; }
.nwm > .nwm-header { order: 1; flex: 1 1 auto; }
.nwm > .nwm-step { order: 2; flex: none; margin: 0 0 0 6px; width: auto; }
.nwm > .nwm-cancel { order: 3; flex: none; margin: 0 0 0 6px; width: auto; }
.nwm > .nwm-ask { order: 5; margin-top: 8px; }
.nwm > .nwm-graph { order: 6; flex: 0 0 auto; margin-top: 10px; padding-right: 24px;
  max-width: 100%; box-sizing: border-box; }
.nwm > .nwm-store { order: 7; flex: 1 1 360px; margin-top: 10px; }
.nwm > .nwm-fold-timeline { order: 8; }
.nwm > .nwm-timeline { order: 9; }
.nwm > .nwm-fold-log { order: 10; }
.nwm > .nwm-logbox { order: 11; }
.nwm > .nwm-fold-output { order: 12; }
.nwm > .nwm-output { order: 13; }
.nwm > .nwm-fold-fork { order: 14; }
.nwm > .nwm-fork { order: 15; margin-top: 4px; }
.nwm .widget-html, .nwm .widget-html-content { line-height: 1.45; margin: 0; height: auto;
  min-width: 0; }
.nwm code { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  background: var(--nw-code); padding: 0 4px; border-radius: 3px; }
.nwm-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; font-size: 14px; }
.nwm-name { font-weight: 600; font-size: 15px; }
.nwm-pill { color: #fff; border-radius: 999px; padding: 0 10px; font-weight: 600;
  font-size: 12px; line-height: 20px; }
.nwm-dim { color: var(--nw-dim); }
.nwm-title { font-size: 11px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--nw-dim); margin: 2px 0 3px; font-weight: 600; }
.nwm > .nwm-fold { margin-top: 10px; height: auto; line-height: 18px; padding: 0;
  background: none; border: none; box-shadow: none; text-align: left !important;
  font-size: 11px; text-transform: uppercase; letter-spacing: .05em; font-weight: 600;
  color: var(--nw-dim); cursor: pointer; }
.nwm > .nwm-fold:hover { color: var(--jp-ui-font-color1, #1f2328); box-shadow: none; }
.nwm > .nwm-fold:focus, .nwm > .nwm-fold:focus-visible, .nwm > .nwm-fold:active {
  outline: none !important; box-shadow: none !important; background: none !important; }
.nwm-progress { color: var(--nw-dim); margin-top: 2px; }
.nwm-progress b { color: var(--jp-ui-font-color1, #1f2328); }
.nwm-progress b.running { color: var(--nw-orange); }
.nwm-progress .waiting { color: var(--nw-amber); }
.nwm-progress b.replayed { color: var(--nw-dim); }
.nwm-failed { color: var(--nw-red); margin-top: 2px; }
.nwm-failed pre { white-space: pre-wrap; font-size: 11.5px; max-height: 18em; overflow: auto;
  color: var(--jp-ui-font-color1, #1f2328); }
.nwm-done { color: var(--nw-green); margin-top: 2px; }
.nwm-done summary { cursor: pointer; }
.nwm-done pre { color: var(--jp-ui-font-color1, #1f2328);
  background: var(--nw-code); border-radius: 4px; padding: 6px 8px; }
.nwm-cancelled { color: var(--nw-dim); margin-top: 2px; }
.nwm-ask { align-items: center; gap: 8px; padding: 6px 10px; margin: 0;
  border-left: 4px solid #c48a0f; background: rgba(255, 214, 102, .16); border-radius: 4px; }
.nwm-ask .widget-text { flex: 1 1 auto; width: auto; margin: 0; }
.nwm-ask .jupyter-button { width: auto; margin: 0; }
.nwm-question { flex: 0 1 auto; }
.nwm-prompt { font-weight: 600; }
.nwm-svg { overflow: auto; max-height: 620px; max-width: 100%; }
.nwm-svg svg { display: block; max-width: 100%; height: auto; }
.nwm-fallback pre { max-height: 16em; overflow: auto; font-size: 11px; }
.nwm-table { overflow: auto; max-height: 400px; }
.nwm-store table { border-collapse: collapse; width: 100%; font-size: 12px; }
.nwm-store th { text-align: left; font-weight: 600; color: var(--nw-dim);
  border-bottom: 1px solid var(--jp-border-color2, #d0d7de); padding: 2px 6px;
  white-space: nowrap; }
.nwm-store td { text-align: left; padding: 2px 6px; vertical-align: top;
  border-bottom: 1px solid var(--jp-border-color3, #eaeef2); word-break: normal;
  overflow-wrap: normal; }
.nwm-store td.key, .nwm-store td.type { white-space: nowrap; }
.nwm-store td.value { min-width: 14ch; }
.nwm-store td.mark { color: var(--nw-amber); width: 1em; padding-right: 0; }
.nwm-store tr.changed td { background: rgba(255, 196, 0, .14); }
.nwm-timeline { max-height: 180px; overflow-y: auto; }
.nwm-log { display: flex; flex-direction: column-reverse; max-height: 190px; overflow-y: auto;
  border: 1px solid var(--jp-border-color2, #d0d7de); border-radius: 6px; }
.nwm-log summary, .nwm-log > div > div { display: flex; gap: 10px; list-style: none;
  padding: 1px 8px; white-space: nowrap; font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; }
.nwm-log summary { cursor: pointer; }
.nwm-log summary::-webkit-details-marker { display: none; }
.nwm-log > div > :nth-child(even) > summary, .nwm-log > div > div:nth-child(even) {
  background: var(--nw-stripe); }
.nwm-log summary:hover { background: var(--nw-code); }
.nwm-log .t { flex: none; width: 8ch; text-align: right; color: var(--nw-dim); }
.nwm-log .s { flex: none; width: 12ch; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .k { flex: none; width: 18ch; color: var(--nw-dim); }
.nwm-log .m { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .failed .k, .nwm-log .failed .m { color: var(--nw-red); }
.nwm-log .retry .k { color: var(--nw-amber); }
.nwm-log .question .k, .nwm-log .answer .k { color: var(--nw-amber); font-weight: 600; }
.nwm-log .stop .k { color: var(--nw-purple); font-weight: 600; }
.nwm-log .event .k { color: var(--nw-blue); }
.nwm-log .status .m, .nwm-log .gap .m { font-style: italic; color: var(--nw-dim); }
.nwm-log pre { margin: 2px 8px 6px 4ch; padding: 6px 8px; white-space: pre-wrap;
  background: var(--nw-code); border-radius: 4px; font-size: 11.5px;
  max-height: 16em; overflow: auto; }
.nwm-output { border: 1px solid var(--jp-border-color2, #d0d7de); border-radius: 6px;
  padding: 2px 8px; max-height: 160px; overflow-y: auto; }
.nwm-output .jp-OutputArea-output pre { font-size: 12px; }
/* last, so that it wins over the log's wide-screen rules above: a narrow monitor wraps a log
   line's summary within its own column instead of cutting it or moving it under the line */
@container nwm (max-width: 800px) {
  .nwm-log summary, .nwm-log > div > div { flex-wrap: wrap; row-gap: 0; }
  .nwm-log .k { width: auto; }
  .nwm-log .m { flex: 1 1 26ch; white-space: normal; overflow-wrap: break-word; }
}
"""

STYLE = f"<style>{PALETTE}{_RULES}{dark_theme_css('.nwm-svg')}\n</style>"
