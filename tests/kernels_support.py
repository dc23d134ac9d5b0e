"""Helpers for the side-kernel tests: run specs, executors that clean up, process checks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.models import Cell
from jupyter_research_agent.core.runner import Executor, RunSpec

ExecutorFactory = Callable[..., Executor]


def make_spec(run_id: str, *sources: str, cwd: Path | None = None, **fields: Any) -> RunSpec:
    """A run of tiny cells with ids c0, c1, ..."""
    fields.setdefault("timeout_s", 20.0)
    fields.setdefault("output_cap_bytes", 100_000)
    return RunSpec(
        run_id=run_id,
        kernel_name=fields.pop("kernel_name", "python3"),
        cwd=cwd or Path.cwd(),
        cells=[Cell(id=f"c{i}", source=src) for i, src in enumerate(sources)],
        **fields,
    )


def kernel_children() -> list[int]:
    """Pids of ipykernel processes whose parent is this test process."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        # The command may contain spaces or parentheses: the ppid follows the last ")".
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"ipykernel" in cmdline:
            found.append(int(entry))
    return found


def process_exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


@asynccontextmanager
async def executors(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    """Yields a factory of executors; on exit closes them and checks no kernel is left."""
    made: list[Executor] = []

    def make(**settings: Any) -> Executor:
        settings.setdefault("pool_size", 2)
        settings.setdefault("interrupt_grace_s", 0.5)
        settings.setdefault("kernel_start_timeout_s", 30.0)
        executor = Executor(EngineConfig(ledger_path=tmp_path / "ledger.sqlite", **settings))
        made.append(executor)
        return executor

    try:
        yield make
    finally:
        for executor in made:
            await executor.close()
    assert kernel_children() == [], "a side kernel outlived its executor"
