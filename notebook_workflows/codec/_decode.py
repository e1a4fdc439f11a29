"""Decoding: plain JSON data back to the values ``encode`` wrote, checking everything on the way.

``decode`` runs at ``ctx.store.get`` and on every value of a snapshot given to
``Context.from_dict``: data that comes from a file, maybe edited by hand or by someone hostile.

Design decisions
----------------
*Anything but exactly what ``encode`` can write is refused, naming where.* Only JSON types
(exact ``dict`` with ``str`` keys, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``) and
known tags are read; every failure, whatever the payload (wrong types, bad texts, huge numbers,
unhashable set items), becomes ``ContextSerdeError`` naming the key path, never a ``TypeError``
or a ``RecursionError``. The rules mirror ``_encode``: at most ``MAX_DEPTH`` levels (checked as
the walk goes down, so a 100,000-deep value costs 128 steps, not a crash), no lone surrogates,
no plain NaN or infinity (strict JSON has none; they come tagged), and no plain integer of more
than 4,300 digits (CPython's limit for decimal text; ``encode`` writes such ints in hex), so
whatever is read can be written again.

*Loading never imports and never calls what the data names.* Classes come from
``_classes.find_class``; time zones from ``_zones.zone``, which never lets ``zoneinfo`` import
``tzdata`` packages named by the data; no ``pickle`` or ``eval`` anywhere.

*Fresh containers, fast.* ``decode`` hands out a new copy each time (the store keeps the encoded
form). The walkers copy in C (``dict(v)``, ``list(v)``) and revisit only what needs work, like
the encoders; paths are collected only when something is wrong (see ``_paths``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ContextSerdeError, RecordedError
from ..events import Event
from ._classes import find_class
from ._encode import MAX_DEPTH, PATH_CLASSES, all_plain, find_surrogate
from ._paths import Malformed, describe, item_segment, key_segment, short_repr
from ._zones import zone

# Plain ints must stay below CPython's default limit for decimal text (4,300 digits), so that
# the snapshot holding them can be parsed again; encode writes bigger ones as {"$int": hex}.
_DATA_BIG = 10**4300
_HEX_INT = re.compile(r"-?0x[0-9a-f]+")


def decode(data: Any, path: str = "") -> Any:
    """The value ``encode`` turned into ``data``, rebuilt with fresh containers.

    Raises ``ContextSerdeError`` naming the path for malformed data (an unknown ``$tag``, a tag of
    the wrong shape, a class that cannot be found or is not allowed, data nested deeper than
    ``MAX_DEPTH``, a value that could not be written again).
    """
    t = type(data)
    if (
        (t is str and data.isascii())
        or (t is int and -_DATA_BIG < data < _DATA_BIG)
        or t is bool
        or data is None
        or (t is float and data - data == 0.0)
    ):
        return data
    try:
        return _decode_any(data, 0)
    except Malformed as bad:
        raise ContextSerdeError(bad.message("load", path, MAX_DEPTH)) from None
    except RecursionError:
        # Only when the caller's own stack is already nearly full: MAX_DEPTH keeps ours short.
        raise ContextSerdeError(
            f"cannot load {path or 'the value'}: the call stack is too deep here to walk it"
        ) from None


def _decode_any(v: Any, d: int) -> Any:
    t = type(v)
    if t is dict:
        return _decode_dict(v, d)
    if t is list:
        return _decode_list(v, d)
    if t is str:
        if v.isascii() or not find_surrogate(v):
            return v
        raise Malformed(v, _SURROGATE)
    if t is int:
        if -_DATA_BIG < v < _DATA_BIG:
            return v
        raise Malformed(v, _HUGE_INT)
    if t is float:
        if v - v == 0.0:
            return v
        raise Malformed(v, _PLAIN_NAN)
    if t is bool or v is None:
        return v
    raise Malformed(v, f"{describe(v)} is not JSON data")


_SURROGATE = "a text with a lone surrogate (like '\\ud800') cannot be written as JSON"
_HUGE_INT = (
    "an integer of more than 4300 digits cannot be read from JSON text; it is written as "
    '{"$int": "0x..."}'
)
_PLAIN_NAN = 'NaN and infinities are not JSON; they are written as {"$float": "nan"}'


def _decode_dict(
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
        raise Malformed(v, "", too_deep=True)
    d += 1
    out = dict(v)
    k = None
    try:
        for k, x in v.items():
            # `k < "%" and k >= "$"` is "starts with $" without creating a slice; for a key
            # that is not a str it raises TypeError, caught below.
            if (k < "%" and k >= "$") or not k.isascii():
                break
            t = type(x)
            if t is str:
                if x.isascii() or not find_surrogate(x):
                    continue
                raise Malformed(x, _SURROGATE)
            if t is int:
                if -_DATA_BIG < x < _DATA_BIG:
                    continue
                raise Malformed(x, _HUGE_INT)
            if t is float:
                if x - x == 0.0:
                    continue
                raise Malformed(x, _PLAIN_NAN)
            if t is bool or x is None:
                continue
            if t is list:
                # Inline for the usual short list of primitives: saves a call per value.
                for y in x:
                    t = type(y)
                    if (t is str and y.isascii()) or t is bool or y is None:
                        continue
                    if t is int:
                        if -_DATA_BIG < y < _DATA_BIG:
                            continue
                    elif t is float and y - y == 0.0:
                        continue
                    out[k] = _decode_list(x, d)
                    break
                else:
                    if d >= MAX_DEPTH:
                        raise Malformed(x, "", too_deep=True)
                    out[k] = list(x)
            elif t is dict:
                out[k] = _decode_dict(x, d)
            else:
                raise Malformed(x, f"{describe(x)} is not JSON data")
        else:
            return out
    except Malformed as bad:
        bad.add(key_segment(k), v)
        raise
    except (TypeError, AttributeError):
        # Only a key that is not a str raises these in this loop (the calls convert theirs).
        raise Malformed(v, "a mapping whose keys are not all strings is not JSON data") from None
    return _decode_odd_dict(v, d - 1)


def _decode_odd_dict(v: dict, d: int) -> Any:
    """A dict with a key that is not a plain ASCII str: a tag, or keys to check one by one."""
    for k in v:
        if type(k) is not str:
            raise Malformed(v, "a mapping whose keys are not all strings is not JSON data")
        if not k.isascii() and find_surrogate(k):
            raise Malformed(v, f"its key {short_repr(k)} has a lone surrogate: {_SURROGATE}")
    if any(k < "%" and k >= "$" for k in v):
        return _decode_tagged(v, d)
    return _decode_fields(v, v, d + 1)


def _decode_list(v: list, d: int, type: type[type] = type) -> list:
    if d >= MAX_DEPTH:
        raise Malformed(v, "", too_deep=True)
    d += 1
    if all_plain(v, _DATA_BIG):
        return list(v)
    try:
        return [_decode_dict(x, d) if type(x) is dict else _decode_any(x, d) for x in v]
    except Malformed as bad:
        bad.add(item_segment(v, bad.child), v)
        raise


def _decode_fields(node: dict, fields: Any, d: int, what: str = "'fields'") -> dict:
    """Name -> decoded value; errors name ``.name`` (or ``[key]``) below ``node``."""
    if type(fields) is not dict:
        raise Malformed(node, f"its {what} must be a mapping of name to value")
    if d > MAX_DEPTH:
        raise Malformed(node, "", too_deep=True)
    out = {}
    k = None
    try:
        for k, x in fields.items():
            if type(k) is not str:
                raise Malformed(x, f"the name {short_repr(k)} is not a string")
            out[k] = _decode_any(x, d)
    except Malformed as bad:
        bad.add(key_segment(k), node)
        raise
    return out


def _decode_tagged(v: dict, d: int) -> Any:
    tags = [k for k in v if k[:1] == "$"]
    if len(tags) != 1:
        raise Malformed(v, f"an object with several $-keys {short_repr(tags)} is not a valid tag")
    tag = tags[0]
    spec = _DECODERS.get(tag)
    if spec is None:
        raise Malformed(
            v,
            f"unknown tag {short_repr(tag)} (written by a newer version of notebook_workflows, "
            "or edited by hand?)",
        )
    allowed, decoder = spec
    if not v.keys() <= allowed:
        extra = sorted(map(short_repr, set(v) - allowed))
        raise Malformed(v, f"a {tag} tag cannot have the keys [{', '.join(extra)}]")
    try:
        return decoder(v, d)
    except Malformed:
        raise
    except (ValueError, TypeError, KeyError, ArithmeticError, binascii.Error) as exc:
        # Wrong payload types or texts (a bad ISO date, bad base64, unhashable set items...).
        raise Malformed(v, f"malformed {tag} tag: {_exc_text(exc)}") from None


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _payload(v: dict, tag: str, kind: type) -> Any:
    x = v[tag]
    if type(x) is not kind:
        raise Malformed(v, f"the value of {tag} must be a {kind.__name__}")
    return x


def _payload_items(v: dict, tag: str, d: int) -> list:
    """The decoded items of a tag's list payload; errors name ``[i]`` below ``v``."""
    items = _payload(v, tag, list)
    try:
        return _decode_list(items, d + 1)
    except Malformed as bad:
        bad.child = v  # the list is the tag's own: its items are the value's items
        raise


def _decode_float(v: dict, d: int) -> float:
    text = _payload(v, "$float", str)
    if text not in ("nan", "inf", "-inf"):
        raise Malformed(v, f"$float must be 'nan', 'inf' or '-inf', not {short_repr(text)}")
    return float(text)


def _decode_int(v: dict, d: int) -> int:
    text = _payload(v, "$int", str)
    if not _HEX_INT.fullmatch(text):
        raise Malformed(v, f"$int must be a hexadecimal text like '-0x1f', not {short_repr(text)}")
    return int(text, 16)  # no digit limit applies to base 16


def _decode_set(v: dict, d: int) -> set:
    items = _payload_items(v, "$set", d)
    return set(items)


def _decode_frozenset(v: dict, d: int) -> frozenset:
    return frozenset(_payload_items(v, "$frozenset", d))


def _decode_dict_tag(v: dict, d: int) -> dict:
    if d + 1 >= MAX_DEPTH:
        raise Malformed(v, "", too_deep=True)
    return _decode_fields(v, v["$dict"], d + 2, "$dict value")


def _decode_pairs(v: dict, d: int) -> dict:
    pairs = _payload(v, "$pairs", list)
    if d + 2 >= MAX_DEPTH:
        raise Malformed(v, "", too_deep=True)
    out = {}
    for i, pair in enumerate(pairs):
        if type(pair) is not list or len(pair) != 2:
            raise Malformed(v, "every item of $pairs must be a [key, value] list")
        try:
            key = _decode_any(pair[0], d + 3)
        except Malformed as bad:
            bad.add(f"[<key #{i}>]", v)
            raise
        try:
            value = _decode_any(pair[1], d + 3)
        except Malformed as bad:
            bad.add(key_segment(key), v)
            raise
        try:
            out[key] = value
        except TypeError:
            raise Malformed(v, f"the key {short_repr(key)} is not hashable") from None
    return out


def _decode_datetime(v: dict, d: int) -> datetime:
    value = datetime.fromisoformat(_payload(v, "$datetime", str))
    return _apply_zone(v, value)


def _decode_time(v: dict, d: int) -> time:
    value = time.fromisoformat(_payload(v, "$time", str))
    return _apply_zone(v, value)


def _apply_zone(v: dict, value: Any) -> Any:
    key = v.get("tz")
    if key is not None:
        if type(key) is not str:
            raise Malformed(v, f"{short_repr(key)} is not a time zone name")
        value = value.replace(tzinfo=None).replace(tzinfo=zone(key))
    elif "tzname" in v:
        name = v["tzname"]
        if type(name) is not str or value.tzinfo is None or value.utcoffset() is None:
            raise Malformed(v, "tzname needs a time zone name and a UTC offset in the text")
        if not name.isascii() and find_surrogate(name):
            raise Malformed(v, _SURROGATE)
        value = value.replace(tzinfo=timezone(value.utcoffset(), name))
    offset_us = v.get("offset_us")
    if offset_us is not None:
        if type(offset_us) is not int or not -86_400_000_000 < offset_us < 86_400_000_000:
            raise Malformed(v, "offset_us must be a number of microseconds under a day")
        tz = value.tzinfo
        name = tz.tzname(None) if "tzname" in v and tz is not None else None
        offset = timedelta(microseconds=offset_us)
        value = value.replace(tzinfo=timezone(offset, name) if name else timezone(offset))
    fold = v.get("fold", 0)
    if type(fold) is not int or fold not in (0, 1):
        raise Malformed(v, "fold must be 0 or 1")
    return value.replace(fold=fold) if fold else value


def _decode_timedelta(v: dict, d: int) -> timedelta:
    parts = _payload(v, "$timedelta", dict)
    if not parts.keys() <= {"days", "seconds", "microseconds"} or any(
        type(n) is not int for n in parts.values()
    ):
        raise Malformed(v, "$timedelta takes integer days, seconds and microseconds")
    return timedelta(**parts)


def _decode_path(v: dict, d: int) -> Any:
    name = v.get("class", "Path")
    cls = PATH_CLASSES.get(name) if type(name) is str else None
    if cls is None:
        raise Malformed(v, f"unknown path class {short_repr(name)}")
    text = _payload(v, "$path", str)
    if not text.isascii() and find_surrogate(text):
        raise Malformed(v, _SURROGATE)
    return cls(text)


def _decode_text(tag: str, build: Callable[[str], Any]) -> Callable[[dict, int], Any]:
    def decode_text(v: dict, d: int) -> Any:
        return build(_payload(v, tag, str))

    return decode_text


def _decode_bytes(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _decode_model(v: dict, d: int) -> BaseModel:
    cls = _find_for(v, "$model", ("model",))
    fields = _decode_fields(v, v.get("fields", {}), d + 2)
    try:
        return validate(cls, fields)
    except Exception as exc:
        raise Malformed(v, f"cannot rebuild {v['$model']}: {_exc_text(exc)}") from None


def validate(cls: Any, fields: dict) -> Any:
    """An instance of the pydantic model ``cls`` from decoded ``fields``."""
    if getattr(cls, "__pydantic_root_model__", False):
        # A RootModel validates its bare root value, not a mapping of fields.
        return cls.model_validate(fields.get("root"))
    try:
        return cls.model_validate(fields, **_BY_NAME)
    except ValidationError as error:
        # A model may hold objects its own schema refuses: pydantic checks assignments only
        # with validate_assignment, and LlamaIndex's AgentOutput keeps tool results (events) in
        # a list declared for tool selections. Where every refusal is of such an object, which
        # was decoded as the class it was written from, the model is rebuilt as it was.
        if all(_is_object(problem.get("input")) for problem in error.errors()):
            return cls.model_construct(**fields)
        raise


def _is_object(value: Any) -> bool:
    return isinstance(value, BaseModel) or dataclasses.is_dataclass(value)


def _decode_dataclass(v: dict, d: int) -> Any:
    cls = _find_for(v, "$dataclass", ("dataclass",))
    fields = _decode_fields(v, v.get("fields", {}), d + 2)
    init_names, other_names = _dataclass_fields(cls)
    unknown = fields.keys() - init_names - other_names
    if unknown:
        shown = ", ".join(sorted(map(short_repr, unknown)))
        raise Malformed(v, f"{v['$dataclass']} has no fields [{shown}]")
    try:
        obj = cls(**{k: x for k, x in fields.items() if k in init_names})
        # init=False fields: set after construction, the way a frozen dataclass's own
        # __post_init__ would have to, so frozen classes work too.
        for k in other_names & fields.keys():
            object.__setattr__(obj, k, fields[k])
    except Exception as exc:
        raise Malformed(v, f"cannot rebuild {v['$dataclass']}: {_exc_text(exc)}") from None
    return obj


def _decode_enum(v: dict, d: int) -> Enum:
    cls = _find_for(v, "$enum", ("enum",))
    if "value" not in v:
        raise Malformed(v, "an $enum tag needs a 'value'")
    try:
        value = _decode_any(v["value"], d + 1)
    except Malformed as bad:
        bad.add(".value", v)
        raise
    try:
        return cls(value)
    except Exception as exc:
        raise Malformed(v, f"cannot rebuild {v['$enum']}: {_exc_text(exc)}") from None


def _find_for(v: dict, tag: str, kinds: tuple[str, ...]) -> Any:
    name = v[tag]
    if type(name) is not str:
        raise Malformed(v, f"the value of {tag} must be a class name")
    try:
        return find_class(name, kinds=kinds)
    except ContextSerdeError as exc:
        raise Malformed(v, str(exc)) from None


_DATACLASS_FIELDS: dict[type, tuple[frozenset, frozenset]] = {}


def _dataclass_fields(cls: type) -> tuple[frozenset, frozenset]:
    known = _DATACLASS_FIELDS.get(cls)
    if known is None:
        fields = dataclasses.fields(cls)
        known = (
            frozenset(f.name for f in fields if f.init),
            frozenset(f.name for f in fields if not f.init),
        )
        _DATACLASS_FIELDS[cls] = known
    return known


# pydantic >= 2.11 can validate by field name even when a field has an alias; older versions
# validate by alias only, which is what models without aliases need anyway.
_BY_NAME: dict[str, bool] = (
    {"by_name": True} if "by_name" in BaseModel.model_validate.__code__.co_varnames else {}
)

_DecodeSpec = tuple[frozenset, Callable[[dict, int], Any]]


def _spec(tag: str, decoder: Callable[[dict, int], Any], *others: str) -> tuple[str, _DecodeSpec]:
    return tag, (frozenset({tag, *others}), decoder)


def _decode_error(v: dict, d: int) -> Any:
    """An exception comes back as a ``RecordedError`` (its class's name, its message): its
    own class is never looked up or called."""
    name, message = v.get("$error"), v.get("message", "")
    if type(name) is not str or type(message) is not str:
        raise Malformed(v, "an $error needs the class name and a message, as text")
    if find_surrogate(name) or find_surrogate(message):
        raise Malformed(v, _SURROGATE)
    return RecordedError(name, message)


_DECODERS: dict[str, _DecodeSpec] = dict(
    [
        _spec("$float", _decode_float),
        _spec("$int", _decode_int),
        _spec("$tuple", lambda v, d: tuple(_payload_items(v, "$tuple", d))),
        _spec("$set", _decode_set),
        _spec("$frozenset", _decode_frozenset),
        _spec("$dict", _decode_dict_tag),
        _spec("$pairs", _decode_pairs),
        _spec("$bytes", _decode_text("$bytes", _decode_bytes)),
        _spec("$bytearray", _decode_text("$bytearray", lambda t: bytearray(_decode_bytes(t)))),
        _spec("$datetime", _decode_datetime, "tz", "tzname", "offset_us", "fold"),
        _spec("$date", _decode_text("$date", date.fromisoformat)),
        _spec("$time", _decode_time, "tz", "tzname", "offset_us", "fold"),
        _spec("$timedelta", _decode_timedelta),
        _spec("$decimal", _decode_text("$decimal", Decimal)),
        _spec("$uuid", _decode_text("$uuid", uuid.UUID)),
        _spec("$path", _decode_path, "class"),
        _spec("$enum", _decode_enum, "value"),
        _spec("$model", _decode_model, "fields"),
        _spec("$dataclass", _decode_dataclass, "fields"),
        _spec("$error", _decode_error, "message"),
    ]
)


def decode_event(data: Any, path: str = "") -> Event:
    """The event ``encode_event`` turned into ``data``; its class must be an ``Event`` subclass."""
    where = path or "the event"
    if type(data) is not dict or type(data.get("type")) is not str or "data" not in data:
        raise ContextSerdeError(
            f"cannot load {where}: an event must be an object with 'type' (a class name) and "
            f"'data', not {short_repr(data)}"
        )
    extra = [k for k in data if k not in ("type", "data")]
    if extra:
        shown = ", ".join(sorted(map(short_repr, extra)))
        raise ContextSerdeError(f"cannot load {where}: unexpected keys [{shown}]")
    try:
        cls = find_class(data["type"], kinds=("event",))
    except ContextSerdeError as exc:
        raise ContextSerdeError(f"cannot load {where}: {exc}") from None
    if type(data["data"]) is not dict:
        raise ContextSerdeError(f"cannot load {where}: its 'data' must be a mapping of fields")
    root = path or cls.__name__
    try:
        fields = _decode_fields(data, data["data"], 2)
    except Malformed as bad:
        raise ContextSerdeError(bad.message("load", root, MAX_DEPTH)) from None
    except RecursionError:
        raise ContextSerdeError(f"cannot load {where}: the call stack is too deep here") from None
    try:
        return validate(cls, fields)
    except Exception as exc:
        raise ContextSerdeError(
            f"cannot load {where}: cannot rebuild {data['type']}: {_exc_text(exc)}"
        ) from None
