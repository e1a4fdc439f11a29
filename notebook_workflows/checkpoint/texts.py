"""A record's JSON text, written so that its big store values can be loaded without parsing.

A base keeps the store under ``"store"``, a delta the keys a step set under ``"store_set"``.
When one of those values is big (its text at least ``RAW_MIN`` characters), the record starts
with a list of where each such value's text lies::

    {"$raw":[21,1048597],"store_set":{"items":{"k00000":{...},...}},"queue_empty":true,...}

The numbers are pairs of character offsets (start, end), counted from the character after the
list's ``],``;
the rest is the record as usual, so the text is still one JSON document that any JSON tool
reads. ``parse_record`` reads everything else as usual and each listed value as a ``RawJSON``
(``codec._raw``): the text itself, parsed when the value is first used. A record without big
values, and every record written before this layout, has no ``"$raw"`` and is parsed whole.

Design decisions
----------------
*The layout is checked, not trusted.* The offsets must be pairs, in order, inside the text; the
text left once the values are cut out (each replaced by ``{"$raw": i}``) must parse, and must
hold each placeholder exactly once, where a store value goes. Anything else is a damaged record
(``ValueError``, which the readers turn into ``SnapshotError``). A value's own text is checked
when it is parsed, with the codec's rules (``codec._raw``).

*Only what needs it pays.* A record whose store part holds no container (the usual step record:
a counter, a flag) is written by one ``to_json`` call, as before; otherwise each store value is
written by a call of its own and the parts are joined, which costs a few microseconds. A value
already held as ``RawJSON`` (loaded, not changed since) is written as the text it is, without
being parsed at all.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json, to_json

from ..codec import RawJSON

__all__ = ["RAW_MIN", "dumps", "parse_record"]

RAW_MIN = 4096
"""Store values whose JSON text has at least this many characters are written as raw text."""

_STORE_PARTS = ("store", "store_set")
_HEAD = '{"$raw":['


def dumps(value: Any) -> str:
    """``value`` (JSON data: what the codec and the snapshot functions produce, ``RawJSON``
    store values included) as compact JSON text, non-ASCII characters kept as they are; a
    record's big store values with the layout above.

    pydantic-core's encoder (Rust; pydantic is already a dependency) writes a checkpoint's
    delta about five times faster than the standard library on this kind of machine, and a
    megabyte base about four times faster; its output is standard JSON that ``json.loads``
    reads back exactly (floats in their shortest round-tripping form, integers of any size).
    """
    if type(value) is dict:
        for part in _STORE_PARTS:
            values = value.get(part)
            if values and type(values) is dict:
                for v in values.values():
                    t = type(v)
                    if t is dict or t is list or t is RawJSON:
                        return _with_raw(value, part, values)
    return to_json(value).decode()


def _with_raw(record: dict[str, Any], part: str, values: dict[str, Any]) -> str:
    pieces = [to_json(part).decode(), ":{"]
    offsets: list[int] = []
    at = len(pieces[0]) + 2
    first = True
    for key, v in values.items():
        text = v.text if type(v) is RawJSON else to_json(v).decode()
        head = ("" if first else ",") + to_json(key).decode() + ":"
        first = False
        pieces.append(head)
        at += len(head)
        if len(text) >= RAW_MIN:
            offsets += (at, at + len(text))
        pieces.append(text)
        at += len(text)
    pieces.append("}")
    rest = {k: v for k, v in record.items() if k != part}
    if rest:
        pieces += (",", to_json(rest).decode()[1:])
    else:
        pieces.append("}")
    body = "".join(pieces)
    if not offsets:
        return "{" + body
    return f"{_HEAD}{','.join(map(str, offsets))}],{body}"


def parse_record(text: str | bytes, where: str) -> Any:
    """The data of a record's ``text``, its listed store values as ``RawJSON`` read from
    ``where``; ``ValueError`` if the text is not JSON or its layout does not hold."""
    if isinstance(text, bytes):
        text = text.decode()
    if not text.startswith(_HEAD):
        return from_json(text, allow_inf_nan=False)
    end = text.find("],", len(_HEAD))
    offsets = from_json(text[len(_HEAD) - 1 : end + 1]) if end > 0 else None
    body = end + 2  # where the offsets count from
    if (
        type(offsets) is not list
        or not offsets
        or len(offsets) % 2
        or any(type(n) is not int for n in offsets)
        or any(b < a for a, b in zip([0, *offsets], [*offsets, len(text) - body], strict=True))
    ):
        raise ValueError("its list of raw store values does not match its text")
    pieces = ["{"]
    raws: list[str | None] = []  # None once a value took it
    last = body
    for i in range(0, len(offsets), 2):
        start, stop = body + offsets[i], body + offsets[i + 1]
        pieces += (text[last:start], '{"$raw":', str(i // 2), "}")
        raws.append(text[start:stop])
        last = stop
    pieces.append(text[last:])
    data = from_json("".join(pieces), allow_inf_nan=False)
    found = 0
    if type(data) is dict:
        for part in _STORE_PARTS:
            values = data.get(part)
            if type(values) is not dict:
                continue
            for key, v in values.items():
                if type(v) is dict and len(v) == 1 and "$raw" in v:
                    i = v["$raw"]
                    raw = raws[i] if type(i) is int and 0 <= i < len(raws) else None
                    if raw is None:
                        raise ValueError("its list of raw store values does not match its text")
                    values[key] = RawJSON(raw, where)
                    raws[i] = None
                    found += 1
    if found != len(raws):
        raise ValueError("its list of raw store values does not match its text")
    return data
