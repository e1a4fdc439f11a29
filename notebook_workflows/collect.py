"""Fan-out and fan-in by annotation: how a step that takes a ``list[E]`` is released.

This is the vocabulary llama-index-workflows 2.26 has in ``workflows.collect``; these are plain
data types, and the runtime gives them their meaning (see "not yet" in docs/porting.md for
where that stands). Until then, join with ``ctx.collect_events``.

The model, precisely, so the runtime can implement the join:

*Streams.* A step whose return annotation is ``list[E]`` (or ``list[A | B]``) is a fan-out
producer. Each of its executions that actually returns a list opens one *stream* with a fresh
id: the members are routed like ordinary events, tagged with that id, and so is every event a
step produces from a tagged event (outputs inherit their input's stream tags; streams nest, a
fan-out inside a stream opening an inner one). The stream *closes* when all its members have
been routed and no work tagged with it is left: every member, and everything produced from
them inside the stream, has been handled. ``return []`` opens a stream that closes at once,
empty. ``return None`` (under ``-> list[E] | None``) opens no stream: the branch is dead, as
for any step returning ``None``. Under a union ``-> list[A] | B``, a bare ``B`` is ordinary
dispatch and opens no stream; a bare ``A`` (declared only inside the list) is an error naming
the step. A type declared both ways (``-> list[A] | A``) returned bare is the single event,
not a stream of one.

*Joins.* A step with one parameter annotated ``list[E]`` (element types ``E``; ``list[A | B]``
takes both) is a *collect step*. It buffers the members of each stream separately (by the
innermost stream id) and is released, once per stream, according to its ``Collect`` marker:

* ``Annotated[list[E], Collect(All())]``, ``Annotated[list[E], Collect()]`` and a bare
  ``list[E]`` are the same: fire once, when the stream closes, with every member that reached
  the step, in arrival order. An empty stream fires once with ``[]``.
* ``Annotated[list[E], Collect(Take(n))]``: fire once, at the ``n``-th arrival, with the first
  ``n`` members. Later members of that stream are dropped for this step (their producers keep
  running; other steps still receive them). If the stream closes with fewer than ``n``
  members, fire once at the close with those that arrived.

*Restrictions.* ``ctx.send_event`` cannot add members to a stream: an untargeted send whose
type a collect step accepts is delivered to the other steps that accept it and ignored by the
collect step, with a warning; a send targeted at the collect step (``step="name"``) is a
``WorkflowRuntimeError``. A collect step whose element types no ``list[E]`` producer declares
is a validation error. Any cardinality other than ``All`` and ``Take`` is refused at
validation, naming the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cardinality:
    """When a collect step fires and which members it gets; use ``All()`` or ``Take(n)`` (the
    base class itself is not a strategy)."""


@dataclass(frozen=True)
class All(Cardinality):
    """Fire once when the stream closes, with every member that arrived (the default)."""


@dataclass(frozen=True)
class Take(Cardinality):
    """Fire once at the ``n``-th arrival with the first ``n`` members; later members of the
    stream never reach this step. A stream that closes with fewer fires then, with those."""

    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"Take(n) needs a whole number n >= 1, got {self.n!r}")


@dataclass(frozen=True)
class Collect:
    """Marks a ``list[E]`` step parameter as a fan-in and says how it is released::

        async def fastest(self, results: Annotated[list[Result], Collect(Take(1))]) -> StopEvent:

    ``cardinality`` defaults to ``All()``: a bare ``list[E]`` parameter means the same.
    Construct it with keywords or one positional cardinality.
    """

    cardinality: Cardinality = field(default_factory=All)

    def __post_init__(self) -> None:
        if not isinstance(self.cardinality, Cardinality) or type(self.cardinality) is Cardinality:
            raise TypeError(
                f"Collect takes All() or Take(n), got {self.cardinality!r}; for example "
                f"Collect(Take(1)) to go on with the first result"
            )


__all__ = ["All", "Cardinality", "Collect", "Take"]
