"""Side kernels that die, hang, or never start: each run still ends in one terminal state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, kernel_children, make_spec, process_exists

from jupyter_research_agent.core.models import RunStatus
from jupyter_research_agent.core.runner import RunUpdate


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


@pytest.mark.asyncio
async def test_sigkill_mid_run_is_retried_once_on_a_fresh_kernel(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a cell that kills its own kernel the first time only (a marker file remembers)
    executor = make_executor(retry_dead_kernel=True)
    marker = tmp_path / "died-once"
    spec = make_spec(
        "r-kill",
        "print('warming up')",
        "import os, pathlib\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "if not p.exists():\n    p.touch()\n    os.kill(os.getpid(), 9)\n"
        "print('survived')",
    )

    # When it runs
    result = await executor.submit(spec).wait()

    # Then the death is detected, the run is retried once on a new kernel, and it succeeds
    assert result.status == RunStatus.SUCCEEDED
    assert result.attempts == 2
    assert result.reason == "succeeded after retry (kernel died while running cell c1)"
    assert result.cells[1].outputs[0]["text"] == "survived\n"


@pytest.mark.asyncio
async def test_os_exit_fails_fast_and_keeps_partial_outputs(
    make_executor: ExecutorFactory,
) -> None:
    # Given a run whose second cell ends the kernel process, with retries off
    executor = make_executor(retry_dead_kernel=False)
    spec = make_spec("r-exit", "print('partial result')", "import os\nos._exit(1)", "print(1)")

    # When it runs
    started = time.monotonic()
    result = await executor.submit(spec).wait()

    # Then it fails within seconds, naming the cell, and what ran before is kept
    assert result.status == RunStatus.FAILED
    assert result.reason == "kernel died while running cell c1"
    assert result.attempts == 1
    assert result.cells[0].outputs[0]["text"] == "partial result\n"
    assert [c.cell_id for c in result.cells] == ["c0", "c1"]
    assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_a_dying_kernel_leaves_a_parallel_run_alone(make_executor: ExecutorFactory) -> None:
    # Given two runs in parallel: one kernel dies twice (retry included), the other works
    executor = make_executor(pool_size=2, retry_dead_kernel=True)
    doomed = executor.submit(make_spec("r-doomed", "import os\nos.kill(os.getpid(), 9)"))
    steady = executor.submit(
        make_spec("r-steady", "import time\nfor i in range(3):\n    time.sleep(0.3)\n    print(i)")
    )

    # When both end
    lost, kept = await asyncio.gather(doomed.wait(), steady.wait())

    # Then the dying one failed after its retry and the other succeeded untouched
    assert lost.status == RunStatus.FAILED
    assert lost.attempts == 2
    assert lost.reason == "kernel died twice while running cell c0"
    assert kept.status == RunStatus.SUCCEEDED, kept.reason
    assert kept.cells[0].outputs[0]["text"] == "0\n1\n2\n"


@pytest.mark.asyncio
async def test_infinite_loop_ignoring_interrupts_times_out_and_is_killed(
    make_executor: ExecutorFactory,
) -> None:
    # Given a loop that swallows KeyboardInterrupt, a 1 s timeout and a 0.5 s grace
    executor = make_executor(interrupt_grace_s=0.5)
    spec = make_spec(
        "r-loop",
        "import time\nprint('looping')\nwhile True:\n"
        "    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass",
        timeout_s=1.0,
    )
    kernel_pids: set[int] = set()

    def watch(update: RunUpdate) -> None:
        if update.status == RunStatus.RUNNING:
            kernel_pids.update(kernel_children())

    # When it runs
    started = time.monotonic()
    result = await executor.submit(spec, watch).wait()

    # Then it ends timed out, soon after timeout plus grace, and its kernel process is gone
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "timed out after 1 s"
    assert result.attempts == 1
    assert result.cells[0].outputs[0]["text"] == "looping\n"
    assert time.monotonic() - started < 15
    assert kernel_pids
    assert not any(process_exists(pid) for pid in kernel_pids)


@pytest.mark.asyncio
async def test_interruptible_loop_times_out_too(make_executor: ExecutorFactory) -> None:
    # Given a plain sleep longer than the timeout (it obeys the interrupt)
    executor = make_executor(interrupt_grace_s=5.0)
    spec = make_spec("r-sleep", "import time\ntime.sleep(60)", timeout_s=0.5)

    # When it runs
    started = time.monotonic()
    result = await executor.submit(spec).wait()

    # Then it is timed out (not failed with KeyboardInterrupt) without using the whole grace
    assert result.status == RunStatus.TIMED_OUT
    assert result.reason == "timed out after 0.5 s"
    assert result.duration_s < 10
    assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_unknown_kernelspec_fails_with_its_name(make_executor: ExecutorFactory) -> None:
    # Given a run that asks for a kernelspec that does not exist
    executor = make_executor()
    spec = make_spec("r-nospec", "1", kernel_name="no-such-kernel-xyz")

    # When it runs
    result = await executor.submit(spec).wait()

    # Then it fails at once, naming the kernelspec and the cause, without a retry
    assert result.status == RunStatus.FAILED
    assert result.reason == "kernel 'no-such-kernel-xyz' failed to start: no such kernelspec"
    assert result.attempts == 1
    assert result.cells == []


@pytest.mark.asyncio
async def test_slow_kernel_start_fails_and_leaves_no_process(
    make_executor: ExecutorFactory,
) -> None:
    # Given a start timeout far shorter than a kernel needs
    executor = make_executor(kernel_start_timeout_s=0.05)
    spec = make_spec("r-slow", "1")

    # When the run tries to start its kernel
    result = await executor.submit(spec).wait()

    # Then it fails naming the kernelspec and the timeout, and the half-started kernel is gone
    assert result.status == RunStatus.FAILED
    assert result.reason == "kernel 'python3' did not start within 0.05 s"
    assert kernel_children() == []


@pytest.mark.asyncio
async def test_missing_working_directory_fails_to_start(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a run whose notebook directory does not exist
    executor = make_executor()
    spec = make_spec("r-nodir", "1", cwd=tmp_path / "gone")

    # When it runs
    result = await executor.submit(spec).wait()

    # Then it fails with the cause
    assert result.status == RunStatus.FAILED
    assert result.reason.startswith("kernel 'python3' failed to start:")
    assert "gone" in result.reason
