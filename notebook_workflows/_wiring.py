"""The layers built on the engine, plugged into the engine's ports (``_ports``).

The engine's doors into ``checkpoint/`` and into the notebook face go through ports the
engine owns, so that no import runs from the engine up. Something has to know both sides: the
package's public face, which re-exports from every layer anyway, calls ``plug_layers`` once.
Each layer is loaded when a door first needs it, so ``import notebook_workflows`` loads no
store, graph or widget code.
"""

from __future__ import annotations

from . import _ports


def _durable_layer() -> _ports.DurableLayer:
    from .checkpoint import _doors

    return _doors


def _notebook_face() -> _ports.NotebookFace:
    from .notebook import _doors

    return _doors


def plug_layers() -> None:
    _ports.plug_durable(_durable_layer)
    _ports.plug_notebook_face(_notebook_face)
