"""Encoding: rich Python values to plain JSON data, or a refusal that names the key path.

``encode`` runs at ``ctx.store.set`` (and for every event written to a snapshot), so a value
that could not be written, or not be read back exactly, is refused on the spot.

Design decisions
----------------
*What is accepted can always be written and read back.* Besides the types JSON lacks (tagged,
see the package docstring), three kinds of values are legal in Python but break a JSON file or
its reader, and are handled here, at ``set``:

- integers of any size round-trip: one of more than ``INT_DIGITS`` (300) decimal digits is
  written in hexadecimal, ``{"$int": "0x1f..."}``. CPython refuses to convert ints of more than
  4,300 digits (``sys.get_int_max_str_digits``, which a user may lower to 640) to or from
  decimal text, but never limits power-of-two bases;
- NaN and the infinities are tagged (``{"$float": "nan"}``), so the text stays strict JSON;
- a ``str`` (value or key) holding a lone surrogate (``"\\ud800"``, what
  ``errors="surrogateescape"`` produces) is refused: UTF-8, hence JSON text, cannot hold it,
  and no readable form of it would survive a JSON parser. NUL characters are fine.

*Depth is limited, and counted in the output.* A value may nest at most ``MAX_DEPTH`` JSON
levels (a list or dict takes one; a tuple, set, model or dataclass two, its tag object and
its content). The JSON readers that stores use have limits of their own (pydantic-core's
parser stops at about 200 levels for a whole snapshot, its writer at 255), and a snapshot
wraps a value in up to six levels of its own, so 128 leaves room. The walkers carry the depth
as an argument and refuse past the limit at once: time stays linear in the size of the value,
and a self-containing value is caught by the same check (then reported as such).

*Speed over elegance in the walkers.* On a slow machine each bytecode counts: the dict and list
walkers copy the container in C (``dict(v)``, ``list(v)``) and revisit only the items that need
work, test types with ``is`` inline instead of calling a function per value, and dispatch other
types through a dict keyed by ``type(v)``. Paths such as ``cfg.inner[0]`` are not tracked while
walking: a refusal collects them on its way out (see ``_paths``).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from ..errors import ContextSerdeError, RecordedError
from ..events import Event
from . import _classes
from ._paths import Refused, describe, item_segment, key_segment, short_repr, type_path

MAX_DEPTH = 128
"""The most JSON levels one value may nest (a tuple, set, model or dataclass takes two)."""

INT_DIGITS = 300
"""Integers of more decimal digits than this are written as ``{"$int": "0x..."}``."""

_BIG = 10**INT_DIGITS  # ints strictly between -_BIG and _BIG are written as JSON numbers
_NoneType = type(None)
# The first lone surrogate of a str, or None: what UTF-8, hence JSON text, cannot hold.
find_surrogate = re.compile("[\ud800-\udfff]").search

# What to tell people when a value cannot be stored.
_HINT = (
    "store plain data (str, int, float, bool, None, list, dict, tuple, set, bytes, datetime, "
    "Decimal, UUID, Path, Enum) or a pydantic model/dataclass instead"
)


def encode(value: Any, path: str = "") -> Any:
    """``value`` as JSON-compatible data made of new containers, or ``ContextSerdeError``.

    ``path`` (for example the store key) only serves the error message, which names where the
    unserializable part sits (``cfg.inner[0]``), its type and what to do.
    """
    t = type(value)
    if (
        (t is str and (value.isascii() or not find_surrogate(value)))
        or (t is int and -_BIG < value < _BIG)
        or t is bool
        or value is None
        or (t is float and value - value == 0.0)
    ):
        return value
    try:
        return _encode_any(value, 0)
    except Refused as refused:
        raise ContextSerdeError(refused.message("store", path, MAX_DEPTH)) from None
    except RecursionError:
        # Only when the caller's own stack is already nearly full: MAX_DEPTH keeps ours short.
        where = path or "the value"
        raise ContextSerdeError(
            f"cannot store {where}: the call stack is too deep here to walk it "
            f"({MAX_DEPTH} levels at most are allowed anyway)"
        ) from None


def _encode_any(v: Any, d: int) -> Any:
    t = type(v)
    if t is str:
        if v.isascii() or not find_surrogate(v):
            return v
        raise Refused(v, _surrogate_reason(v))
    if t is int:
        return v if -_BIG < v < _BIG else _encode_int(v, d)
    if t is bool or v is None:
        return v
    if t is float:
        return v if v - v == 0.0 else _encode_float(v, d)
    if t is dict:
        return _encode_dict(v, d)
    if t is list:
        return _encode_list(v, d)
    if d >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    handler = _ENCODERS.get(t)
    if handler is None:
        handler = _encoder_for(v)
    return handler(v, d)


def _encode_dict(
    v: dict,
    d: int,
    type: type[type] = type,
    str: type[str] = str,
    int: type[int] = int,
    bool: type[bool] = bool,
    float: type[float] = float,
    dict: type[dict[Any, Any]] = dict,
    list: type[list[Any]] = list,
) -> Any:
    if d >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    d += 1
    # Copy in C, then replace only the values that need work: most values are primitives.
    out = dict(v)
    k = None
    try:
        for k, x in v.items():
            # `k < "%" and k >= "$"` is "starts with $" without creating a slice.
            if type(k) is not str or (k < "%" and k >= "$") or not k.isascii():
                break
            t = type(x)
            if t is str:
                if x.isascii() or not find_surrogate(x):
                    continue
                raise Refused(x, _surrogate_reason(x))
            if t is int:
                if -_BIG < x < _BIG:
                    continue
                out[k] = _encode_int(x, d)
            elif t is float:
                if x - x == 0.0:
                    continue
                out[k] = _encode_float(x, d)
            elif t is bool or x is None:
                continue
            elif t is list:
                # Inline for the usual short list of primitives: saves a call per value.
                for y in x:
                    t = type(y)
                    if t is str:
                        if y.isascii():
                            continue
                    elif t is int:
                        if -_BIG < y < _BIG:
                            continue
                    elif t is float:
                        if y - y == 0.0:
                            continue
                    elif t is bool or y is None:
                        continue
                    out[k] = _encode_list(x, d)
                    break
                else:
                    if d >= MAX_DEPTH:
                        raise Refused(x, "", too_deep=True)
                    out[k] = list(x)
            elif t is dict:
                out[k] = _encode_dict(x, d)
            else:
                out[k] = _encode_any(x, d)
        else:
            return out
    except Refused as refused:
        refused.add(key_segment(k), v)
        raise
    # A key that is not a str, starts with "$" or is not ASCII (it may hold a surrogate).
    return _encode_odd_dict(v, d - 1)


def all_plain(
    v: Any,
    big: int,
    type: type[type] = type,
    str: type[str] = str,
    int: type[int] = int,
    bool: type[bool] = bool,
    float: type[float] = float,
) -> bool:
    """Every item of ``v`` is written as it is: ASCII text, an int between ``-big`` and
    ``big``, a finite float, a bool or None (the common short list, copied as a whole)."""
    for x in v:
        t = type(x)
        if t is str:
            if x.isascii():
                continue
        elif t is int:
            if -big < x < big:
                continue
        elif t is float:
            if x - x == 0.0:
                continue
        elif t is bool or x is None:
            continue
        return False
    return True


def _encode_list(v: Any, d: int, type: type[type] = type) -> list:
    # Works for any sequence (tuples too). Short all-primitive lists are the common case: check,
    # then copy in C, which beats a comprehension's own set-up cost.
    if d >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    d += 1
    if all_plain(v, _BIG):
        return list(v)
    try:
        return [_encode_dict(x, d) if type(x) is dict else _encode_any(x, d) for x in v]
    except Refused as refused:
        refused.add(item_segment(v, refused.child), v)
        raise


def _encode_fields(fields: dict, d: int, container: Any) -> dict:
    """Name -> encoded value, names taken as they are; errors name ``container.<name>``."""
    out = dict(fields)
    name: Any = None
    try:
        for name, x in fields.items():
            t = type(x)
            if (t is str and x.isascii()) or (t is int and -_BIG < x < _BIG) or x is None:
                continue
            out[name] = _encode_any(x, d)
    except Refused as refused:
        refused.add(key_segment(name) if type(container) is dict else "." + name, container)
        raise
    return out


def _encode_odd_dict(v: dict, d: int) -> dict:
    """A dict with a key that is not a plain ASCII str (``d``: the levels above it)."""
    for k in v:
        if type(k) is str and not k.isascii() and find_surrogate(k):
            refused = Refused(k, "the key: " + _surrogate_reason(k))
            refused.add(f"[{short_repr(k)}]", v)
            raise refused
    if all(type(k) is str for k in v):
        if not any(k < "%" and k >= "$" for k in v):
            return _encode_fields(v, d + 1, v)  # only non-ASCII keys: a plain object after all
        # Some key starts with "$": wrap, so the dict can never be read as a tag.
        if d + 1 >= MAX_DEPTH:
            raise Refused(v, "", too_deep=True)
        return {"$dict": _encode_fields(v, d + 2, v)}
    # {"$pairs": [[key, value], ...]}: three levels.
    if d + 2 >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    pairs = []
    k = part = None
    try:
        for k, x in v.items():
            part = "key"
            key = _encode_any(k, d + 3)
            part = "value"
            pairs.append([key, _encode_any(x, d + 3)])
    except Refused as refused:
        refused.add(f"[{short_repr(k)}]" if part == "key" else key_segment(k), v)
        raise
    return {"$pairs": pairs}


def _encode_int(v: int, d: int) -> dict:
    if d >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    return {"$int": hex(v)}


def _encode_float(v: float, d: int) -> Any:
    if d >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    return {"$float": "nan" if v != v else ("inf" if v > 0 else "-inf")}


def _surrogate_reason(text: str) -> str:
    found = find_surrogate(text)
    index = found.start() if found else 0
    return (
        f"the text has a lone surrogate {text[index]!r} at index {index}, which UTF-8 and JSON "
        "cannot hold (text decoded with errors='surrogateescape'?); store bytes, or clean it "
        "with text.encode('utf-8', 'replace').decode()"
    )


# One canonical text per encoded item, to give sets a stable order whatever their contents.
def _canonical_json(value: Any) -> str:
    import json  # only sets of mixed items need it; keeps `import notebook_workflows` cheap

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _encode_set(tag: str) -> Callable[[Any, int], dict]:
    def encode_set(v: set | frozenset, d: int) -> dict:
        if d + 1 >= MAX_DEPTH:
            raise Refused(v, "", too_deep=True)
        items = list(v)
        kinds = set(map(type, items))
        if kinds == {str} or kinds == {int}:
            items.sort()
            try:
                return {tag: _encode_list(items, d + 1)}
            except Refused as refused:  # a str with a surrogate: name it by value, not index
                refused.segments[-1] = "{" + short_repr(refused.node) + "}"
                refused.containers[-1] = refused.child = v
                raise
        encoded = []
        x = None
        try:
            for x in items:
                encoded.append(_encode_any(x, d + 2))
        except Refused as refused:
            refused.add("{" + short_repr(x) + "}", v)
            raise
        encoded.sort(key=_canonical_json)
        return {tag: encoded}

    return encode_set


def _encode_tuple(v: tuple, d: int) -> dict:
    if d + 1 >= MAX_DEPTH:
        raise Refused(v, "", too_deep=True)
    return {"$tuple": _encode_list(v, d + 1)}


def _encode_datetime(v: datetime, d: int) -> dict:
    out: dict[str, Any] = {"$datetime": v.isoformat()}
    _add_zone(out, v, v.tzinfo)
    return out


def _encode_time(v: time, d: int) -> dict:
    tz = v.tzinfo
    if type(tz) is ZoneInfo:
        # A time has no date, so a zone has no offset to print: keep the wall time and the zone.
        out: dict[str, Any] = {"$time": v.replace(tzinfo=None).isoformat()}
    else:
        out = {"$time": v.isoformat()}
    _add_zone(out, v, tz)
    return out


def _add_zone(out: dict, v: datetime | time, tz: Any) -> None:
    if tz is None:
        pass
    elif type(tz) is timezone:
        # The offset is in the ISO text already; only a custom name (timezone(d, "CET")) is not,
        # nor the microseconds of an offset, which fromisoformat does not read back.
        offset = tz.utcoffset(None)
        if offset.microseconds:
            out["offset_us"] = offset // timedelta(microseconds=1)
        name = tz.tzname(None)
        if name != timezone(tz.utcoffset(None)).tzname(None):
            if not name.isascii() and find_surrogate(name):
                raise Refused(v, "its time zone name " + _surrogate_reason(name))
            out["tzname"] = name
    elif type(tz) is ZoneInfo and tz.key is not None:
        out["tz"] = tz.key
    else:
        raise Refused(
            v,
            f"{describe(v)} with the time zone {short_repr(tz)} ({type_path(type(tz))}) is not "
            "serializable; use zoneinfo.ZoneInfo('Area/City') or datetime.timezone instead",
        )
    if v.fold:
        out["fold"] = 1


def _encode_timedelta(v: timedelta, d: int) -> dict:
    parts = {"days": v.days, "seconds": v.seconds, "microseconds": v.microseconds}
    return {"$timedelta": {k: n for k, n in parts.items() if n}}


def _encode_path(v: PurePosixPath | PureWindowsPath, d: int) -> dict:
    text = str(v)
    if not text.isascii() and find_surrogate(text):
        raise Refused(v, "the path " + _surrogate_reason(text))
    return {"$path": text, "class": PATH_NAMES[type(v)]}


PATH_CLASSES: dict[str, type] = {
    # Concrete paths are written as "Path" so a snapshot loads on another OS as that OS's Path.
    "Path": Path,
    "PurePosixPath": PurePosixPath,
    "PureWindowsPath": PureWindowsPath,
}
PATH_NAMES: dict[type, str] = {
    type(Path()): "Path",
    PurePosixPath: "PurePosixPath",
    PureWindowsPath: "PureWindowsPath",
}

_BUILTIN_ENCODERS: dict[type, Callable[[Any, int], Any]] = {
    tuple: _encode_tuple,
    set: _encode_set("$set"),
    frozenset: _encode_set("$frozenset"),
    bytes: lambda v, d: {"$bytes": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v, d: {"$bytearray": base64.b64encode(v).decode("ascii")},
    datetime: _encode_datetime,
    date: lambda v, d: {"$date": v.isoformat()},
    time: _encode_time,
    timedelta: _encode_timedelta,
    Decimal: lambda v, d: {"$decimal": str(v)},
    uuid.UUID: lambda v, d: {"$uuid": str(v)},
    **{cls: _encode_path for cls in PATH_NAMES},
}

# type(v) -> encoder. Holds the built-ins plus one entry per model/dataclass/Enum class met, so
# the second instance of a class costs one dict lookup. `register` resets it.
_ENCODERS: dict[type, Callable[[Any, int], Any]] = dict(_BUILTIN_ENCODERS)


def _forget_classes() -> None:
    _ENCODERS.clear()
    _ENCODERS.update(_BUILTIN_ENCODERS)


_classes.on_register.append(_forget_classes)


def _encoder_for(v: Any) -> Callable[[Any, int], Any]:
    """Build (and remember) the encoder of a class met for the first time, or refuse ``v``."""
    cls = type(v)
    if isinstance(v, Enum):
        handler = _enum_encoder(_encoding_name(cls, v))
    elif isinstance(v, BaseModel):
        handler = _model_encoder(_encoding_name(cls, v), _excluded_fields(cls))
    elif isinstance(v, BaseException):
        handler = _error_encoder(f"{cls.__module__}:{cls.__qualname__}")
    elif dataclasses.is_dataclass(cls):
        fields = tuple(f.name for f in dataclasses.fields(cls))
        handler = _dataclass_encoder(_encoding_name(cls, v), fields)
    else:
        base = next((b for b in _PLAIN_BASES if isinstance(v, b)), None)
        if base is not None:
            # OrderedDict, defaultdict, namedtuple, pandas.Timestamp...: written as the base
            # type they would come back as something else, so say what to do instead.
            raise Refused(
                v,
                f"{describe(v)} is not serializable: it would come back as a plain "
                f"{base.__name__}; convert it ({base.__name__}(value)) or use a pydantic "
                "model/dataclass instead",
            )
        raise Refused(v, f"{describe(v)} is not serializable; {_HINT}")
    _ENCODERS[cls] = handler
    return handler


def _enum_encoder(name: str) -> Callable[[Any, int], Any]:
    def encode_enum(member: Enum, d: int) -> dict:
        try:
            return {"$enum": name, "value": _encode_any(member._value_, d + 1)}
        except Refused as refused:
            refused.add(".value", member)
            raise

    return encode_enum


def _model_encoder(name: str, excluded: frozenset[str]) -> Callable[[Any, int], Any]:
    def encode_model(model: BaseModel, d: int) -> dict:
        return {"$model": name, "fields": model_fields(model, d + 2, excluded)}

    return encode_model


def _error_encoder(kind: str) -> Callable[[Any, int], Any]:
    def encode_error(error: BaseException, d: int) -> dict:
        # a RecordedError (a restored one) keeps the name of the class it stood for
        kept = getattr(error, "type_name", None) if isinstance(error, RecordedError) else None
        message = str(error)
        if find_surrogate(message):
            raise Refused(error, "its message " + _surrogate_reason(message))
        return {"$error": kept or kind, "message": message}

    return encode_error


def _dataclass_encoder(name: str, field_names: tuple[str, ...]) -> Callable[[Any, int], Any]:
    def encode_dataclass(obj: Any, d: int) -> dict:
        if d + 1 >= MAX_DEPTH:
            raise Refused(obj, "", too_deep=True)
        fields = {}
        for field_name in field_names:
            x = getattr(obj, field_name, _MISSING)
            # An init=False field without a default may never have been set: skip it.
            if x is not _MISSING:
                fields[field_name] = x
        return {"$dataclass": name, "fields": _encode_fields(fields, d + 2, obj)}

    return encode_dataclass


_MISSING = object()
# Built-in types whose subclasses are refused with a "convert it" hint (datetime before date).
_PLAIN_BASES = (dict, list, tuple, set, frozenset, str, int, float, bytes, datetime, date)


def model_fields(model: BaseModel, d: int, excluded: frozenset[str] | None = None) -> dict:
    """A model's fields, encoded as the content of a tag at depth ``d - 2``; ``excluded``,
    the fields declared ``exclude=True`` (found from the class when not given)."""
    if d - 1 >= MAX_DEPTH:
        raise Refused(model, "", too_deep=True)
    # __dict__ holds the declared fields; extras (extra="allow", every Event) live apart.
    # Private attributes and fields declared with ``exclude=True`` are left out, as pydantic's
    # own dumps leave them out: they come back as their defaults (a memory's tokenizer).
    values = model.__dict__
    if excluded is None:
        excluded = _excluded_fields(type(model))
    if excluded:
        values = {k: x for k, x in values.items() if k not in excluded}
    fields = _encode_fields(values, d, model)
    extra = model.__pydantic_extra__
    if extra:
        fields.update(_encode_fields(extra, d, model))
    return fields


_EXCLUDED: dict[type, frozenset[str]] = {}


def _excluded_fields(cls: type[BaseModel]) -> frozenset[str]:
    """The fields of ``cls`` declared with ``Field(exclude=True)``."""
    known = _EXCLUDED.get(cls)
    if known is None:
        fields = getattr(cls, "__pydantic_fields__", None) or {}
        known = _EXCLUDED[cls] = frozenset(n for n, f in fields.items() if f.exclude is True)
    return known


def _encoding_name(cls: type, v: Any) -> str:
    """The name ``cls`` is written under; refuses a class that could never be found again."""
    own = _classes.own_name(cls)
    found = _classes.walk(own)
    if found is cls:
        return own
    registered = _classes.REGISTERED_NAMES.get(cls)
    if registered is not None:
        return registered
    if found is not None and issubclass(type(found), type):
        # The name now refers to a newer definition of the class (a notebook cell that was run
        # again): loading will build an instance of that one, which is what the user expects.
        return own
    if "<locals>" in cls.__qualname__:
        why = "is defined inside a function"
    else:
        why = f"is not reachable as {cls.__qualname__} in module {cls.__module__!r}"
    raise Refused(
        v,
        f"{describe(v)} {why}, so it could not be found again by name when loading; define "
        f"the class at module level (or in a notebook cell), or name it with "
        f"notebook_workflows.serialization.register({cls.__name__}, name='module:Name')",
    )


def encode_event(ev: Event, path: str = "") -> dict:
    """``ev`` as ``{"type": "module:Class", "data": {field: encoded value}}``.

    ``data`` holds declared and extra fields alike; ``path`` only serves error messages.
    """
    if not isinstance(ev, Event):
        raise ContextSerdeError(
            f"cannot store {path or 'the event'}: {describe(ev)} is not an Event"
        )
    encoded = encode(ev, path or type(ev).__name__)
    return {"type": encoded["$model"], "data": encoded["fields"]}
