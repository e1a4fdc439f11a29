"""The checks ``Workflow.validate()`` makes of a workflow's graph of steps.

Read from the steps' signatures alone, before anything runs: an entry and an exit, no event
produced that nobody takes or taken that nobody produces (with the exceptions a step may ask
for), and ``@catch_error`` handlers that make sense. Each problem is one sentence naming the
step and the event type.
"""

from __future__ import annotations

from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
)
from .runtime.state import bind  # the same binding the runtime uses, so they cannot differ
from .step import StepSpec

__all__ = ["CHECK_OF", "graph_problems"]

# what each of llama-index-workflows' graph checks reports here, by the words of its problem
CHECK_OF = {
    "reachability": "but no step produces it",
    "dead_end": "but no step accepts it",
    "terminal_event": "no step returns a StopEvent",
}


def graph_problems(specs: dict[str, StepSpec]) -> list[str]:
    """Every problem of the graph the steps ``specs`` form (empty: it can run)."""
    problems: list[str] = []
    if not specs:
        problems.append("it has no steps: mark methods with @step")
    accepted = {t for s in specs.values() for t in s.accepts}
    produced = {t for s in specs.values() for t in s.produces}
    starts = sorted({t.__name__ for t in accepted if issubclass(t, StartEvent)})
    if specs and not starts:
        problems.append("no step accepts StartEvent, so a run has nowhere to begin")
    elif len(starts) > 1:
        problems.append(
            f"steps accept different start events ({', '.join(starts)}); a run begins with one"
        )
    if specs and not any(issubclass(t, StopEvent) for t in produced):
        problems.append(
            "no step returns a StopEvent, so a run could never finish; "
            "declare `-> StopEvent` on the final step"
        )
    wide = tuple(t for s in specs.values() if s.accept_event_subclasses for t in s.accepts)
    for spec in specs.values():
        for typ in spec.produces:
            if issubclass(typ, (StopEvent, InputRequiredEvent)) or typ in accepted:
                continue
            if (wide and issubclass(typ, wide)) or "dead_end" in spec.skip_graph_checks:
                continue
            problems.append(f"step {spec.name!r} produces {typ.__name__}, but no step accepts it")
        for typ in spec.accepts:
            if issubclass(typ, (StartEvent, HumanResponseEvent)) or typ in produced:
                continue
            if spec.catches and issubclass(typ, StepFailedEvent):
                continue  # the run sends it when a step fails for good
            if spec.accept_event_subclasses and any(issubclass(p, typ) for p in produced):
                continue
            if "reachability" in spec.skip_graph_checks:
                continue
            problems.append(f"step {spec.name!r} accepts {typ.__name__}, but no step produces it")
    if not problems:
        problems.extend(island_problems(specs))
    problems.extend(catcher_problems(specs))
    problems.extend(join_problems(specs))
    return problems


def island_problems(specs: dict[str, StepSpec]) -> list[str]:
    """Steps that can never run although some step produces what they accept: every producer
    is itself cut off from the start (a loop of steps feeding each other, an island). Read by
    following events from the ``StartEvent``, the human's answers and failures."""
    reached: set[type[Event]] = {
        t
        for s in specs.values()
        for t in s.accepts
        if issubclass(t, (StartEvent, HumanResponseEvent))
        or (s.catches and issubclass(t, StepFailedEvent))
    }
    ran: set[str] = set()
    grew = True
    while grew:
        grew = False
        for spec in specs.values():
            if spec.name in ran or not _takes_any(spec, reached):
                continue
            ran.add(spec.name)
            reached.update(spec.produces)
            grew = True
    return [
        f"step {spec.name!r} accepts {' | '.join(t.__name__ for t in spec.accepts)}, but no step "
        f"produces it on a path from the StartEvent (only steps that never run do): it is "
        f"unreachable"
        for spec in specs.values()
        if spec.name not in ran and "reachability" not in spec.skip_graph_checks
    ]


def _takes_any(spec: StepSpec, reached: set[type]) -> bool:
    if spec.accept_event_subclasses:
        return any(issubclass(t, spec.accepts) for t in reached)
    return any(t in reached for t in spec.accepts)


def join_problems(specs: dict[str, StepSpec]) -> list[str]:
    """A ``list[E]`` parameter takes the members of a fan-out: some step declaring
    ``-> list[...]`` must lead to it (``runtime.state.bind``)."""

    collects = [s for s in specs.values() if s.collect is not None]
    if not collects:
        return []
    bound = {name for names in bind(specs).values() for name in names}
    return [
        f"step {spec.name!r} takes {spec.inputs_text()}, but no step declaring `-> list[...]` "
        f"fans out to it; a list parameter receives the members of one fan-out together"
        for spec in collects
        if spec.name not in bound
    ]


def catcher_problems(specs: dict[str, StepSpec]) -> list[str]:
    """What is wrong with the workflow's ``@catch_error`` handlers, if anything."""
    problems = []
    handlers = [s for s in specs.values() if s.catches]
    wildcards = [s.name for s in handlers if s.catch_for is None]
    if len(wildcards) > 1:
        problems.append(
            f"handlers {', '.join(map(repr, wildcards))} all catch every step; at most one "
            f"@catch_error may leave out for_steps"
        )
    claimed: dict[str, str] = {}
    for handler in handlers:
        for name in handler.catch_for or ():
            if name not in specs:
                problems.append(
                    f"handler {handler.name!r} catches step {name!r}, which the workflow does "
                    f"not have (steps: {', '.join(specs)})"
                )
            elif specs[name].catches:
                problems.append(f"handler {handler.name!r} catches {name!r}, itself a handler")
            elif name in claimed:
                problems.append(
                    f"step {name!r} is caught by both {claimed[name]!r} and {handler.name!r}"
                )
            else:
                claimed[name] = handler.name
    return problems
