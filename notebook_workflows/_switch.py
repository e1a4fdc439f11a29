"""``install_as_workflows()``: this engine answers ``import workflows``.

LlamaIndex's agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) and much user code
import the ``workflows`` package of llama-index-workflows. After the switch, ``workflows`` and
each of its modules that this engine provides resolve to the modules of
``notebook_workflows._as_workflows``, which lay this engine's classes out under the peer's
module paths: ``workflows.Workflow`` *is* ``notebook_workflows.Workflow``. The installed
llama-index-workflows package (llama-index-core depends on it) stays on disk, unused.

This is the pattern of ``pymysql.install_as_MySQLdb()``: call it first, before anything
imports ``workflows`` or ``llama_index``; a module that already holds the peer's classes cannot
be pointed at others afterwards.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

from .errors import WorkflowConfigurationError

__all__ = ["install_as_workflows"]

_PEER = "workflows"
_HERE = __name__.rpartition(".")[0] + "._as_workflows"


class _AliasLoader(importlib.abc.Loader):
    """Hands out the module ``real`` under the peer's name: one module object, two names."""

    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.real)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: ``create_module`` returned the imported module."""


class _WorkflowsFinder(importlib.abc.MetaPathFinder):
    """Finds ``workflows`` and ``workflows.X`` among this engine's modules, before the
    installed llama-index-workflows is looked at. A module the peer has and this engine does
    not (``workflows.server``) is not found at all (``ModuleNotFoundError``, and ``None`` for
    ``importlib.util.find_spec``): no half of the peer is mixed in."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _PEER and not fullname.startswith(_PEER + "."):
            return None
        real = _HERE + fullname[len(_PEER) :]
        spec = importlib.util.find_spec(real)
        if spec is None:  # nor will the path finder, which looks only in our package's path
            return None
        is_package = spec.submodule_search_locations is not None
        alias = importlib.util.spec_from_loader(fullname, _AliasLoader(real), is_package=is_package)
        if alias is not None and is_package:
            alias.submodule_search_locations = list(spec.submodule_search_locations or ())
        return alias


def _installed() -> bool:
    return any(isinstance(finder, _WorkflowsFinder) for finder in sys.meta_path)


def install_as_workflows() -> None:
    """Make ``import workflows`` (and ``workflows.context``, ``workflows.events``, ...) give
    this engine, so LlamaIndex's agents and code written for llama-index-workflows run on it::

        import notebook_workflows
        notebook_workflows.install_as_workflows()   # first: before any llama_index import

        from llama_index.core.agent.workflow import FunctionAgent

    Called again, it does nothing. Called after ``workflows`` was imported (by your code or by
    ``llama_index``), it raises ``WorkflowConfigurationError``: those modules already hold the
    peer's classes. Call it at the top of the program, or in a notebook's first cell after a
    kernel restart.
    """
    if _installed():
        return
    loaded = sorted(
        name
        for name in sys.modules
        if name == _PEER or name.startswith((_PEER + ".", "llama_index.core"))
    )
    if loaded:
        shown = ", ".join(loaded[:3]) + (f" and {len(loaded) - 3} more" if len(loaded) > 3 else "")
        raise WorkflowConfigurationError(
            f"install_as_workflows() came too late: {shown} already imported the "
            f"llama-index-workflows package, whose classes cannot be swapped afterwards. Call "
            f"notebook_workflows.install_as_workflows() before anything imports `workflows` "
            f"or `llama_index`: at the top of the program, or in a notebook's first cell "
            f"after restarting the kernel."
        )
    sys.meta_path.insert(0, _WorkflowsFinder())
