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

*The garbage collector waits while a snapshot is loaded* (``gc_paused``). Loading a big state
makes tens of thousands of containers at once (the parsed text, then the decoded copy), and
every few hundred of them the collector runs; enough of them start full collections, which walk
the whole heap of the process, a notebook's data frames and all. None of those objects can be
garbage yet. Measured on a 1 MB state beside 300,000 other objects, ten reads (parse, decode,
first ``get``) in a row: 68 ms a read with the collector running, 39 ms with it paused, the
collections it deferred included; a single read right after a ``gc.collect()`` (what
``bench/bench_codec.py`` times) gains nothing, as the collector had little to do there. It is
paused only if it was running, and started again afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from pydantic_core import from_json

from ..errors import ContextSerdeError


def parse_json(text: str | bytes, what: str = "the snapshot") -> Any:
    """The data in strict JSON ``text``, or ``ContextSerdeError`` saying where it is wrong."""
    try:
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise ContextSerdeError(f"{what} is not valid JSON: {exc}") from None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (see the module docstring); a
    collector that was off stays off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
