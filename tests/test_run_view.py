"""The run's public view: what the notebook face reads instead of the engine's internals."""

from __future__ import annotations

import dataclasses

import pytest

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.runtime import current_step
from notebook_workflows.serialization import decode


class Note(Event):
    text: str


class Half(Event):
    n: int


class Viewed(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Half:
        await ctx.store.set("seen", [ev.n])
        ctx.write_event_to_stream(Note(text="halfway"))
        return Half(n=ev.n * 2)

    @step
    async def end(self, ev: Half) -> StopEvent:
        return StopEvent(result=ev.n)


async def test_a_stepping_run_shows_its_queue_store_and_last_step() -> None:
    handler = Viewed().run(stepwise=True, n=3)
    view = handler.view()
    assert (view.status, view.stepwise, view.finished) == ("running", True, False)
    assert [(q.step, type(q.event).__name__) for q in view.queue] == [("begin", "StartEvent")]
    await handler.step()
    view = handler.view()
    assert [(q.step, q.event.n) for q in view.queue] == [("end", 6)]
    assert view.last is not None and view.last.step == "begin"
    assert [type(e).__name__ for e in view.last.produced] == ["Half"]
    assert decode(view.store["seen"]) == [3]
    assert [e.text for e in view.log] == ["halfway"]
    assert await handler == 6
    view = handler.view()
    assert (view.status, view.finished, view.result, view.queue) == ("done", True, 6, ())


async def test_a_view_is_frozen() -> None:
    handler = Viewed().run(n=1)
    await handler
    view = handler.view()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.status = "failed"  # type: ignore[misc]


async def test_listeners_learn_which_step_wrote_a_stream_event() -> None:
    handler = Viewed().run(stepwise=True, n=1)
    writers: list[tuple[str, str | None]] = []
    handler.subscribe(
        lambda item: (
            writers.append((type(item).__name__, current_step()))
            if isinstance(item, Note)
            else None
        )
    )
    ended: list[str] = []
    handler.add_done_callback(lambda h: ended.append(h.status))
    await handler
    assert writers == [("Note", "begin")]
    assert ended == ["done"]
    assert current_step() is None
