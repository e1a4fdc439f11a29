"""Transitional: the old home of the driver, kept only for the notebook face until it reads
the public view (``handler.view()``). The driver is ``runtime/driver.py``."""

from __future__ import annotations

from typing import Any

from .runtime.driver import END as _END
from .runtime.driver import Driver
from .runtime.view import current_invocation_var

__all__ = ["_END", "Driver", "current_invocation"]


def current_invocation() -> Any:
    return current_invocation_var.get()
