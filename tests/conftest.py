"""Test configuration: ``async def`` tests run on a fresh event loop each; strict mode."""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: pyfuncitem.funcargs[name] for name in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


# `make test` installs every system program the suite needs when it can (as root); there a
# skipped test would hide a broken set-up, so NOTEBOOK_WORKFLOWS_STRICT=1 turns skips into
# failures. Elsewhere a missing program skips its tests with the reason.
STRICT = os.environ.get("NOTEBOOK_WORKFLOWS_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under NOTEBOOK_WORKFLOWS_STRICT=1 (make test): {reason}"


# Real servers (redis-server, a PostgreSQL cluster) for the store tests: see servers.py.
from servers import any_store, postgres_cluster, postgres_dsn, redis_server, shared_spec, store_spec  # noqa: E402, F401
