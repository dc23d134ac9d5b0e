"""The pool: queueing in order, cancelling, warm kernels, shutdown with runs in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, kernel_children, make_spec

from jupyter_research_agent.core.models import RunStatus
from jupyter_research_agent.core.runner import RunHandle, RunUpdate

SLEEP = "import time\ntime.sleep({})"


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


async def running(
    handle: RunHandle, updates: list[RunUpdate], cell_id: str = "c0", timeout_s: float = 20
) -> None:
    """Wait until ``handle`` has reported that it is running the cell ``cell_id``."""
    deadline = time.monotonic() + timeout_s
    while not any(
        u.run_id == handle.run_id
        and u.status == RunStatus.RUNNING
        and u.progress.current_cell_id == cell_id
        for u in updates
    ):
        assert time.monotonic() < deadline, f"the run never reached {cell_id}"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_runs_queue_in_order_and_a_queued_run_can_be_cancelled(
    make_executor: ExecutorFactory,
) -> None:
    # Given a pool of one and four runs submitted in order
    executor = make_executor(pool_size=1)
    updates: list[RunUpdate] = []
    handles = [
        executor.submit(make_spec(f"r{i}", SLEEP.format(0.1)), updates.append) for i in range(4)
    ]
    assert executor.status() == {"pool_size": 1, "busy": 1, "queued": 3, "warm": 0}

    # When the third is cancelled while it waits
    handles[2].cancel()

    # Then it ends at once, and the others run one at a time in submission order
    assert handles[2].done
    dropped = await handles[2].wait()
    assert dropped.status == RunStatus.CANCELLED
    assert dropped.reason == "cancelled while queued"
    assert dropped.attempts == 0
    results = [await handles[i].wait() for i in (0, 1, 3)]
    assert all(r.status == RunStatus.SUCCEEDED for r in results)
    started = [u.run_id for u in updates if u.status == RunStatus.STARTING]
    assert started == ["r0", "r1", "r3"]
    assert executor.status()["busy"] == 0
    assert executor.status()["queued"] == 0


@pytest.mark.asyncio
async def test_cancel_a_running_run(make_executor: ExecutorFactory) -> None:
    # Given a run in the middle of a long cell
    executor = make_executor()
    updates: list[RunUpdate] = []
    handle = executor.submit(
        make_spec("r-long", "print('started')", SLEEP.format(60)), updates.append
    )
    await running(handle, updates, "c1")

    # When the researcher cancels it
    handle.cancel()
    result = await handle.wait()

    # Then it ends cancelled with its partial outputs and its kernel is gone
    assert result.status == RunStatus.CANCELLED
    assert result.reason == "cancelled by the researcher"
    assert result.cells[0].outputs[0]["text"] == "started\n"
    assert result.duration_s < 15
    assert kernel_children() == []


@pytest.mark.asyncio
async def test_close_with_runs_in_flight(make_executor: ExecutorFactory) -> None:
    # Given one run in a long cell and one waiting behind it
    executor = make_executor(pool_size=1)
    updates: list[RunUpdate] = []
    busy = executor.submit(make_spec("r-busy", SLEEP.format(60)), updates.append)
    waiting = executor.submit(make_spec("r-wait", "1"), updates.append)
    await running(busy, updates)

    # When the executor closes
    started = time.monotonic()
    await executor.close()

    # Then the running run reads interrupted, the queued one cancelled, and no kernel is left
    assert time.monotonic() - started < 10
    interrupted = await busy.wait()
    assert interrupted.status == RunStatus.INTERRUPTED
    assert interrupted.reason == "server shut down"
    cancelled = await waiting.wait()
    assert cancelled.status == RunStatus.CANCELLED
    assert kernel_children() == []
    # And later submissions end at once
    late = await executor.submit(make_spec("r-late", "1")).wait()
    assert late.status == RunStatus.CANCELLED


@pytest.mark.asyncio
async def test_close_while_a_kernel_is_starting(make_executor: ExecutorFactory) -> None:
    # Given a run whose kernel is still starting
    executor = make_executor()
    updates: list[RunUpdate] = []
    handle = executor.submit(make_spec("r-early", "1"), updates.append)
    await asyncio.sleep(0.05)

    # When the executor closes
    await executor.close()

    # Then the run is interrupted and the half-started kernel is shut down
    result = await handle.wait()
    assert result.status == RunStatus.INTERRUPTED
    assert kernel_children() == []


@pytest.mark.asyncio
async def test_four_runs_on_two_kernels_run_in_parallel(make_executor: ExecutorFactory) -> None:
    # Given four runs of half a second each on a pool of two
    executor = make_executor(pool_size=2)
    specs = [make_spec(f"p{i}", SLEEP.format(0.5)) for i in range(4)]

    # When they all run
    started = time.monotonic()
    results = await asyncio.gather(*(executor.submit(s).wait() for s in specs))
    wall = time.monotonic() - started

    # Then all succeed and the wall time is well under the sum of their durations
    assert all(r.status == RunStatus.SUCCEEDED for r in results)
    assert wall < 0.75 * sum(r.duration_s for r in results)


@pytest.mark.asyncio
async def test_warm_kernels_are_used_once_and_replenished(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given an executor keeping one warm kernel for this notebook's directory
    executor = make_executor(warm_kernels=1)
    executor.prewarm("python3", tmp_path)
    deadline = time.monotonic() + 30
    while executor.status()["warm"] < 1:
        assert time.monotonic() < deadline, "no warm kernel came up"
        await asyncio.sleep(0.05)
    warm_ids = {k.id for k in executor.pool._warm}

    # When two runs go one after the other, the first setting a variable
    first = await executor.submit(make_spec("w1", "x = 41\nx + 1", cwd=tmp_path)).wait()
    second = await executor.submit(make_spec("w2", "'x' in globals()", cwd=tmp_path)).wait()

    # Then the first used the warm kernel, the second got fresh state, and the pool refilled
    assert first.kernel_id in warm_ids
    assert second.kernel_id != first.kernel_id
    assert second.cells[0].outputs[0]["data"]["text/plain"] == "False"
    deadline = time.monotonic() + 30
    while executor.status()["warm"] < 1:
        assert time.monotonic() < deadline, "the warm kernel was not replenished"
        await asyncio.sleep(0.05)
