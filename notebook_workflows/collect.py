"""Fan-in by annotation: how a step that takes a ``list[E]`` is released.

The vocabulary llama-index-workflows 2.26 has in ``workflows.collect``, as plain data; the
runtime gives it its meaning (``runtime/joins.py``)::

    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return [Task(n=i) for i in range(5)]

    @step
    async def join(self, events: list[Done]) -> StopEvent: ...

    @step
    async def fastest(self, events: Annotated[list[Done], Collect(Take(1))]) -> StopEvent: ...

A step whose return annotation declares ``list[...]`` and that returns a list fans out: each
event is routed as if returned alone, and together they form one batch (a *stream*), which
everything the steps make from them belongs to. A step with one ``list[E]`` parameter
(``list[A | B]`` takes both) receives the members of each such batch that reach it, in the
order they arrived, once per batch:

* ``Collect(All())``, ``Collect()`` and a bare ``list[E]`` are the same: once nothing of the
  batch is left to run, with every member (``[]`` for an empty batch, and a branch that
  returned ``None`` simply contributes nothing).
* ``Collect(Take(n))``: at the ``n``-th arrival, with the first ``n``; later members of that
  batch never reach the step (their producers keep running). A batch that ends with fewer
  releases those.

A fan-out inside a batch opens an inner batch, joined on its own: the join of the inner batch
runs once per outer member, and its results are members of the outer batch. Events sent with
``ctx.send_event`` are members of no batch: a ``list[E]`` step ignores them (and a send aimed at
it with ``step=`` is an error). A ``list[E]`` step that no fan-out reaches is a validation error.
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
