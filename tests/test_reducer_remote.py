"""The reducer and a step that ran in another process: what it did comes back as one
``RemoteStepReturned``, folded here by hand with no event loop, as in ``test_reducer.py``."""

from __future__ import annotations

from typing import Any

from notebook_workflows import Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import routing
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.state import RunState


class Part(Event):
    n: int


class Aside(Event):
    note: str


class Remote(Workflow):
    @step
    def work(self, ev: StartEvent) -> Part | Aside:
        raise NotImplementedError  # never called: the tests play the steps' part

    @step
    async def side(self, ev: Aside) -> None:
        raise NotImplementedError

    @step
    async def end(self, ev: Part) -> StopEvent:
        raise NotImplementedError


def started_work(checkpointed: bool = True) -> tuple[RunState, Any]:
    state = RunState(Remote._step_specs(), "run-1", "Remote")
    state.start_event = StartEvent()
    routing.route(state, state.start_event)
    state.checkpointed = checkpointed
    out = reduce(state, T.RunStarted(), now=10.0)
    [inv] = [c.inv for c in out if isinstance(c, C.StartInvocation)]
    return state, inv


def returned(inv: Any, *, attempt: int = 1, **parts: Any) -> T.RemoteStepReturned:
    return T.RemoteStepReturned(
        inv,
        attempt,
        parts.get("value"),
        parts.get("stored", {}),
        parts.get("deleted", ()),
        parts.get("effects", ()),
        parts.get("journal", {}),
        parts.get("where", "tcp://worker:1"),
    )


def test_store_changes_come_first_and_the_checkpoint_after_everything_the_step_did() -> None:
    state, inv = started_work()
    out = reduce(
        state,
        returned(
            inv,
            value=Part(n=2),
            stored={"k": 1},
            deleted=("gone",),
            effects=(("stream", Aside(note="hi"), None), ("send", Aside(note="sent"), None)),
            journal={"charge": "receipt"},
        ),
        now=11.0,
    )
    names = [type(c).__name__ for c in out]
    assert names[0] == "ApplyStoreChanges" and out[0] == C.ApplyStoreChanges({"k": 1}, ("gone",))
    checkpoint = names.index("WriteCheckpoint")
    assert out[checkpoint] == C.WriteCheckpoint("step", "work")
    # the stream write is published before the checkpoint; steps fed start after it
    assert names.index("Publish") < checkpoint < names.index("StartInvocation")
    assert [type(e).__name__ for e in inv.produced] == ["Aside", "Part"]
    assert sorted(c.inv.step for c in out if isinstance(c, C.StartInvocation)) == ["end", "side"]
    assert (inv.journal, inv.where, state.steps_done) == (
        {"charge": "receipt"},
        "tcp://worker:1",
        1,
    )


def test_the_finished_record_says_where_the_step_ran() -> None:
    state, inv = started_work(checkpointed=False)
    state.observed = True
    out = reduce(state, returned(inv, value=Part(n=1), where="tcp://10.0.0.7:4000"), now=12.0)
    [finished] = [c.item for c in out if isinstance(c, C.Publish) and not c.stream]
    assert (finished.step, finished.where, finished.duration) == (
        "work",
        "tcp://10.0.0.7:4000",
        2.0,
    )


def test_a_late_attempt_changes_nothing() -> None:
    state, inv = started_work()
    assert reduce(state, returned(inv, attempt=2, value=Part(n=1), stored={"k": 1}), now=0) == []
    assert inv.id in state.in_flight and inv.produced == [] and state.queued == 0


def test_a_send_to_a_step_that_does_not_exist_fails_the_step_with_the_store_untouched() -> None:
    state, inv = started_work()
    out = reduce(
        state,
        returned(inv, value=None, stored={"k": 1}, effects=(("send", Aside(note="x"), "nowhere"),)),
        now=11.0,
    )
    assert not any(isinstance(c, C.ApplyStoreChanges) for c in out)
    [finish] = [c for c in out if isinstance(c, C.FinishRun)]
    assert finish.status == "failed" and "nowhere" in str(finish.error)


def test_a_question_written_to_the_stream_makes_the_run_wait_for_its_answer() -> None:
    from notebook_workflows import HumanResponseEvent, InputRequiredEvent

    class Asks(Workflow):
        @step
        def ask(self, ev: StartEvent) -> InputRequiredEvent | None:
            raise NotImplementedError

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            raise NotImplementedError

    state = RunState(Asks._step_specs(), "run-2", "Asks")
    routing.route(state, StartEvent())
    [inv] = [
        c.inv for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.StartInvocation)
    ]
    question = InputRequiredEvent(prefix="name?")
    reduce(state, returned(inv, effects=(("stream", question, None),)), now=1.0)
    assert state.questions == [question] and state.status == "waiting"
