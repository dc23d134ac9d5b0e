"""The engine end to end with real side kernels: propose, approve, run, compare."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.errors import CellError, Conflict, InvalidInput, NotebookError
from jupyter_research_agent.core.models import (
    AddProposal,
    Cell,
    CreateExploration,
    EditProposal,
    EngineEvent,
    ExplorationKind,
    ExplorationStatus,
    Origin,
    Proposal,
    ProposalStatus,
    ProposeRequest,
    RunStatus,
)
from jupyter_research_agent.core.notebook import read_notebook

FILES = Path(__file__).parent / "files"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("poor_lr.ipynb", "slow.ipynb"):
        shutil.copy(FILES / name, work / name)
    return work


def make_config(root: Path) -> EngineConfig:
    return EngineConfig(
        root_dir=root,
        ledger_path=root.parent / "ledger" / "ledger.sqlite",
        pool_size=2,
        run_timeout_s=30,
        kernel_start_timeout_s=30,
        interrupt_grace_s=1,
    )


@pytest_asyncio.fixture
async def engine(root: Path) -> AsyncIterator[Engine]:
    eng = Engine(make_config(root))
    try:
        yield eng
    finally:
        await eng.close()


def _request(**changes: object) -> CreateExploration:
    fields: dict[str, object] = {
        "notebook_path": "poor_lr.ipynb",
        "cell_id": "train",
        "offline": True,
        "max_proposals": 2,
    }
    fields.update(changes)
    return CreateExploration.model_validate(fields)


@pytest.mark.asyncio
async def test_explore_finds_a_better_learning_rate(engine: Engine) -> None:
    # Given a notebook whose learning rate is far too small, its accuracy printed in a later cell
    events: list[EngineEvent] = []
    engine.subscribe(events.append)
    # When offline proposals are made and all of them approved
    created = await engine.create_exploration(_request())
    assert created.status == ExplorationStatus.PROPOSING
    exp = await engine.wait_proposals(created.id)
    assert exp.status == ExplorationStatus.READY
    assert exp.proposer == Origin.OFFLINE
    titles = [p.title for p in exp.proposals]
    assert titles == ["lr: 0.001 → 0.0001", "lr: 0.001 → 0.01"]
    for proposal in exp.proposals:
        await engine.approve(proposal.id, proposal.code_sha256)
    done = await engine.wait_runs(exp.id)
    # Then the baseline and both variations ran, and lr x10 is the best, by accuracy
    assert done.status == ExplorationStatus.DONE
    assert done.baseline is not None
    assert done.baseline.status == RunStatus.SUCCEEDED
    assert done.baseline.metrics["accuracy"] == pytest.approx(0.655)
    assert [r.status for r in done.runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert all(r.metric_sources["accuracy"].startswith("stdout") for r in done.runs)
    faster = next(p for p in done.proposals if p.title.endswith("0.01"))
    assert done.comparison.metric == "accuracy"
    assert done.comparison.best_proposal_id == faster.id
    # And live views heard about every run ending
    ended = {e.id for e in events if e.type == "run" and e.status == RunStatus.SUCCEEDED}
    assert ended == {done.baseline.id, *(r.id for r in done.runs)}
    # And the run resource carries the captured outputs of the later cell
    detail = engine.get_run(done.runs[1].id)
    assert "accuracy: 0.7175" in str(detail.cells[-1].outputs)


@pytest.mark.asyncio
async def test_approval_binds_to_the_hash_and_is_idempotent(engine: Engine) -> None:
    # Given proposals ready for approval
    exp = await engine.wait_proposals((await engine.create_exploration(_request())).id)
    first, second = exp.proposals
    # When approved with the hash of other code, Then it is refused
    with pytest.raises(Conflict, match="not the code you approved"):
        await engine.approve(first.id, second.code_sha256)
    # When approved twice at once, Then one baseline and one variation run start
    approved = await asyncio.gather(
        engine.approve(first.id, first.code_sha256), engine.approve(first.id, first.code_sha256)
    )
    assert {a.status for a in approved} == {ProposalStatus.APPROVED}
    # When the other one is rejected, Then it can no longer be approved and never runs
    rejected = await engine.reject(second.id)
    assert rejected.status == ProposalStatus.REJECTED
    with pytest.raises(Conflict, match="rejected"):
        await engine.approve(second.id, second.code_sha256)
    done = await engine.wait_runs(exp.id)
    assert [r.proposal_id for r in done.runs] == [first.id]
    assert done.baseline is not None
    assert all(row.proposal_id != second.id for row in done.comparison.rows)


@pytest.mark.asyncio
async def test_edit_clears_approval_and_runs_the_new_code(engine: Engine) -> None:
    # Given an approved proposal whose runs ended
    exp = await engine.wait_proposals((await engine.create_exploration(_request())).id)
    proposal = exp.proposals[0]
    await engine.approve(proposal.id, proposal.code_sha256)
    await engine.wait_runs(exp.id)
    # When the researcher edits its code
    new_code = proposal.code.replace("lr = 0.0001", "lr = 0.1")
    edited = await engine.edit_proposal(proposal.id, EditProposal(code=new_code, title="lr 0.1"))
    # Then the approval is gone and the old hash no longer approves
    assert edited.status == ProposalStatus.PROPOSED
    assert edited.approved_sha256 is None
    assert edited.code_sha256 != proposal.code_sha256
    with pytest.raises(Conflict):
        await engine.approve(proposal.id, proposal.code_sha256)
    # When approved again, Then the new code runs and the comparison shows only its result
    await engine.approve(proposal.id, edited.code_sha256)
    done = await engine.wait_runs(exp.id)
    assert len(done.runs) == 2
    row = next(r for r in done.comparison.rows if r.proposal_id == proposal.id)
    assert row.n == 1
    assert row.metrics["accuracy"] > 0.9
    assert row.label == "lr 0.1"


@pytest.mark.asyncio
async def test_seeds_repeat_the_baseline_and_each_variation(engine: Engine) -> None:
    # Given an exploration asking for two seeds and a researcher-added variation
    exp = await engine.wait_proposals(
        (await engine.create_exploration(_request(max_proposals=0, seeds=2))).id
    )
    assert exp.proposals == []
    source = exp.cell_source.replace("epochs = 100", "epochs = 300")
    added = await engine.add_proposal(exp.id, AddProposal(code=source, title="more epochs"))
    assert added.origin == Origin.RESEARCHER
    # When it is approved
    await engine.approve(added.id, added.code_sha256)
    done = await engine.wait_runs(exp.id)
    # Then baseline and variation each ran once per seed, and the comparison averages them
    assert done.baseline is not None
    baseline_seeds = [done.baseline.seed] + [r.seed for r in done.runs if r.is_baseline]
    assert baseline_seeds == [0, 1]
    assert [r.seed for r in done.runs if r.proposal_id == added.id] == [0, 1]
    row = next(r for r in done.comparison.rows if r.proposal_id == added.id)
    assert row.n == 2
    assert done.comparison.best_proposal_id == added.id


@pytest.mark.asyncio
async def test_unsaved_cells_and_sweeps(engine: Engine, root: Path) -> None:
    # Given the notebook's cells as the editor holds them, with an unsaved learning rate
    nb = read_notebook(root / "poor_lr.ipynb")
    cells = [c.model_copy() for c in nb.cells]
    train = next(c for c in cells if c.id == "train")
    cells[cells.index(train)] = Cell(id="train", source=train.source.replace("0.001", "0.002"))
    # When exploring with a researcher's sweep and no room for other proposals
    exp = await engine.create_exploration(
        _request(cells=[c.model_dump() for c in cells], sweep="lr=0.05,0.1", max_proposals=2)
    )
    exp = await engine.wait_proposals(exp.id)
    # Then the proposals are the sweep's, built on the unsaved code
    assert exp.cell_source.startswith("lr = 0.002")
    assert exp.proposer == Origin.RESEARCHER
    assert [p.overrides for p in exp.proposals] == [{"lr": 0.05}, {"lr": 0.1}]
    assert all("epochs = 100" in p.code for p in exp.proposals)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"cell_id": "nope"}, CellError, "unknown cell 'nope'"),
        ({"cell_id": "intro"}, CellError, "markdown cell"),
        ({"notebook_path": "../outside.ipynb"}, NotebookError, "outside the root"),
        ({"notebook_path": "missing.ipynb"}, NotebookError, "not found"),
        ({"sweep": "nosuchname=1,2"}, InvalidInput, "nosuchname"),
        (
            {"kernel_name": "no-such-kernel"},
            InvalidInput,
            "kernel 'no-such-kernel' is not installed",
        ),
    ],
)
@pytest.mark.asyncio
async def test_bad_requests_fail_before_anything_starts(
    engine: Engine, changes: dict[str, object], error: type[Exception], message: str
) -> None:
    # Given a request naming a bad cell, path or sweep
    # When the exploration is created, Then it fails at once with a clear error
    with pytest.raises(error, match=message):
        await engine.create_exploration(_request(**changes))
    # And nothing was recorded
    assert engine.list_explorations() == []


class _BrokenProposer:
    origin = Origin.LLM

    async def propose(self, request: ProposeRequest) -> list[Proposal]:
        raise RuntimeError("connection reset")


@pytest.mark.asyncio
async def test_proposer_failure_fails_the_exploration(root: Path) -> None:
    # Given an engine whose proposer fails, and a listener that fails too
    engine = Engine(make_config(root), proposer=_BrokenProposer())

    def broken_listener(event: EngineEvent) -> None:
        raise ValueError("listener bug")

    engine.subscribe(broken_listener)
    try:
        # When proposals are asked for
        exp = await engine.wait_proposals(
            (await engine.create_exploration(_request(offline=False))).id
        )
        # Then the exploration failed with a message for the researcher
        assert exp.status == ExplorationStatus.FAILED
        assert "connection reset" in exp.error
        assert exp.proposer == Origin.LLM
        # And asking for seed checks offline still works on the same engine
        seeds = await engine.wait_proposals(
            (await engine.create_exploration(_request(kind=ExplorationKind.SEEDS))).id
        )
        assert seeds.status == ExplorationStatus.READY
        assert [p.seed for p in seeds.proposals] == [1, 2]
    finally:
        await engine.close()


@pytest.mark.asyncio
async def test_cancel_a_running_run(engine: Engine) -> None:
    # Given a variation of a slow cell that is running
    exp = await engine.wait_proposals(
        (await engine.create_exploration(_request(notebook_path="slow.ipynb", cell_id="work"))).id
    )
    proposal = exp.proposals[0]
    await engine.approve(proposal.id, proposal.code_sha256)
    run_id = engine.get_exploration(exp.id).runs[0].id
    for _ in range(200):
        if engine.get_run(run_id).status == RunStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    # When it is cancelled
    cancelled = await engine.cancel_run(run_id)
    # Then it ends cancelled without waiting for the sleep, and the baseline goes on
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.reason
    current = engine.get_exploration(exp.id)
    assert current.baseline is not None
    assert current.baseline.status == RunStatus.RUNNING
    assert current.status == ExplorationStatus.RUNNING
    assert engine.status()["pool"]["pool_size"] == 2
