"""Routing and choosing: where an event goes, and which invocation runs next.

These are the scheduling decisions of the reducer, kept in their own room because they are the
hot path: every event of a run passes through ``route`` and every step run through ``take``.
Plain functions of a ``RunState``, with no clock, no I/O and no asyncio; the reducer calls
them and turns what they decided into commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from ..errors import WorkflowRuntimeError, WorkflowStepDoesNotExistError
from ..events import Event, HumanResponseEvent, InputRequiredEvent, StopEvent
from . import joins
from .state import CollectBuffer, Invocation, RunState, Waiter

STOP, QUESTION, ANSWER, PLAIN = "stop", "question", "answer", "plain"


def kind_of(state: RunState, typ: type[Event]) -> str:
    """What ``typ`` is to the run: a stop, a question for a human, an answer, or plain."""
    kind = state.kinds.get(typ)
    if kind is None:
        if issubclass(typ, StopEvent):
            kind = STOP
        elif issubclass(typ, InputRequiredEvent):
            kind = QUESTION
        elif issubclass(typ, HumanResponseEvent):
            kind = ANSWER
        else:
            kind = PLAIN
        state.kinds[typ] = kind
    return kind


def route(
    state: RunState,
    event: Event,
    target: str | None = None,
    origin: str | None = None,
    scope: tuple[int, ...] = (),
    lineage: dict[str, int] | None = None,
) -> Sequence[Waiter]:
    """Deliver ``event``: to a waiter that wants it, or to the queue of every step that
    accepts its exact type (only ``target`` when given). Returns the waiters it resolved: one,
    or for an answer (``HumanResponseEvent``) every waiter it matches, as the peer's parallel
    waiters are all woken by one answer.
    ``scope`` (its fan-out streams) and ``lineage`` (recoveries along its line) go with it
    (see ``joins``); a join step takes it into its buffer instead of its queue.

    A ``StopEvent`` is kept as the run's stop (the first one wins); a question nobody's step
    accepts is only for the human; an event from outside that no step accepts may be kept for a
    waiter to come (``_keep_unclaimed``). Raises ``WorkflowRuntimeError`` when nothing can
    take it.
    """
    typ = type(event)
    if origin is not None:
        counts = state.produced_counts[origin]
        counts[typ] = counts.get(typ, 0) + 1
    kind = kind_of(state, typ)
    if kind is STOP:
        if state.stop is None:
            state.stop = cast(StopEvent, event)  # kind_of found it one
        return NO_WAITERS
    if state.waiters and target is None:
        woken = _wake(state, event, kind)
        if woken:
            return woken
    if kind is QUESTION:
        state.questions.append(event)
    elif kind is ANSWER and state.questions:
        state.questions.pop(0)
    if target is not None:
        steps: tuple[str, ...] = (_check_target(state, typ, target),)
    else:
        steps = state.routes.get(typ, ())
        if not steps and state.subclass_steps:
            steps = state.routes[typ] = tuple(
                name for name, accepts in state.subclass_steps if issubclass(typ, accepts)
            )
        if not steps:
            _untaken(state, event, kind, origin)
            return NO_WAITERS
    if state.joins is not None or lineage:
        joins.deliver(state, event, steps, scope, lineage, target is not None)
        return NO_WAITERS
    queues = state.queues
    changes = state.changes
    state.fed.update(steps)
    for name in steps:
        state.seq += 1
        queues[name].append((state.seq, event))
        if changes is not None:
            changes.queued[state.seq] = (name, event)
    state.queued += len(steps)
    return NO_WAITERS


def _forget_question(state: RunState, question: Event) -> None:
    questions = state.questions
    for i, asked in enumerate(questions):
        if asked is question:
            del questions[i]
            return


def _check_target(state: RunState, typ: type[Event], target: str) -> str:
    if target not in state.specs:
        raise WorkflowStepDoesNotExistError(
            f"send_event(..., step={target!r}): there is no step {target!r}; "
            f"steps are {', '.join(state.specs)}"
        )
    if typ not in state.specs[target].accepts:
        raise WorkflowRuntimeError(
            f"send_event(..., step={target!r}): step {target!r} does not accept "
            f"{typ.__name__} (it accepts {names_of(state.specs[target].accepts)})"
        )
    return target


def check_returned(state: RunState, inv: Invocation, value: Any) -> WorkflowRuntimeError | None:
    """What is wrong with ``value`` as what ``inv``'s step returned, or None."""
    if not isinstance(value, Event):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return WorkflowRuntimeError(
            f"step {inv.step!r} returned {shown} ({type(value).__name__}), which is not an "
            f"event; return an Event, or None to produce nothing"
        )
    spec = state.specs[inv.step]
    typ = type(value)
    if typ not in spec.produces and not issubclass(typ, spec.produces):
        return WorkflowRuntimeError(
            f"step {inv.step!r} returned {typ.__name__}, which its return annotation does "
            f"not declare ({spec.signature_text()})"
        )
    return None


def take(state: RunState, now: float, limit: int | None = None) -> list[Invocation]:
    """Start the next invocations, oldest event first, within each step's ``num_workers``.

    Invocations that already exist (restored or retried) come before queued events."""
    started: list[Invocation] = []
    busy, caps = state.busy, state.caps
    changes = state.changes
    if state.ready:
        state.ready.sort(key=lambda inv: inv.seq)
        keep: list[Invocation] = []
        for inv in state.ready:
            if (limit is None or len(started) < limit) and busy[inv.step] < caps[inv.step]:
                busy[inv.step] += 1
                inv.started = now
                if not inv.first_started:  # restored: its retries count from here
                    inv.first_started = now
                started.append(inv)
            else:
                keep.append(inv)
        state.ready = keep
    if not state.queued:
        return started
    queues, in_flight, consumed = state.queues, state.in_flight, state.consumed_counts
    room = -1 if limit is None else limit - len(started)  # -1: no limit
    while state.queued and room:
        best: str | None = None
        best_seq = 0
        candidates = 0
        for name in state.fed:
            if busy[name] < caps[name]:
                seq = queues[name][0][0]
                candidates += 1
                if best is None or seq < best_seq or (seq == best_seq and name < best):
                    best, best_seq = name, seq
        if best is None:
            break
        queue = queues[best]
        # With one step to feed, take all it has room for at once (a wide fan-out).
        count = min(len(queue), caps[best] - busy[best]) if candidates == 1 else 1
        if 0 < room < count:
            count = room
        counts = consumed[best]
        next_id = state.next_id
        for _ in range(count):
            seq, event = queue.popleft()
            next_id += 1
            inv = Invocation(next_id, best, event, seq)
            inv.started = inv.first_started = now
            in_flight[next_id] = inv
            typ = event.__class__
            counts[typ] = counts.get(typ, 0) + 1
            started.append(inv)
            if changes is not None:
                if changes.queued.pop(seq, None) is None:
                    changes.dequeued.add(seq)
                changes.invocations.add(next_id)
        state.next_id = next_id
        if not queue:
            state.fed.discard(best)
        state.queued -= count
        busy[best] += count
        if room > 0:
            room -= count
    return started


def collect(
    state: RunState, inv: Invocation, event: Event, expected: Sequence[type[Event]], buffer: str
) -> list[Event] | None:
    """``ctx.collect_events``: buffer ``event``; once every ``expected`` type has arrived,
    return them in the order of ``expected`` and empty their places, else None."""
    if event is inv.event:
        seq = inv.seq
    else:  # an event the step made up itself: give it a place of its own
        state.seq += 1
        seq = state.seq
    store = state.collected.get(buffer)
    if store is None:
        store = state.collected[buffer] = CollectBuffer()
    changes = state.changes
    if changes is None:
        store.add(seq, event)
        return store.take(expected)
    if store.add(seq, event):
        changes.collected[(buffer, seq)] = event
    taken: list[int] = []
    got = store.take(expected, taken)
    for taken_seq in taken:
        if changes.collected.pop((buffer, taken_seq), None) is None:
            changes.uncollected.add((buffer, taken_seq))
    return got


def requeue_in_flight(state: RunState) -> None:
    """Make every invocation in flight ready to start again (a restored or stopped run goes
    on): each re-runs from its start with its input event (at-least-once)."""
    state.ready = sorted(state.in_flight.values(), key=lambda inv: inv.seq)
    for inv in state.ready:
        inv.error = None
        inv.waiting = False
        inv.timed_out = False
        inv.wait_calls = 0
        inv.produced = []
        state.touch(inv)
    state.waiting = 0
    state.retrying.clear()
    state.asked.clear()
    state.busy = dict.fromkeys(state.specs, 0)
    state.failed = None
    # A waiter belongs to a suspended coroutine, which is gone: the re-run waits (and asks)
    # again, and gets an answer that had already arrived straight back (``waits``).
    for waiter in state.waiters:
        owner = state.in_flight.get(waiter.invocation)
        if owner is not None and waiter.resolved is not None:
            if owner.waits is None:
                owner.waits = {}
            owner.waits[waiter.index] = waiter.resolved
            state.touch(owner)
        if waiter.question is not None:
            _forget_question(state, waiter.question)
    for waiter, event in state.answered:
        owner = state.in_flight.get(waiter.invocation)
        if owner is not None:
            if owner.waits is None:
                owner.waits = {}
            owner.waits[waiter.index] = event
    state.answered.clear()
    state.waiters = []


NO_WAITERS: tuple[Waiter, ...] = ()
_UNCLAIMED_KEPT = 16  # the most unclaimed answers kept; older ones are dropped


def _wake(state: RunState, event: Event, kind: str) -> list[Waiter]:
    """The waiters ``event`` resolves: the first that matches it, or every one for an
    answer."""
    woken = []
    for waiter in state.waiters:
        if waiter.resolved is None and waiter.matches(event):
            waiter.resolved = event
            if waiter.question is not None:
                _forget_question(state, waiter.question)
            woken.append(waiter)
            if kind is not ANSWER:
                break
    return woken


def _untaken(state: RunState, event: Event, kind: str, origin: str | None) -> None:
    """``event`` goes to no step: a question is for the human only; an event from outside may
    be kept for a waiter to come (``_keep_unclaimed``); an answer nothing wants is dropped, as
    the peer drops it; anything else raises ``WorkflowRuntimeError`` naming the event."""
    from_outside = origin is None and kind is not QUESTION and not state.finished
    running = state.queued or len(state.in_flight) > state.waiting
    if from_outside and (kind is ANSWER or running):
        _keep_unclaimed(state, event)  # a step may still wait for it
        return
    if kind is QUESTION or kind is ANSWER:
        return
    raise WorkflowRuntimeError(
        f"no step accepts {type(event).__name__}"
        + (f" (sent by step {origin!r})" if origin else "")
        + f"; steps accept {names_of(state.routes)}"
    )


def _keep_unclaimed(state: RunState, event: Event) -> None:
    """An event sent from outside that no step accepts and no waiter wants yet: an answer
    (sent right after a restore, before the step that asked has asked again), or an event a
    running step is about to ``wait_for_event`` (sent right after ``run()``). The next waiter
    it matches takes it (``claim``). With no step running or queued (those waiting for
    something else do not count), an event no step accepts is refused: nothing is about to
    wait for it."""
    state.unclaimed.append(event)
    del state.unclaimed[:-_UNCLAIMED_KEPT]


def claim(state: RunState, waiter: Waiter) -> Event | None:
    """The oldest unclaimed answer ``waiter`` matches, taken out of the run, or None."""
    for i, event in enumerate(state.unclaimed):
        if waiter.matches(event):
            del state.unclaimed[i]
            waiter.resolved = event
            if waiter.question is not None:
                _forget_question(state, waiter.question)
            return event
    return None


def add_waiter(state: RunState, inv: Invocation, waiter: Waiter) -> None:
    state.waiters.append(waiter)
    if waiter.question is not None:
        state.questions.append(waiter.question)
    if not inv.waiting:
        inv.waiting = True
        state.waiting += 1


def drop_waiter(state: RunState, inv: Invocation, waiter: Waiter) -> None:
    waiters = state.waiters
    for i, known in enumerate(waiters):
        if known is waiter:
            del waiters[i]
            break
    if waiter.question is not None:
        _forget_question(state, waiter.question)
    if inv.waiting:
        inv.waiting = False
        state.waiting -= 1


def names_of(types: Iterable[type]) -> str:
    names = sorted({t.__name__ for t in types})
    return ", ".join(names) if names else "nothing"
