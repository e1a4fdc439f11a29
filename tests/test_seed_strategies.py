"""The three ways the seed ("Writing durable workflows") keeps a workflow's state.

1. data on the workflow instance persists over run calls;
2. the context's store, saved with ``ctx.to_dict()`` and restored with ``Context.from_dict``,
   persists over process restarts;
3. a step snapshotting the context to an external store after every document survives runtime
   errors: a restarted run skips what was already converted. The Redis of the seed is the
   in-memory stand-in below here; tests/test_checkpoint_redis.py runs the real one.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest

from notebook_workflows import Context, Resource, StartEvent, StopEvent, Workflow, step


class FakeDb:
    def __init__(self) -> None:
        self.rows = 3
        self.saved: dict[str, Any] = {}

    def count(self) -> int:
        return self.rows


class DbWorkflow(Workflow):
    def __init__(self, db: FakeDb, **kwargs: Any) -> None:
        self.db = db
        super().__init__(**kwargs)

    @step
    async def count(self, ev: StartEvent) -> StopEvent:
        self.db.rows += 1
        return StopEvent(result=self.db.count())


async def test_strategy_1_instance_data_persists_over_run_calls() -> None:
    workflow = DbWorkflow(FakeDb())
    assert await workflow.run() == 4
    assert await workflow.run() == 5  # the same client, reused


class Tally(Workflow):
    @step
    async def tally(self, ctx: Context, ev: StartEvent) -> StopEvent:
        seen = await ctx.store.get("seen", default=[])
        seen.append(ev.item)
        await ctx.store.set("seen", seen)
        return StopEvent(result=seen)


async def test_strategy_2_the_store_persists_over_process_restarts() -> None:
    db: dict[str, str] = {}
    handler = Tally().run(item="a")
    await handler
    db["id"] = json.dumps(handler.ctx.to_dict())
    # ... the Python process restarts: only the saved text is left ...
    workflow = Tally()
    ctx = Context.from_dict(workflow, json.loads(db["id"]))
    assert await workflow.run(ctx=ctx, item="b") == ["a", "b"]


class FakeRedis:
    """The part of a Redis client the seed uses, in memory."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}

    def hset(self, name: str, mapping: dict[str, Any]) -> None:
        self.hashes.setdefault(name, {}).update({k: json.dumps(v) for k, v in mapping.items()})

    def hgetall(self, name: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.hashes.get(name, {}).items()}


REDIS = FakeRedis()
CONVERTED: list[int] = []
FAIL_ON: set[int] = set()


def get_redis_client(*args: Any, **kwargs: Any) -> FakeRedis:
    """Reused across workflows: the seed's bonus, injected with Resource."""
    return REDIS


def convert(doc_id: int) -> None:
    if doc_id in FAIL_ON:
        FAIL_ON.discard(doc_id)  # fails once, like a flaky converter
        raise RuntimeError(f"converter crashed on document {doc_id}")
    CONVERTED.append(doc_id)


class DurableWorkflow(Workflow):
    @step
    async def convert_documents(
        self,
        ev: StartEvent,
        ctx: Context,
        redis: Annotated[FakeRedis, Resource(get_redis_client)],
    ) -> StopEvent:
        document_ids = ev.ids
        converted_ids = await ctx.store.get("converted_ids", default=[])
        for doc_id in document_ids:
            if doc_id in converted_ids:
                continue
            convert(doc_id)
            converted_ids.append(doc_id)
            await ctx.store.set("converted_ids", converted_ids)
            redis.hset("ctx", mapping=ctx.to_dict())
        return StopEvent(result=converted_ids)


async def test_strategy_3_a_snapshot_per_document_survives_a_runtime_error() -> None:
    CONVERTED.clear()
    FAIL_ON.add(3)
    with pytest.raises(RuntimeError, match="document 3"):
        await DurableWorkflow().run(ids=[1, 2, 3, 4])
    assert CONVERTED == [1, 2]
    # restart with the same input and the context the step saved
    workflow = DurableWorkflow()
    ctx = Context.from_dict(workflow, REDIS.hgetall("ctx"))
    assert await ctx.store.get("converted_ids") == [1, 2]
    assert await workflow.run(ctx=ctx) == [1, 2, 3, 4]
    assert CONVERTED == [1, 2, 3, 4]  # 1 and 2 were not converted again
