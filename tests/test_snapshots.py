"""ctx.to_dict() / Context.from_dict(): readable JSON that continues a run exactly."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from flows import Approval, Doc, Pipeline
from helpers import waiting
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notebook_workflows import (
    Context,
    ContextSerdeError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


@pytest.fixture(autouse=True)
def reset_pipeline() -> None:
    Pipeline.converted = []
    Pipeline.snapshots = []
    Pipeline.stop_after = None
    Approval.asked = 0


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*strings_in(k), *strings_in(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


async def test_a_snapshot_after_the_run_is_readable_json() -> None:
    handler = Pipeline().run(ids=[1, 2, 3])
    assert await handler == [1, 2, 3]
    data = handler.ctx.to_dict()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert data["format"] == "notebook_workflows.context" and data["version"] == 1
    assert data["workflow"] == "flows:Pipeline" and data["status"] == "done"
    assert data["store"]["ids"] == {"$tuple": [1, 2, 3]}
    assert data["store"]["done"] == {"$set": [1, 2, 3]}
    assert set(data["graph"]) == {"split", "convert", "join"}
    # no JSON hidden inside JSON strings
    assert not [s for s in strings_in(data) if s.lstrip()[:1] in "{["]


async def test_a_snapshot_taken_inside_a_step_reruns_that_step_on_restore() -> None:
    Pipeline.stop_after = 2
    assert await Pipeline().run(ids=[1, 2, 3]) == [1, 2, 3]
    data = json.loads(json.dumps(Pipeline.snapshots[0]))
    in_flight = [(f["step"], f["event"]["data"]) for f in data["in_flight"]]
    assert ("convert", {"id": 2}) in in_flight
    Pipeline.converted = []
    Pipeline.stop_after = None
    workflow = Pipeline()
    ctx = Context.from_dict(workflow, data)
    assert await workflow.run(ctx=ctx) == [1, 2, 3]
    assert sorted(Pipeline.converted) == [2, 3]  # doc 1 had completed: it is not redone
    assert await ctx.store.get("done") == {1, 2, 3}


async def test_a_snapshot_from_the_handler_while_the_run_goes_on() -> None:
    handler = Approval().run(topic="budget")
    await waiting(handler)
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    await handler.cancel()
    assert data["status"] == "waiting"
    assert [w["question"]["data"] for w in data["waiters"]] == [{"prefix": "Approve budget?"}]

    restored = Approval()
    ctx = Context.from_dict(restored, data)
    resumed = restored.run(ctx=ctx)
    questions = []
    async for ev in resumed.stream_events(lifecycle=False):
        if isinstance(ev, InputRequiredEvent):
            questions.append(ev.prefix)
            resumed.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await resumed == "budget: yes"
    assert questions == ["Approve budget?"]  # the paused run asked again


async def test_a_finished_snapshot_starts_a_new_run_that_keeps_the_store() -> None:
    handler = Pipeline().run(ids=[1])
    await handler
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    workflow = Pipeline()
    ctx = Context.from_dict(workflow, data)
    assert await workflow.run(ctx=ctx, ids=[5]) == [5]
    assert await ctx.store.get("done") == {1, 5}


class Stamped(Event):
    when: datetime
    tags: frozenset[str]


class Keeper(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Stamped:
        await ctx.store.set("raw", b"\x00\xff")
        return Stamped(when=datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc), tags={"a", "b"})

    @step
    async def end(self, ev: Stamped) -> StopEvent:
        return StopEvent(result=(ev.when, ev.tags))


async def test_queued_events_round_trip_with_rich_field_types() -> None:
    handler = Keeper().run(stepwise=True)
    await handler.step()
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    await handler.cancel()
    assert [q["step"] for q in data["queue"]] == ["end"]
    workflow = Keeper()
    ctx = Context.from_dict(workflow, data)
    when, tags = await workflow.run(ctx=ctx)
    assert when == datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc) and tags == {"a", "b"}
    assert await ctx.store.get("raw") == b"\x00\xff"


def test_restore_in_a_fresh_python_process(tmp_path: Path) -> None:
    Pipeline.stop_after = 1
    Pipeline().run_sync(ids=[1, 2])
    snapshot = tmp_path / "snap.json"
    snapshot.write_text(json.dumps(Pipeline.snapshots[0]))
    code = (
        "import json, sys\n"
        "from flows import Pipeline\n"
        "from notebook_workflows import Context\n"
        "w = Pipeline()\n"
        "ctx = Context.from_dict(w, json.loads(open(sys.argv[1]).read()))\n"
        "print(json.dumps(w.run_sync(ctx)))\n"
        "print(json.dumps(sorted(Pipeline.converted)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(snapshot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result, converted = out.stdout.splitlines()
    assert json.loads(result) == [1, 2]
    assert json.loads(converted) == [1, 2]  # doc 1 was in flight: at-least-once


# -- errors that say what is wrong ------------------------------------------------------------


def _finished_snapshot() -> dict:
    async def go() -> dict:
        handler = Pipeline().run(ids=[1, 2])
        await handler
        return json.loads(json.dumps(handler.ctx.to_dict()))

    return asyncio.run(go())


BASE = _finished_snapshot()


def _last_snapshot() -> dict:
    return copy.deepcopy(BASE)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: [1, 2], "is the mapping ctx.to_dict\\(\\) returns, got list"),
        (lambda d: {"store": {}}, "not a notebook_workflows context snapshot"),
        (lambda d: {**d, "version": 99}, "unknown snapshot format version 99"),
        (lambda d: {k: v for k, v in d.items() if k != "queue"}, "missing 'queue'"),
        (
            lambda d: {**d, "workflow": "flows:Approval"},
            "snapshot is of workflow 'flows:Approval', not of 'Pipeline'",
        ),
        (
            lambda d: {
                **d,
                "queue": [
                    {"seq": 1, "step": "convert", "event": {"type": "flows:Gone", "data": {}}}
                ],
            },
            "Gone",
        ),
        (
            lambda d: {
                **d,
                "queue": [
                    {"seq": 1, "step": "nope", "event": {"type": "flows:Doc", "data": {"id": 1}}}
                ],
            },
            "names step 'nope'",
        ),
        (
            lambda d: {**d, "graph": {**d["graph"], "review": {"accepts": [], "produces": []}}},
            "step 'review' is gone",
        ),
        (lambda d: {**d, "store": {"x": {"$nope": 1}}}, "x"),
        (lambda d: {**d, "serializer": "pickle"}, "pickle"),
    ],
)
def test_bad_snapshots_raise_context_serde_error_saying_what_is_wrong(mutate, message) -> None:
    data = mutate(_last_snapshot())
    with pytest.raises(ContextSerdeError, match=message):
        Context.from_dict(Pipeline(), data)


def test_tampered_class_names_are_refused_and_never_called(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(a))
    data = _last_snapshot()
    for name in ("os:system", "builtins:eval", "subprocess:Popen", "posix:system"):
        bad = {
            **data,
            "queue": [
                {"seq": 9, "step": "convert", "event": {"type": name, "data": {"id": "echo pwned"}}}
            ],
        }
        with pytest.raises(ContextSerdeError):
            Context.from_dict(Pipeline(), bad)
        bad_store = {**data, "store": {"x": {"$model": name, "fields": {"cmd": "echo"}}}}
        with pytest.raises(ContextSerdeError):
            Context.from_dict(Pipeline(), bad_store)
    assert calls == []


async def test_a_pickle_payload_in_a_json_snapshot_stays_inert_data() -> None:
    import base64
    import pickle

    payload = base64.b64encode(pickle.dumps(os.getcwd)).decode()
    data = _last_snapshot()
    data["store"]["blob"] = {"$pickle": payload}
    with pytest.raises(ContextSerdeError):
        Context.from_dict(Pipeline(), data)
    data["store"]["blob"] = payload  # just a string
    ctx = Context.from_dict(Pipeline(), data)
    assert await ctx.store.get("blob") == payload


async def test_pickle_is_an_explicit_opt_in_on_both_sides() -> None:
    handler = Pipeline().run(ids=[1])
    await handler
    data = handler.ctx.to_dict(serializer="pickle")
    assert data["serializer"] == "pickle"
    with pytest.raises(ContextSerdeError, match="allow_pickle=True"):
        Context.from_dict(Pipeline(), data)
    ctx = Context.from_dict(Pipeline(), data, allow_pickle=True)
    assert await ctx.store.get("done") == {1}


async def test_passing_the_pickle_serializer_object_is_the_opt_in_as_in_the_peer() -> None:
    from notebook_workflows.serializers import PickleSerializer

    handler = Pipeline().run(ids=[1])
    await handler
    data = handler.ctx.to_dict(serializer=PickleSerializer())
    with pytest.raises(ContextSerdeError, match="allow_pickle=True"):
        Context.from_dict(Pipeline(), data, serializer="pickle")
    ctx = Context.from_dict(Pipeline(), data, serializer=PickleSerializer())
    assert await ctx.store.get("done") == {1}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    junk=json_values,
    key=st.sampled_from(
        [
            "store",
            "queue",
            "in_flight",
            "collected",
            "waiters",
            "questions",
            "counters",
            "stop",
            "status",
            "graph",
            "run_id",
        ]
    ),
)
def test_garbage_in_any_part_gives_context_serde_error(junk: object, key: str) -> None:
    data = {**BASE, key: junk}
    with contextlib.suppress(ContextSerdeError):  # any other exception fails the test
        Context.from_dict(Pipeline(), data)


def test_a_doc_class_missing_from_a_fresh_process_is_named() -> None:
    data = _last_snapshot()
    data["queue"] = [
        {
            "seq": 1,
            "step": "convert",
            "event": {"type": "some_notebook_module:Doc", "data": {"id": 1}},
        }
    ]
    with pytest.raises(ContextSerdeError, match="some_notebook_module"):
        Context.from_dict(Pipeline(), data)
    assert Doc  # the real class is still there
