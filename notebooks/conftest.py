"""How nbval compares the notebooks' outputs with the ones saved in them.

``make test`` runs every notebook here in a fresh kernel (``--nbval``, options in
``pyproject.toml``) and compares each cell's new outputs with its saved ones. The text a reader
relies on is compared: results, printed reports, store contents, step lists, the plain-text form
of handlers, monitors and run tables. What is layout, or differs from one run to the next by
nature, is left out here; ``sanitize.cfg`` masks the few varying values inside compared text
(clock times, generated run ids, a monitor's state while it was first shown).
"""

from __future__ import annotations

import pytest

NOT_COMPARED = (
    # handler and monitor cards, which show elapsed times, and the status line a run awaited
    # in a cell shows only when it takes longer than half a second (notebook/status.py)
    "text/html",
    "image/svg+xml",  # graph layout, which changes with the Graphviz version
    "application/vnd.jupyter.widget-view+json",  # widget model ids are random
    "stderr",  # warnings, whose text names this machine's paths
)


def pytest_collectstart(collector: pytest.Collector) -> None:
    if collector.path.suffix == ".ipynb":
        collector.skip_compare = (*collector.skip_compare, *NOT_COMPARED)
