"""State rebuild strategies on real kernels: each gives the same results as a full replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, make_spec

from jupyter_research_agent.core.live import ClientKernelSource, LiveKernelSource
from jupyter_research_agent.core.metrics import extract_run_metrics
from jupyter_research_agent.core.models import RunStatus, StateStrategy
from jupyter_research_agent.core.runner import RunResult

SETUP = """\
import random
gen_rng = random.Random(7)
data = [gen_rng.random() for _ in range(200)]
print("loaded", len(data))
"""
UNRELATED = "unrelated = sum(range(10))\nprint('unrelated done')"
TARGET = """\
scale = 2.0
values = sorted(data)
score = sum(values[-10:]) * scale + random.random()
"""
REPORT = "print(f'score: {score:.6f}')\nprint(f'spread: {max(values) - min(values):.6f}')"
CELLS = (SETUP, UNRELATED, TARGET, REPORT)

UNPICKLABLE = """\
import threading
lock = threading.Lock()
stream = (i * i for i in range(100))
handle = open("numbers.txt", "w")
"""
USES_UNPICKLABLE = """\
with lock:
    first = next(stream)
handle.write("x")
score = len(data) + first + (0 if handle.closed else 1)
print(f"score: {score}")
"""


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


async def _run(executor: Any, run_id: str, *cells: str, cwd: Path, **fields: Any) -> RunResult:
    spec = make_spec(run_id, *cells, cwd=cwd, target_index=2, seed=0, **fields)
    result: RunResult = await executor.submit(spec).wait()
    assert result.status == RunStatus.SUCCEEDED, result.reason
    return result


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "strategy"),
    [
        ("sliced_replay", StateStrategy.SLICED_REPLAY),
        ("snapshot_prepared", StateStrategy.SNAPSHOT_PREPARED),
    ],
)
async def test_baseline_metrics_equal_a_full_replay(
    make_executor: ExecutorFactory, tmp_path: Path, mode: str, strategy: StateStrategy
) -> None:
    # Given the same notebook run once with a full replay, once with another strategy
    full = await _run(make_executor(state_mode="full_replay"), "full", *CELLS, cwd=tmp_path)
    other = await _run(make_executor(state_mode=mode), "other", *CELLS, cwd=tmp_path)

    # Then the strategies are recorded and the metrics are equal to the last digit
    # (random.random() in the target included: the generators' state is carried over too)
    assert full.state_strategy == StateStrategy.FULL_REPLAY
    assert other.state_strategy == strategy
    assert extract_run_metrics(other.cells) == extract_run_metrics(full.cells)
    assert set(extract_run_metrics(full.cells)) == {"score", "spread"}
    # And the unrelated cell was not replayed
    assert "c1" not in [c.cell_id for c in other.cells]
    assert other.rebuild_s is not None and full.rebuild_s is not None


@pytest.mark.asyncio
async def test_prepared_prefix_runs_once_for_many_variations(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a setup cell that notes each time it runs, and three variations of the target
    counted = SETUP + "with open('setup_runs.txt', 'a') as f:\n    f.write('ran\\n')\n"
    executor = make_executor(state_mode="snapshot_prepared", pool_size=3)
    variations = [TARGET.replace("2.0", str(v)) for v in (1.0, 2.0, 3.0)]

    # When they run together
    results = await asyncio.gather(
        *(
            _run(executor, f"v{i}", counted, UNRELATED, v, REPORT, cwd=tmp_path)
            for i, v in enumerate(variations)
        )
    )

    # Then the setup ran once (in the prepared kernel), and each variation got its own result
    assert all(r.state_strategy == StateStrategy.SNAPSHOT_PREPARED for r in results)
    assert (tmp_path / "setup_runs.txt").read_text().splitlines() == ["ran"]
    assert executor.state.prepared.count == 1
    scores = [extract_run_metrics(r.cells)["score"] for r in results]
    assert len(set(scores)) == 3
    # And the setup's own output is still part of each run's outputs
    assert all(r.cells[0].cell_id == "c0" and r.cells[0].outputs for r in results)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["sliced_replay", "snapshot_prepared"])
async def test_a_variation_mutating_a_shared_object_does_not_leak(
    make_executor: ExecutorFactory, tmp_path: Path, mode: str
) -> None:
    # Given a target that appends to a list built earlier, run three times on one kernel slot
    # (so kernels are cleared and reused between runs)
    executor = make_executor(state_mode=mode, pool_size=1)
    target = "data.append(99.0)\nscore = len(data)\nmarker = 'left behind'"
    report = "print(f'score: {score}')\nprint('marker' in dir())"

    # When the runs go one after the other
    results = [
        await _run(executor, f"m{i}", SETUP, UNRELATED, target, report, cwd=tmp_path)
        for i in range(3)
    ]

    # Then each saw the list as the setup left it, not as an earlier run left it
    assert [extract_run_metrics(r.cells)["score"] for r in results] == [201.0] * 3
    # And the kernels were reused (cleared), not started anew for each run
    assert len({r.kernel_id for r in results}) < 3


@pytest.mark.asyncio
async def test_unpicklable_variables_are_rebuilt_not_lost(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a generator, a lock and an open file made before the target
    cells = (SETUP, UNPICKLABLE, USES_UNPICKLABLE, "print('done')")
    full = await _run(make_executor(state_mode="full_replay"), "f", *cells, cwd=tmp_path)

    # When the target runs from a prepared kernel's snapshot
    snap = await _run(make_executor(state_mode="snapshot_prepared"), "s", *cells, cwd=tmp_path)

    # Then the strategy is still the snapshot, the unpicklable values were rebuilt by replaying
    # their cell, and the result equals the full replay's
    assert snap.state_strategy == StateStrategy.SNAPSHOT_PREPARED
    assert [c.cell_id for c in snap.cells][:2] == ["c0", "c1"]
    assert extract_run_metrics(snap.cells) == extract_run_metrics(full.cells) == {"score": 201.0}


@pytest.mark.asyncio
async def test_functions_of_the_notebook_see_the_variation_s_globals(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a helper function defined earlier that reads the global `scale`
    helper = "def scaled(x):\n    return x * scale\nscale = 1.0"
    target = "scale = 5.0\nscore = scaled(2.0)"
    cells = (SETUP, helper, target, "print(f'score: {score}')")

    # When it runs from a snapshot
    result = await _run(make_executor(state_mode="snapshot_prepared"), "g", *cells, cwd=tmp_path)

    # Then the function reads the target's new value, as it would after a replay
    assert result.state_strategy == StateStrategy.SNAPSHOT_PREPARED
    assert extract_run_metrics(result.cells) == {"score": 10.0}


@pytest.mark.asyncio
async def test_a_snapshot_that_cannot_load_falls_back_to_replay(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a value that pickles but cannot be unpickled
    (tmp_path / "boom.py").write_text(
        "def explode():\n    raise RuntimeError('cannot load')\n\n"
        "class Boom:\n    def __reduce__(self):\n        return (explode, ())\n"
    )
    cells = (
        "import boom\nthing = boom.Boom()\nn = 3",
        UNRELATED,
        "score = n * 2 if thing else 0",
        "print(f'score: {score}')",
    )
    executor = make_executor(state_mode="snapshot_prepared")

    # When a run loads it
    result = await _run(executor, "b", *cells, cwd=tmp_path)

    # Then the run replays its slice instead and says so
    assert result.state_strategy == StateStrategy.SLICED_REPLAY
    assert extract_run_metrics(result.cells) == {"score": 6.0}


@pytest.mark.asyncio
async def test_unsure_code_replays_everything(
    make_executor: ExecutorFactory, tmp_path: Path
) -> None:
    # Given a prefix that defines a name through exec
    cells = ("exec('n = 4')", UNRELATED, "score = n", "print(f'score: {score}')")
    # When it runs in auto mode
    result = await _run(make_executor(), "u", *cells, cwd=tmp_path)
    # Then every cell was replayed and the run says so
    assert result.state_strategy == StateStrategy.FULL_REPLAY
    assert [c.cell_id for c in result.cells] == ["c0", "c1", "c2", "c3"]
    assert extract_run_metrics(result.cells) == {"score": 4.0}


# ---------------------------------------------------------------- the live kernel


class LiveKernel:
    """A kernel standing in for the researcher's own, with a switch for 'busy'."""

    def __init__(self, manager: Any, client: Any) -> None:
        self.manager = manager
        self.client = client
        self.busy = False
        self.requests = 0

    async def execute(self, code: str) -> dict[str, Any]:
        msg_id = self.client.execute(code)
        while True:
            reply = await self.client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = reply["content"]
                return content

    async def source(self, notebook_path: str) -> LiveKernelSource | None:
        self.requests += 1
        info = self.manager.get_connection_info()
        return ClientKernelSource(info, is_idle=lambda: not self.busy)


@pytest_asyncio.fixture
async def live_kernel(tmp_path: Path) -> AsyncIterator[LiveKernel]:
    from jupyter_client.manager import AsyncKernelManager

    manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "live"))
    await manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=30)
        yield LiveKernel(manager, client)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


NAMESPACE_PROBE = "sorted(k for k in globals() if not k.startswith('_') or k in ('_', '__'))"


@pytest.mark.asyncio
async def test_live_snapshot_matches_a_full_replay_and_leaves_the_kernel_untouched(
    make_executor: ExecutorFactory, tmp_path: Path, live_kernel: LiveKernel
) -> None:
    # Given the researcher's kernel has run the setup cell (the target does not use the
    # global random generator here: a live copy does not carry it over)
    target = "scale = 2.0\nvalues = sorted(data)\nscore = sum(values[-10:]) * scale"
    cells = (SETUP, UNRELATED, target, REPORT)
    await live_kernel.execute(SETUP)
    before = await live_kernel.execute("0")
    names_before = await _names(live_kernel)
    full = await _run(make_executor(state_mode="full_replay"), "f", *cells, cwd=tmp_path)

    # When a run takes its state from the live kernel
    executor = make_executor()
    executor.live_kernels = live_kernel.source
    live = await _run(executor, "l", *cells, cwd=tmp_path, notebook_path="nb.ipynb")

    # Then it copied from the live kernel, with the full replay's metrics
    assert live.state_strategy == StateStrategy.SNAPSHOT_LIVE
    assert extract_run_metrics(live.cells) == extract_run_metrics(full.cells)
    assert "c0" not in [c.cell_id for c in live.cells]
    # And the researcher's namespace and execution count are as they were
    assert await _names(live_kernel) == names_before
    after = await live_kernel.execute("0")
    assert after["execution_count"] == before["execution_count"] + 1  # our "0" alone


async def _names(kernel: LiveKernel) -> Any:
    msg_id = kernel.client.execute(
        "", silent=True, store_history=False, user_expressions={"names": NAMESPACE_PROBE}
    )
    while True:
        reply = await kernel.client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]["user_expressions"]["names"]["data"]["text/plain"]


@pytest.mark.asyncio
async def test_a_busy_live_kernel_is_not_asked(
    make_executor: ExecutorFactory, tmp_path: Path, live_kernel: LiveKernel
) -> None:
    # Given the researcher's kernel is busy
    await live_kernel.execute(SETUP)
    live_kernel.busy = True
    executor = make_executor()
    executor.live_kernels = live_kernel.source

    # When a run starts, Then it does not wait for it: it prepares its own state instead
    result = await _run(executor, "b", *CELLS, cwd=tmp_path, notebook_path="nb.ipynb")
    assert result.state_strategy == StateStrategy.SNAPSHOT_PREPARED
    assert live_kernel.requests == 1


@pytest.mark.asyncio
async def test_names_missing_from_the_live_kernel_are_rebuilt(
    make_executor: ExecutorFactory, tmp_path: Path, live_kernel: LiveKernel
) -> None:
    # Given the researcher ran the setup but not the cell defining `offset`
    await live_kernel.execute(SETUP)
    cells = (SETUP, "offset = 100", "score = len(data) + offset", "print(f'score: {score}')")
    executor = make_executor()
    executor.live_kernels = live_kernel.source

    # When a run copies from the live kernel
    result = await _run(executor, "m", *cells, cwd=tmp_path, notebook_path="nb.ipynb")

    # Then the missing name was rebuilt by replaying its cell, and the result is right
    assert result.state_strategy == StateStrategy.SNAPSHOT_LIVE
    assert [c.cell_id for c in result.cells] == ["c1", "c2", "c3"]
    assert extract_run_metrics(result.cells) == {"score": 300.0}
