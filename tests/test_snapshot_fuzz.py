"""Fuzzing ``Context.from_dict``: a damaged snapshot loads, or fails with ContextSerdeError only.

Real snapshots (finished, in flight, waiting for a human, every step of a checkpointed run, a
store full of tagged values) are mutated at random with a seeded generator: values replaced by
other JSON types, keys deleted or added, lists and dicts swapped, subtrees nested 100,000 deep,
huge ints, odd strings (surrogates, NUL, paths, class and zone names, tags). Each must either
load, and then be written to strict JSON text and loaded again, or raise exactly
``ContextSerdeError`` with a short message: never a ``TypeError``, ``RecursionError``, an
``OSError`` from a path in the data, or a raw pydantic error.

The quick test mutates 1,200 snapshots; the slow one 4,000 more with another seed, or as many
as ``NOTEBOOK_WORKFLOWS_FUZZ`` says (``NOTEBOOK_WORKFLOWS_FUZZ=50000 pytest -m slow``; the seed
is ``NOTEBOOK_WORKFLOWS_FUZZ_SEED``). 20,000 mutations took 80 s on the 2-core test machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import enum
import json
import os
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from ckpt_flows import Counter, Docs
from flows import Approval, Pipeline
from helpers import waiting
from pydantic import BaseModel
from pydantic_core import to_json

from notebook_workflows import Context, ContextSerdeError, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.serialization import parse_json


class Tone(enum.Enum):
    LOW = 1
    HIGH = "high"


class Item(BaseModel):
    name: str
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Span:
    start: int
    end: int


class RichStore(Workflow):
    """One step that stores a value of every tagged kind."""

    @step
    async def fill(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set(
            "rich",
            {
                "when": datetime(2024, 5, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris")),
                "delta": timedelta(days=1, seconds=5),
                "money": Decimal("1.10"),
                "id": UUID(int=7),
                "path": PurePosixPath("/tmp/x"),
                "tone": Tone.HIGH,
                "item": Item(name="a", tags=("x", "y")),
                "span": Span(1, 4),
                "blob": b"\x00\xff",
                "pairs": {1: "one", (2, 3): {4, 5}},
                "dollar": {"$ref": frozenset({1})},
                "big": 10**400,
                "nan": float("nan"),
            },
        )
        return StopEvent(result=ev.n)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _corpus() -> list[tuple[type[Workflow], dict[str, Any]]]:
    out: list[tuple[type[Workflow], dict[str, Any]]] = []
    Pipeline.converted, Pipeline.snapshots, Pipeline.stop_after = [], [], 2
    handler = Pipeline().run(ids=[1, 2, 3])
    await handler
    out += [(Pipeline, s) for s in Pipeline.snapshots]  # taken inside a step: in flight
    out.append((Pipeline, handler.ctx.to_dict()))
    Pipeline.stop_after = None

    paused = Approval().run(topic="budget")
    await waiting(paused)
    out.append((Approval, paused.ctx.to_dict()))  # waiters and a question
    await paused.cancel()

    store = MemoryStore()
    docs = Docs().run(checkpoint=store, ids=[3, 1, 2], log=os.devnull)
    await docs
    out += [(Docs, s.context) for s in store.history(docs.run_id)]
    Counter.ran = []
    counter = Counter().run(checkpoint=store, n=6)
    await counter
    out += [(Counter, s.context) for s in store.history(counter.run_id)]
    rich = RichStore().run(checkpoint=store, n=1)
    await rich
    out += [(RichStore, s.context) for s in store.history(rich.run_id)]
    # What a store hands out went through JSON text; keep exactly that.
    return [(workflow, json.loads(json.dumps(data))) for workflow, data in out]


CORPUS = _run(_corpus())

ODD_STRINGS = [
    "",
    "\ud800",
    "a\x00b",
    "\x00",
    "../../etc/passwd",
    "/",
    ".",
    "/etc",
    "America",
    "Europe/Paris",
    "os:system",
    "subprocess:Popen",
    "__main__:Gone",
    "flows:Doc",
    "flows:Pipeline",
    "ckpt_flows:Tick",
    "notebook_workflows.events:StopEvent",
    "$tuple",
    "$int",
    "0x1f",
    "1" * 5000,
    "1e400",
    "nan",
    "running",
    "done",
    "convert",
    "split",
    "x" * 10_000,
    "é",
    "\U0001f600",
]
KEYS = [
    "format",
    "version",
    "workflow",
    "graph",
    "run_id",
    "status",
    "store",
    "queue",
    "in_flight",
    "collected",
    "waiters",
    "questions",
    "stop",
    "counters",
    "stats",
    "seq",
    "step",
    "event",
    "type",
    "data",
    "id",
    "attempt",
    "answers",
    "error",
    "invocation",
    "index",
    "types",
    "requirements",
    "question",
    "answer",
    "accepts",
    "produces",
    "code",
    "step_runs",
    "step_seconds",
    "next_id",
    "state_type",
    "serializer",
    "$tuple",
    "$set",
    "$pairs",
    "$dict",
    "$model",
    "$enum",
    "$int",
    "$datetime",
    "tz",
    "tzname",
    "fold",
    "fields",
    "value",
    "class",
    "0",
    "1",
]


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 2 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 7, 2**63, -(2**64), 10**5000, -(10**4301)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf")])
    if kind in (4, 5, 6, 7):
        return rng.choice(ODD_STRINGS)
    if kind in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _places(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in ``node``, iteratively."""
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is dict:
            for k, x in current.items():
                out.append((current, k))
                stack.append(x)
        elif type(current) is list:
            for i, x in enumerate(current):
                out.append((current, i))
                stack.append(x)
    return out


def mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    for _ in range(rng.randrange(1, 4)):
        places = _places(data, [])
        if not places:
            return data
        container, key = rng.choice(places)
        value = container[key]
        op = rng.randrange(9)
        if op <= 2:
            container[key] = random_value(rng)
        elif op == 3:
            del container[key]
        elif op == 4:
            depth = 100_000 if rng.random() < 0.05 else rng.choice([130, 300, 1_200])
            container[key] = _nest(value, depth)
        elif op == 5:
            if type(value) is dict:
                container[key] = list(value.values()) if rng.random() < 0.5 else list(value.items())
            elif type(value) is list:
                container[key] = {str(i): x for i, x in enumerate(value)}
            else:
                container[key] = [value]
        elif op == 6:
            if type(value) is dict:
                value[rng.choice(KEYS)] = random_value(rng)
            elif type(value) is list:
                value.insert(rng.randrange(len(value) + 1), random_value(rng))
            else:
                container[key] = {rng.choice(KEYS): value}
        elif op == 7:
            other_container, other_key = rng.choice(places)
            # A copy (sharing could make the data contain itself); not of a 100,000-deep one.
            with contextlib.suppress(RecursionError):
                container[key] = copy.deepcopy(other_container[other_key])
        else:
            if type(value) is str:
                container[key] = rng.choice([len(value), {"$" + value: value}, value * 2])
            elif type(value) is int and -(10**300) < value < 10**300:
                container[key] = rng.choice([str(value), float(value), -value, value * 10**5000])
            else:
                container[key] = rng.choice(ODD_STRINGS)
    return data


def check_one(workflow_type: type[Workflow], data: dict[str, Any]) -> str | None:
    """Load mutated ``data``; None if it loaded (and survives a write and read), else the error."""
    try:
        ctx = Context.from_dict(workflow_type(), data)
    except ContextSerdeError as exc:
        message = str(exc)
        assert message and len(message) <= 1200, f"message too long ({len(message)} chars)"
        return message
    # Loaded: then it can be written as strict JSON text and loaded again, unchanged.
    text = to_json(ctx.to_dict())
    again = Context.from_dict(workflow_type(), parse_json(text))
    assert again.to_dict() == ctx.to_dict()
    return None


def fuzz(count: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(count):
        workflow_type, snapshot = CORPUS[i % len(CORPUS)]
        data = mutate(copy.deepcopy(snapshot), rng)
        try:
            outcome = check_one(workflow_type, data)
        except Exception as exc:  # pragma: no cover - the message is the test's report
            raise AssertionError(
                f"mutation #{i} (seed {seed}) of a {workflow_type.__name__} snapshot raised "
                f"{type(exc).__name__}: {exc!s:.300}"
            ) from exc
        outcomes["loaded" if outcome is None else "refused"] += 1
    return outcomes


def test_the_corpus_holds_every_part_of_a_snapshot() -> None:
    parts = {k for _, data in CORPUS for k, v in data.items() if v}
    assert {"store", "queue", "in_flight", "collected", "waiters", "stop", "stats"} <= parts
    for workflow_type, data in CORPUS:
        assert check_one(workflow_type, copy.deepcopy(data)) is None


def test_a_thousand_mutated_snapshots_load_or_raise_context_serde_error() -> None:
    outcomes = fuzz(1_200, seed=12)
    # The mutations must exercise both sides, or the test proves little.
    assert outcomes["loaded"] > 50 and outcomes["refused"] > 500, outcomes


@pytest.mark.slow
def test_many_more_mutated_snapshots_load_or_raise_context_serde_error() -> None:
    count = int(os.environ.get("NOTEBOOK_WORKFLOWS_FUZZ", "4000"))
    seed = int(os.environ.get("NOTEBOOK_WORKFLOWS_FUZZ_SEED", "2026"))
    fuzz(count, seed)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["graph"]["split"].update(accepts=[["not", "hashable"]]),
        lambda d: d.update(version=10**5000),
        lambda d: d["queue"][0].update(step=["convert"]) if d["queue"] else d.update(queue=[{}]),
        lambda d: d.update(graph={"split": {"accepts": {"a": 1}}}),
        lambda d: d.update(counters={"seq": "1"}),
        lambda d: d.update(status=_nest("running", 100_000)),
    ],
    ids=["unhashable-accepts", "huge-version", "list-step", "dict-accepts", "str-seq", "deep"],
)
def test_known_damage_is_reported_as_context_serde_error(damage: Any) -> None:
    workflow_type, snapshot = CORPUS[0]
    data = copy.deepcopy(snapshot)
    damage(data)
    with pytest.raises(ContextSerdeError):
        Context.from_dict(workflow_type(), data)
