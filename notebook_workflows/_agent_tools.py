"""The code a LlamaIndex agent's tool step runs, for ``rerun`` to see a tool edited.

A step's code hash (``snapshot.code_hash``) covers its function. An agent's ``call_tool`` step
is library code that calls whichever tool the LLM chose: the tools are data on the agent
(``agent.tools``; each agent's of an ``AgentWorkflow``), so editing a tool would leave the hash
of ``call_tool`` as it was and a rerun would replay the old tool's results. This module finds
the tools' functions so that their code counts in the hash of the steps that call them.
Nothing here imports llama_index: tools are read by duck typing (``fn`` / ``async_fn``, or a
plain callable), so a workflow without tools costs one attribute look-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TOOL_STEPS = ("call_tool",)
"""The steps of LlamaIndex's agents that call tools."""


def tool_functions(workflow: Any) -> list[Callable[..., Any]]:
    """The functions behind ``workflow``'s tools (and its agents' tools), in a stable order."""
    found: list[Callable[..., Any]] = []
    agents: Iterable[Any] = (workflow,)
    many = getattr(workflow, "agents", None)
    if isinstance(many, dict):
        agents = (workflow, *many.values())
    for agent in agents:
        for tool in _tools_of(agent):
            for name in ("fn", "async_fn"):
                fn = _quiet_attribute(tool, name)
                # the library's sync/async wrapper around the user's function is not theirs
                wrapper = str(getattr(fn, "__module__", "")).startswith("llama_index.")
                if callable(fn) and not wrapper and fn not in found:
                    found.append(fn)
            if not found and callable(tool) and not hasattr(tool, "metadata"):
                found.append(tool)
    return found


def _tools_of(agent: Any) -> list[Any]:
    tools = agent.__dict__.get("tools") if hasattr(agent, "__dict__") else None
    return list(tools) if isinstance(tools, (list, tuple)) else []


def _quiet_attribute(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:  # a tool's property may raise (no sync function): not code to hash
        return None
