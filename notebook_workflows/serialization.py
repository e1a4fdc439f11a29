"""The tagged-JSON value codec, under the name the rest of the package and users import.

The codec lives in ``notebook_workflows.codec`` (one module per concern: encoding, decoding,
class names, time zones, error paths, JSON text); its design decisions are recorded there. This
module keeps ``from notebook_workflows.serialization import encode, register, ...`` working.
"""

from __future__ import annotations

from .codec import (
    INT_DIGITS,
    MAX_DEPTH,
    decode,
    decode_event,
    encode,
    encode_event,
    fields_digest,
    find_class,
    parse_json,
    qualified_name,
    register,
    short_repr,
)

__all__ = [
    "INT_DIGITS",
    "MAX_DEPTH",
    "decode",
    "decode_event",
    "encode",
    "encode_event",
    "fields_digest",
    "find_class",
    "parse_json",
    "qualified_name",
    "register",
    "short_repr",
]
