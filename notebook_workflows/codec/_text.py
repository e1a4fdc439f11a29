"""JSON text: the strict reading side of the codec, for stores and tools that parse snapshots.

Design decisions
----------------
*pydantic-core parses, the standard library does not.* ``pydantic_core.from_json`` (Rust;
pydantic is already a dependency) reads a megabyte snapshot several times faster than
``json.loads``, stops at about 200 levels of nesting with an error instead of a
``RecursionError``, refuses lone surrogate escapes, and is told here to refuse ``NaN`` and
``Infinity``: what it accepts is strict JSON, the only thing the codec ever writes (writing is
``pydantic_core.to_json``, as ``checkpoint.base.dumps`` does). Integers of more than 4,300
digits are refused as well, which is what CPython allows; the codec writes such ints in hex.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from ..errors import ContextSerdeError


def parse_json(text: str | bytes, what: str = "the snapshot") -> Any:
    """The data in strict JSON ``text``, or ``ContextSerdeError`` saying where it is wrong."""
    try:
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise ContextSerdeError(f"{what} is not valid JSON: {exc}") from None
