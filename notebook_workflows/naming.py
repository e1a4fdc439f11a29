"""Qualified names of values, under llama-index-workflows' names for them
(``workflows.context.utils``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["get_qualified_name", "import_module_from_qualified_name"]


def get_qualified_name(value: Any) -> str:
    """``module.ClassName`` of ``value``'s class."""
    try:
        return f"{value.__module__}.{value.__class__.__name__}"
    except AttributeError as error:
        raise AttributeError(f"{value!r} has no module or class to name: {error}") from None


def import_module_from_qualified_name(qualified_name: str) -> Any:
    """The attribute named by ``module.attribute``, importing the module: call it only on
    names from your own code. This engine's snapshots never load classes this way."""
    module_name, dot, attribute = (qualified_name or "").rpartition(".")
    if not dot or not module_name:
        raise ValueError(f"a qualified name reads 'module.attribute', got {qualified_name!r}")
    try:
        module = import_module(module_name)
    except ImportError as error:
        raise ImportError(f"cannot import module {module_name!r}: {error}") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attribute!r}") from None
