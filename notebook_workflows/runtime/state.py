"""The scheduler core: what runs next, decided from explicit state.

``RunState`` holds everything a run is made of — a queue of events per step, the invocations in
flight with their input events, the buffers of ``collect_events``, the waiters of
``wait_for_event`` and the questions asked of a human — and its methods are the only way that
state changes. It does no I/O and knows nothing of asyncio: the driver (``_driver.py``) asks it
for the next invocations, runs them, and reports back what they produced.

Keeping the decisions here, as plain data, is what makes the rest fall out of one mechanism:
free running asks for every runnable invocation, stepping asks for exactly one (the oldest queued
event first), a snapshot is this state written down, and resuming is this state read back.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowRuntimeError
from ..events import Event, HumanResponseEvent, InputRequiredEvent, StopEvent
from ..step import StepSpec


class Invocation:
    """One call of one step with one input event.

    A plain class rather than a dataclass: one is made per step run, and setting only the
    four fields that differ (the rest are class-level defaults until changed) is what keeps
    that cheap.
    """

    attempt = 1
    # Events that earlier ``wait_for_event`` calls of this invocation received, by call index:
    # a re-run after a restore gets them back at once instead of waiting again.
    waits: dict[int, Event] | None = None
    wait_calls = 0
    waiting = False
    error: str | None = None
    # driver bookkeeping, not part of a snapshot
    started = 0.0
    first_started = 0.0
    timed_out = False

    def __init__(self, id: int, step: str, event: Event, seq: int, attempt: int = 1) -> None:
        self.id = id
        self.step = step
        self.event = event
        self.seq = seq
        if attempt != 1:
            self.attempt = attempt
        self.produced: list[Event] = []

    def __repr__(self) -> str:
        return (
            f"Invocation({self.id}, {self.step!r}, {type(self.event).__name__}, "
            f"seq={self.seq}, attempt={self.attempt})"
        )


@dataclass(slots=True, eq=False)
class Waiter:
    """A ``wait_for_event`` call suspended until a matching event arrives."""

    invocation: int
    index: int
    types: tuple[type[Event], ...]
    requirements: dict[str, Any]
    question: Event | None = None
    resolved: Event | None = None

    def matches(self, event: Event) -> bool:
        if type(event) not in self.types:
            return False
        return all(event.get(k, _MISSING) == v for k, v in self.requirements.items())


_MISSING = object()


class Changes:
    """What changed in a ``RunState`` since the last checkpoint, kept only while a checkpoint
    store is attached: a checkpoint writes these, not the whole state."""

    __slots__ = ("collected", "dequeued", "invocations", "queued", "uncollected")

    def __init__(self) -> None:
        self.queued: dict[int, tuple[str, Event]] = {}  # seq -> (step, event)
        self.dequeued: set[int] = set()  # seqs that left the queue
        self.invocations: set[int] = set()  # ids of invocations added, changed or finished
        self.collected: dict[tuple[str, int], Event] = {}  # (buffer, seq) -> event
        self.uncollected: set[tuple[str, int]] = set()

    def __bool__(self) -> bool:
        return bool(
            self.queued or self.dequeued or self.invocations or self.collected or self.uncollected
        )


class CollectBuffer:
    """Events handed to ``collect_events`` by one step, by type, oldest first."""

    __slots__ = ("by_type", "seen", "total")

    def __init__(self) -> None:
        self.by_type: dict[type[Event], list[tuple[int, Event]]] = {}
        self.seen: set[int] = set()
        self.total = 0

    def add(self, seq: int, event: Event) -> bool:
        if seq in self.seen:  # the same invocation retried: do not count its event twice
            return False
        self.seen.add(seq)
        self.by_type.setdefault(type(event), []).append((seq, event))
        self.total += 1
        return True

    def take(
        self, expected: Sequence[type[Event]], taken_seqs: list[int] | None = None
    ) -> list[Event] | None:
        # Cheap early exit: in the usual fan-in this returns here on every call but the last.
        if self.total < len(expected):
            return None
        need = Counter(expected)
        for typ, count in need.items():
            if len(self.by_type.get(typ, ())) < count:
                return None
        taken: dict[type[Event], deque[Event]] = {}
        for typ, count in need.items():
            items = self.by_type[typ]
            taken[typ] = deque(ev for _, ev in items[:count])
            for seq, _ in items[:count]:
                self.seen.discard(seq)
                if taken_seqs is not None:
                    taken_seqs.append(seq)
            del items[:count]
            self.total -= count
        return [taken[typ].popleft() for typ in expected]

    def items(self) -> list[tuple[int, Event]]:
        return sorted(
            (item for items in self.by_type.values() for item in items), key=lambda item: item[0]
        )


class RunState:
    """The explicit state of one run and the transitions between its states."""

    def __init__(self, specs: dict[str, StepSpec]) -> None:
        self.specs = specs
        routes: dict[type[Event], list[str]] = {}
        for name, spec in specs.items():
            for typ in spec.accepts:
                routes.setdefault(typ, []).append(name)
        self.routes: dict[type[Event], tuple[str, ...]] = {k: tuple(v) for k, v in routes.items()}
        self.queues: dict[str, deque[tuple[int, Event]]] = {name: deque() for name in specs}
        self.queued = 0
        self.ready: list[Invocation] = []  # existing invocations to (re)start: restored, retried
        self.in_flight: dict[int, Invocation] = {}
        self.busy: dict[str, int] = dict.fromkeys(specs, 0)
        self.collected: dict[str, CollectBuffer] = {}
        self.waiters: list[Waiter] = []
        self.questions: list[Event] = []
        self.seq = 0
        self.next_id = 0
        self.steps_done = 0
        self.stop: StopEvent | None = None
        self.failed: Invocation | None = None
        # statistics for graphs and monitors: runs and seconds per step, event flow per edge
        self.step_runs: dict[str, int] = dict.fromkeys(specs, 0)
        self.step_seconds: dict[str, float] = dict.fromkeys(specs, 0.0)
        # how many events of each type each step produced, and consumed
        self.produced_counts: dict[str, dict[type[Event], int]] = {name: {} for name in specs}
        self.consumed_counts: dict[str, dict[type[Event], int]] = {name: {} for name in specs}
        self._caps = {name: spec.num_workers for name, spec in specs.items()}
        self._kinds: dict[type[Event], object] = {}
        self.changes: Changes | None = None  # tracked only for a checkpoint store

    def drain_changes(self) -> Changes:
        """The changes since the last call (tracking starts with the first call)."""
        changes = self.changes if self.changes is not None else Changes()
        self.changes = Changes()
        return changes

    def touch(self, inv: Invocation) -> None:
        """``inv`` changed outside these methods (an answer arrived for its waiter)."""
        if self.changes is not None:
            self.changes.invocations.add(inv.id)

    # -- routing ------------------------------------------------------------------------------

    def route(
        self, event: Event, target: str | None = None, origin: str | None = None
    ) -> Waiter | None:
        """Deliver ``event``: to a waiter that wants it, or to the queue of every step that
        accepts its exact type (only ``target`` when given). Returns the waiter it resolved."""
        typ = type(event)
        if origin is not None:
            counts = self.produced_counts[origin]
            counts[typ] = counts.get(typ, 0) + 1
        kind = self._kinds.get(typ)
        if kind is None:
            kind = self._kinds[typ] = _kind_of(typ)
        if kind is _STOP:
            if self.stop is None:
                self.stop = event  # type: ignore[assignment]
            return None
        if self.waiters and target is None:
            for waiter in self.waiters:
                if waiter.resolved is None and waiter.matches(event):
                    waiter.resolved = event
                    if waiter.question is not None and waiter.question in self.questions:
                        self.questions.remove(waiter.question)
                    return waiter
        if kind is _QUESTION:
            self.questions.append(event)
        elif kind is _ANSWER and self.questions:
            self.questions.pop(0)
        if target is not None:
            steps: tuple[str, ...] = (self._check_target(typ, target),)
        else:
            steps = self.routes.get(typ, ())
            if not steps:
                if kind is _QUESTION:
                    return None  # a question for the human only
                raise WorkflowRuntimeError(
                    f"no step accepts {typ.__name__}"
                    + (f" (sent by step {origin!r})" if origin else "")
                    + f"; steps accept {_names(self.routes)}"
                )
        queues = self.queues
        changes = self.changes
        for name in steps:
            self.seq += 1
            queues[name].append((self.seq, event))
            if changes is not None:
                changes.queued[self.seq] = (name, event)
        self.queued += len(steps)
        return None

    def _check_target(self, typ: type[Event], target: str) -> str:
        if target not in self.specs:
            raise WorkflowRuntimeError(
                f"send_event(..., step={target!r}): there is no step {target!r}; "
                f"steps are {', '.join(self.specs)}"
            )
        if typ not in self.specs[target].accepts:
            raise WorkflowRuntimeError(
                f"send_event(..., step={target!r}): step {target!r} does not accept "
                f"{typ.__name__} (it accepts {_names(self.specs[target].accepts)})"
            )
        return target

    # -- choosing what runs ---------------------------------------------------------------------

    def take(self, limit: int | None = None) -> list[Invocation]:
        """Start the next invocations, oldest event first, within each step's ``num_workers``.

        Invocations that already exist (restored or retried) come before queued events."""
        started: list[Invocation] = []
        busy, caps = self.busy, self._caps
        changes = self.changes
        if self.ready:
            self.ready.sort(key=lambda inv: inv.seq)
            keep: list[Invocation] = []
            for inv in self.ready:
                if (limit is None or len(started) < limit) and busy[inv.step] < caps[inv.step]:
                    busy[inv.step] += 1
                    started.append(inv)
                else:
                    keep.append(inv)
            self.ready = keep
        queues, in_flight, consumed = self.queues, self.in_flight, self.consumed_counts
        while self.queued and (limit is None or len(started) < limit):
            best: str | None = None
            best_seq = 0
            candidates = 0
            for name, queue in queues.items():
                if queue and busy[name] < caps[name]:
                    candidates += 1
                    if best is None or queue[0][0] < best_seq:
                        best, best_seq = name, queue[0][0]
            if best is None:
                break
            queue = queues[best]
            # With one step to feed, take all it has room for at once (a wide fan-out).
            count = 1
            if candidates == 1:
                count = min(len(queue), caps[best] - busy[best])
                if limit is not None:
                    count = min(count, limit - len(started))
            counts = consumed[best]
            for _ in range(count):
                seq, event = queue.popleft()
                self.next_id += 1
                inv = Invocation(self.next_id, best, event, seq)
                in_flight[inv.id] = inv
                typ = type(event)
                counts[typ] = counts.get(typ, 0) + 1
                started.append(inv)
                if changes is not None:
                    if changes.queued.pop(seq, None) is None:
                        changes.dequeued.add(seq)
                    changes.invocations.add(inv.id)
            self.queued -= count
            busy[best] += count
        return started

    def flow(self) -> dict[tuple[str, str], int]:
        """Event counts per edge of the graph: ``(step, event type)`` for what a step
        produced, ``(event type, step)`` for what it consumed (names, not classes)."""
        edges: dict[tuple[str, str], int] = {}
        for step, counts in self.produced_counts.items():
            for typ, n in counts.items():
                edges[(step, typ.__name__)] = edges.get((step, typ.__name__), 0) + n
        for step, counts in self.consumed_counts.items():
            for typ, n in counts.items():
                edges[(typ.__name__, step)] = edges.get((typ.__name__, step), 0) + n
        return edges

    def finish(self, inv: Invocation, seconds: float) -> None:
        """``inv`` completed; its produced events were routed as they came."""
        self.in_flight.pop(inv.id, None)
        if self.changes is not None:
            self.changes.invocations.add(inv.id)
        self.busy[inv.step] -= 1
        self.steps_done += 1
        self.step_runs[inv.step] += 1
        self.step_seconds[inv.step] += seconds

    def retry_later(self, inv: Invocation, seconds: float) -> None:
        """``inv`` failed and will run again: it keeps its place in flight."""
        self.busy[inv.step] -= 1
        self.step_seconds[inv.step] += seconds
        inv.attempt += 1
        inv.wait_calls = 0
        inv.produced = []
        self.touch(inv)

    def fail(self, inv: Invocation, error: str, seconds: float) -> None:
        """``inv`` failed for good: the run fails, and the invocation stays in flight with its
        input so that a resumed run tries it again."""
        self.busy[inv.step] -= 1
        self.step_seconds[inv.step] += seconds
        inv.error = error
        self.failed = inv
        self.touch(inv)

    def requeue_in_flight(self) -> None:
        """Make every invocation in flight ready to start again (after a restore or a stop)."""
        self.ready = sorted(self.in_flight.values(), key=lambda inv: inv.seq)
        for inv in self.ready:
            inv.error = None
            inv.waiting = False
            inv.wait_calls = 0
            inv.produced = []
            self.touch(inv)
        self.busy = dict.fromkeys(self.specs, 0)
        self.failed = None
        # A waiter belongs to a suspended coroutine, which is gone: the re-run waits (and asks)
        # again, and gets an answer that had already arrived straight back (``waits``).
        for waiter in self.waiters:
            inv = self.in_flight.get(waiter.invocation)
            if inv is not None and waiter.resolved is not None:
                if inv.waits is None:
                    inv.waits = {}
                inv.waits[waiter.index] = waiter.resolved
                self.touch(inv)
            if waiter.question is not None:
                self.questions = [q for q in self.questions if q is not waiter.question]
        self.waiters = []

    def clear_pending(self) -> None:
        """A finished run keeps nothing queued, running or waiting."""
        for queue in self.queues.values():
            queue.clear()
        self.queued = 0
        self.ready.clear()
        self.in_flight.clear()
        self.waiters.clear()
        self.questions.clear()

    # -- collect and wait -----------------------------------------------------------------------

    def collect(
        self, step: str, seq: int, event: Event, expected: Sequence[type[Event]]
    ) -> list[Event] | None:
        buffer = self.collected.get(step)
        if buffer is None:
            buffer = self.collected[step] = CollectBuffer()
        changes = self.changes
        if changes is None:
            buffer.add(seq, event)
            return buffer.take(expected)
        if buffer.add(seq, event):
            changes.collected[(step, seq)] = event
        taken: list[int] = []
        got = buffer.take(expected, taken)
        for taken_seq in taken:
            if changes.collected.pop((step, taken_seq), None) is None:
                changes.uncollected.add((step, taken_seq))
        return got

    def add_waiter(self, waiter: Waiter) -> None:
        self.waiters.append(waiter)
        if waiter.question is not None:
            self.questions.append(waiter.question)

    def drop_waiter(self, waiter: Waiter) -> None:
        if waiter in self.waiters:
            self.waiters.remove(waiter)
        if waiter.question is not None and waiter.question in self.questions:
            self.questions.remove(waiter.question)

    # -- what state the run is in ---------------------------------------------------------------

    def has_work(self) -> bool:
        """Something is queued, ready, or running (not merely waiting for an event)."""
        if self.queued or self.ready:
            return True
        return any(not inv.waiting for inv in self.in_flight.values())

    def is_waiting(self) -> bool:
        """Nothing can run until an event from outside arrives (a human's answer, say)."""
        return not self.has_work() and bool(self.waiters or self.questions)

    def queued_events(self) -> list[tuple[int, str, Event]]:
        """Every queued event as ``(seq, step, event)``, oldest first."""
        items = [(seq, name, ev) for name, q in self.queues.items() for seq, ev in q]
        items.sort(key=lambda item: item[0])
        return items

    def stall_reason(self) -> str:
        parts = ["no event is queued, no step is running and no question waits for an answer"]
        for step, buffer in self.collected.items():
            if buffer.total:
                counts = Counter(type(ev).__name__ for _, ev in buffer.items())
                held = ", ".join(f"{n} x {t}" for t, n in sorted(counts.items()))
                parts.append(f"step {step!r} has collected {held} and is still waiting for more")
        return "; ".join(parts)

    def load_queue(self, items: Iterable[tuple[int, str, Event]]) -> None:
        """Put restored queue entries back (``(seq, step, event)``)."""
        for seq, name, event in sorted(items, key=lambda item: item[0]):
            self.queues[name].append((seq, event))
            self.queued += 1
            self.seq = max(self.seq, seq)


_STOP, _QUESTION, _ANSWER, _PLAIN = object(), object(), object(), object()


def _kind_of(typ: type[Event]) -> object:
    if issubclass(typ, StopEvent):
        return _STOP
    if issubclass(typ, InputRequiredEvent):
        return _QUESTION
    if issubclass(typ, HumanResponseEvent):
        return _ANSWER
    return _PLAIN


def _names(types: Iterable[type]) -> str:
    names = sorted({t.__name__ for t in types})
    return ", ".join(names) if names else "nothing"
