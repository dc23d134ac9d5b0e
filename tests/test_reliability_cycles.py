"""Many propose/approve/run cycles: files, kernel processes and memory stay flat.

RELIABILITY.md, Volume: "A few hundred propose/approve/run cycles: memory, file descriptors and
kernel count stay flat." Scaled down to stay fast; every cycle really runs code in side kernels.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from agent_wiring_support import engine_config
from kernels_support import kernel_children

from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.models import CreateExploration, RunStatus

CYCLES = 200
SOURCE = "lr = 0.1\nepochs = 3\nprint(f'score: {lr * epochs}')"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    """Resident memory of this process (the engine lives in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def write(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(SOURCE, id="fit")]
    (root / "study.ipynb").write_text(nbformat.writes(nb))


@pytest.mark.slow
@pytest.mark.asyncio
async def test_cycles_with_runs_keep_files_kernels_and_memory_flat(tmp_path: Path) -> None:
    # Given an engine with a pool of two side kernels and a notebook with a tunable cell
    write(tmp_path)
    before_fds = open_fds()
    engine = Engine(engine_config(tmp_path, pool_size=2))
    fds: list[int] = []
    kernels: list[int] = []
    rss: list[float] = []
    started = time.monotonic()
    try:
        # When explorations are created, a proposal approved, and its runs (the variation and
        # the baseline) awaited, cycle after cycle
        for _ in range(CYCLES):
            exp = await engine.create_exploration(
                CreateExploration(
                    notebook_path="study.ipynb", cell_id="fit", max_proposals=1, offline=True
                )
            )
            exp = await engine.wait_proposals(exp.id)
            proposal = exp.proposals[0]
            await engine.approve(proposal.id, proposal.code_sha256)
            done = await engine.wait_runs(exp.id)
            # Then every run succeeded
            assert done.baseline is not None
            for run in [*done.runs, done.baseline]:
                assert run.status is RunStatus.SUCCEEDED, run.reason
            fds.append(open_fds())
            kernels.append(len(kernel_children()))
            rss.append(rss_mb())
        elapsed = time.monotonic() - started
        print(f"{CYCLES} cycles in {elapsed:.1f}s; fds {fds[::20]}; kernels {kernels[::20]}")
        print(f"rss MB {[round(r) for r in rss[::20]]}")
        # And the kernel processes never exceed what the first cycles needed (the pool, a
        # replacement starting, the prepared kernel): none is left behind by a cycle
        early, late = slice(0, CYCLES // 5), slice(CYCLES // 2, CYCLES)
        assert max(kernels[late]) <= max(kernels[early]), kernels
        # And open files do not grow with the cycles (they vary while a kernel starts)
        assert max(fds[late]) <= max(fds[early]) + 2, fds
        # And memory grows by at most a few MB over the later cycles
        assert rss[-1] - rss[CYCLES // 5] < 30, rss
    finally:
        await engine.close()
    # And closing the engine leaves no kernel process and gives the files back
    assert kernel_children() == []
    assert open_fds() <= before_fds + 1
