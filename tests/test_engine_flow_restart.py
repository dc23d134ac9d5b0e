"""The engine across restarts: results survive, unfinished runs read interrupted."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import STOPPED_REASON, Engine
from jupyter_research_agent.core.ledger import Ledger
from jupyter_research_agent.core.models import (
    CreateExploration,
    ExplorationStatus,
    RunStatus,
)

FILES = Path(__file__).parent / "files"


def _config(tmp_path: Path) -> EngineConfig:
    root = tmp_path / "work"
    root.mkdir(exist_ok=True)
    for name in ("poor_lr.ipynb", "slow.ipynb"):
        shutil.copy(FILES / name, root / name)
    return EngineConfig(
        root_dir=root,
        ledger_path=tmp_path / "ledger.sqlite",
        pool_size=2,
        run_timeout_s=30,
        interrupt_grace_s=1,
    )


def _kernel_children() -> set[int]:
    """Live descendants of this process (read from /proc: kernels are its children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # zombies are gone, only not yet reaped
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


@pytest.mark.asyncio
async def test_results_survive_a_restart_and_approvals_still_run(tmp_path: Path) -> None:
    # Given an exploration with one proposal run and one left for later, then the engine closed
    config = _config(tmp_path)
    first = Engine(config)
    try:
        request = CreateExploration(
            notebook_path="poor_lr.ipynb", cell_id="train", offline=True, max_proposals=2
        )
        exp = await first.wait_proposals((await first.create_exploration(request)).id)
        ran, later = exp.proposals
        await first.approve(ran.id, ran.code_sha256)
        before = await first.wait_runs(exp.id)
    finally:
        await first.close()
    # And the notebook file changed on disk meanwhile (the exploration keeps its snapshot)
    (config.root_dir / "poor_lr.ipynb").unlink()
    # When a new engine opens the same ledger
    second = Engine(config)
    try:
        again = second.get_exploration(exp.id)
        # Then the results and the comparison are as they were
        assert again.status == ExplorationStatus.DONE
        assert again.baseline is not None
        assert before.baseline is not None
        assert again.baseline.metrics == before.baseline.metrics
        assert [r.metrics for r in again.runs] == [r.metrics for r in before.runs]
        assert again.comparison.rows == before.comparison.rows
        assert second.get_run(again.runs[0].id).cells
        assert [e.id for e in second.list_explorations("poor_lr.ipynb")] == [exp.id]
        # And the proposal left for later can still be approved and runs against the snapshot
        await second.approve(later.id, later.code_sha256)
        done = await second.wait_runs(exp.id)
        assert [r.status for r in done.runs] == [RunStatus.SUCCEEDED] * 2
        assert done.comparison.best_proposal_id == later.id
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_closing_mid_run_interrupts_and_shuts_every_kernel(tmp_path: Path) -> None:
    # Given a slow variation and its baseline running in side kernels
    config = _config(tmp_path)
    children_before = _kernel_children()
    engine = Engine(config)
    request = CreateExploration(
        notebook_path="slow.ipynb", cell_id="work", offline=True, max_proposals=1
    )
    exp = await engine.wait_proposals((await engine.create_exploration(request)).id)
    proposal = exp.proposals[0]
    await engine.approve(proposal.id, proposal.code_sha256)
    for _ in range(300):
        current = engine.get_exploration(exp.id)
        runs = [current.baseline, *current.runs]
        if all(r is not None and r.status == RunStatus.RUNNING for r in runs):
            break
        await asyncio.sleep(0.05)
    assert _kernel_children() - children_before
    # When the engine closes
    await engine.close()
    # Then no kernel process is left and both runs read interrupted, with the reason
    assert _kernel_children() - children_before == set()
    ledger = Ledger(config.ledger_path)
    try:
        stored = ledger.load_exploration(exp.id)
        runs = [stored.baseline, *stored.runs]
        assert [r.status for r in runs if r] == [RunStatus.INTERRUPTED] * 2
        assert {r.reason for r in runs if r} == {STOPPED_REASON}
        assert stored.status == ExplorationStatus.DONE
    finally:
        ledger.close()
