"""The chain of a run's records: each record names the one before it.

Every record written since this module exists ends its JSON object with
``"prev": [seq, digest]``: the number of the record before it in the run and a digest of that
record (its kind and its data text, ``digest``). A store that lost a record in the middle of a
history, holds two records swapped, or one whose text was changed, no longer makes a chain,
and reading it is refused (``SnapshotError``) instead of rebuilding a wrong state. The first
record of a run (or of a fork) names none; records written before the chain existed name none
either, and are only checked for consecutive numbers.

The digest is BLAKE2b (8 bytes, hex): a check against damage and mistakes, not a signature
(whoever can write the store can write a matching digest).
"""

from __future__ import annotations

import hashlib

__all__ = ["PREV", "digest", "link"]

PREV = "prev"  # the key of the link in a record's JSON object


def digest(kind: str, data: str) -> str:
    """The digest a record's successor names: of its kind and its data text."""
    h = hashlib.blake2b(kind.encode(), digest_size=8)
    h.update(data.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def link(data: str, seq: int, prev_digest: str) -> str:
    """``data`` (a JSON object's text) with ``"prev": [seq, prev_digest]`` added at its end."""
    tail = f'"{PREV}":[{seq},"{prev_digest}"]}}'
    return f"{data[:-1]},{tail}" if len(data) > 2 else "{" + tail
