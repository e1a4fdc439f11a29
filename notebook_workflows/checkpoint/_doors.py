"""The durable layer's side of the engine's port (``_ports.DurableLayer``).

``Workflow.run(checkpoint=..., cache=...)``, ``resume``, ``fork``, ``rerun``, ``debug_step`` and
the handler's "how to resume" note come in here. The engine never imports ``checkpoint/``: it
asks the port, and the package's public face (``_wiring``) hands it this module.
"""

from __future__ import annotations

from .debug import debug_step
from .recorder import wrap
from .rerun import cache_table, rerun_run
from .resume import fork_run, resume_call, resume_run

__all__ = [
    "cache_table",
    "debug_step",
    "fork_run",
    "rerun_run",
    "resume_call",
    "resume_run",
    "wrap",
]
