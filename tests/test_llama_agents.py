"""LlamaIndex's own agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) on this engine,
switched in with ``install_as_workflows()``: they run unchanged, keep their memory between
turns, and get what only this engine gives them (checkpoints, resume after a crash, a paused
run saved as JSON and continued, rerun after editing a tool).

The switch must come before anything imports ``llama_index``; no other test module imports it,
so turning it on here, at collection, holds for the whole session.
"""

# No ``from __future__ import annotations``: LlamaIndex finds a tool's ``ctx: Context``
# parameter by its annotation object, as in the peer.
import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import notebook_workflows
from notebook_workflows import WorkflowConfigurationError
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore, StepCodeChangedWarning

notebook_workflows.install_as_workflows()

llama_index_core = pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import (  # noqa: E402
    AgentWorkflow,
    FunctionAgent,
    ReActAgent,
)
from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.llms.mock import MockFunctionCallingLLM  # noqa: E402
from llama_index.core.workflow import (  # noqa: E402
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
)

LLM_CALLS: list[int] = []


class CountingLLM(MockFunctionCallingLLM):
    """The scripted LLM of llama-index-core: calls every tool, then answers; counts calls."""

    async def astream_chat(self, messages: Any, **kwargs: Any) -> Any:
        LLM_CALLS.append(len(messages))
        return await super().astream_chat(messages, **kwargs)


def add(a: int = 2, b: int = 3) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture(autouse=True)
def _fresh_counter() -> None:
    LLM_CALLS.clear()


# -- the switch ---------------------------------------------------------------------------------


def test_every_workflows_import_of_llama_index_core_resolves_to_this_engine() -> None:
    import workflows
    import workflows.context.serializers

    assert workflows.Workflow is notebook_workflows.Workflow
    assert workflows.context.Context is notebook_workflows.Context
    assert workflows.context.serializers.PickleSerializer().name == "pickle"
    root = Path(llama_index_core.__file__).parent
    lines = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workflows"):
                lines.add((node.module, tuple(alias.name for alias in node.names)))
    assert len(lines) >= 12, lines
    missing = []
    for module, names in sorted(lines):
        if module == "workflows.service":  # gone from llama-index-workflows 2.26 itself
            continue
        for name in names:
            try:
                namespace: dict[str, Any] = {}
                exec(f"from {module} import {name}", namespace)
            except ImportError as error:
                missing.append(f"{module}.{name}: {error}")
    assert not missing


def test_the_switch_is_idempotent_and_refuses_to_come_after_workflows() -> None:
    notebook_workflows.install_as_workflows()  # a second call does nothing
    script = (
        "import workflows\nimport notebook_workflows\nnotebook_workflows.install_as_workflows()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "WorkflowConfigurationError" in done.stderr
    assert "install_as_workflows() came too late: workflows" in done.stderr
    assert "before anything imports `workflows`" in done.stderr
    assert issubclass(WorkflowConfigurationError, notebook_workflows.WorkflowError)


# -- the agents run -----------------------------------------------------------------------------


async def test_a_function_agent_calls_its_tool_and_keeps_its_memory_between_turns() -> None:
    agent = FunctionAgent(tools=[add], llm=CountingLLM(), system_prompt="calculator")
    handler = agent.run(user_msg="what is 2 + 3?")
    result = await handler
    assert [call.tool_output.content for call in result.tool_calls] == ["5"]
    memory = await handler.ctx.store.get("memory")
    assert [m.role.value for m in await memory.aget()] == ["user", "assistant", "tool", "assistant"]
    second = agent.run(user_msg="and again?", ctx=handler.ctx)
    await second
    memory = await second.ctx.store.get("memory")
    assert len(await memory.aget()) > 4  # the first turn is still there


async def test_a_react_agent_and_an_agent_workflow_run_as_on_llama_index_workflows() -> None:
    replies = iter(
        [
            'Thought: I need to add.\nAction: add\nAction Input: {"a": 2, "b": 3}',
            "Thought: I can answer without using any more tools.\nAnswer: 5",
        ]
    )
    llm = MockFunctionCallingLLM(
        response_generator=lambda messages, **kw: ChatMessage(
            role="assistant", content=next(replies)
        )
    )
    result = await ReActAgent(tools=[add], llm=llm).run(user_msg="2 + 3?")
    assert str(result) == "5" and [c.tool_output.content for c in result.tool_calls] == ["5"]
    calc = FunctionAgent(name="calc", description="adds", tools=[add], llm=CountingLLM())
    result = await AgentWorkflow(agents=[calc], root_agent="calc").run(user_msg="2 + 3?")
    assert [c.tool_output.content for c in result.tool_calls] == ["5"]


# -- what only this engine gives them -----------------------------------------------------------


async def test_an_agent_run_is_checkpointed_after_every_step() -> None:
    store = MemoryStore()
    agent = FunctionAgent(tools=[add], llm=CountingLLM())
    handler = agent.run(user_msg="2 + 3?", checkpoint=store, run_id="calc-1")
    await handler
    steps = [s.step for s in store.history("calc-1") if s.step]
    assert steps[:6] == [
        "init_run",
        "setup_agent",
        "run_agent_step",
        "parse_agent_output",
        "call_tool",
        "aggregate_tool_results",
    ]
    assert store.latest("calc-1").status == "done"
    memory = store.latest("calc-1").context["store"]["memory"]
    assert "tokenizer_fn" not in json.dumps(memory)  # excluded as pydantic's dump excludes it


CRASHING_AGENT = """
import asyncio, os, sys
import notebook_workflows
notebook_workflows.install_as_workflows()
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms.mock import MockFunctionCallingLLM
from notebook_workflows.checkpoint import SQLiteStore

def add(a: int = 2, b: int = 3) -> int:
    \"\"\"Add two numbers.\"\"\"
    os._exit(3)  # the process dies in the middle of the tool

async def main():
    agent = FunctionAgent(tools=[add], llm=MockFunctionCallingLLM())
    await agent.run(user_msg="2 + 3?", checkpoint=SQLiteStore(sys.argv[1]), run_id="calc-crash")

asyncio.run(main())
"""


async def test_an_agent_resumed_after_a_crash_does_not_call_the_llm_again(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASHING_AGENT))
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 3, done.stderr
    store = SQLiteStore(path)
    assert store.latest("calc-crash").status == "running"
    agent = FunctionAgent(tools=[add], llm=CountingLLM())
    with pytest.warns(StepCodeChangedWarning, match=r"'call_tool' \(it calls the tools add "):
        result = await agent.resume("calc-crash", store=store)  # the crashing tool was edited
    assert [c.tool_output.content for c in result.tool_calls] == ["5"]
    assert len(LLM_CALLS) == 1  # only the call after the tool: the first one was recorded


async def approve(ctx: Context, amount: int = 10) -> str:
    """Ask a human to approve a payment."""
    question = InputRequiredEvent(prefix=f"approve {amount}?")
    answer = await ctx.wait_for_event(HumanResponseEvent, waiter_event=question)
    return f"human said {answer.response}"


async def test_a_paused_agent_saved_as_json_takes_the_answer_after_a_restore() -> None:
    handler = FunctionAgent(tools=[approve], llm=CountingLLM()).run(user_msg="pay 10")
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            break
    saved = json.dumps(handler.ctx.to_dict())  # plain JSON: no pickle
    await handler.cancel_run()
    agent = FunctionAgent(tools=[approve], llm=CountingLLM())
    restored = Context.from_dict(agent, json.loads(saved))
    resumed = agent.run(ctx=restored)  # the agent passes user_msg=None and friends
    resumed.ctx.send_event(HumanResponseEvent(response="yes"))  # before the step asks again
    result = await resumed
    assert [c.tool_output.content for c in result.tool_calls] == ["human said yes"]


async def test_a_rerun_after_editing_a_tool_replays_the_llm_call_before_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")

    def wrong(a: int = 2, b: int = 3) -> int:
        """Add two numbers."""
        return a - b

    def fixed(a: int = 2, b: int = 3) -> int:
        """Add two numbers."""
        return a + b

    fixed.__name__ = wrong.__name__ = "add"
    first = await FunctionAgent(tools=[wrong], llm=CountingLLM()).run(
        user_msg="2 + 3?", checkpoint=store, run_id="calc-edit"
    )
    assert [c.tool_output.content for c in first.tool_calls] == ["-1"] and len(LLM_CALLS) == 2
    LLM_CALLS.clear()
    handler = FunctionAgent(tools=[fixed], llm=CountingLLM()).rerun("calc-edit", store=store)
    again = await handler
    assert [c.tool_output.content for c in again.tool_calls] == ["5"]
    assert len(LLM_CALLS) == 1  # the first call replayed; the one after the new tool made
    ran = {s.step: s for s in store.history(handler.run_id) if s.step}
    assert "call_tool" in ran and "run_agent_step" in ran


def test_run_sync_drives_an_agent_from_plain_code() -> None:
    agent = FunctionAgent(tools=[add], llm=CountingLLM())
    result = agent.run_sync(user_msg="2 + 3?", checkpoint=MemoryStore())
    assert [c.tool_output.content for c in result.tool_calls] == ["5"]


def test_a_module_this_engine_lacks_is_not_found_rather_than_taken_from_the_peer() -> None:
    import importlib.util

    assert importlib.util.find_spec("workflows.server") is None
    with pytest.raises(ModuleNotFoundError, match="workflows.server"):
        import workflows.server  # noqa: F401
