"""The monitor's look: one stylesheet, shared by every monitor in the kernel.

JupyterLab's theme variables (light and dark), with fallbacks elsewhere. The parts are the
children of one box, laid out by class with a wrapping flex row; parts share one ``Layout``
model, so sizes and visibility live here. The graph takes its drawing's width and the store the
rest, at least 360 px: where that does not fit (a narrow window, or a wide graph) the store
moves under the graph instead of being squeezed. The monitor is a size container: below 800 px
wide, log lines wrap instead of cutting their summaries. Store keys and types never break inside
a word; a value too long for its column scrolls the table sideways. The first view fits one
screen: the graph is scaled to ``GRAPH_HEIGHT``, the store, timeline, log and output scroll
within a bounded height (the log kept at its newest line), and the timeline, log, output and the
edit-and-fork form fold away under their titles.
"""

from __future__ import annotations

HIDDEN = "nwm-hidden"
FOLDED = "nwm-folded"

STYLE = """<style>
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
.nwm > .nwm-graph { order: 6; flex: 0 1 auto; margin-top: 10px; padding-right: 24px;
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
  background: var(--jp-layout-color2, #f6f8fa); padding: 0 4px; border-radius: 3px; }
.nwm-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; font-size: 14px; }
.nwm-name { font-weight: 600; font-size: 15px; }
.nwm-pill { color: #fff; border-radius: 999px; padding: 0 10px; font-weight: 600;
  font-size: 12px; line-height: 20px; }
.nwm-dim { color: var(--jp-ui-font-color2, #59636e); }
.nwm-title { font-size: 11px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--jp-ui-font-color2, #59636e); margin: 2px 0 3px; font-weight: 600; }
.nwm > .nwm-fold { margin-top: 10px; height: auto; line-height: 18px; padding: 0;
  background: none; border: none; box-shadow: none; text-align: left !important;
  font-size: 11px; text-transform: uppercase; letter-spacing: .05em; font-weight: 600;
  color: var(--jp-ui-font-color2, #59636e); cursor: pointer; }
.nwm > .nwm-fold:hover { color: var(--jp-ui-font-color1, #1f2328); box-shadow: none; }
.nwm > .nwm-fold:focus, .nwm > .nwm-fold:focus-visible, .nwm > .nwm-fold:active {
  outline: none !important; box-shadow: none !important; background: none !important; }
.nwm-progress { color: var(--jp-ui-font-color2, #59636e); margin-top: 2px; }
.nwm-progress b { color: var(--jp-ui-font-color1, #1f2328); }
.nwm-progress b.running { color: #e8590c; }
.nwm-progress b.waiting { color: #b7791f; }
.nwm-progress b.replayed { color: #7d8ea6; }
.nwm-failed { color: #c53030; margin-top: 2px; }
.nwm-failed pre { white-space: pre-wrap; font-size: 11.5px; max-height: 18em; overflow: auto;
  color: var(--jp-ui-font-color1, #1f2328); }
.nwm-done { color: #2f855a; margin-top: 2px; }
.nwm-done summary { cursor: pointer; }
.nwm-done pre { color: var(--jp-ui-font-color1, #1f2328);
  background: var(--jp-layout-color2, #f6f8fa); border-radius: 4px; padding: 6px 8px; }
.nwm-cancelled { color: #718096; margin-top: 2px; }
.nwm-ask { align-items: center; gap: 8px; padding: 6px 10px; margin: 0;
  border-left: 4px solid #c48a0f; background: rgba(255, 214, 102, .16); border-radius: 4px; }
.nwm-ask .widget-text { flex: 1 1 auto; width: auto; margin: 0; }
.nwm-ask .jupyter-button { width: auto; margin: 0; }
.nwm-question { flex: 0 1 auto; }
.nwm-prompt { font-weight: 600; }
.nwm-svg { overflow: auto; max-height: 420px; }
.nwm-svg svg { max-width: 100%; height: auto; }
.nwm-fallback pre { max-height: 16em; overflow: auto; font-size: 11px; }
.nwm-table { overflow: auto; max-height: 400px; }
.nwm-store table { border-collapse: collapse; width: 100%; font-size: 12px; }
.nwm-store th { text-align: left; font-weight: 600; color: var(--jp-ui-font-color2, #59636e);
  border-bottom: 1px solid var(--jp-border-color2, #d0d7de); padding: 2px 6px;
  white-space: nowrap; }
.nwm-store td { text-align: left; padding: 2px 6px; vertical-align: top;
  border-bottom: 1px solid var(--jp-border-color3, #eaeef2); word-break: normal;
  overflow-wrap: normal; }
.nwm-store td.key, .nwm-store td.type { white-space: nowrap; }
.nwm-store td.value { min-width: 14ch; }
.nwm-store td.mark { color: #c48a0f; width: 1em; padding-right: 0; }
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
  background: var(--jp-layout-color2, #f6f8fa); }
.nwm-log summary:hover { background: var(--jp-layout-color3, #eaeef2); }
.nwm-log .t { flex: none; width: 8ch; text-align: right; color: var(--jp-ui-font-color2, #59636e); }
.nwm-log .s { flex: none; width: 12ch; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .k { flex: none; width: 18ch; color: var(--jp-ui-font-color2, #59636e); }
.nwm-log .m { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .failed .k, .nwm-log .failed .m { color: #c53030; }
.nwm-log .retry .k { color: #b7791f; }
.nwm-log .question .k, .nwm-log .answer .k { color: #b7791f; font-weight: 600; }
.nwm-log .stop .k { color: #6a55b0; font-weight: 600; }
.nwm-log .event .k { color: #1d6fd1; }
.nwm-log .status .m, .nwm-log .gap .m { font-style: italic;
  color: var(--jp-ui-font-color2, #59636e); }
.nwm-log pre { margin: 2px 8px 6px 4ch; padding: 6px 8px; white-space: pre-wrap;
  background: var(--jp-layout-color2, #f6f8fa); border-radius: 4px; font-size: 11.5px;
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
</style>"""
