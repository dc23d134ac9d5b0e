"""Runs on real ipykernel side kernels: outputs, errors, seeds, environment, caps, updates."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, make_spec

from jupyter_research_agent.core.models import RunStatus, StateStrategy
from jupyter_research_agent.core.runner import RunUpdate


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


@pytest.mark.asyncio
async def test_success_captures_outputs_per_cell(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a notebook of three cells run in the notebook's directory
    executor = make_executor()
    spec = make_spec(
        "r-ok",
        "x = 20",
        "import os\nprint('accuracy: 0.9')\nprint(os.getcwd())\nx + 1",
        "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))",
        cwd=tmp_path,
    )

    # When it runs
    result = await executor.submit(spec).wait()

    # Then it succeeds with each cell's outputs in nbformat shape
    assert result.status == RunStatus.SUCCEEDED, result.reason
    assert result.run_id == "r-ok"
    assert result.attempts == 1
    assert result.state_strategy == StateStrategy.FULL_REPLAY
    assert result.kernel_id
    assert [c.cell_id for c in result.cells] == ["c0", "c1", "c2"]
    assert result.cells[0].outputs == []
    stream, value = result.cells[1].outputs
    assert stream == {
        "output_type": "stream",
        "name": "stdout",
        "text": f"accuracy: 0.9\n{tmp_path}\n",
    }
    assert value["output_type"] == "execute_result"
    assert value["data"]["text/plain"] == "21"
    (shown,) = result.cells[2].outputs
    assert shown["output_type"] == "display_data"
    assert shown["data"]["text/html"] == "<b>hi</b>"
    assert result.error is None
    assert result.duration_s > 0


@pytest.mark.asyncio
async def test_error_cell_stops_the_run(make_executor: ExecutorFactory) -> None:
    # Given a run whose second cell raises
    executor = make_executor()
    spec = make_spec("r-err", "print('before')", "1 / 0", "print('never')")

    # When it runs
    result = await executor.submit(spec).wait()

    # Then it fails on that cell, with the error recorded and later cells not run
    assert result.status == RunStatus.FAILED
    assert result.reason == "ZeroDivisionError: division by zero in cell c1"
    assert [c.cell_id for c in result.cells] == ["c0", "c1"]
    assert result.error is not None
    assert result.error["ename"] == "ZeroDivisionError"
    assert result.error["cell_id"] == "c1"
    assert any("ZeroDivisionError" in line for line in result.error["traceback"])
    assert result.cells[1].outputs[-1]["output_type"] == "error"
    assert result.attempts == 1


@pytest.mark.asyncio
async def test_input_fails_at_once(make_executor: ExecutorFactory) -> None:
    # Given a cell that asks for input
    executor = make_executor()
    spec = make_spec("r-input", "name = input('name? ')", timeout_s=30)

    # When it runs
    started = time.monotonic()
    result = await executor.submit(spec).wait()

    # Then it fails immediately instead of waiting for an answer that never comes
    assert result.status == RunStatus.FAILED
    assert result.reason.startswith("StdinNotImplementedError")
    assert result.reason.endswith("in cell c0")
    assert time.monotonic() - started < 10


@pytest.mark.asyncio
async def test_sys_exit_is_an_error_not_a_dead_kernel(make_executor: ExecutorFactory) -> None:
    # Given a cell that calls sys.exit()
    executor = make_executor()
    spec = make_spec("r-exit", "import sys\nsys.exit(3)", "print('after')")

    # When it runs
    result = await executor.submit(spec).wait()

    # Then the run fails with SystemExit on that cell, without a retry
    assert result.status == RunStatus.FAILED
    assert result.reason == "SystemExit: 3 in cell c0"
    assert result.error is not None
    assert result.error["ename"] == "SystemExit"
    assert result.attempts == 1


@pytest.mark.asyncio
async def test_seed_prelude_is_hidden_and_seeds_random(make_executor: ExecutorFactory) -> None:
    # Given two runs with seed 7 that draw random numbers (numpy when installed)
    executor = make_executor()
    code = (
        "import random\nprint(random.random())\n"
        "try:\n    import numpy\n    print(numpy.random.rand())\nexcept ImportError:\n    pass"
    )
    spec_a = make_spec(
        "r-seed-a", code, "sorted(k for k in globals() if k.startswith('_jra'))", seed=7
    )
    spec_b = make_spec("r-seed-b", code, seed=7)

    # When both run
    first = await executor.submit(spec_a).wait()
    second = await executor.submit(spec_b).wait()

    # Then they draw the same numbers as a generator seeded with 7, and the prelude left nothing
    assert first.status == second.status == RunStatus.SUCCEEDED
    text = first.cells[0].outputs[0]["text"]
    assert text == second.cells[0].outputs[0]["text"]
    assert float(text.split()[0]) == random.Random(7).random()
    assert first.cells[1].outputs[0]["data"]["text/plain"] == "[]"
    assert len(first.cells) == 2


@pytest.mark.asyncio
async def test_secrets_are_removed_from_the_side_kernel(
    make_executor: ExecutorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given secrets and a plain variable in the server's environment
    monkeypatch.setenv("FOO_API_KEY", "sentinel-key-123")
    monkeypatch.setenv("my_service_token", "sentinel-token-456")
    monkeypatch.setenv("JRA_PLAIN_SETTING", "visible")
    executor = make_executor()
    spec = make_spec(
        "r-env",
        "import os\n"
        "print(sorted(k for k in os.environ if 'sentinel' in os.environ[k]))\n"
        "print(os.environ.get('JRA_PLAIN_SETTING'))",
    )

    # When a side kernel prints its environment
    result = await executor.submit(spec).wait()

    # Then the secrets are absent and the plain variable is there
    assert result.status == RunStatus.SUCCEEDED, result.reason
    assert result.cells[0].outputs[0]["text"] == "[]\nvisible\n"


@pytest.mark.asyncio
async def test_output_cap_bounds_two_million_lines(make_executor: ExecutorFactory) -> None:
    # Given a cell that prints two million lines (about 14 MB) under a 64 kB cap
    executor = make_executor()
    cap = 64_000
    spec = make_spec(
        "r-flood",
        "import sys\nfor i in range(2000):\n"
        "    sys.stdout.write(''.join(f'{j}\\n' for j in range(i * 1000, i * 1000 + 1000)))",
        "print('loss: 0.5')",
        output_cap_bytes=cap,
    )
    tails: list[list[str]] = []

    # When it runs
    result = await executor.submit(spec, lambda u: tails.append(u.tail)).wait()

    # Then the capture holds at most the cap plus one marker per truncated cell
    assert result.status == RunStatus.SUCCEEDED, result.reason
    flood, after = result.cells
    assert flood.truncated
    assert after.truncated
    stream, marker = flood.outputs
    assert stream["text"].startswith("0\n1\n2\n")
    assert len(stream["text"].encode()) == cap
    assert marker["name"] == "stderr"
    assert marker["text"].startswith("[output truncated: ")
    dropped = int(marker["text"].split(": ")[1].split()[0])
    assert dropped + cap == len("".join(f"{j}\n" for j in range(2_000_000)).encode())
    # And the live tail still followed the output past the cap, to its very end
    assert tails[-1][-2:] == ["1999999", "loss: 0.5"]


@pytest.mark.asyncio
async def test_updates_are_ordered_throttled_and_robust(make_executor: ExecutorFactory) -> None:
    # Given a run printing 200 lines over about a second, and a listener that raises at times
    # (replaying every cell: the target does not need the printing cell, a slice would skip it)
    executor = make_executor(state_mode="full_replay")
    spec = make_spec(
        "r-updates",
        "import time\nfor i in range(200):\n"
        "    print('step', i, flush=True)\n    time.sleep(0.005)",
        "x = 1",
        target_index=1,
    )
    updates: list[RunUpdate] = []

    def listener(update: RunUpdate) -> None:
        updates.append(update)
        if len(updates) % 3 == 0:
            raise RuntimeError("listener bug")

    # When it runs
    started = time.monotonic()
    result = await executor.submit(spec, listener).wait()
    elapsed = time.monotonic() - started

    # Then the statuses go queued, starting, running; progress and the tail follow the run
    assert result.status == RunStatus.SUCCEEDED, result.reason
    statuses = [u.status for u in updates]
    first_seen = list(dict.fromkeys(statuses))
    assert first_seen == [RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING]
    assert all(u.run_id == "r-updates" for u in updates)
    assert any(u.progress.current_cell_id == "c0" and u.progress.total == 2 for u in updates)
    assert any(u.tail and u.tail[-1].startswith("step ") for u in updates)
    assert all(len(u.tail) <= 20 for u in updates)
    # And at most about ten updates a second go out (plus the forced status changes)
    assert len(updates) <= elapsed * 10 + 4
    # And rebuild_s measures the cells before the target
    assert result.rebuild_s is not None
    assert 0.9 < result.rebuild_s < result.duration_s
