"""Replay: running a step by applying what it did before, instead of calling it.

``Workflow.rerun(run_id)`` (and ``run(cache=store)``) hands the new run a ``ReplayTable``: for
each step, the effects recorded for each call of it (the events it emitted, what it wrote to
the stream, the store keys it set or deleted), found by the step's code hash and a digest of
its input event. When the reducer is about to start an invocation (``outcome.advance``),
``divert`` looks it up: a step whose code is the same and whose input event is the same as in
the recorded call is not started; a ``ReplayStep`` command goes to the driver instead, which
writes the recorded store values and hands back ``StepReplayed``, and the reducer applies the
emitted and streamed events in that one transition and marks the invocation replayed. Every
other invocation starts as usual, with the reason it was not replayed (``ran_because``).

The rules, decided here and nowhere else:

* a step marked ``@step(replay=False)`` always runs;
* a table made for ``run(cache=store)`` (``cache_only``) replays only steps marked
  ``@step(cache=True)``;
* the input is the encoded input event, or the encoded ``cache_key(event)`` of a step that has
  one (events with equal keys count as the same input); a ``cache_key`` is user code, which
  the reducer asks the driver to call (``AskCacheKey``, answered by ``InputKeyed``): ``divert``
  stops there and ``keyed`` goes on with the answer, so the order of what starts and what is
  replayed is the one it would have been;
* a recorded call that cannot be replayed safely is kept as its reason, and the step runs: a
  step that called ``ctx.collect_events`` (the buffer it fed would be missing what a replay
  skips);
* recorded calls of one step with one input are used once each, oldest first;
* a workflow with joins (``list[E]`` or several event parameters) or a run that counts
  recoveries along lines of events runs every step: the fan-out streams and lines a replay
  would have to rebuild are not recorded;
* a step that runs (edited, or unsafe to replay) with the same input as a recorded call gets
  that call's ``ctx.once`` results: ``ctx.once`` returns them instead of calling again;
* a question for a human (an ``InputRequiredEvent``) that the recorded run asked and had
  answered from outside is answered with the recorded answer when the rerun asks it again (a
  step that asks and runs for real, or a replayed step that returned the question), oldest
  recorded answer first, matched by the question's digest (``answer_questions``).

This module is part of the engine: plain data and functions, no I/O and no asyncio. Building a
table from a checkpoint store's history is the durable layer's work (``checkpoint.rerun``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic_core import to_json

from ..events import Event
from ..serialization import encode, encode_event
from . import routing
from .commands import AskCacheKey, Command, ReplayStep, ResolveWaiter
from .state import Invocation, PendingDivert, RunState

__all__ = ["Effects", "ReplayTable", "divert", "input_key", "keyed"]


class Effects(NamedTuple):
    """What one recorded call of a step did: the events it emitted (each with the step it was
    sent to, or None), the events it wrote to the stream, and the store keys it set (encoded
    values) or deleted (None), in the order recorded."""

    events: tuple[tuple[Event, str | None], ...] = ()
    stream: tuple[Event, ...] = ()
    writes: dict[str, Any] | None = None
    run_id: str = ""  # the run that recorded it
    # store key -> what it read: a digest ("": absent), or a number or bool as it was
    reads: dict[str, Any] | None = None


def input_key(key_fn: Callable[[Any], Any] | None, event: Event, encoded: Any = None) -> str:
    """The digest that identifies a step's input: of the encoded event, or of the encoded
    ``key_fn(event)`` when the step has a ``cache_key``. Raises what encoding or ``key_fn``
    raises. Equal events encode alike (fields in their declared order), so they have equal
    digests; a mapping whose keys were inserted in another order counts as another input,
    which only makes the step run. ``encoded`` is ``encode_event(event)`` if known."""
    if key_fn is None:
        data: Any = encoded if encoded is not None else encode_event(event)
    else:
        data = {"key": encode(key_fn(event), path="cache_key")}
    return hashlib.blake2b(to_json(data), digest_size=12).hexdigest()


class ReplayTable:
    """Recorded calls to replay, by step and input digest (see the module docstring).

    ``codes`` are the code hashes of the workflow's steps now; recorded calls of another code
    are not kept (their step changed) but remembered as the reason it runs."""

    def __init__(self, codes: dict[str, str], *, cache_only: bool = False) -> None:
        self.codes = codes
        self.cache_only = cache_only
        self.calls: dict[tuple[str, str], deque[Effects | str]] = {}
        self.misses: dict[str, str] = {}  # step -> why a call not found in the table runs
        self.answers: dict[str, deque[Event]] = {}  # question digest -> recorded answers
        # (step, input digest) -> the ``ctx.once`` results of recorded calls, whatever their code
        self.journals: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        # key -> the digest of the store's value now (``Store._read_digest``), given by the run
        # that uses the table: a call is replayed only if what it read is still there
        self.read_digest: Callable[[str], Any] | None = None

    def __len__(self) -> int:
        return sum(len(calls) for calls in self.calls.values())

    def __repr__(self) -> str:
        return f"<ReplayTable of {len(self)} recorded calls>"

    def add(
        self,
        step: str,
        code: str,
        key: str | None,
        recorded: Effects | str,
        journal: dict[str, Any] | None = None,
    ) -> None:
        """Keep one recorded call of ``step`` (its ``code`` hash and input ``key``): its
        effects, or the reason it cannot be replayed, and its ``ctx.once`` results."""
        now = self.codes.get(step)
        if now is None:
            return  # the step is gone
        if journal and key is not None and not self.cache_only:
            self.journals.setdefault((step, key), deque()).append(journal)
        if not code or code != now:
            self.misses.setdefault(step, "its code changed since the recorded run")
            return
        self.misses[step] = "no recorded call of it had this input event"
        if key is None:
            return
        self.calls.setdefault((step, key), deque()).append(recorded)

    def _changed_reads(self, effects: Effects) -> list[str]:
        """The store keys whose value now differs from what the recorded call read."""
        now = self.read_digest
        if not effects.reads or now is None:
            return []
        return sorted(key for key, was in effects.reads.items() if not _same_read(now(key), was))

    def add_answer(self, question: str, answer: Event) -> None:
        """Keep an answer the recorded run was sent for the question of digest ``question``."""
        self.answers.setdefault(question, deque()).append(answer)

    def must_run(self, state: RunState, inv: Invocation) -> str | None:
        """Why ``inv`` runs whatever its input is, or None: its input decides."""
        spec = state.specs[inv.step]
        if not spec.replay:
            return "it is marked @step(replay=False)"
        if self.cache_only and not spec.cache:
            return "it is not marked @step(cache=True)"
        if not self.calls and not self.journals:
            return self.misses.get(inv.step, "the recorded run never called it")
        return None

    def take(self, inv: Invocation, key: str | None, problem: str = "") -> Effects | str:
        """The recorded effects to replay for ``inv``, whose input digest is ``key`` (used
        up), or why it must run (``problem``: why its input could not be keyed)."""
        if key is None:  # a key function that fails: the step runs and says why
            return f"its input could not be keyed ({problem})"
        inv.input_key = key  # the record of this call need not compute it again
        journals = self.journals.get((inv.step, key))
        journal = journals.popleft() if journals else None
        calls = self.calls.get((inv.step, key))
        found: Effects | str = (
            calls.popleft()
            if calls
            else self.misses.get(inv.step, "the recorded run never called it")
        )
        if calls is not None and not calls:
            del self.calls[(inv.step, key)]
        if not isinstance(found, str):
            changed = self._changed_reads(found)
            if changed:
                found = f"the store values it read changed ({', '.join(changed)})"
        if journal and found.__class__ is str:
            # a step that runs again with the same input gets its recorded ctx.once results:
            # what it did once outside the run (a payment, a message) is not done again
            inv.journal = dict(journal)
        return found


def _same_read(now: Any, was: Any) -> bool:
    """Digests, or numbers and bools kept as they are: ``1``, ``1.0`` and ``True`` differ."""
    return type(now) is type(was) and now == was


def divert(
    state: RunState, started: list[Invocation], out: list[Command]
) -> list[Invocation] | None:
    """Of the invocations about to start, replay those the table has (a ``ReplayStep`` each)
    and return the rest, each with the reason it runs. None when it stopped to ask a step's
    ``cache_key`` (``AskCacheKey``): ``keyed`` goes on with the answer."""
    return _divert(state, started, 0, [], out)


def keyed(
    state: RunState, inv_id: int, key: str | None, problem: str, out: list[Command]
) -> list[Invocation] | None:
    """The ``cache_key`` asked for invocation ``inv_id`` answered: go on with the divert it
    stopped. None if nobody waits for it, or it stopped to ask again."""
    pending = state.asked.pop(inv_id, None)
    if not isinstance(pending, PendingDivert) or state.finished:
        return None
    started, index, real = pending
    _apply(state, started[index], state.replay.take(started[index], key, problem), real, out)
    return _divert(state, started, index + 1, real, out)


def _divert(
    state: RunState,
    started: list[Invocation],
    index: int,
    real: list[Invocation],
    out: list[Command],
) -> list[Invocation] | None:
    table: ReplayTable = state.replay
    for i in range(index, len(started)):
        inv = started[i]
        found: Effects | str | None
        if state.joins is not None or state.lineage:
            # fan-out streams, joins and lines of recoveries are not rebuilt by a replay
            found = "the workflow has joins or counted recoveries, which a replay does not rebuild"
        else:
            found = table.must_run(state, inv)
        if found is None:
            spec = state.specs[inv.step]
            if spec.cache_key is not None:  # user code: the driver keys it
                state.asked[inv.id] = PendingDivert(started, i, real)
                out.append(AskCacheKey(inv.id, inv.step, inv.event))
                return None
            try:
                key: str | None = input_key(None, inv.event)
                problem = ""
            except Exception as exc:  # an input that cannot be encoded: it runs, saying why
                key, problem = None, f"{type(exc).__name__}: {exc}"
            found = table.take(inv, key, problem)
        _apply(state, inv, found, real, out)
    return real


def _apply(
    state: RunState,
    inv: Invocation,
    found: Effects | str,
    real: list[Invocation],
    out: list[Command],
) -> None:
    """Replay ``inv`` (``found``, its recorded effects), or let it run (``found``, why)."""
    if found.__class__ is str:
        assert isinstance(found, str)
        inv.ran_because = found
        if not state.replay.cache_only or state.specs[inv.step].cache:  # for the run's view
            state.ran_because[inv.step] = found
        real.append(inv)
    else:
        assert isinstance(found, Effects)
        out.append(ReplayStep(inv, found))


def note_answer(state: RunState, event: Event, target: str | None) -> None:
    """An event sent from outside the run: if it answers the oldest open question (the one
    ``routing.route`` would take it for), keep the pair, so the run's record has it."""
    if target is not None or not state.questions or state.changes is None:
        return
    if routing.kind_of(state, type(event)) is not routing.ANSWER:
        return
    question = state.questions[0]
    for waiter in state.waiters:  # a waiter that takes it answers its own question
        if waiter.resolved is None and waiter.matches(event):
            if waiter.question is None:
                return
            question = waiter.question
            break
    state.changes.answers.append((question, event))


def answer_questions(state: RunState, out: list[Command]) -> None:
    """Answer the open questions the recorded run had answered, oldest question first, with
    the recorded answers, as if they had been sent from outside again."""
    table: ReplayTable = state.replay
    while state.questions and table.answers:
        question = state.questions[0]
        try:
            key = input_key(None, question)
        except Exception:  # a question that cannot be encoded was never recorded
            return
        answers = table.answers.get(key)
        if not answers:
            return
        answer = answers.popleft()
        if not answers:
            del table.answers[key]
        if state.changes is not None:  # recorded again, for a rerun of this rerun
            state.changes.answers.append((question, answer))
        woken = routing.route(state, answer)
        for waiter in woken:
            inv = state.in_flight.get(waiter.invocation)
            if inv is not None and inv.waiting:
                inv.waiting = False
                state.waiting -= 1
            out.append(ResolveWaiter(waiter, answer))
        if woken:
            continue
        if state.questions and state.questions[0] is question:
            return  # nothing took it (routing dropped it): do not loop on it
