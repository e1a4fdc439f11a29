"""Raw values: a stored value kept as the JSON text it was read from, parsed when it is used.

A checkpoint store writes a big store value (see ``checkpoint.texts``) as a separate stretch of
its record's text, so that loading a snapshot does not have to parse and check it: ``resume``
puts the text itself in the store as a ``RawJSON``, and the value is parsed by the first
``get`` that asks for it. A run that resumes with a megabyte of state and reads only part of it
never builds the rest; one that reads it pays one parse, instead of a parse at load time plus
the check-and-copy walk of ``decode``.

Design decisions
----------------
*A parse is the copy.* ``get`` must hand out a fresh value; parsing the text makes one, so the
text stays in the store (it is the value's encoded form, and immutable) and every ``get``
parses it again, which is faster than ``decode``'s walk over a parsed tree.

*Plain text needs no walk, and plainness is read from the text.* The strict parser already
refuses what ``decode`` refuses in plain JSON (lone surrogates, NaN, integers over 4,300
digits). A tag is found by scanning the text in C before parsing: a ``"$`` (a tag, or a string
starting with ``$``) or a ``\\u`` escape (which could spell a ``$`` key). Text with neither is
plain data, handed out as parsed; any other goes through ``decode`` as before. The scan errs on
the side of the walk: a string like ``"$5"`` only makes a value slower.

*One thing the parser lets through is kept from spreading.* A number too big for a float
(``1e400``, which the codec never writes: it tags infinities) parses as ``inf``. Handed to a
step, that is harmless (set again, it is tagged); but a parsed tree that stays in the store as
its encoded form would be written back as the non-JSON ``Infinity``. So ``parse_raw(...,
check=True)``, which makes such trees, checks them with ``decode``'s walk: that happens only
when something needs the encoded data itself (a view of the store, ``ctx.to_dict()``).

*Depth is limited by the parser.* pydantic-core's parser stops at ``_PARSER_DEPTH`` levels; the
text is parsed inside ``_PARSER_DEPTH - MAX_DEPTH`` list levels of our own, so the parser
refuses exactly what nests deeper than ``MAX_DEPTH`` (a test pins the parser's limit).
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from ..errors import ContextSerdeError
from ._decode import decode
from ._encode import MAX_DEPTH
from ._text import gc_paused

__all__ = ["RawJSON", "decode_raw", "parse_raw", "parsed_values"]

_PARSER_DEPTH = 201  # the most levels pydantic_core.from_json parses (tests/test_raw_values.py)
_WRAP = _PARSER_DEPTH - MAX_DEPTH
_OPEN = "[" * _WRAP
_CLOSE = "]" * _WRAP


class RawJSON:
    """A store value's encoded form as JSON text, read from ``where`` (for error messages)."""

    __slots__ = ("text", "where")

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def __repr__(self) -> str:
        return f"<RawJSON of {len(self.text):,} characters from {self.where}>"

    def __reduce__(self) -> tuple[Any, ...]:  # shipped as it is to a step in another process
        return (RawJSON, (self.text, self.where))


def parse_raw(raw: RawJSON, path: str, check: bool = False) -> Any:
    """The encoded data ``raw`` holds (tags still as tags), as a new tree; ``ContextSerdeError``
    naming ``path`` and where the text came from if it is not JSON or nests too deep, or, with
    ``check``, if ``decode`` would refuse it (see above)."""
    try:
        with gc_paused():  # many new containers at once: see ``_text``
            data = from_json(_OPEN + raw.text + _CLOSE, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            reason = f"it is nested deeper than the limit of {MAX_DEPTH} levels"
        else:
            try:  # the parser's own words, placed in the saved text (not in our wrapping)
                from_json(raw.text, allow_inf_nan=False)
            except ValueError as own:
                exc = own
            reason = f"its saved text is not valid JSON ({exc}); the store is damaged"
        raise ContextSerdeError(f"cannot load {path} ({raw.where}): {reason}") from None
    for _ in range(_WRAP):
        if type(data) is not list or len(data) != 1:
            raise ContextSerdeError(
                f"cannot load {path} ({raw.where}): its text is not one JSON value"
            )
        data = data[0]
    if check:
        decode(data, path=path)
    return data


def decode_raw(raw: RawJSON, path: str) -> Any:
    """The value ``raw`` holds, fresh, checked as ``decode`` checks data (but for a number too
    big for a float, see above): the parsed tree itself when the text is plain data, else
    ``decode`` of it."""
    data = parse_raw(raw, path)
    text = raw.text
    # (one-character searches first: they run at memchr speed)
    if ("$" not in text or '"$' not in text) and ("\\" not in text or "\\u" not in text):
        return data
    return decode(data, path=path)


def parsed_values(values: dict[str, Any], path: str = "", check: bool = True) -> dict[str, Any]:
    """``values`` (store key -> encoded value) with every ``RawJSON`` parsed into data (a new
    dict when there is one, else ``values`` itself); ``path`` prefixes the keys in errors."""
    if not any(type(v) is RawJSON for v in values.values()):
        return values
    return {
        k: parse_raw(v, path + k, check) if type(v) is RawJSON else v for k, v in values.items()
    }
