"""The value codec: rich values round-trip exactly, bad values and tampered data are refused."""

from __future__ import annotations

import base64
import collections
import dataclasses
import enum
import json
import math
import pickle
import re
import socket
import string
import subprocess
import sys
import types
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, RootModel

from notebook_workflows.errors import ContextSerdeError
from notebook_workflows.events import Event, StartEvent
from notebook_workflows.serialization import (
    decode,
    decode_event,
    encode,
    encode_event,
    find_class,
    qualified_name,
    register,
    short_repr,
)

# -- classes the tests store (module level, so they can be found by name) ---------------------


class Color(enum.Enum):
    RED = 1
    GREEN = (2, "two")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(str, enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


class Point(BaseModel):
    x: int
    y: int = 0


class Box(BaseModel):
    model_config = ConfigDict(extra="allow")

    item: Any = None
    label: str = ""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    parts: tuple[int, ...] = ()


class Outer(BaseModel):
    class Inner(BaseModel):
        value: int = 0

    inner: Inner | None = None


@dataclasses.dataclass
class Holder:
    item: Any = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Span:
    start: int
    end: int
    length: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", self.end - self.start)


@dataclasses.dataclass
class Lazy:
    name: str
    cache: Any = dataclasses.field(init=False)  # no default: may never be set


class Loop(Event):
    i: int


class Payload(Event):
    items: list[Any] = []


# -- an exact comparison: same types all the way down ------------------------------------------


def assert_same(a: Any, b: Any, where: str = "value") -> None:
    """``a`` and ``b`` are equal and of the same types everywhere (nan equals nan)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    t = type(a)
    if t is float:
        if math.isnan(a):
            assert math.isnan(b), where
        else:
            assert a == b and math.copysign(1, a) == math.copysign(1, b), where
    elif t is Decimal:
        assert a.compare_total(b) == 0, f"{where}: {a!r} != {b!r}"
    elif t in (list, tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif t is dict:
        assert len(a) == len(b), where
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb, f"{where} key {short_repr(ka)}")
            assert_same(va, vb, f"{where}[{short_repr(ka)}]")
    elif t in (set, frozenset):
        assert a == b, where
        for x in a:
            (y,) = [y for y in b if y == x]
            assert_same(x, y, f"{where}{{{short_repr(x)}}}")
    elif t in (datetime, time):
        assert a == b, where
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None), f"{where}: wall time differs"
        assert repr(a.tzinfo) == repr(b.tzinfo), f"{where}: {a.tzinfo!r} != {b.tzinfo!r}"
        assert a.fold == b.fold, f"{where}: fold differs"
    elif isinstance(a, enum.Enum):
        assert a is b, where
    elif isinstance(a, BaseModel):
        assert_same(a.__dict__, b.__dict__, where)
        assert_same(a.__pydantic_extra__, b.__pydantic_extra__, f"{where} extras")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_plain_json(data: Any) -> None:
    """Only what JSON has: str-keyed dicts, lists, str, int, finite float, bool, None."""
    t = type(data)
    if t is dict:
        for k, x in data.items():
            assert type(k) is str, f"key {k!r}"
            assert_plain_json(x)
    elif t is list:
        for x in data:
            assert_plain_json(x)
    elif t is float:
        assert math.isfinite(data)
    else:
        assert t in (str, int, bool, type(None)), t


def through_json(value: Any) -> Any:
    text = json.dumps(encode(value), allow_nan=False)
    return decode(json.loads(text))


# -- strategies -------------------------------------------------------------------------------

fixed_offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)
named_offsets = st.builds(
    timezone,
    st.sampled_from([timedelta(hours=1), timedelta(hours=-5), timedelta(0)]),
    st.sampled_from(["CET", "EST", "Zulu"]),
)
zones = st.none() | st.timezones() | fixed_offsets | named_offsets | st.just(timezone.utc)
path_parts = st.lists(st.text(string.ascii_letters + "._-", min_size=1, max_size=6), max_size=4)

hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.dates()
    | st.datetimes(timezones=zones)
    | st.times(timezones=zones)
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.sampled_from([*Color, *Level, *Mood, Perm.R | Perm.W])
    | path_parts.map(lambda p: PurePosixPath(*p))
    | path_parts.map(lambda p: PureWindowsPath(*p))
    | path_parts.map(lambda p: Path(*p))
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
leaves = (
    hashable_leaves
    | st.floats()  # nan and infinities too
    | st.decimals()  # including NaN and sNaN
    | st.binary(max_size=8).map(bytearray)
)
str_keys = st.text(max_size=6) | st.text(max_size=6).map(lambda s: "$" + s)


def containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(str_keys, inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.builds(Box, item=inner, label=st.text(max_size=4))
        | st.builds(Box, item=inner, extra_field=inner)
        | st.builds(Holder, item=inner)
        | st.builds(Loop, i=st.integers(), extra=inner)
    )


values = st.recursive(leaves, containers, max_leaves=25)

slow = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- round trips ------------------------------------------------------------------------------


@slow
@given(values)
def test_every_supported_value_round_trips_with_its_exact_types(value: Any) -> None:
    assert_same(decode(encode(value)), value)


@slow
@given(values)
def test_round_trip_through_json_text_is_exact(value: Any) -> None:
    assert_same(through_json(value), value)


@slow
@given(values)
def test_encoded_form_is_plain_json(value: Any) -> None:
    assert_plain_json(encode(value))


@slow
@given(st.lists(hashables, max_size=6))
def test_a_set_encodes_the_same_whatever_its_insertion_order(items: list) -> None:
    # Start from the set's own elements: equal items of different types (1 and True,
    # PurePosixPath and Path) collapse into one, and which one stays depends on the order.
    items = list(set(items))
    assert encode(set(items)) == encode(set(reversed(items)))
    assert encode(frozenset(items)) == encode(frozenset(reversed(items)))


def test_primitives_are_returned_as_they_are() -> None:
    for v in ("text", 0, -7, 10**30, 1.5, -0.0, True, False, None):
        assert encode(v) is v
        assert decode(v) is v


def test_nan_and_infinities_are_tagged_because_json_has_none() -> None:
    assert encode(float("inf")) == {"$float": "inf"}
    assert encode([float("-inf")]) == [{"$float": "-inf"}]
    assert encode({"x": float("nan")}) == {"x": {"$float": "nan"}}
    assert math.isnan(decode({"$float": "nan"}))


def test_tags_are_readable() -> None:
    assert encode((1, "a")) == {"$tuple": [1, "a"]}
    assert encode({3, 1, 2}) == {"$set": [1, 2, 3]}
    assert encode(b"\x00\xff") == {"$bytes": "AP8="}
    assert encode(Decimal("1.10")) == {"$decimal": "1.10"}
    assert encode(date(2024, 5, 1)) == {"$date": "2024-05-01"}
    assert encode(timedelta(minutes=90)) == {"$timedelta": {"seconds": 5400}}
    assert encode(Color.RED) == {"$enum": "test_serialization_values:Color", "value": 1}
    assert encode(Point(x=1)) == {
        "$model": "test_serialization_values:Point",
        "fields": {"x": 1, "y": 0},
    }
    assert encode(PurePosixPath("/tmp/a")) == {"$path": "/tmp/a", "class": "PurePosixPath"}


def test_encode_builds_new_containers_the_caller_can_mutate_freely() -> None:
    value = {"a": [1, 2], "b": {"c": ["x"]}, "t": ([3],)}
    encoded = encode(value)
    assert encoded["a"] is not value["a"]
    encoded["a"].append(99)
    encoded["b"]["c"].append("y")
    encoded["t"]["$tuple"][0].append(4)
    assert value == {"a": [1, 2], "b": {"c": ["x"]}, "t": ([3],)}


def test_decode_hands_out_a_fresh_copy_each_time() -> None:
    encoded = encode({"a": [1, 2], "m": Box(item=[1])})
    first = decode(encoded)
    first["a"].append(3)
    first["m"].item.append(2)
    assert decode(encoded) == {"a": [1, 2], "m": Box(item=[1])}
    assert encoded == encode({"a": [1, 2], "m": Box(item=[1])})


# -- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 5, 1, 9, 30),
        datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc),
        datetime(2024, 5, 1, 9, 30, 0, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=-3), "BRT")),
        datetime(2024, 5, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris")),
        # The hour that happens twice in Paris: fold=1 is the second one, an hour later.
        datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"), fold=1),
        datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"), fold=0),
        time(9, 30),
        time(9, 30, tzinfo=timezone(timedelta(hours=2))),
        time(9, 30, tzinfo=ZoneInfo("America/New_York")),
        time(9, 30, fold=1),
    ],
)
def test_time_zones_are_kept_exactly(value: datetime | time) -> None:
    assert_same(through_json(value), value)


def test_a_zone_is_written_with_its_name_and_current_offset() -> None:
    value = datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert encode(value) == {"$datetime": "2024-07-01T12:00:00+02:00", "tz": "Europe/Paris"}


def test_a_time_zone_of_an_unknown_kind_is_refused() -> None:
    class Custom(tzinfo):
        def utcoffset(self, dt: Any) -> timedelta:
            return timedelta(hours=1)

    with pytest.raises(ContextSerdeError, match=r"cannot store when: .*time zone.*zoneinfo"):
        encode(datetime(2024, 1, 1, tzinfo=Custom()), "when")


# -- dict keys --------------------------------------------------------------------------------


def test_dict_keys_that_are_not_strings_are_kept() -> None:
    value = {1: "one", (2, "b"): [2], Level.HIGH: "enum", None: 0, frozenset({1}): "f", "s": 1}
    back = through_json(value)
    assert_same(back, value)
    assert list(back) == list(value)


def test_str_enum_keys_stay_enum_members() -> None:
    back = through_json({Mood.HAPPY: 1, "plain": 2})
    assert type(next(iter(back))) is Mood


def test_dollar_keys_are_escaped_so_data_is_never_read_as_a_tag() -> None:
    value = {"$model": "os:system", "fields": {"command": "echo hacked"}}
    encoded = encode(value)
    assert encoded == {"$dict": value}
    assert decode(encoded) == value
    assert through_json({"a": {"$tuple": [1]}}) == {"a": {"$tuple": [1]}}


def test_keys_with_a_dollar_inside_are_plain_keys() -> None:
    value = {"price$": 1, "a$b": [2]}
    assert encode(value) == value
    assert decode(encode(value)) == value


# -- refusals at encode -----------------------------------------------------------------------


def test_refusal_names_the_path_and_the_type() -> None:
    with socket.socket() as sock, pytest.raises(ContextSerdeError) as caught:
        encode({"inner": [sock]}, "cfg")
    message = str(caught.value)
    assert message.startswith("cannot store cfg.inner[0]: a socket (socket.socket)")
    assert "pydantic model/dataclass" in message


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"my key": [1, object()]}, "cfg['my key'][1]"),
        ({3: {"x": (1, object())}}, "cfg[3].x[1]"),
        (Box(item={"deep": object()}), "cfg.item.deep"),
        (Box(item=1, more=[object()]), "cfg.more[0]"),
        (Holder(item=[0, 1, object()]), "cfg.item[2]"),
        ({"tags": {1, 2}, "odd": {object()}}, "cfg.odd{<object object"),
    ],
)
def test_refusal_paths_follow_keys_indices_and_fields(value: Any, where: str) -> None:
    with pytest.raises(ContextSerdeError, match=r"an? object \(builtins\.object\)") as caught:
        encode(value, "cfg")
    assert str(caught.value).startswith(f"cannot store {where}")


def test_refusal_without_a_path_still_says_where() -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot store value\[1\]: a function"):
        encode([1, lambda: 2])
    with pytest.raises(ContextSerdeError, match=r"^cannot store the value: a generator"):
        encode(x for x in ())


@pytest.mark.parametrize(
    "value",
    [
        type("MyStr", (str,), {})("x"),
        memoryview(b"x"),
        range(3),
        complex(1, 2),
    ],
)
def test_subclasses_and_other_types_are_refused_rather_than_changed(value: Any) -> None:
    with pytest.raises(ContextSerdeError, match="is not serializable"):
        encode({"v": value})


def test_subclasses_of_plain_types_are_refused_with_a_conversion_hint() -> None:
    with pytest.raises(ContextSerdeError, match=r"come back as a plain dict; convert it"):
        encode({"counts": collections.OrderedDict(a=1)}, "cfg")
    pair = collections.namedtuple("pair", "a b")
    with pytest.raises(ContextSerdeError, match=r"^cannot store cfg\[0\]: a pair .* plain tuple"):
        encode([pair(1, 2)], "cfg")


def test_a_value_that_contains_itself_is_refused_clearly() -> None:
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(ContextSerdeError) as caught:
        encode({"data": loop}, "cfg")
    assert str(caught.value) == (
        "cannot store cfg.data: it contains itself (cfg.data[1].again is cfg.data again)"
    )


def test_a_model_that_contains_itself_is_refused_clearly() -> None:
    box = Box()
    box.item = [box]
    with pytest.raises(ContextSerdeError, match=r"cfg: it contains itself \(cfg\.item\[0\] is cfg"):
        encode(box, "cfg")


def test_very_deep_nesting_is_an_error_not_a_crash() -> None:
    value: Any = []
    for _ in range(sys.getrecursionlimit() + 100):
        value = [value]
    with pytest.raises(ContextSerdeError, match="nested too deeply"):
        encode(value, "deep")


def test_a_class_defined_in_a_function_is_refused_at_encode_until_registered() -> None:
    @dataclasses.dataclass
    class Local:
        n: int

    with pytest.raises(ContextSerdeError, match=r"cannot store k: .*defined inside a function"):
        encode(Local(1), "k")
    register(Local, name="tests.local:Local")
    encoded = encode(Local(1), "k")
    assert encoded == {"$dataclass": "tests.local:Local", "fields": {"n": 1}}
    assert decode(encoded) == Local(1)
    assert qualified_name(Local) == "tests.local:Local"


# -- models, dataclasses, enums, events -------------------------------------------------------


def test_models_keep_their_extra_fields_and_nested_classes() -> None:
    value = Outer(inner=Outer.Inner(value=3))
    encoded = encode(value)
    assert encoded["fields"]["inner"]["$model"] == "test_serialization_values:Outer.Inner"
    assert_same(through_json(value), value)
    extra = Box(item=(1,), label="l", when=date(2024, 1, 1))
    assert_same(through_json(extra), extra)
    assert through_json(Frozen(name="f", parts=(1, 2))) == Frozen(name="f", parts=(1, 2))


def test_dataclass_init_false_fields_come_back_even_when_frozen() -> None:
    span = Span(2, 5)
    encoded = encode(span)
    assert encoded["fields"] == {"start": 2, "end": 5, "length": 3}
    encoded["fields"]["length"] = 10  # the stored value wins over __post_init__'s
    back = decode(json.loads(json.dumps(encoded)))
    assert (back.start, back.end, back.length) == (2, 5, 10)


def test_dataclass_init_false_field_never_set_is_left_unset() -> None:
    back = through_json(Lazy("n"))
    assert back.name == "n" and not hasattr(back, "cache")
    lazy = Lazy("m")
    lazy.cache = {1: 2}
    assert through_json(lazy).cache == {1: 2}


@pytest.mark.parametrize("member", [Color.GREEN, Level.LOW, Mood.GRUMPY, Perm.R | Perm.X])
def test_enum_members_come_back_as_themselves(member: enum.Enum) -> None:
    assert through_json(member) is member


def test_events_are_written_as_type_and_data() -> None:
    ev = Loop(i=3, note=(1, 2))
    encoded = encode_event(ev)
    assert encoded == {
        "type": "test_serialization_values:Loop",
        "data": {"i": 3, "note": {"$tuple": [1, 2]}},
    }
    back = decode_event(json.loads(json.dumps(encoded)))
    assert_same(back, ev)
    start = decode_event(encode_event(StartEvent(ids={1, 2})))
    assert type(start) is StartEvent and start.ids == {1, 2}


def test_decode_event_refuses_a_model_that_is_not_an_event() -> None:
    with pytest.raises(ContextSerdeError, match=r"Point is not an Event; refusing"):
        decode_event({"type": "test_serialization_values:Point", "data": {"x": 1}}, "queue[0]")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "must be an object with 'type'"),
        ({"type": "test_serialization_values:Loop"}, "must be an object with 'type'"),
        ({"type": "test_serialization_values:Loop", "data": [], "x": 1}, "unexpected keys"),
        ({"type": "test_serialization_values:Loop", "data": []}, "'data' must be a mapping"),
        ({"type": "test_serialization_values:Loop", "data": {"i": "x"}}, "cannot rebuild"),
        ({"type": "test_serialization_values:Gone", "data": {}}, "class Gone"),
    ],
)
def test_decode_event_explains_bad_data(data: Any, match: str) -> None:
    with pytest.raises(ContextSerdeError, match=match):
        decode_event(data)


def test_decode_event_names_the_path_of_a_bad_field() -> None:
    data = {"type": "test_serialization_values:Payload", "data": {"items": [{"$nope": 1}]}}
    with pytest.raises(ContextSerdeError, match=r"^cannot load queue\[2\]\.items\[0\]: unknown"):
        decode_event(data, "queue[2]")


def test_model_that_fails_validation_on_load_names_its_path() -> None:
    data = {"cfg": {"$model": "test_serialization_values:Point", "fields": {"x": "many"}}}
    with pytest.raises(ContextSerdeError, match=r"^cannot load store\.cfg: cannot rebuild"):
        decode(data, "store")


# -- class lookup: never import, never call what the data names --------------------------------


def test_find_class_walks_nested_qualified_names() -> None:
    assert find_class("test_serialization_values:Outer.Inner") is Outer.Inner
    assert qualified_name(Outer.Inner) == "test_serialization_values:Outer.Inner"
    assert find_class("test_serialization_values:Loop", kinds=("event",)) is Loop
    assert find_class("test_serialization_values:Holder", kinds=(object,)) is Holder


@pytest.mark.parametrize(
    "name",
    ["os:system", "builtins:eval", "posix:system", "subprocess:Popen", "collections:OrderedDict"],
)
@pytest.mark.parametrize("tag", ["$model", "$dataclass", "$enum"])
def test_tampered_class_names_are_refused(name: str, tag: str) -> None:
    node = {tag: name, "value": "echo hacked"} if tag == "$enum" else {tag: name, "fields": {}}
    with pytest.raises(
        ContextSerdeError, match=r"^cannot load snap\.x\[0\]: .*refusing to load it"
    ):
        decode({"x": [node]}, "snap")


def test_tampered_names_are_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []

    class RecordingPopen:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(args)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr("os.system", lambda *args: calls.append(args))
    for data in [
        {"$model": "subprocess:Popen", "fields": {"args": "echo hacked"}},
        {"$dataclass": "subprocess:Popen", "fields": {"args": "echo hacked"}},
        {"$enum": "subprocess:Popen", "value": "echo hacked"},
        {"$model": "os:system", "fields": {}},
    ]:
        with pytest.raises(ContextSerdeError):
            decode(data)
    with pytest.raises(ContextSerdeError):
        decode_event({"type": "subprocess:Popen", "data": {"args": "echo hacked"}})
    assert calls == []


def test_a_module_that_is_not_imported_is_not_imported_by_loading() -> None:
    if "antigravity" in sys.modules:
        pytest.skip("antigravity was imported by someone else")
    with pytest.raises(ContextSerdeError) as caught:
        decode({"$model": "antigravity:Gravity", "fields": {}}, "k")
    assert "antigravity" not in sys.modules
    message = str(caught.value)
    assert "class Gravity" in message and "'antigravity'" in message
    assert "import antigravity" in message and "first" in message


def test_lookup_runs_no_hooks_of_the_module_or_class_it_walks_through() -> None:
    touched: list[str] = []

    class Meta(type):
        def __getattribute__(cls, name: str) -> Any:
            touched.append(name)
            return type.__getattribute__(cls, name)

    module = types.ModuleType("hooked_module")
    module.__getattr__ = lambda name: touched.append(name)  # PEP 562 module hook
    module.Shady = Meta("Shady", (), {"Inner": int})
    sys.modules["hooked_module"] = module
    try:
        for name in ["hooked_module:Missing", "hooked_module:Shady", "hooked_module:Shady.Inner"]:
            with pytest.raises(ContextSerdeError):
                find_class(name)
    finally:
        del sys.modules["hooked_module"]
    assert touched == []


def test_a_class_name_of_the_wrong_form_is_refused() -> None:
    for name in ["no_colon", ":Empty", "mod:", ""]:
        with pytest.raises(ContextSerdeError, match="not a class name of the form"):
            find_class(name)


def test_a_pickle_payload_stays_inert_data() -> None:
    class Boom:
        def __reduce__(self) -> tuple:
            return (print, ("this must never run",))

    payload = pickle.dumps(Boom())
    as_text = payload.decode("latin-1")
    assert decode(as_text) == as_text
    as_bytes = {"$bytes": base64.b64encode(payload).decode()}
    assert decode(as_bytes) == payload
    assert decode({"py/reduce": [{"py/type": "os.system"}, ["ls"]]}) == {
        "py/reduce": [{"py/type": "os.system"}, ["ls"]]
    }
    with pytest.raises(ContextSerdeError, match=r"unknown tag '\$pickle'"):
        decode({"$pickle": base64.b64encode(payload).decode()})


def test_a_class_redefined_in_a_notebook_like_module_is_found_again() -> None:
    module = types.ModuleType("fake_notebook")
    sys.modules["fake_notebook"] = module
    source = "from pydantic import BaseModel\nclass Cell(BaseModel):\n    n: int = 0\n"
    try:
        exec(source, module.__dict__)
        first = module.Cell
        encoded = encode(first(n=1))
        assert encoded["$model"] == "fake_notebook:Cell"
        assert type(decode(encoded)) is first
        exec(source, module.__dict__)  # the cell runs again: a new class of the same name
        second = module.Cell
        assert second is not first
        back = decode(encoded)
        assert type(back) is second and back.n == 1
        # An instance of the old class is still storable: it loads as the current class.
        assert type(decode(encode(first(n=2)))) is second
        del module.Cell  # the kernel restarted, the cell has not run yet
        with pytest.raises(ContextSerdeError) as caught:
            decode(encoded, "cfg")
    finally:
        del sys.modules["fake_notebook"]
    message = str(caught.value)
    assert message.startswith("cannot load cfg: class Cell (fake_notebook:Cell)")
    assert "run the cell" in message


def test_a_missing_class_of_main_says_to_run_its_cell() -> None:
    with pytest.raises(ContextSerdeError) as caught:
        decode({"$dataclass": "__main__:Settings", "fields": {}}, "settings")
    message = str(caught.value)
    assert "class Settings" in message and "notebook" in message and "run the cell" in message


def test_register_allows_a_class_under_an_older_name() -> None:
    register(Point, name="old.place:OldPoint")
    assert decode({"$model": "old.place:OldPoint", "fields": {"x": 4}}) == Point(x=4)
    assert "old.place" not in sys.modules
    # New data is still written under the real name, which can be found.
    assert encode(Point(x=4))["$model"] == "test_serialization_values:Point"
    assert qualified_name(Point) == "test_serialization_values:Point"


def test_register_refuses_classes_the_codec_cannot_write() -> None:
    with pytest.raises(TypeError, match="pydantic model, dataclass or Enum"):
        register(socket.socket)


# -- malformed data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where", "match"),
    [
        ({"a": {"$bogus": 1}}, "snap.a", "unknown tag '\\$bogus'"),
        ({"a": [1, {"$tuple": [1], "$set": [2]}]}, "snap.a[1]", "several \\$-keys"),
        ({"a": {"$tuple": "abc"}}, "snap.a", "must be a list"),
        ({"a": {"$tuple": [], "extra": 1}}, "snap.a", "cannot have the keys \\['extra'\\]"),
        ({"a": {"$float": "1.5"}}, "snap.a", "'nan', 'inf' or '-inf'"),
        ({"a": {"$date": "yesterday"}}, "snap.a", "malformed \\$date"),
        ({"a": {"$datetime": "2024-01-01", "tz": "../../etc/passwd"}}, "snap.a", "time zone"),
        ({"a": {"$datetime": "2024-01-01", "tz": "No/Such_Zone"}}, "snap.a", "malformed"),
        ({"a": {"$bytes": "not base64!"}}, "snap.a", "malformed \\$bytes"),
        ({"a": {"$uuid": "xyz"}}, "snap.a", "malformed \\$uuid"),
        ({"a": {"$timedelta": {"years": 1}}}, "snap.a", "days, seconds and microseconds"),
        ({"a": {"$path": "/x", "class": "os.system"}}, "snap.a", "unknown path class"),
        ({"a": {"$pairs": [[1, 2, 3]]}}, "snap.a", "\\[key, value\\]"),
        ({"a": {"$pairs": [[[1], 2]]}}, "snap.a", "not hashable"),
        ({"a": {"$set": [[1]]}}, "snap.a", "malformed \\$set"),
        ({"a": {"$enum": "test_serialization_values:Color", "value": 9}}, "snap.a", "rebuild"),
        ({"a": {"$enum": "test_serialization_values:Color"}}, "snap.a", "needs a 'value'"),
        ({"a": {"$model": 42}}, "snap.a", "must be a class name"),
        ({"a": {"$model": "test_serialization_values:Point", "fields": []}}, "snap.a", "mapping"),
        (
            {"a": {"$dataclass": "test_serialization_values:Holder", "fields": {"zz": 1}}},
            "snap.a",
            "has no fields \\['zz'\\]",
        ),
        ({"a": {"$tuple": [{"$set": [{"$uuid": 1}]}]}}, "snap.a[0][0]", "must be a str"),
        ({"a": (1, 2)}, "snap.a", "tuple .* is not JSON data"),
        ({"a": {1: "x"}}, "snap.a", "keys are not all strings"),
    ],
)
def test_malformed_data_is_an_error_naming_its_path(data: Any, where: str, match: str) -> None:
    with pytest.raises(ContextSerdeError, match=f"^cannot load {re.escape(where)}: "):
        decode(data, "snap")
    with pytest.raises(ContextSerdeError, match=match):
        decode(data, "snap")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"$pairs": [[{"$tuple": [1, 2]}, {"$bogus": 0}]]}, "snap[(1, 2)]"),
        ({"$dict": {"$ref": [0, {"$bogus": 0}]}}, "snap['$ref'][1]"),
        (
            {"$model": "test_serialization_values:Box", "fields": {"item": {"$bogus": 0}}},
            "snap.item",
        ),
        ({"$enum": "test_serialization_values:Color", "value": {"$bogus": 0}}, "snap.value"),
    ],
)
def test_malformed_data_inside_tags_is_located_by_decoded_keys_and_fields(
    data: Any, where: str
) -> None:
    with pytest.raises(ContextSerdeError, match=f"^cannot load {re.escape(where)}: unknown tag"):
        decode(data, "snap")


def test_malformed_data_at_the_top_is_reported_without_a_path() -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot load the value: a tuple"):
        decode((1, 2))


def test_very_deep_data_is_an_error_not_a_crash() -> None:
    data: list = []
    for _ in range(sys.getrecursionlimit() + 100):
        data = [data]
    with pytest.raises(ContextSerdeError, match="^cannot load snap: it is nested too deeply"):
        decode(data, "snap")


class Odd(enum.Enum):
    THING = object()


def test_an_enum_whose_value_cannot_be_stored_is_refused_with_its_path() -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot store cfg\.value: an object"):
        encode(Odd.THING, "cfg")


class Tags(RootModel[list[str]]):
    pass


def test_root_models_round_trip() -> None:
    value = Tags(["a", "b"])
    assert encode(value) == {
        "$model": "test_serialization_values:Tags",
        "fields": {"root": ["a", "b"]},
    }
    assert_same(through_json(value), value)


def test_register_works_as_a_decorator() -> None:
    def make() -> type:
        @register
        @dataclasses.dataclass
        class Made:
            n: int = 0

        return Made

    made = make()
    name = qualified_name(made)
    assert name.endswith(":test_register_works_as_a_decorator.<locals>.make.<locals>.Made")
    assert find_class(name) is made
    assert_same(through_json(made(3)), made(3))
