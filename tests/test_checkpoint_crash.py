"""A worker process killed with SIGKILL at random moments, then resumed, again and again: the
result is right, every document is converted, and no step that had completed runs again."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

from ckpt_flows import Docs

from notebook_workflows.checkpoint import SQLiteStore

IDS = list(range(24))
RUN = "docs-crash"


def worker(db: str, log: str, resume: bool) -> None:
    async def main() -> None:
        store = SQLiteStore(db)
        if resume:
            handler = Docs().resume(RUN, store=store)
        else:
            handler = Docs().run(checkpoint=store, run_id=RUN, ids=IDS, log=log, delay=0.02)
        assert await handler == IDS

    asyncio.run(main())


def completed_docs(store: SQLiteStore) -> set[int]:
    """The documents whose conversion the latest checkpoint records as completed."""
    if store.run_info(RUN) is None:
        return set()
    context = store.latest(RUN).context
    if "count" not in context["store"]:
        return set()  # the split had not completed: nothing was sent yet
    pending = {
        item["event"]["data"]["id"]
        for item in [*context["queue"], *context["in_flight"]]
        if item["step"] == "convert"
    }
    return set(IDS) - pending


def conversions(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [(int(doc), int(pid)) for _, doc, pid in map(str.split, log.read_text().splitlines())]


def test_killed_workers_resume_without_redoing_completed_steps(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    total_kills = 0
    for trial in range(4):
        rng = random.Random(1000 + trial)
        db, log = str(tmp_path / f"runs{trial}.db"), tmp_path / f"log{trial}"
        store = SQLiteStore(db)
        kills: list[tuple[set[int], int]] = []  # (completed at the kill, processes started)
        pids: list[int] = []
        while True:
            resume = store.run_info(RUN) is not None
            process = fork.Process(target=worker, args=(db, str(log), resume))
            process.start()
            pids.append(process.pid or 0)
            if len(kills) < 3:
                time.sleep(rng.uniform(0.005, 0.15))
                if process.is_alive():
                    os.kill(process.pid or 0, signal.SIGKILL)
                    process.join(10)
                    if process.exitcode == -signal.SIGKILL:  # else it had just finished
                        kills.append((completed_docs(store), len(pids)))
                        continue
            process.join(60)
            assert process.exitcode == 0, f"trial {trial}: the last worker failed"
            break
        total_kills += len(kills)

        latest = store.latest(RUN)
        assert latest.status == "done"
        assert latest.context["stop"]["data"]["result"] == IDS
        done = conversions(log)
        assert {doc for doc, _ in done} == set(IDS)  # every document converted
        for completed, started in kills:
            later = set(pids[started:])
            redone = {doc for doc, pid in done if pid in later} & completed
            assert not redone, f"trial {trial}: completed conversions ran again: {redone}"
        # at-least-once: only a step in flight at a kill runs again (two workers at most)
        assert len(done) - len(IDS) <= 2 * len(kills)
        history = store.history(RUN)
        assert [s.seq for s in history] == list(range(len(history)))
        assert history[-1].context == latest.context
    assert total_kills >= 6  # the kills really happened mid-run
