"""Digests of an event's fields: enough to tell, later, whether a run is given the same input.

A snapshot keeps the start event a run was given only as one short digest per field, not as
the values: a start field may hold a megabyte that every snapshot would otherwise carry, and
the only question asked of it is "is this the same input?" (``Workflow.run(ctx=..., **fields)``
continuing a restored run). A digest is the SHA-256 of the field's encoded, canonical JSON.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic_core import to_json

from ..events import Event
from ._classes import qualified_name
from ._encode import encode
from ._raw import RawJSON

__all__ = ["fields_digest", "value_digest"]


def value_digest(encoded: Any) -> str:
    """A short digest of a store value's encoded form (``""`` for None: no value). A value
    still kept as its loaded text digests as that text, which is its ``to_json``."""
    if encoded is None:
        return ""
    text = encoded.text.encode() if type(encoded) is RawJSON else to_json(encoded)
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def fields_digest(event: Event) -> dict[str, Any]:
    """``{"type": "module:Name", "fields": {name: digest}}`` of ``event``."""
    fields = {}
    for name, value in event.fields().items():
        fields[name] = hashlib.sha256(_canonical(value, name)).hexdigest()[:16]
    return {"type": qualified_name(type(event)), "fields": fields}


def _canonical(value: Any, name: str) -> bytes:
    import json  # loaded on the first digest only

    encoded = encode(value, path=name)
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
