"""A side kernel that segfaults: its run fails with the reason, the other runs go on.

RELIABILITY.md, Side kernels: "Killed mid-run (SIGKILL, os._exit, segfault): the run is failed
with the reason within seconds, partial outputs kept, other runs go on, the researcher's
kernel untouched."
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, make_spec
from server_support import (
    Fetch,
    add_and_approve,
    all_runs_ended,
    create_exploration,
    peek,
    poll,
    researcher_kernel,
    training_notebook,
)

from jupyter_research_agent.core.models import RunStatus

SEGFAULT = "import ctypes\nctypes.string_at(0)"


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


@pytest.mark.asyncio
async def test_a_segfault_fails_its_run_fast_and_the_parallel_run_goes_on(
    make_executor: ExecutorFactory,
) -> None:
    # Given two runs in parallel: one prints, then reads address 0 (a segfault); the other works
    executor = make_executor(pool_size=2, retry_dead_kernel=False)
    crashing = executor.submit(make_spec("r-segv", "print('partial result')", SEGFAULT, "print(2)"))
    steady = executor.submit(
        make_spec("r-steady", "import time\nfor i in range(3):\n    time.sleep(0.3)\n    print(i)")
    )

    # When both end
    started = time.monotonic()
    lost = await crashing.wait()
    crashed_after = time.monotonic() - started
    kept = await steady.wait()

    # Then the crashed run failed within seconds, naming the cell, its earlier output kept
    assert lost.status == RunStatus.FAILED
    assert lost.reason == "kernel died while running cell c1"
    assert lost.attempts == 1
    assert lost.cells[0].outputs[0]["text"] == "partial result\n"
    assert crashed_after < 10, crashed_after
    # And the other run succeeded untouched
    assert kept.status == RunStatus.SUCCEEDED, kept.reason
    assert kept.cells[0].outputs[0]["text"] == "0\n1\n2\n"


@pytest.mark.asyncio
async def test_a_segfault_twice_fails_after_one_retry(make_executor: ExecutorFactory) -> None:
    # Given a run that segfaults on every kernel, with one retry allowed
    executor = make_executor(pool_size=1, retry_dead_kernel=True)

    # When it runs, and a run queued behind it afterwards
    crashing = executor.submit(make_spec("r-segv2", SEGFAULT))
    after = executor.submit(make_spec("r-after", "print('still serving')"))
    lost, kept = await asyncio.wait_for(asyncio.gather(crashing.wait(), after.wait()), 60)

    # Then it failed with the reason after its retry, and the pool still serves the next run
    assert lost.status == RunStatus.FAILED
    assert lost.reason == "kernel died twice while running cell c0"
    assert lost.attempts == 2
    assert kept.status == RunStatus.SUCCEEDED, kept.reason
    assert kept.cells[0].outputs[0]["text"] == "still serving\n"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"), pool_size=2, run_timeout=60.0
    )
    return jp_server_config


async def test_a_segfaulting_side_run_leaves_the_researchers_kernel_alone(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given the researcher's own kernel for the notebook, holding a variable
    training_notebook(jp_root_dir)
    async with researcher_kernel(jp_fetch, jp_serverapp, "exp.ipynb") as (kernel_id, client):
        await client.execute("marker = 41", reply=True, timeout=30)

        # When an approved variation of its notebook segfaults in a side kernel
        exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
        crash = await add_and_approve(jp_fetch, exp["id"], f"print('before')\n{SEGFAULT}")
        started = time.monotonic()
        done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=60)
        ended_after = time.monotonic() - started

        # Then that run failed with the reason within seconds, and the baseline still succeeded
        (run,) = [r for r in done["runs"] if r["proposal_id"] == crash["id"]]
        assert run["status"] == "failed"
        assert "kernel died" in run["reason"], run["reason"]
        assert done["baseline"]["status"] == "succeeded", done["baseline"]["reason"]
        assert ended_after < 30, ended_after
        # And the researcher's kernel is alive, with its state, among the server's kernels
        marker, _ = await peek(client, "marker")
        assert marker == "41"
        assert jp_serverapp.kernel_manager.list_kernel_ids() == [kernel_id]
