"""A ten-step workflow with three sibling branches, a retry loop and an early exit: the shape
that used to draw badly (the loop pulling nodes down, siblings stacked, StopEvent on a long
edge at the bottom). Used by ``test_graph_layout.py`` and the browser test."""

from __future__ import annotations

from notebook_workflows import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Parsed(Event):
    order: str


class Small(Event):
    order: str


class Large(Event):
    order: str


class Foreign(Event):
    order: str


class Converted(Event):
    order: str


class Priced(Event):
    order: str
    price: float


class Retry(Event):
    order: str


class Checked(Event):
    price: float


class Approved(Event):
    price: float


class Orders(Workflow):
    @step
    async def intake(self, ev: StartEvent) -> Parsed | StopEvent:
        if not ev.get("order"):
            return StopEvent(result="rejected: no order")
        return Parsed(order=ev.order)

    @step
    async def classify(self, ev: Parsed | Retry) -> Small | Large | Foreign:
        if ev.order.startswith("eu-"):
            return Foreign(order=ev.order)
        return Large(order=ev.order) if len(ev.order) > 8 else Small(order=ev.order)

    @step
    async def price_small(self, ev: Small) -> Priced:
        return Priced(order=ev.order, price=10.0)

    @step
    async def price_large(self, ev: Large) -> Priced:
        return Priced(order=ev.order, price=100.0)

    @step
    async def convert(self, ev: Foreign) -> Converted:
        return Converted(order=ev.order)

    @step
    async def price_foreign(self, ev: Converted) -> Priced:
        return Priced(order=ev.order, price=50.0)

    @step
    async def check(self, ev: Priced) -> Checked | Retry:
        return Checked(price=ev.price)

    @step
    async def approve(self, ev: Checked) -> InputRequiredEvent:
        return InputRequiredEvent(prefix=f"Approve {ev.price}?", price=ev.price)

    @step
    async def decide(self, ev: HumanResponseEvent) -> Approved | StopEvent:
        if ev.response != "yes":
            return StopEvent(result="declined")
        return Approved(price=1.0)

    @step
    async def ship(self, ev: Approved) -> StopEvent:
        return StopEvent(result=f"shipped at {ev.price}")
