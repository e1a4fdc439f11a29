"""The wait strategies of ``retry_policy``: how long a failed step waits before it runs again.

llama-index-workflows' ``wait_*`` family (in ``workflows.retry_policy``), with its parameters,
defaults and formulas; ``notebook_workflows.retry_policy`` exports them under the same names.
A strategy is called with the number of retries so far (0 before the first retry) and returns
seconds; strategies add up with ``+``.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Protocol, runtime_checkable

TimeUnit = int | float | timedelta


def _seconds(value: TimeUnit) -> float:
    return float(value.total_seconds() if isinstance(value, timedelta) else value)


def _uniform(low: float, high: float, seed: int | None) -> float:
    # A seed makes jitter repeatable (a replayed run waits what the original waited).
    return random.Random(seed).uniform(low, high) if seed is not None else random.uniform(low, high)


@runtime_checkable
class WaitStrategy(Protocol):
    """``wait(retry, seed=None) -> seconds``; ``retry`` counts from 0 for the first retry."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float: ...


class _Wait:
    """Base of the wait strategies: ``a + b`` (and ``sum([...])``) waits for both in turn."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitStrategy) -> wait_combine:
        return wait_combine(self, other)

    def __radd__(self, other: object) -> object:
        if other == 0:  # sum() starts from 0
            return self
        if callable(other):
            return wait_combine(other, self)
        return NotImplemented


class wait_fixed(_Wait):
    """Wait ``wait`` seconds (a number or a ``timedelta``) before every retry."""

    def __init__(self, wait: TimeUnit) -> None:
        self.wait = _seconds(wait)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self.wait


class wait_none(wait_fixed):
    """Retry at once."""

    def __init__(self) -> None:
        super().__init__(0)


class wait_exponential(_Wait):
    """Wait ``multiplier * exp_base ** n`` seconds before retry ``n`` (0 for the first retry),
    kept between ``min`` and ``max``."""

    def __init__(
        self,
        multiplier: float = 1.0,
        exp_base: float = 2.0,
        max: TimeUnit = 60.0,
        min: TimeUnit = 0.0,
    ) -> None:
        self.multiplier = float(multiplier)
        self.exp_base = float(exp_base)
        self.max = _seconds(max)
        self.min = _seconds(min)

    def _bound(self, attempts: int) -> float:
        try:
            grown = self.multiplier * self.exp_base**attempts
        except OverflowError:
            grown = float("inf")
        return max(0.0, self.min, min(grown, self.max))

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self._bound(attempts)


class wait_random_exponential(wait_exponential):
    """Full jitter: a random wait between ``min`` and what ``wait_exponential`` would wait."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _uniform(self.min, self._bound(attempts), seed)


def wait_full_jitter(
    multiplier: float = 1.0,
    exp_base: float = 2.0,
    max: TimeUnit = 60.0,
    min: TimeUnit = 0.0,
) -> wait_random_exponential:
    """Another name for ``wait_random_exponential``."""
    return wait_random_exponential(multiplier=multiplier, exp_base=exp_base, max=max, min=min)


class wait_exponential_jitter(_Wait):
    """``initial * exp_base ** n`` capped at ``max``, plus a random ``0..jitter`` seconds, the
    sum capped at ``max`` again."""

    def __init__(
        self, initial: float = 1.0, exp_base: float = 2.0, max: float = 60.0, jitter: float = 1.0
    ) -> None:
        self.initial = initial
        self.exp_base = exp_base
        self.max = max
        self.jitter = jitter

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        try:
            grown = self.initial * self.exp_base**attempts
        except OverflowError:
            grown = float("inf")
        base = grown if grown < self.max else self.max
        total = base + _uniform(0, self.jitter, seed)
        return total if total < self.max else self.max


class wait_incrementing(_Wait):
    """Wait ``start + increment * n`` seconds before retry ``n``, capped at ``max``, never
    below 0."""

    def __init__(
        self, start: TimeUnit = 0.0, increment: TimeUnit = 100.0, max: TimeUnit = float("inf")
    ) -> None:
        self.start = _seconds(start)
        self.increment = _seconds(increment)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        value = self.start + self.increment * attempts
        return 0.0 if value < 0 else (value if value < self.max else self.max)


class wait_random(_Wait):
    """Wait a random number of seconds between ``min`` and ``max``."""

    def __init__(self, min: TimeUnit = 0.0, max: TimeUnit = 1.0) -> None:
        self.min = _seconds(min)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _uniform(self.min, self.max, seed)


class wait_chain(_Wait):
    """The first strategy for the first retry, the second for the second, ...; the last one for
    every retry after that."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        if not strategies:
            raise ValueError("wait_chain needs at least one wait strategy")
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        chosen = self.strategies[min(attempts, len(self.strategies) - 1)]
        return chosen(attempts, seed=seed)


class wait_combine(_Wait):
    """The sum of the strategies' waits (what ``a + b`` builds)."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return sum(s(attempts, seed=seed) for s in self.strategies)
