"""Side kernels on a real Jupyter Kernel Gateway: explorations, failures, timeouts and cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from gateway_support import Gateway, kernel_gateway, slow_kernelspec
from kernels_support import executors, kernel_children, make_spec
from pydantic import SecretStr

from jupyter_research_agent.core.config import EngineConfig, GatewayConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.models import (
    CreateExploration,
    ExplorationStatus,
    RunStatus,
    StateStrategy,
)
from jupyter_research_agent.core.runner import RunHandle, RunUpdate

FILES = Path(__file__).parent / "files"


SLOW = "slow_python"  # a kernelspec of the test gateway whose kernels start 2 s late


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    specs = tmp_path_factory.mktemp("kernelspecs")
    slow_kernelspec(specs, SLOW, delay_s=2.0)
    with kernel_gateway(tmp_path_factory.mktemp("gateway"), jupyter_path=specs) as gw:
        yield gw


def on(gateway: Gateway, token: str | None = None) -> GatewayConfig:
    return GatewayConfig(url=gateway.url, auth_token=SecretStr(token or gateway.token))


def engine_config(root: Path, gateway: GatewayConfig) -> EngineConfig:
    return EngineConfig(
        root_dir=root,
        ledger_path=root.parent / "ledger.sqlite",
        pool_size=2,
        run_timeout_s=30,
        kernel_start_timeout_s=30,
        interrupt_grace_s=1,
        gateway=gateway,
    )


def poor_lr(tmp_path: Path, linger_s: float = 0.0) -> Path:
    """The poor learning-rate notebook; its last cell lingers so running kernels can be seen."""
    root = tmp_path / "work"
    root.mkdir()
    nb = nbformat.read(FILES / "poor_lr.ipynb", as_version=4)
    if linger_s:
        nb.cells[-1].source += f"\nimport time\ntime.sleep({linger_s})"
    nbformat.write(nb, root / "poor_lr.ipynb")
    return root


REQUEST = CreateExploration(
    notebook_path="poor_lr.ipynb", cell_id="train", offline=True, max_proposals=2
)


async def explore(engine: Engine) -> tuple[ExplorationStatus, list[str], list[RunStatus]]:
    """Propose offline, approve everything, wait for the runs; statuses and reasons of runs."""
    exp = await engine.wait_proposals((await engine.create_exploration(REQUEST)).id)
    for proposal in exp.proposals:
        await engine.approve(proposal.id, proposal.code_sha256)
    done = await engine.wait_runs(exp.id)
    runs = [r for r in [done.baseline, *done.runs] if r is not None]
    return done.status, [r.reason for r in runs], [r.status for r in runs]


async def wait_running(handle: RunHandle, wait_s: float = 30) -> str:
    deadline = time.monotonic() + wait_s
    while handle.status != RunStatus.RUNNING or handle.kernel_id is None:
        assert time.monotonic() < deadline, f"run {handle.run_id} never started"
        await asyncio.sleep(0.05)
    return handle.kernel_id


@pytest.mark.asyncio
async def test_an_exploration_runs_its_side_kernels_on_the_gateway(
    gateway: Gateway, tmp_path: Path
) -> None:
    # Given an engine whose side kernels start on the gateway, and a watcher listing its kernels
    engine = Engine(engine_config(poor_lr(tmp_path, linger_s=1.0), on(gateway)))
    listed: set[str] = set()
    local: set[int] = set()

    async def watch() -> None:
        while True:
            listed.update(k["id"] for k in await asyncio.to_thread(gateway.kernels))
            local.update(kernel_children())
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    try:
        # When an offline exploration is made and two proposals approved
        exp = await engine.wait_proposals((await engine.create_exploration(REQUEST)).id)
        for proposal in exp.proposals:
            await engine.approve(proposal.id, proposal.code_sha256)
        done = await engine.wait_runs(exp.id)
    finally:
        watcher.cancel()
        await engine.close()
    if watcher.done() and not watcher.cancelled():
        raise AssertionError(f"watcher stopped: {watcher.exception()!r}")

    # Then the baseline and both variations succeeded with their metrics, prefix replayed remotely
    assert done.status == ExplorationStatus.DONE
    runs = [done.baseline, *done.runs]
    assert all(r is not None and r.status == RunStatus.SUCCEEDED for r in runs), runs
    assert done.baseline is not None
    assert done.baseline.metrics["accuracy"] == pytest.approx(0.655)
    assert max(r.metrics["accuracy"] for r in done.runs) == pytest.approx(0.7175)
    # (snapshots are files on this machine: remote kernels rebuild state by replaying cells)
    replays = {StateStrategy.SLICED_REPLAY, StateStrategy.FULL_REPLAY}
    assert {r.state_strategy for r in runs if r is not None} <= replays
    # And every run's kernel was started by the gateway, which listed them while they ran
    kernel_ids = {r.kernel_id for r in done.runs} | {done.baseline.kernel_id}
    assert None not in kernel_ids
    assert kernel_ids <= set(gateway.started_ids())
    assert listed and listed <= set(gateway.started_ids())
    # And no kernel ran on this machine, and the gateway has none left
    assert local == set()
    assert kernel_ids <= set(gateway.shutdown_ids())
    assert gateway.kernels() == []


@pytest.mark.asyncio
async def test_a_stopped_gateway_fails_the_runs_at_once(tmp_path: Path) -> None:
    # Given a gateway that was running and has been stopped
    with kernel_gateway(tmp_path) as stopped:
        stopped.stop()
    config = engine_config(poor_lr(tmp_path), on(stopped))
    config.kernel_start_timeout_s = 60  # failing fast must not mean waiting for this
    engine = Engine(config)
    # When an exploration is approved
    started = time.monotonic()
    try:
        status, reasons, statuses = await explore(engine)
    finally:
        await engine.close()
    # Then every run failed well before any timeout, saying the gateway is unreachable
    assert time.monotonic() - started < 20
    assert status == ExplorationStatus.DONE
    assert statuses == [RunStatus.FAILED] * 3
    for reason in reasons:
        assert reason.startswith(f"kernel gateway at {stopped.url} is unreachable:"), reason
        assert "refused" in reason.lower()


@pytest.mark.asyncio
async def test_a_wrong_token_fails_the_runs_with_the_reason(
    gateway: Gateway, tmp_path: Path
) -> None:
    # Given an executor holding a token the gateway does not accept
    async with executors(tmp_path) as make:
        executor = make(gateway=on(gateway, token="not-the-token"))
        # When two runs are submitted
        handles = [executor.submit(make_spec(f"r{i}", "print(1)")) for i in range(2)]
        results = [await h.wait() for h in handles]
    # Then both failed at once, the reason naming the gateway and the refusal, not the token
    for result in results:
        assert result.status == RunStatus.FAILED
        assert result.reason == f"kernel gateway at {gateway.url} refused the token (401)"
        assert result.duration_s < 5
    assert "not-the-token" not in gateway.log()


@pytest.mark.asyncio
async def test_an_unknown_kernelspec_is_named_in_the_reason(
    gateway: Gateway, tmp_path: Path
) -> None:
    # Given runs asking the gateway for a kernelspec it does not have
    async with executors(tmp_path) as make:
        executor = make(gateway=on(gateway))
        # When one is submitted
        result = await executor.submit(make_spec("r", "1", kernel_name="no-such-spec")).wait()
    # Then it failed with the gateway's words for it
    assert result.status == RunStatus.FAILED
    assert result.reason.startswith(f"kernel gateway at {gateway.url} answered 500")
    assert "No such kernel named no-such-spec" in result.reason


@pytest.mark.asyncio
async def test_queueing_timeout_and_cancel_on_the_gateway(gateway: Gateway, tmp_path: Path) -> None:
    # Given two slots on the gateway and three runs: a slow loop, a long sleep, a quick one
    loop = "import time\nfor _ in range(600):\n    time.sleep(0.05)"
    async with executors(tmp_path) as make:
        executor = make(gateway=on(gateway), pool_size=2, interrupt_grace_s=1.0)
        slow = executor.submit(make_spec("slow", loop, timeout_s=3.0))
        sleeper = executor.submit(make_spec("sleeper", "import time; time.sleep(60)"))
        quick = executor.submit(make_spec("quick", "print('quick done')"))
        # When both slow runs are running, Then the gateway lists their kernels, the third waits
        slow_id, sleeper_id = await wait_running(slow), await wait_running(sleeper)
        assert {slow_id, sleeper_id} <= {k["id"] for k in gateway.kernels()}
        assert quick.status == RunStatus.QUEUED
        # When the sleeper is cancelled
        sleeper.cancel()
        cancelled = await sleeper.wait()
        timed_out = await slow.wait()
        finished = await quick.wait()
        # Then it ended as cancelled, the loop timed out, and the queued run then succeeded
        assert cancelled.status == RunStatus.CANCELLED
        assert cancelled.reason == "cancelled by the researcher"
        assert timed_out.status == RunStatus.TIMED_OUT
        assert timed_out.reason == "timed out after 3 s"
        assert finished.status == RunStatus.SUCCEEDED
        assert "quick done" in str(finished.cells[0].outputs)
    # And their kernels are gone from the gateway
    assert {slow_id, sleeper_id} <= set(gateway.shutdown_ids())
    assert gateway.kernels() == []


@pytest.mark.asyncio
async def test_a_gateway_going_away_mid_run_fails_the_run(tmp_path: Path) -> None:
    # Given a run sleeping in a kernel on a gateway of its own
    with kernel_gateway(tmp_path) as doomed:
        async with executors(tmp_path) as make:
            executor = make(gateway=on(doomed), retry_dead_kernel=True, kernel_start_timeout_s=60)
            handle = executor.submit(make_spec("r", "import time; time.sleep(120)", timeout_s=60))
            await wait_running(handle)
            # When the gateway stops
            await asyncio.to_thread(doomed.stop)
            started = time.monotonic()
            result = await handle.wait()
    # Then the run failed well before any timeout, saying the kernel died and the gateway is gone
    assert time.monotonic() - started < 20
    assert result.status == RunStatus.FAILED
    assert f"kernel gateway at {doomed.url} is unreachable" in result.reason
    assert "kernel died while running cell c0" in result.reason


@pytest.mark.asyncio
async def test_secrets_stay_here_and_kernel_variables_travel(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given KERNEL_* variables on this machine, one of them named like a secret
    monkeypatch.setenv("KERNEL_PROJECT", "demo")
    monkeypatch.setenv("KERNEL_REGISTRY_TOKEN", "do-not-send")
    monkeypatch.setenv("SOME_API_KEY", "do-not-send-either")
    code = "import os\nprint(sorted(k for k in os.environ if k.startswith(('KERNEL_', 'SOME_'))))"
    async with executors(tmp_path) as make:
        executor = make(gateway=on(gateway))
        # When a run prints the variables its remote kernel sees
        result = await executor.submit(make_spec("r", code)).wait()
    # Then the plain KERNEL_ variable and the launch settings arrived, the secrets did not
    assert result.status == RunStatus.SUCCEEDED, result.reason
    printed = str(result.cells[0].outputs)
    for name in ("KERNEL_PROJECT", "KERNEL_USERNAME", "KERNEL_LAUNCH_TIMEOUT"):
        assert name in printed
    assert "KERNEL_REGISTRY_TOKEN" not in printed
    assert "SOME_API_KEY" not in printed


@pytest.mark.asyncio
async def test_slow_starts_show_as_starting_and_too_slow_ones_time_out(
    gateway: Gateway, tmp_path: Path
) -> None:
    # Given a kernelspec whose kernels take 2 s to come up on the gateway
    seen: list[tuple[float, RunStatus]] = []

    def record(update: RunUpdate) -> None:
        seen.append((time.monotonic(), update.status))

    async with executors(tmp_path) as make:
        patient = make(gateway=on(gateway), kernel_start_timeout_s=30)
        hasty = make(gateway=on(gateway), kernel_start_timeout_s=1)
        # When a run uses it with time enough to start
        done = await patient.submit(
            make_spec("slow", "print('up')", kernel_name=SLOW), record
        ).wait()
        # Then it was "starting" for those seconds, then ran
        assert done.status == RunStatus.SUCCEEDED, done.reason
        starting = next(t for t, status in seen if status == RunStatus.STARTING)
        running = next(t for t, status in seen if status == RunStatus.RUNNING)
        assert running - starting >= 1.5
        # When a run allows its kernel only one second to start
        late = await hasty.submit(make_spec("late", "print('up')", kernel_name=SLOW)).wait()
    # Then it failed saying so, and the half-started kernel was deleted from the gateway
    assert late.status == RunStatus.FAILED
    assert late.reason == f"kernel {SLOW!r} did not start within 1 s"
    for _ in range(100):  # the deletion goes on in the background for up to a few seconds
        if not gateway.kernels():
            break
        await asyncio.sleep(0.1)
    assert gateway.kernels() == []
