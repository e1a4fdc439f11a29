"""The value codec: rich Python values to readable JSON and back, without ever running the data.

The context store keeps every value in encoded form: ``encode`` runs at ``ctx.store.set`` (so a
value that could not be written or read back is refused on the spot, naming its key path),
``decode`` at ``get`` (so the caller receives a fresh copy), and a snapshot is plain JSON
assembled from those encoded forms. ``notebook_workflows.serialization`` re-exports this face.

The rooms: ``_encode`` (values to data: tags, limits, refusals), ``_decode`` (data to values,
checking everything), ``_classes`` (class names, found again without importing or calling),
``_zones`` (time zones, resolved without importing), ``_paths`` (where it went wrong, said for
people), ``_text`` (strict JSON text), ``_raw`` (values kept as their JSON text until used).

Design decisions
----------------
*Tags, not JSON-in-strings.* JSON has no tuple, set, date or class, so such values become small
objects whose first key starts with ``$``: ``{"$tuple": [1, 2]}``, ``{"$datetime":
"2024-05-01T09:30:00+02:00", "tz": "Europe/Paris"}``, ``{"$model": "shop:Order", "fields": {...}}``,
``{"$int": "0x1f..."}`` for an int of more than 300 digits, ``{"$float": "nan"}``. A person can
read a snapshot, and a diff of two snapshots is meaningful. The whole ``$`` key namespace is
reserved: a user dict with a key like ``"$ref"`` is wrapped (``{"$dict": {...}}``), so data can
never be mistaken for a tag, and a tag this version does not know (written by a newer one, or
tampered with) is an error instead of silently becoming a dict.

*One rule for both directions: what ``set`` accepts is written and read back equal; what could
not be is refused at ``set``.* The limits (``MAX_DEPTH`` levels, no lone surrogates) are
checked by the encoder and again by the decoder, so data from a file meets the same rules as a
value from a step, and everything read can be written again.

*Loading never imports and never calls what the data names* (see ``_classes`` and ``_zones``).
No ``pickle`` or ``eval`` anywhere; the one use of ``importlib`` is a ``PathFinder`` look-up in
``_zones`` that reads directories to find the ``tzdata`` files, and imports nothing.
"""

from __future__ import annotations

from ._classes import find_class, qualified_name, register
from ._decode import decode, decode_event
from ._digest import fields_digest, value_digest
from ._encode import INT_DIGITS, MAX_DEPTH, encode, encode_event
from ._paths import short_repr
from ._raw import RawJSON, decode_raw, parse_raw, parsed_values
from ._text import gc_paused, parse_json

__all__ = [
    "INT_DIGITS",
    "MAX_DEPTH",
    "RawJSON",
    "decode",
    "decode_event",
    "decode_raw",
    "encode",
    "encode_event",
    "fields_digest",
    "find_class",
    "gc_paused",
    "parse_json",
    "parse_raw",
    "parsed_values",
    "qualified_name",
    "register",
    "short_repr",
    "value_digest",
]
