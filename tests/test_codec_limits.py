"""The codec's limits: what JSON text cannot carry is tagged or refused at encode, never lost.

Big integers round-trip in hex, NaN and infinities as tags, NUL as it is; a lone surrogate or a
value nested past ``MAX_DEPTH`` is refused on the spot, naming where, in time linear in the size
of the value. Decoding applies the same rules to data, so whatever it reads can be written again.
"""

from __future__ import annotations

import gc
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flows import Pipeline
from pydantic_core import from_json, to_json

from notebook_workflows import Context
from notebook_workflows.errors import ContextSerdeError
from notebook_workflows.serialization import INT_DIGITS, MAX_DEPTH, decode, encode, parse_json


def through_text(value: Any) -> Any:
    """encode, write as strict JSON text, read back with the stdlib, decode."""
    text = json.dumps(encode(value, "v"), allow_nan=False, ensure_ascii=False)
    return decode(json.loads(text), "v")


def nested(depth: int, wrap: Callable[[Any], Any] = lambda x: [x]) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = wrap(value)
    return value


@contextmanager
def int_digit_limit(limit: int) -> Iterator[None]:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(limit)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


def best_time(fn: Callable[[], Any], repeat: int = 11) -> float:
    """The fastest of `repeat` calls, in CPU time of this thread (a busy shared machine takes
    the core away for whole milliseconds, which the wall clock would count), with the garbage
    collector paused: a full collection costs time in proportion to the whole heap, which is
    not the codec's cost."""
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.thread_time()
            fn()
            times.append(time.thread_time() - start)
    finally:
        gc.enable()
    return min(times)


# -- integers of any size ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [10**5000, -(10**5000) - 7, 2**100_000, -(2**70_000)],
    ids=["10**5000", "-10**5000-7", "2**100000", "-2**70000"],
)
def test_an_int_of_any_size_round_trips_through_json_text(value: int) -> None:
    assert through_text(value) == value
    assert through_text({"n": [value, (value,)]}) == {"n": [value, (value,)]}


def test_a_big_int_is_written_in_hex_and_smaller_ones_as_numbers() -> None:
    big = 10**INT_DIGITS
    assert encode(big) == {"$int": hex(big)}
    assert encode([-big]) == [{"$int": hex(-big)}]
    assert encode(big - 1) == big - 1 and encode(-big + 1) == -big + 1


def test_reading_and_writing_big_ints_never_trip_the_digit_limit() -> None:
    value = {"n": 10**5000, "m": [-(10**3000)]}
    with int_digit_limit(640):  # the lowest limit a user can set
        text = to_json(encode(value)).decode()
        assert max(len(part) for part in text.split('"')) < 5000  # no decimal digits at length
        assert decode(json.loads(text)) == value
        assert decode(parse_json(text)) == value


def test_a_plain_int_too_long_for_json_text_is_refused_in_data_naming_its_path() -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot load store\.n\[1\]: an integer of more"):
        decode({"n": [1, 10**5000]}, "store")


@pytest.mark.parametrize("text", ["0x", "12", "0X1F", " 0x1", "0x1_0", "--0x1"])
def test_a_malformed_int_tag_is_refused(text: str) -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot load k: \$int must be a hexadecimal"):
        decode({"$int": text}, "k")


# -- floats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -1.7976931348623157e308])
def test_nan_infinities_and_huge_floats_round_trip_as_strict_json(value: float) -> None:
    back = through_text([value])[0]
    assert back == value or (math.isnan(back) and math.isnan(value))


def test_a_plain_nan_in_data_is_refused_because_strict_json_has_none() -> None:
    with pytest.raises(ContextSerdeError, match=r"^cannot load store\.x: NaN and infinities"):
        decode({"x": math.nan}, "store")
    with pytest.raises(ContextSerdeError, match="not valid JSON"):
        parse_json('{"x": NaN}')


# -- text -------------------------------------------------------------------------------------


def test_nul_characters_round_trip_in_strings_and_keys() -> None:
    value = {"a\x00b": "\x00", "k": ["x\x00y", ("\x00",)], "\x00": {"\x00\x00": 1}}
    assert through_text(value) == value
    assert decode(from_json(to_json(encode(value)))) == value


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("\ud800", "cfg"),
        ({"notes": ["ok", "bad \udc80 byte"]}, "cfg.notes[1]"),
        ({"k\ud800": 1}, "cfg['k\\ud800']"),
        ({"t": ("a", {"\udfff"})}, "cfg.t[1]{'\\udfff'}"),
    ],
)
def test_a_lone_surrogate_is_refused_at_encode_naming_the_path(value: Any, where: str) -> None:
    with pytest.raises(ContextSerdeError) as caught:
        encode(value, "cfg")
    message = str(caught.value)
    assert message.startswith(f"cannot store {where}: ")
    assert "lone surrogate" in message and "surrogateescape" in message


def test_a_lone_surrogate_in_data_is_refused_on_decode() -> None:
    # json.loads turns the escape "\ud800" into a lone surrogate; writing it again would fail.
    data = json.loads('{"a": ["\\ud800"]}')
    with pytest.raises(ContextSerdeError, match=r"^cannot load store\.a\[0\]: .*lone surrogate"):
        decode(data, "store")


def test_paired_surrogates_written_as_escapes_are_ordinary_text() -> None:
    assert decode(json.loads('"\\ud83d\\ude00"')) == "\U0001f600"
    assert through_text("\U0001f600") == "\U0001f600"


# -- depth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrap", "levels"),
    [
        (lambda x: [x], 1),
        (lambda x: {"k": x}, 1),
        (lambda x: (x,), 2),  # {"$tuple": [...]}
        (lambda x: {"$k": x}, 2),  # {"$dict": {...}}
    ],
)
def test_nesting_up_to_max_depth_round_trips_and_one_more_level_is_refused(
    wrap: Callable[[Any], Any], levels: int
) -> None:
    deepest = nested(MAX_DEPTH // levels, wrap)
    assert through_text(deepest) == deepest
    assert decode(parse_json(to_json(encode(deepest)))) == deepest
    with pytest.raises(ContextSerdeError) as caught:
        encode(wrap(deepest), "cfg")
    message = str(caught.value)
    assert message.startswith("cannot store cfg: it is nested too deeply: cfg")
    assert f"limit of {MAX_DEPTH} levels" in message and "MAX_DEPTH" in message
    assert len(message) < 300


def test_the_limit_leaves_room_for_a_snapshot_around_the_value() -> None:
    # A value sits at most six levels down in a snapshot; pydantic-core reads about 200.
    snapshot_like = {"collected": {"s": [{"event": {"data": {"v": encode(nested(MAX_DEPTH))}}}]}}
    assert parse_json(to_json(snapshot_like)) == snapshot_like


# Refusing takes milliseconds here, walking the whole value would take minutes: the bound is
# generous so that a loaded machine does not fail it, and still tells the two apart.
AT_ONCE = 5.0


def test_a_40000_deep_list_is_refused_at_once_not_after_minutes() -> None:
    value = nested(40_000)
    start = time.perf_counter()
    with pytest.raises(ContextSerdeError, match="nested too deeply"):
        encode({"deep": value}, "cfg")
    assert time.perf_counter() - start < AT_ONCE


def test_a_100000_deep_value_is_refused_at_once_when_loading() -> None:
    data = nested(100_000, lambda x: {"a": [x]})
    start = time.perf_counter()
    with pytest.raises(ContextSerdeError, match=r"^cannot load store: it is nested too deeply"):
        decode(data, "store")
    assert time.perf_counter() - start < AT_ONCE


async def test_from_dict_refuses_a_100000_deep_store_value_at_once() -> None:
    handler = Pipeline().run(ids=[1])
    await handler
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    data["store"]["deep"] = nested(100_000, lambda x: {"a": [x]})
    start = time.perf_counter()
    with pytest.raises(ContextSerdeError, match=r"^cannot load store\.deep: it is nested too"):
        Context.from_dict(Pipeline(), data)
    assert time.perf_counter() - start < AT_ONCE


def test_a_value_that_contains_itself_is_still_named_as_such() -> None:
    loop: dict = {}
    loop["next"] = [loop]
    with pytest.raises(ContextSerdeError, match=r"contains itself \(cfg\.next\[0\] is cfg again\)"):
        encode(loop, "cfg")


def test_deep_legal_values_cost_time_linear_in_their_size() -> None:
    def chain(depth: int) -> Any:
        return nested(depth // 2, lambda x: {"items": list(range(2000)), "next": [x]})

    # four times the depth: linear costs about 4x, quadratic about 16x
    shallow, deep = chain(MAX_DEPTH // 4), chain(MAX_DEPTH)
    encoded_shallow, encoded_deep = encode(shallow), encode(deep)
    for work, small, big in [(encode, shallow, deep), (decode, encoded_shallow, encoded_deep)]:
        ratio = best_time(lambda b=big, w=work: w(b)) / best_time(lambda s=small, w=work: w(s))
        assert ratio < 8, f"{work.__name__}: four times the depth took {ratio:.1f}x the time"


def test_refusing_a_deep_value_costs_time_linear_in_its_size() -> None:
    def too_deep(width: int) -> Any:
        return nested(MAX_DEPTH + 1, lambda x: [*range(width), x])

    def refuse(value: Any) -> None:
        with pytest.raises(ContextSerdeError):
            encode(value)

    small, big = too_deep(1000), too_deep(2000)
    ratio = best_time(lambda: refuse(big)) / best_time(lambda: refuse(small))
    assert ratio < 3.2
