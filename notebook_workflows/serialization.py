"""The value codec: rich Python values to readable JSON and back, without ever running the data.

The context store keeps every value in encoded form: ``encode`` runs at ``ctx.store.set`` (so an
unserializable value is refused on the spot, naming its key path), ``decode`` at ``get`` (so the
caller receives a fresh copy), and a snapshot is plain JSON assembled from those encoded forms.

Design decisions
----------------
*Tags, not JSON-in-strings.* JSON has no tuple, set, date or class, so such values become small
objects whose first key starts with ``$``: ``{"$tuple": [1, 2]}``, ``{"$datetime":
"2024-05-01T09:30:00+02:00", "tz": "Europe/Paris"}``, ``{"$model": "shop:Order", "fields": {...}}``.
A person can read a snapshot, and a diff of two snapshots is meaningful. The whole ``$`` key
namespace is reserved: a user dict with a key like ``"$ref"`` is wrapped (``{"$dict": {...}}``),
so data can never be mistaken for a tag, and a tag this version does not know (written by a newer
one, or tampered with) is an error instead of silently becoming a dict.

*Loading never imports and never calls what the data names.* A class is written as
``"module:QualName"``. ``find_class`` looks it up only in modules already in ``sys.modules``,
walking the qualified name through the real ``__dict__`` of the module and of each class (read
with the slot descriptors of ``module`` and ``type``, so no ``__getattr__`` or metaclass hook of
anything named in the data can run), and accepts only pydantic models, dataclasses, Enums (and
what the user ``register``-ed). Names such as ``os:system`` or ``subprocess:Popen`` are refused
before anything is called. No ``pickle``, ``eval`` or ``importlib`` anywhere.

*Classes are found by name each time*, so a class defined in a notebook's ``__main__`` is found
again once its cell has run again; a small cache remembers lookups but checks, on every hit, that
the module still holds the very same object under that name.

*Speed over elegance in the walkers.* On a slow machine each bytecode counts: the dict and list
walkers copy the container in C (``dict(v)``, ``list(v)``) and revisit only the non-primitive
items, test types with ``is`` inline instead of calling a function per value, and dispatch other
types through a dict keyed by ``type(v)``. Paths such as ``cfg.inner[0]`` are not tracked while
walking: only when something is refused does a second, slow search find where the culprit sits.
Self-containing values are noticed through ``RecursionError`` for the same reason.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from .errors import ContextSerdeError
from .events import Event

__all__ = [
    "decode",
    "decode_event",
    "encode",
    "encode_event",
    "find_class",
    "qualified_name",
    "register",
]

T = TypeVar("T", bound=type)

_NoneType = type(None)

# What to tell people when a value cannot be stored.
_HINT = (
    "store plain data (str, int, float, bool, None, list, dict, tuple, set, bytes, datetime, "
    "Decimal, UUID, Path, Enum) or a pydantic model/dataclass instead"
)


class _Refused(Exception):
    """Internal: ``obj`` cannot be encoded; ``encode`` turns it into a ContextSerdeError."""

    def __init__(self, obj: Any, reason: str) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason


class _Malformed(Exception):
    """Internal: the data node ``node`` cannot be decoded; ``decode`` reports where it sits."""

    def __init__(self, node: Any, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


# -- encoding ---------------------------------------------------------------------------------


def encode(value: Any, path: str = "") -> Any:
    """``value`` as JSON-compatible data made of new containers, or ``ContextSerdeError``.

    ``path`` (for example the store key) only serves the error message, which names where the
    unserializable part sits (``cfg.inner[0]``) and its type.
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None or (t is float and value - value == 0.0):
        return value
    try:
        return _encode_any(value)
    except _Refused as refused:
        where = _where(path, _locate(value, refused.obj, _value_children))
        raise ContextSerdeError(f"cannot store {where}: {refused.reason}") from None
    except RecursionError:
        raise ContextSerdeError(_recursion_message("store", value, path, _value_children)) from None


def _encode_any(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    if t is dict:
        return _encode_dict(v)
    if t is list:
        return _encode_list(v)
    handler = _ENCODERS.get(t)
    if handler is None:
        handler = _encoder_for(v)
    return handler(v)


def _encode_dict(v: dict, type=type, str=str, int=int, bool=bool, float=float, dict=dict):
    # Copy in C, then replace only the values that need work: most values are primitives.
    out = dict(v)
    for k, x in v.items():
        # `k < "%" and k >= "$"` is "starts with $" without creating a slice.
        if type(k) is not str or (k < "%" and k >= "$"):
            return _encode_odd_dict(v)
        t = type(x)
        if t is str or t is int or t is bool or x is None:
            continue
        if t is float:
            if x - x == 0.0:  # finite; nan and inf need a tag
                continue
            out[k] = _encode_float(x)
        elif t is dict:
            out[k] = _encode_dict(x)
        elif t is list:
            # Inline for the usual short list of primitives: saves a call per value.
            for y in x:
                t = type(y)
                if t is str or t is int or t is bool or y is None or (t is float and y - y == 0.0):
                    continue
                out[k] = _encode_list(x)
                break
            else:
                out[k] = list(x)
        else:
            out[k] = _encode_any(x)
    return out


def _encode_list(v, type=type, str=str, int=int, bool=bool, float=float, list=list) -> list:
    # Works for any sequence (tuples too). Short all-primitive lists are the common case: check,
    # then copy in C, which beats a comprehension's own set-up cost.
    for x in v:
        t = type(x)
        if t is str or t is int or t is bool or x is None or (t is float and x - x == 0.0):
            continue
        break
    else:
        return list(v)
    return [
        x
        if (t := type(x)) is str
        or t is int
        or t is bool
        or x is None
        or (t is float and x - x == 0.0)
        else _encode_any(x)
        for x in v
    ]


def _encode_fields(fields: dict) -> dict:
    """Field name -> encoded value; names are taken as they are (they are not user dict keys)."""
    out = dict(fields)
    for k, x in fields.items():
        t = type(x)
        if t is str or t is int or t is bool or x is None or (t is float and x - x == 0.0):
            continue
        out[k] = _encode_any(x)
    return out


def _encode_odd_dict(v: dict) -> dict:
    if all(type(k) is str for k in v):
        # Some key starts with "$": wrap, so the dict can never be read as a tag.
        return {"$dict": _encode_fields(v)}
    return {"$pairs": [[_encode_any(k), _encode_any(x)] for k, x in v.items()]}


def _encode_float(v: float) -> Any:
    if v - v == 0.0:
        return v
    return {"$float": "nan" if v != v else ("inf" if v > 0 else "-inf")}


# One canonical text per encoded item, to give sets a stable order whatever their contents.
def _canonical_json(value: Any) -> str:
    import json  # only sets need it; keeps `import notebook_workflows` cheap

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _encode_set_items(v: set | frozenset) -> list:
    items = list(v)
    kinds = set(map(type, items))
    if kinds == {str} or kinds == {int}:
        items.sort()
        return items
    encoded = [_encode_any(x) for x in items]
    encoded.sort(key=_canonical_json)
    return encoded


def _encode_datetime(v: datetime) -> dict:
    out: dict[str, Any] = {"$datetime": v.isoformat()}
    _add_zone(out, v, v.tzinfo)
    return out


def _encode_time(v: time) -> dict:
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
        # The offset is in the ISO text already; only a custom name (timezone(d, "CET")) is not.
        name = tz.tzname(None)
        if name != timezone(tz.utcoffset(None)).tzname(None):
            out["tzname"] = name
    elif type(tz) is ZoneInfo and tz.key is not None:
        out["tz"] = tz.key
    else:
        raise _Refused(
            v,
            f"{_describe(v)} with the time zone {tz!r} ({_type_path(type(tz))}) is not "
            "serializable; use zoneinfo.ZoneInfo('Area/City') or datetime.timezone instead",
        )
    if v.fold:
        out["fold"] = 1


def _encode_timedelta(v: timedelta) -> dict:
    parts = {"days": v.days, "seconds": v.seconds, "microseconds": v.microseconds}
    return {"$timedelta": {k: n for k, n in parts.items() if n}}


def _encode_path(v: PurePosixPath | PureWindowsPath) -> dict:
    return {"$path": str(v), "class": _PATH_NAMES[type(v)]}


_PATH_CLASSES: dict[str, type] = {
    # Concrete paths are written as "Path" so a snapshot loads on another OS as that OS's Path.
    "Path": Path,
    "PurePosixPath": PurePosixPath,
    "PureWindowsPath": PureWindowsPath,
}
_PATH_NAMES: dict[type, str] = {
    type(Path()): "Path",
    PurePosixPath: "PurePosixPath",
    PureWindowsPath: "PureWindowsPath",
}

_BUILTIN_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: lambda v: v,
    int: lambda v: v,
    bool: lambda v: v,
    _NoneType: lambda v: v,
    float: _encode_float,
    dict: _encode_dict,
    list: _encode_list,
    tuple: lambda v: {"$tuple": _encode_list(v)},
    set: lambda v: {"$set": _encode_set_items(v)},
    frozenset: lambda v: {"$frozenset": _encode_set_items(v)},
    bytes: lambda v: {"$bytes": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v: {"$bytearray": base64.b64encode(v).decode("ascii")},
    datetime: _encode_datetime,
    date: lambda v: {"$date": v.isoformat()},
    time: _encode_time,
    timedelta: _encode_timedelta,
    Decimal: lambda v: {"$decimal": str(v)},
    uuid.UUID: lambda v: {"$uuid": str(v)},
    **{cls: _encode_path for cls in _PATH_NAMES},
}

# type(v) -> encoder. Holds the built-ins plus one entry per model/dataclass/Enum class met, so
# the second instance of a class costs one dict lookup. `register` resets it.
_ENCODERS: dict[type, Callable[[Any], Any]] = dict(_BUILTIN_ENCODERS)


def _encoder_for(v: Any) -> Callable[[Any], Any]:
    """Build (and remember) the encoder of a class met for the first time, or refuse ``v``."""
    cls = type(v)
    if isinstance(v, Enum):
        name = _encoding_name(cls, v)

        def encode_enum(member: Enum) -> dict:
            return {"$enum": name, "value": _encode_any(member._value_)}

        handler: Callable[[Any], Any] = encode_enum
    elif isinstance(v, BaseModel):
        name = _encoding_name(cls, v)

        def encode_model(model: BaseModel) -> dict:
            return {"$model": name, "fields": _model_fields(model)}

        handler = encode_model
    elif dataclasses.is_dataclass(cls):
        name = _encoding_name(cls, v)
        field_names = tuple(f.name for f in dataclasses.fields(cls))

        def encode_dataclass(obj: Any) -> dict:
            fields = {}
            for field_name in field_names:
                x = getattr(obj, field_name, _MISSING)
                # An init=False field without a default may never have been set: skip it.
                if x is not _MISSING:
                    fields[field_name] = _encode_any(x)
            return {"$dataclass": name, "fields": fields}

        handler = encode_dataclass
    else:
        base = next((b for b in _PLAIN_BASES if isinstance(v, b)), None)
        if base is not None:
            # OrderedDict, defaultdict, namedtuple, pandas.Timestamp...: written as the base
            # type they would come back as something else, so say what to do instead.
            raise _Refused(
                v,
                f"{_describe(v)} is not serializable: it would come back as a plain "
                f"{base.__name__}; convert it ({base.__name__}(value)) or use a pydantic "
                "model/dataclass instead",
            )
        raise _Refused(v, f"{_describe(v)} is not serializable; {_HINT}")
    _ENCODERS[cls] = handler
    return handler


_MISSING = object()
# Built-in types whose subclasses are refused with a "convert it" hint (datetime before date).
_PLAIN_BASES = (dict, list, tuple, set, frozenset, str, int, float, bytes, datetime, date)


def _model_fields(model: BaseModel) -> dict:
    # __dict__ holds the declared fields; extras (extra="allow", every Event) live apart.
    # Private attributes are left out, as pydantic's own dumps do: they come back as defaults.
    fields = _encode_fields(model.__dict__)
    extra = model.__pydantic_extra__
    if extra:
        fields.update(_encode_fields(extra))
    return fields


def _encoding_name(cls: type, v: Any) -> str:
    """The name ``cls`` is written under; refuses a class that could never be found again."""
    own = _own_name(cls)
    found = _walk(own)
    if found is cls:
        return own
    registered = _REGISTERED_NAMES.get(cls)
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
    raise _Refused(
        v,
        f"{_describe(v)} {why}, so it could not be found again by name when loading; define "
        f"the class at module level (or in a notebook cell), or name it with "
        f"notebook_workflows.serialization.register({cls.__name__}, name='module:Name')",
    )


# -- decoding ---------------------------------------------------------------------------------


def decode(data: Any, path: str = "") -> Any:
    """The value ``encode`` turned into ``data``, rebuilt with fresh containers.

    Raises ``ContextSerdeError`` naming the path for malformed data (an unknown ``$tag``, a tag of
    the wrong shape, a class that cannot be found or is not allowed).
    """
    t = type(data)
    if t is str or t is int or t is bool or t is float or data is None:
        return data
    try:
        return _decode_any(data)
    except _Malformed as bad:
        where = _where(path, _locate(data, bad.node, _data_children))
        raise ContextSerdeError(f"cannot load {where}: {bad.reason}") from None
    except RecursionError:
        raise ContextSerdeError(_recursion_message("load", data, path, _data_children)) from None


def _decode_any(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or t is bool or t is float or v is None:
        return v
    if t is dict:
        return _decode_dict(v)
    if t is list:
        return _decode_list(v)
    raise _Malformed(v, f"{_describe(v)} is not JSON data")


def _decode_dict(v: dict, type=type, str=str, int=int, bool=bool, float=float, dict=dict):
    out = dict(v)
    try:
        for k, x in v.items():
            if k < "%" and k >= "$":
                return _decode_tagged(v)
            t = type(x)
            if t is str or t is int or t is float or t is bool or x is None:
                continue
            if t is dict:
                out[k] = _decode_dict(x)
            elif t is list:
                # Inline for the usual short list of primitives: saves a call per value.
                for y in x:
                    t = type(y)
                    if t is str or t is int or t is float or t is bool or y is None:
                        continue
                    out[k] = _decode_list(x)
                    break
                else:
                    out[k] = list(x)
            else:
                raise _Malformed(x, f"{_describe(x)} is not JSON data")
    except TypeError:
        # Only `k < "%"` can raise it here (the calls below convert their own errors).
        raise _Malformed(v, "a mapping whose keys are not all strings is not JSON data") from None
    return out


def _decode_list(v: list, type=type, str=str, int=int, bool=bool, float=float, list=list) -> list:
    for x in v:
        t = type(x)
        if t is str or t is int or t is float or t is bool or x is None:
            continue
        break
    else:
        return list(v)
    return [
        x
        if (t := type(x)) is str or t is int or t is float or t is bool or x is None
        else _decode_any(x)
        for x in v
    ]


def _decode_fields(node: dict, fields: Any, what: str = "'fields'") -> dict:
    if type(fields) is not dict:
        raise _Malformed(node, f"its {what} must be a mapping of name to value")
    return {k: _decode_any(x) for k, x in fields.items()}


def _decode_tagged(v: dict) -> Any:
    tags = [k for k in v if k[:1] == "$"]
    if len(tags) != 1:
        raise _Malformed(v, f"an object with several $-keys {tags} is not a valid tag")
    tag = tags[0]
    spec = _DECODERS.get(tag)
    if spec is None:
        raise _Malformed(
            v,
            f"unknown tag {tag!r} (written by a newer version of notebook_workflows, "
            "or edited by hand?)",
        )
    allowed, decoder = spec
    if not v.keys() <= allowed:
        extra = sorted(set(v) - allowed)
        raise _Malformed(v, f"a {tag} tag cannot have the keys {extra}")
    try:
        return decoder(v)
    except _Malformed:
        raise
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        # Wrong payload types or texts (a bad ISO date, bad base64, ...).
        raise _Malformed(v, f"malformed {tag} tag: {exc}") from None


def _payload(v: dict, tag: str, kind: type) -> Any:
    x = v[tag]
    if type(x) is not kind:
        raise _Malformed(v, f"the value of {tag} must be a {kind.__name__}")
    return x


def _decode_float(v: dict) -> float:
    text = _payload(v, "$float", str)
    if text not in ("nan", "inf", "-inf"):
        raise _Malformed(v, f"$float must be 'nan', 'inf' or '-inf', not {text!r}")
    return float(text)


def _decode_set_items(v: dict, tag: str) -> list:
    return _decode_list(_payload(v, tag, list))


def _decode_pairs(v: dict) -> dict:
    out = {}
    for pair in _payload(v, "$pairs", list):
        if type(pair) is not list or len(pair) != 2:
            raise _Malformed(v, "every item of $pairs must be a [key, value] list")
        key = _decode_any(pair[0])
        try:
            out[key] = _decode_any(pair[1])
        except TypeError:
            raise _Malformed(v, f"the key {key!r} is not hashable") from None
    return out


def _decode_datetime(v: dict) -> datetime:
    value = datetime.fromisoformat(_payload(v, "$datetime", str))
    return _apply_zone(v, value)


def _decode_time(v: dict) -> time:
    value = time.fromisoformat(_payload(v, "$time", str))
    return _apply_zone(v, value)


_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")


def _apply_zone(v: dict, value: Any) -> Any:
    zone = v.get("tz")
    if zone is not None:
        # Only a well-formed zone key reaches ZoneInfo, which reads the tz database by that name.
        if type(zone) is not str or not _ZONE_KEY.fullmatch(zone):
            raise _Malformed(v, f"{zone!r} is not a time zone name")
        value = value.replace(tzinfo=None).replace(tzinfo=ZoneInfo(zone))
    elif "tzname" in v:
        name = v["tzname"]
        if type(name) is not str or value.tzinfo is None:
            raise _Malformed(v, "tzname needs a time zone name and a UTC offset in the text")
        value = value.replace(tzinfo=timezone(value.utcoffset(), name))
    fold = v.get("fold", 0)
    if fold not in (0, 1) or type(fold) is not int:
        raise _Malformed(v, "fold must be 0 or 1")
    return value.replace(fold=fold) if fold else value


def _decode_timedelta(v: dict) -> timedelta:
    parts = _payload(v, "$timedelta", dict)
    if not parts.keys() <= {"days", "seconds", "microseconds"} or any(
        type(n) is not int for n in parts.values()
    ):
        raise _Malformed(v, "$timedelta takes integer days, seconds and microseconds")
    return timedelta(**parts)


def _decode_path(v: dict) -> Any:
    cls = _PATH_CLASSES.get(v.get("class", "Path"))
    if cls is None:
        raise _Malformed(v, f"unknown path class {v.get('class')!r}")
    return cls(_payload(v, "$path", str))


def _decode_model(v: dict) -> BaseModel:
    cls = _find_for(v, "$model", ("model",))
    fields = _decode_fields(v, v.get("fields", {}))
    try:
        return _validate(cls, fields)
    except Exception as exc:
        raise _Malformed(v, f"cannot rebuild {v['$model']}: {exc}") from None


def _validate(cls: Any, fields: dict) -> Any:
    if getattr(cls, "__pydantic_root_model__", False):
        # A RootModel validates its bare root value, not a mapping of fields.
        return cls.model_validate(fields.get("root"))
    return cls.model_validate(fields, **_BY_NAME)


def _decode_dataclass(v: dict) -> Any:
    cls = _find_for(v, "$dataclass", ("dataclass",))
    fields = _decode_fields(v, v.get("fields", {}))
    init_names, other_names = _dataclass_fields(cls)
    unknown = fields.keys() - init_names - other_names
    if unknown:
        raise _Malformed(v, f"{v['$dataclass']} has no fields {sorted(unknown)}")
    try:
        obj = cls(**{k: x for k, x in fields.items() if k in init_names})
        # init=False fields: set after construction, the way a frozen dataclass's own
        # __post_init__ would have to, so frozen classes work too.
        for k in other_names & fields.keys():
            object.__setattr__(obj, k, fields[k])
    except Exception as exc:
        raise _Malformed(v, f"cannot rebuild {v['$dataclass']}: {exc}") from None
    return obj


def _decode_enum(v: dict) -> Enum:
    cls = _find_for(v, "$enum", ("enum",))
    if "value" not in v:
        raise _Malformed(v, "an $enum tag needs a 'value'")
    value = _decode_any(v["value"])
    try:
        return cls(value)
    except Exception as exc:
        raise _Malformed(v, f"cannot rebuild {v['$enum']}: {exc}") from None


def _find_for(v: dict, tag: str, kinds: tuple[str, ...]) -> Any:
    name = v[tag]
    if type(name) is not str:
        raise _Malformed(v, f"the value of {tag} must be a class name")
    try:
        return find_class(name, kinds=kinds)
    except ContextSerdeError as exc:
        raise _Malformed(v, str(exc)) from None


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

_DecodeSpec = tuple[frozenset, Callable[[dict], Any]]


def _spec(tag: str, decoder: Callable[[dict], Any], *other_keys: str) -> tuple[str, _DecodeSpec]:
    return tag, (frozenset({tag, *other_keys}), decoder)


_DECODERS: dict[str, _DecodeSpec] = dict(
    [
        _spec("$float", _decode_float),
        _spec("$tuple", lambda v: tuple(_decode_list(_payload(v, "$tuple", list)))),
        _spec("$set", lambda v: set(_decode_set_items(v, "$set"))),
        _spec("$frozenset", lambda v: frozenset(_decode_set_items(v, "$frozenset"))),
        _spec("$dict", lambda v: _decode_fields(v, v["$dict"], "$dict value")),
        _spec("$pairs", _decode_pairs),
        _spec("$bytes", lambda v: base64.b64decode(_payload(v, "$bytes", str), validate=True)),
        _spec(
            "$bytearray",
            lambda v: bytearray(base64.b64decode(_payload(v, "$bytearray", str), validate=True)),
        ),
        _spec("$datetime", _decode_datetime, "tz", "tzname", "fold"),
        _spec("$date", lambda v: date.fromisoformat(_payload(v, "$date", str))),
        _spec("$time", _decode_time, "tz", "tzname", "fold"),
        _spec("$timedelta", _decode_timedelta),
        _spec("$decimal", lambda v: Decimal(_payload(v, "$decimal", str))),
        _spec("$uuid", lambda v: uuid.UUID(_payload(v, "$uuid", str))),
        _spec("$path", _decode_path, "class"),
        _spec("$enum", _decode_enum, "value"),
        _spec("$model", _decode_model, "fields"),
        _spec("$dataclass", _decode_dataclass, "fields"),
    ]
)


# -- events -----------------------------------------------------------------------------------


def encode_event(ev: Event, path: str = "") -> dict:
    """``ev`` as ``{"type": "module:Class", "data": {field: encoded value}}``.

    ``data`` holds declared and extra fields alike; ``path`` only serves error messages.
    """
    if not isinstance(ev, Event):
        raise ContextSerdeError(
            f"cannot store {path or 'the event'}: {_describe(ev)} is not an Event"
        )
    encoded = encode(ev, path or type(ev).__name__)
    return {"type": encoded["$model"], "data": encoded["fields"]}


def decode_event(data: Any, path: str = "") -> Event:
    """The event ``encode_event`` turned into ``data``; its class must be an ``Event`` subclass."""
    where = path or "the event"
    if type(data) is not dict or type(data.get("type")) is not str or "data" not in data:
        raise ContextSerdeError(
            f"cannot load {where}: an event must be an object with 'type' (a class name) and "
            f"'data', not {_short_repr(data)}"
        )
    if data.keys() - {"type", "data"}:
        raise ContextSerdeError(
            f"cannot load {where}: unexpected keys {sorted(data.keys() - {'type', 'data'})}"
        )
    try:
        cls = find_class(data["type"], kinds=("event",))
    except ContextSerdeError as exc:
        raise ContextSerdeError(f"cannot load {where}: {exc}") from None
    if type(data["data"]) is not dict:
        raise ContextSerdeError(f"cannot load {where}: its 'data' must be a mapping of fields")
    root = path or cls.__name__
    fields = {k: decode(x, root + _segment_for_key(k)) for k, x in data["data"].items()}
    try:
        return _validate(cls, fields)
    except Exception as exc:
        raise ContextSerdeError(
            f"cannot load {where}: cannot rebuild {data['type']}: {exc}"
        ) from None


# -- class names ------------------------------------------------------------------------------

# The slot descriptors behind `module.__dict__`, `cls.__dict__` and `cls.__mro__`: reading
# through them cannot be intercepted by a module's __getattr__ or a metaclass, so looking a
# name up runs no code of whatever the name designates.
_module_dict = types.ModuleType.__dict__["__dict__"].__get__
_class_dict = type.__dict__["__dict__"].__get__
_class_mro = type.__dict__["__mro__"].__get__

_KIND_BASES: dict[str, type] = {"model": BaseModel, "enum": Enum, "event": Event}
_KIND_WORDS = {
    "model": "a pydantic model",
    "dataclass": "a dataclass",
    "enum": "an Enum",
    "event": "an Event",
}
_VALUE_KINDS = ("model", "dataclass", "enum")

_REGISTRY: dict[str, type] = {}  # name -> class, from register()
_REGISTERED_NAMES: dict[type, str] = {}  # class -> the first name it was registered under
# (name, kinds) -> (class, module name, module, attribute): see find_class.
_FOUND: dict[tuple[str, tuple], tuple[type, str, Any, str]] = {}


def _own_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def qualified_name(cls: type) -> str:
    """The name ``cls`` is written under in snapshots: ``"module:Outer.Inner"``.

    A class that cannot be reached by its own module and qualified name (defined in a function)
    but was registered is written under its registered name.
    """
    own = _own_name(cls)
    if _walk(own) is not cls:
        return _REGISTERED_NAMES.get(cls, own)
    return own


def register(cls: T | None = None, *, name: str | None = None) -> Any:
    """Allow ``cls`` to be found by ``name`` (default: its qualified name) when loading.

    For a class that cannot be found through its module (defined inside a function), or to keep
    loading old snapshots after a class moved: ``register(NewPlace, name="old.module:Thing")``.
    Usable as a decorator, with or without ``name``. Only pydantic models, dataclasses and Enums
    can be registered: those are the classes the codec knows how to write.
    """
    if cls is None:
        return lambda c: register(c, name=name)
    if not isinstance(cls, type) or not _is_kind(cls, _VALUE_KINDS):
        raise TypeError(f"register() takes a pydantic model, dataclass or Enum class, not {cls!r}")
    if name is None:
        name = _own_name(cls)
    if not isinstance(name, str) or not name:
        raise TypeError(f"register() needs a non-empty str name, not {name!r}")
    _REGISTRY[name] = cls
    _REGISTERED_NAMES.setdefault(cls, name)
    # Encoders remember the name each class is written under: let them be rebuilt.
    _ENCODERS.clear()
    _ENCODERS.update(_BUILTIN_ENCODERS)
    _FOUND.clear()
    return cls


def find_class(name: str, *, kinds: tuple[str | type, ...] = _VALUE_KINDS) -> type:
    """The class called ``name`` (``"module:Outer.Inner"``), if it is of one of ``kinds``.

    ``kinds`` holds ``"model"``, ``"dataclass"``, ``"enum"``, ``"event"`` or base classes. Only
    registered classes and modules already in ``sys.modules`` are searched: nothing is imported,
    and nothing the name designates is called. Otherwise ``ContextSerdeError`` says why.
    """
    known = _FOUND.get((name, kinds))
    if known is not None:
        cls, module_name, module, attr = known
        # Still the same object under that name? (A re-run notebook cell makes a new class.)
        if sys.modules.get(module_name) is module and _module_dict(module).get(attr) is cls:
            return cls
    registered = _REGISTRY.get(name)
    cls = registered if registered is not None else _find_in_modules(name)
    if not _is_kind(cls, kinds):
        wanted = " or ".join(
            _KIND_WORDS.get(k, k) if isinstance(k, str) else f"a {k.__qualname__} subclass"
            for k in kinds
        )
        raise ContextSerdeError(
            f"{name} is not {wanted}; refusing to load it (only pydantic models, dataclasses, "
            "Enums and registered ones are loaded)"
        )
    module_name, _, qualname = name.partition(":")
    if registered is None and "." not in qualname:
        _FOUND[(name, kinds)] = (cls, module_name, sys.modules[module_name], qualname)
    return cls


def _find_in_modules(name: str) -> type:
    module_name, colon, qualname = name.partition(":")
    if not colon or not module_name or not qualname:
        raise ContextSerdeError(f"{name!r} is not a class name of the form 'module:QualName'")
    class_name = qualname.rpartition(".")[2]
    module = sys.modules.get(module_name)
    if module is None or not issubclass(type(module), types.ModuleType):
        raise ContextSerdeError(
            f"class {class_name} ({name}) was defined in module {module_name!r}, which is not "
            f"imported: import {module_name} (or run the cell that defines {class_name}) first; "
            "loading never imports modules itself"
        )
    if "<locals>" in qualname:
        raise ContextSerdeError(
            f"class {class_name} ({name}) was defined inside a function, so it cannot be found by "
            f"name: call notebook_workflows.serialization.register({class_name}, name=...) "
            "before loading"
        )
    obj = _walk(name)
    if obj is None:
        where = (
            "the notebook (or script)" if module_name == "__main__" else f"module {module_name!r}"
        )
        raise ContextSerdeError(
            f"class {class_name} ({name}) was defined in {where}, which has no {qualname} now: "
            f"run the cell (or code) that defines {class_name} first, or register() it"
        )
    if not issubclass(type(obj), type):
        raise ContextSerdeError(
            f"{name} is not a class (it is {_describe(obj)}); refusing to load it"
        )
    return obj


def _walk(name: str) -> Any:
    """The object at ``module:Outer.Inner`` reached through real ``__dict__``s only, or None."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not issubclass(type(module), types.ModuleType):
        return None
    namespace: Any = _module_dict(module)
    obj = None
    for part in qualname.split("."):
        if namespace is None:
            return None
        obj = namespace.get(part)
        if obj is None:
            return None
        # Only a class may be walked into (Outer.Inner); a function's <locals> cannot.
        namespace = _class_dict(obj) if issubclass(type(obj), type) else None
    return obj


def _is_kind(cls: type, kinds: tuple) -> bool:
    mro = _class_mro(cls)
    for kind in kinds:
        if kind == "dataclass":
            # What dataclasses.is_dataclass checks, read without calling into the class.
            if any("__dataclass_fields__" in _class_dict(c) for c in mro):
                return True
            continue
        base = _KIND_BASES.get(kind) if isinstance(kind, str) else kind
        # Identity, not ==: a metaclass's __eq__ is code of the class being checked.
        if base is not None and any(c is base for c in mro):
            return True
    return False


# -- error paths ------------------------------------------------------------------------------


def _where(path: str, segments: list[str] | None) -> str:
    full = path + "".join(segments or ())
    if not path and full.startswith("."):
        full = full[1:]
    if not full:
        return "the value"
    return "value" + full if full.startswith("[") else full


def _segment_for_key(key: Any) -> str:
    if type(key) is str and key.isidentifier():
        return "." + key
    return f"[{_short_repr(key)}]"


def _value_children(v: Any) -> Iterator[tuple[str, Any]]:
    t = type(v)
    if t is dict:
        for k, x in v.items():
            if type(k) is not str:
                yield f"[{_short_repr(k)}]", k
            yield _segment_for_key(k), x
    elif t is list or t is tuple:
        for i, x in enumerate(v):
            yield f"[{i}]", x
    elif t is set or t is frozenset:
        for x in v:
            yield "{" + _short_repr(x) + "}", x
    elif isinstance(v, Enum):
        yield ".value", v._value_
    elif isinstance(v, BaseModel):
        yield from ((f".{k}", x) for k, x in v.__dict__.items())
        yield from ((f".{k}", x) for k, x in (v.__pydantic_extra__ or {}).items())
    elif dataclasses.is_dataclass(t):
        for f in dataclasses.fields(v):
            x = getattr(v, f.name, _MISSING)
            if x is not _MISSING:
                yield f".{f.name}", x


def _data_children(node: Any) -> Iterator[tuple[str, Any]]:
    t = type(node)
    if t is list:
        for i, x in enumerate(node):
            yield f"[{i}]", x
        return
    if t is not dict:
        return
    tags = [k for k in node if type(k) is str and k[:1] == "$"]
    if not tags:
        for k, x in node.items():
            yield _segment_for_key(k), x
        return
    tag, payload = tags[0], node[tags[0]]
    if tag in ("$tuple", "$set", "$frozenset") and type(payload) is list:
        for i, x in enumerate(payload):
            yield f"[{i}]", x
    elif tag == "$dict" and type(payload) is dict:
        for k, x in payload.items():
            yield _segment_for_key(k), x
    elif tag == "$pairs" and type(payload) is list:
        for i, pair in enumerate(payload):
            if type(pair) is list and len(pair) == 2:
                try:
                    segment = f"[{_short_repr(_decode_any(pair[0]))}]"
                except Exception:
                    segment = f"[<key #{i}>]"
                yield segment, pair[0]
                yield segment, pair[1]
    elif tag in ("$model", "$dataclass") and type(node.get("fields")) is dict:
        for k, x in node["fields"].items():
            yield f".{k}", x
    elif tag == "$enum" and "value" in node:
        yield ".value", node["value"]


def _locate(root: Any, target: Any, children: Callable) -> list[str] | None:
    """Path segments from ``root`` to the object ``target`` (by identity), searched depth first."""
    if root is target:
        return []
    seen = {id(root)}
    stack: list[tuple[Iterator, list[str]]] = [(children(root), [])]
    while stack:
        it, segments = stack[-1]
        for segment, child in it:
            if child is target:
                return [*segments, segment]
            if id(child) not in seen:
                seen.add(id(child))
                stack.append((children(child), [*segments, segment]))
                break
        else:
            stack.pop()
    return None


def _recursion_message(verb: str, root: Any, path: str, children: Callable) -> str:
    # Look for a container that contains itself; without one the value is just too deep.
    on_path = {id(root): []}  # insertion ordered like the stack
    done: set[int] = set()  # fully searched: shared parts are not searched twice
    stack: list[tuple[Iterator, list[str]]] = [(children(root), [])]
    while stack:
        it, segments = stack[-1]
        for segment, child in it:
            if id(child) in on_path:
                inner = _where(path, [*segments, segment])
                outer = _where(path, on_path[id(child)])
                return f"cannot {verb} {outer}: it contains itself ({inner} is {outer} again)"
            if id(child) in done:
                continue
            if type(child) in (dict, list, tuple, set, frozenset) or _has_fields(child):
                child_segments = [*segments, segment]
                on_path[id(child)] = child_segments
                stack.append((children(child), child_segments))
                break
        else:
            stack.pop()
            finished, _ = on_path.popitem()
            done.add(finished)
    limit = sys.getrecursionlimit()
    return f"cannot {verb} {_where(path, [])}: it is nested too deeply (about {limit} levels)"


def _has_fields(v: Any) -> bool:
    return isinstance(v, (BaseModel, Enum)) or dataclasses.is_dataclass(type(v))


# -- describing things to people ---------------------------------------------------------------


def _type_path(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _describe(v: Any) -> str:
    """``a socket (socket.socket)``."""
    t = type(v)
    article = "an" if t.__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {t.__name__} ({_type_path(t)})"


def _short_repr(v: Any, limit: int = 60) -> str:
    try:
        text = repr(v)
    except Exception:
        text = f"<{type(v).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
