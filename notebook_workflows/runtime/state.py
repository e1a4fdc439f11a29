"""RunState: everything one run is made of, as plain data.

A run is a queue of events per step, the invocations in flight with their input events, the
buffers of ``collect_events`` and of join steps, the fan-out streams still open and the lines
of recoveries (``joins.py``), the waiters of ``wait_for_event``, the questions asked of a
human, its status and its counters. This module holds that data and nothing that decides: what
happens next is decided by the reducer (``reducer.py``, with ``routing.py``), which is the only
code that changes a ``RunState`` during a run. A snapshot is this state written down
(``snapshot.py``), and resuming is this state read back and handed to the reducer again.

The classes are plain, mutable and slotted rather than frozen: one ``Invocation`` is made per
step run, and the scheduler's hot path (a chain of steps at a few microseconds each) cannot
afford to copy the state at every transition. The reducer mutates the state it is given and
returns the commands; a test that wants to compare before and after takes a ``copy.deepcopy``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..collect import Take
from ..events import Event, Gathered, StartEvent, StopEvent
from ..step import StepSpec

STATUSES = ("new", "running", "waiting", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})


class Invocation:
    """One call of one step with one input event.

    A plain class rather than a dataclass: one is made per step run, and setting only the
    fields that differ (the rest are class-level defaults until changed) keeps that cheap.
    """

    attempt = 1
    # Events that earlier ``wait_for_event`` calls of this invocation received, by call index:
    # a re-run after a restore gets them back at once instead of waiting again.
    waits: dict[int, Event] | None = None
    # ``ctx.once`` results by name, as tagged JSON: a re-run gets them instead of calling again
    journal: dict[str, Any] | None = None
    wait_calls = 0
    waiting = False
    error: str | None = None
    started = 0.0  # when the current attempt started (the reducer's clock)
    first_started = 0.0  # when the first attempt started: retry policies count from it
    timed_out = False  # the current attempt ran past the step's timeout
    last_error: BaseException | None = None  # what the previous attempt raised
    failed_at = 0.0  # when an attempt last failed (the reducer's clock)
    # -- what a rerun needs to replay it (kept only while a checkpoint store records the run)
    writes: dict[str, Any] | None = None  # store key -> encoded value it set (None: deleted)
    reads: dict[str, Any] | None = (
        None  # store key -> encoded value at its first read (None: absent)
    )
    streamed: list[Event] | None = None  # events it wrote to the stream
    targets: dict[int, str] | None = None  # id of a produced event -> the step it was sent to
    collects = False  # it called ctx.collect_events: its buffer cannot be replayed
    replayed = False  # a rerun applied its recorded effects instead of calling the step
    ran_because = ""  # why a rerun called the step instead of replaying it
    input_key: str | None = None  # the digest of its input a rerun looked it up by
    where = ""  # where it last ran, if not in the run's process (a Dask worker's address)

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


class PendingFailure(NamedTuple):
    """A failed attempt whose step's retry policy the reducer has asked (``AskRetryPolicy``):
    what it raised and when. The rest of the failure is decided when the answer comes."""

    error: BaseException
    at: float


class PendingDivert(NamedTuple):
    """A rerun's invocations about to start (``replay.divert``), gone through up to
    ``started[position]``, whose step's ``cache_key`` the reducer has asked (``AskCacheKey``);
    ``real`` are those found so far to run rather than be replayed."""

    started: list[Invocation]
    position: int
    real: list[Invocation]


class Changes:
    """What changed in a ``RunState`` since the last checkpoint, kept only while a checkpoint
    store is attached: a checkpoint writes these, not the whole state."""

    __slots__ = (
        "answers",
        "collected",
        "completed",
        "dequeued",
        "invocations",
        "queued",
        "uncollected",
    )

    def __init__(self) -> None:
        self.queued: dict[int, tuple[str, Event]] = {}  # seq -> (step, event)
        self.dequeued: set[int] = set()  # seqs that left the queue
        self.invocations: set[int] = set()  # ids of invocations added, changed or finished
        self.collected: dict[tuple[str, int], Event] = {}  # (buffer, seq) -> event
        self.uncollected: set[tuple[str, int]] = set()
        self.completed: list[Invocation] = []  # invocations that completed, in order
        self.answers: list[tuple[Event, Event]] = []  # (question, answer) sent from outside

    def __bool__(self) -> bool:
        return bool(
            self.queued
            or self.dequeued
            or self.invocations
            or self.collected
            or self.uncollected
            or self.answers
        )


class CollectBuffer:
    """Events handed to ``collect_events`` by one step, by type, oldest first.

    Checking whether the buffer can satisfy ``expected`` costs O(1) per arriving event until it
    holds as many events as ``expected`` lists: a fan-in of ``m`` events against a list of ``m``
    types (built once by the workflow) is linear in ``m``, not quadratic. The counts of the last
    ``expected`` list are kept, found again by identity.
    """

    __slots__ = ("_need", "by_type", "seen", "total")

    def __init__(self) -> None:
        self.by_type: dict[type[Event], list[tuple[int, Event]]] = {}
        self.seen: set[int] = set()
        self.total = 0
        self._need: tuple[Sequence[type[Event]], int, Counter[type[Event]]] | None = None

    def add(self, seq: int, event: Event) -> bool:
        if seq in self.seen:  # the same invocation retried: do not count its event twice
            return False
        self.seen.add(seq)
        self.by_type.setdefault(type(event), []).append((seq, event))
        self.total += 1
        return True

    def _counts(self, expected: Sequence[type[Event]]) -> Counter[type[Event]]:
        need = self._need
        if need is not None and need[0] is expected and need[1] == len(expected):
            return need[2]
        counts = Counter(expected)
        self._need = (expected, len(expected), counts)
        return counts

    def take(
        self, expected: Sequence[type[Event]], taken_seqs: list[int] | None = None
    ) -> list[Event] | None:
        if self.total < len(expected):  # the usual fan-in returns here on all but the last
            return None
        need = self._counts(expected)
        by_type = self.by_type
        for typ, count in need.items():
            if len(by_type.get(typ, ())) < count:
                return None
        taken: dict[type[Event], deque[Event]] = {}
        for typ, count in need.items():
            items = by_type[typ]
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


# -- joins: the data of fan-out streams and join steps (what happens to it: joins.py) -------


class Stream:
    """One fan-out's members on their way: who opened it, in which scope, what is still open."""

    __slots__ = ("id", "open", "released", "scope", "source")

    def __init__(self, id: int, source: str, scope: tuple[int, ...], open: int = 0) -> None:
        self.id = id
        self.source = source  # the step whose list return opened it
        self.scope = scope  # the scope it was opened in: where its releases are queued
        self.open = open  # work items of this stream still queued or running
        self.released: set[str] = set()  # collect steps already released (Take)

    def __repr__(self) -> str:
        return f"Stream({self.id}, {self.source!r}, scope={self.scope}, open={self.open})"


class Joins:
    """The join state of one run: bindings (fixed by the workflow), streams and scopes."""

    def __init__(self, specs: dict[str, StepSpec]) -> None:
        self.bindings = bind(specs)
        # several event parameters: the slot types, in order (one list, kept for CollectBuffer)
        self.multi: dict[str, list[type[Event]]] = {}
        self.names: dict[str, tuple[str, ...]] = {}  # join step -> its event parameters
        self.take: dict[str, int | None] = {}  # collect step -> n of Take(n), None for All
        for name, spec in specs.items():
            if not spec.gather:
                continue
            self.names[name] = tuple(slot for slot, _ in spec.gather)
            if spec.collect is None:
                self.multi[name] = [types_[0] for _, types_ in spec.gather]
            else:
                card = spec.collect.cardinality
                self.take[name] = card.n if isinstance(card, Take) else None
        self.streams: dict[int, Stream] = {}
        self.scopes: dict[int, tuple[int, ...]] = {}  # queue seq -> its stream ids
        self.next_stream = 0

    def clear(self) -> None:
        self.streams.clear()
        self.scopes.clear()


def bind(specs: dict[str, StepSpec]) -> dict[str, tuple[str, ...]]:
    """Which collect steps each fan-out producer's streams release, from the signatures.

    A producer's *level* is every event type reachable from what it returns through ordinary
    steps; a nested producer met on the way contributes what its own bound collect steps
    return (its members live one level down). A collect step is bound to a producer when one
    of its element types is on the producer's level.
    """
    collects = {n: s for n, s in specs.items() if s.collect is not None}
    if not collects:
        return {}

    def takes(spec: StepSpec, typ: type) -> bool:
        if typ in spec.accepts:
            return True
        return spec.accept_event_subclasses and issubclass(typ, spec.accepts)

    def level(seeds: Iterable[type], guard: frozenset[str]) -> set[type]:
        seen: set[type] = set()
        todo = list(seeds)
        while todo:
            typ = todo.pop()
            if typ in seen:
                continue
            seen.add(typ)
            for name, spec in specs.items():
                if spec.collect is not None or not takes(spec, typ):
                    continue
                if spec.fans_out:
                    if name not in guard:
                        todo.extend(surfaced(name, guard | {name}))
                else:
                    todo.extend(spec.produces)
        return seen

    def bound(name: str, guard: frozenset[str]) -> list[str]:
        inside = level(specs[name].produces, guard)
        return [c for c, s in collects.items() if any(t in inside for t in s.accepts)]

    def surfaced(name: str, guard: frozenset[str]) -> set[type]:
        out: set[type] = set()
        for c in bound(name, guard):
            if not specs[c].fans_out:
                out.update(specs[c].produces)
            elif c not in guard:
                out |= surfaced(c, guard | {c})
        return out

    return {name: tuple(bound(name, frozenset({name}))) for name, s in specs.items() if s.fans_out}


class RunState:
    """The explicit state of one run. Only the reducer changes it while the run goes on."""

    def __init__(
        self, specs: dict[str, StepSpec], run_id: str | None = None, workflow_name: str = ""
    ) -> None:
        self.specs = specs
        self.workflow_name = workflow_name
        routes: dict[type[Event], list[str]] = {}
        for name, spec in specs.items():
            for typ in spec.accepts:
                routes.setdefault(typ, []).append(name)
        self.routes: dict[type[Event], tuple[str, ...]] = {k: tuple(v) for k, v in routes.items()}
        self.caps = {name: spec.num_workers for name, spec in specs.items()}
        # steps that also take subclasses of what they accept (their routes are found lazily)
        # which @catch_error handler takes the failures of which step, and how often
        handlers = [spec for spec in specs.values() if spec.catches]
        wildcard = next((h.name for h in handlers if h.catch_for is None), None)
        self.catchers: dict[str, str] = {}
        for name, spec in specs.items():
            if not spec.catches:
                named = next((h.name for h in handlers if name in (h.catch_for or ())), None)
                catcher = named or wildcard
                if catcher:
                    self.catchers[name] = catcher
        self.max_recoveries = {h.name: h.max_recoveries for h in handlers}
        self.recoveries: dict[str, int] = {}  # handler -> how many failures it took in all
        # queue seq -> recoveries per handler along the line of events that led to it; a
        # handler recovers while its count on the failed event's line is below its maximum
        self.lineage: dict[int, dict[str, int]] = {}
        # steps with several event parameters or a list[E] one, and fan-out streams (joins.py)
        self.joins: Joins | None = None
        if any(spec.gather for spec in specs.values()):
            self.joins = Joins(specs)
        self.subclass_steps = tuple(
            (name, spec.accepts) for name, spec in specs.items() if spec.accept_event_subclasses
        )
        # step -> its timeout, for the steps that have one
        self.timed = {
            name: spec.timeout for name, spec in specs.items() if spec.timeout is not None
        }
        self.kinds: dict[type[Event], str] = {}  # event type -> its kind (see routing)
        self.run_id = run_id
        self.status = "new"
        self.start_event: StartEvent | None = None  # what the run started with, recorded
        # the start event as a snapshot keeps it: a digest per field (``fields_digest``)
        self.start_digest: dict[str, Any] | None = None
        # -- what is queued, running and waiting
        self.queues: dict[str, deque[tuple[int, Event]]] = {name: deque() for name in specs}
        self.queued = 0
        self.fed: set[str] = set()  # the steps whose queue holds something: take looks there
        self.ready: list[Invocation] = []  # existing invocations to (re)start: restored, retried
        self.in_flight: dict[int, Invocation] = {}
        self.waiting = 0  # invocations of in_flight suspended in wait_for_event
        self.retrying: set[int] = set()  # invocations whose retry timer runs
        # invocation id -> what the reducer waits for an answer about from user code (a retry
        # policy, a cache_key): empty between the driver's turns, which answer at once
        self.asked: dict[int, PendingFailure | PendingDivert] = {}
        self.busy: dict[str, int] = dict.fromkeys(specs, 0)
        self.collected: dict[str, CollectBuffer] = {}
        self.waiters: list[Waiter] = []
        # answers sent from outside that no waiter wanted yet (a run just restored, whose
        # step has not asked again): the next waiter they match takes them
        self.unclaimed: list[Event] = []
        self.questions: list[Event] = []
        self.seq = 0
        self.next_id = 0
        # -- how the run is driven
        self.stepwise = False
        self.stepping: tuple[int, int] | None = None  # (invocation id, produced mark) of step()
        self.answered: deque[tuple[Waiter, Event]] = deque()  # answers held while stepping
        self.checkpointed = False
        self.observed = False  # someone listens: make lifecycle records
        self.timeout: float | None = None
        self.budget: float | None = None  # run time left, seconds
        self.clock_since: float | None = None  # when the run clock last started
        # -- the outcome
        self.steps_done = 0
        self.stop: StopEvent | None = None
        self.failed: Invocation | None = None
        self.error: BaseException | None = None
        self.detail = ""  # why the run ended, in words
        self.stalled = ""  # what holds a run that has nothing to run and asks nobody, if so
        self.cancelled_by_user = False  # cancel() / cancel_run(), not an interrupt
        self.timed_out_run: tuple[str, ...] = ()  # steps running when the run's timeout hit
        self.last: Invocation | None = None  # the last completed invocation (for displays)
        # -- statistics for graphs and monitors: runs and seconds per step, flow per edge
        self.step_runs: dict[str, int] = dict.fromkeys(specs, 0)
        self.step_seconds: dict[str, float] = dict.fromkeys(specs, 0.0)
        self.produced_counts: dict[str, dict[type[Event], int]] = {name: {} for name in specs}
        self.consumed_counts: dict[str, dict[type[Event], int]] = {name: {} for name in specs}
        self.changes: Changes | None = None  # tracked only for a checkpoint store
        # -- rerun and cache: recorded effects to replay instead of calling steps (a
        # ``replay.ReplayTable``), and how many invocations of each step were replayed
        self.replay: Any = None
        self.step_replays: dict[str, int] = dict.fromkeys(specs, 0)
        self.ran_because: dict[str, str] = {}  # step -> why its last call ran, not replayed

    # -- reading --------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def has_work(self) -> bool:
        """Something is queued, ready, retrying or running (not merely waiting for an event)."""
        return bool(
            self.queued or self.ready or self.answered or len(self.in_flight) > self.waiting
        )

    def is_waiting(self) -> bool:
        """Nothing can run until an event from outside arrives (a human's answer, say)."""
        return not self.has_work() and bool(self.waiters or self.questions)

    def queued_events(self) -> list[tuple[int, str, Event]]:
        """Every queued event as ``(seq, step, event)``, oldest first."""
        items = [(seq, name, ev) for name, q in self.queues.items() for seq, ev in q]
        items.sort(key=lambda item: item[0])
        return items

    def flow(self) -> dict[tuple[str, str], int]:
        """Event counts per edge of the graph: ``(step, event type)`` for what a step
        produced, ``(event type, step)`` for what it consumed (names, not classes)."""
        edges: dict[tuple[str, str], int] = {}
        for step, counts in self.produced_counts.items():
            for typ, n in counts.items():
                edges[(step, typ.__name__)] = edges.get((step, typ.__name__), 0) + n
        for step, counts in self.consumed_counts.items():
            for typ, n in counts.items():
                if typ is Gathered:  # a join's run: its inputs were counted as they arrived
                    continue
                edges[(typ.__name__, step)] = edges.get((typ.__name__, step), 0) + n
        return edges

    def stall_reason(self) -> str:
        parts = ["no event is queued, no step is running and no question waits for an answer"]
        for step, buffer in self.collected.items():
            if buffer.total:
                counts = Counter(type(ev).__name__ for _, ev in buffer.items())
                held = ", ".join(f"{n} x {t}" for t, n in sorted(counts.items()))
                parts.append(f"step {step!r} has collected {held} and is still waiting for more")
        return "; ".join(parts)

    # -- bookkeeping the reducer and the snapshot loader share ---------------------------------

    def drain_changes(self) -> Changes:
        """The changes since the last call (tracking starts with the first call)."""
        changes = self.changes if self.changes is not None else Changes()
        self.changes = Changes()
        return changes

    def touch(self, inv: Invocation) -> None:
        """``inv`` changed: a checkpoint must write it again."""
        if self.changes is not None:
            self.changes.invocations.add(inv.id)

    def load_queue(self, items: Sequence[tuple[int, str, Event]]) -> None:
        """Put restored queue entries back (``(seq, step, event)``)."""
        for seq, name, event in sorted(items, key=lambda item: item[0]):
            self.queues[name].append((seq, event))
            self.fed.add(name)
            self.queued += 1
            self.seq = max(self.seq, seq)

    def clear_pending(self) -> None:
        """A finished run keeps nothing queued, running or waiting."""
        for queue in self.queues.values():
            queue.clear()
        self.fed.clear()
        self.queued = 0
        self.ready.clear()
        self.in_flight.clear()
        self.waiting = 0
        self.retrying.clear()
        self.asked.clear()
        self.waiters.clear()
        self.questions.clear()
        self.answered.clear()
        self.lineage.clear()
        if self.joins is not None:
            self.joins.clear()
