"""The autopilot with real side kernels, offline: rounds, budget, Stop, sharing the pool."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from autopilot_support import (
    by_id,
    copy_files,
    engine_config,
    explore,
    run_count,
    running_engine,
    value,
)
from kernels_support import kernel_children

from jupyter_research_agent.core.lineage import LineageNode
from jupyter_research_agent.core.models import (
    AutopilotSettings,
    EngineEvent,
    ProposalStatus,
    RunStatus,
)


def _nodes(node: LineageNode) -> list[LineageNode]:
    return [node, *(n for child in node.children for n in _nodes(child))]


@pytest.mark.asyncio
async def test_three_rounds_improve_along_one_lineage(tmp_path: Path) -> None:
    # Given a notebook whose learning rate is far too small, explored offline on accuracy
    root = copy_files(tmp_path / "work", "poor_lr.ipynb")
    async with running_engine(engine_config(root)) as engine:
        events: list[EngineEvent] = []
        engine.subscribe(events.append)
        exp = await engine.create_exploration(explore())
        # When the researcher puts it on autopilot for three rounds
        settings = AutopilotSettings(rounds=3, budget_runs=20, per_round=2)
        started = await engine.autopilots.start(exp.id, settings)
        assert started.active and started.state is not None and started.state.enabled
        state = await engine.autopilots.wait(exp.id)
        done = engine.get_exploration(exp.id)
        view = engine.autopilots.view(exp.id)

    # Then it ran the three rounds and stopped for that reason alone
    assert state is not None
    assert state.stopped and not state.enabled
    assert state.stop_reason == "all 3 rounds done"
    assert state.rounds_done == 3
    # And the best path is one lineage, one variation per round, each built on the one before
    proposals = by_id(done)
    path = [proposals[pid] for pid in state.best_path]
    assert [p.round for p in path] == [0, 1, 2]
    assert path[0].parent_id is None
    assert [p.parent_id for p in path[1:]] == [p.id for p in path[:-1]]
    # And the metric improves round over round along it, starting above the baseline
    values = [value(done, p.id) for p in path]
    assert value(done, None) < values[0] < values[1] < values[2]
    # And the best of each round improves too
    best_per_round = [
        max(value(done, p.id) for p in done.proposals if p.round == r) for r in range(3)
    ]
    assert best_per_round == sorted(best_per_round) and len(set(best_per_round)) == 3
    # And every variation records its round and parent, approved by the autopilot
    for proposal in done.proposals:
        assert proposal.status == ProposalStatus.APPROVED
        assert proposal.approved_by == "autopilot"
        if proposal.round > 0:
            assert proposals[proposal.parent_id or ""].round == proposal.round - 1
    # And every run it started was counted
    assert state.runs_used == run_count(done) == 7
    # And the lineage tree has the baseline as root and marks exactly the best path
    assert view.lineage.proposal_id is None and not view.active
    marked = [n.proposal_id for n in _nodes(view.lineage) if n.on_best_path and n.proposal_id]
    assert marked == state.best_path
    assert len(_nodes(view.lineage)) == len(done.proposals) + 1
    # And live views heard each round end and the stop
    heard = [e.status for e in events if e.type == "autopilot"]
    assert heard.count("round_done") == 3 and heard[-1] == "stopped"


@pytest.mark.asyncio
async def test_the_run_budget_stops_it_exactly(tmp_path: Path) -> None:
    # Given an autopilot allowed many rounds but only four runs
    root = copy_files(tmp_path / "work", "poor_lr.ipynb")
    async with running_engine(engine_config(root)) as engine:
        exp = await engine.create_exploration(explore())
        settings = AutopilotSettings(rounds=10, budget_runs=4, per_round=2)
        # When it runs until it stops
        await engine.autopilots.start(exp.id, settings)
        state = await engine.autopilots.wait(exp.id)
        done = await engine.wait_runs(exp.id)

    # Then exactly four runs were started, and the run budget is the one reason given
    assert state is not None
    assert run_count(done) == 4 == state.runs_used
    assert state.stop_reason == "run budget spent (4 runs)"
    assert state.rounds_done == 2
    # And the proposal it could not afford waits, unapproved
    waiting = [p for p in done.proposals if p.status == ProposalStatus.PROPOSED]
    assert len(waiting) == 1 and waiting[0].round == 1


@pytest.mark.asyncio
async def test_stop_cancels_at_once_and_leaves_no_kernel(tmp_path: Path) -> None:
    # Given an autopilot on a cell that sleeps for 30 seconds, its runs going
    root = copy_files(tmp_path / "work", "slow.ipynb")
    async with running_engine(engine_config(root)) as engine:
        exp = await engine.create_exploration(
            explore("slow.ipynb", "work", metric="score", direction="maximize")
        )
        await engine.autopilots.start(exp.id, AutopilotSettings(rounds=3, budget_runs=10))
        deadline = time.monotonic() + 30
        while not any(r.status == RunStatus.RUNNING for r in engine.live_exploration(exp.id).runs):
            assert time.monotonic() < deadline, "no run started"
            await asyncio.sleep(0.1)

        # When the researcher stops it
        before = set(kernel_children())
        live = engine.get_exploration(exp.id)
        running = sum(r.status == RunStatus.RUNNING for r in [live.baseline, *live.runs] if r)
        began = time.monotonic()
        view = await engine.autopilots.stop(exp.id)
        took = time.monotonic() - began
        done = engine.get_exploration(exp.id)
        # Then it ends within seconds, every queued and running run cancelled
        assert took < 10
        assert view.state is not None and view.state.stopped
        assert view.state.stop_reason == "stopped by the researcher"
        runs = [done.baseline, *done.runs]
        assert runs and all(r is not None and r.status == RunStatus.CANCELLED for r in runs)
        # And each says the autopilot's stop cancelled it
        reasons = {r.reason for r in runs if r is not None}
        assert reasons <= {
            "autopilot stopped by the researcher",
            "autopilot stopped by the researcher (while queued)",
        }, reasons
        assert engine.autopilots.active().autopilots == []
        # And the side kernels of the cancelled runs are gone, none busy, nothing queued;
        # only the pool's idle kernels stay, for other explorations, until the engine closes
        pool = engine.status()["pool"]
        assert pool["busy"] == 0 and pool["queued"] == 0
        left = set(kernel_children())
        assert left <= before and len(before - left) >= running >= 1
        # And no further round starts, and stopping again changes nothing
        await asyncio.sleep(0.5)
        again = await engine.autopilots.stop(exp.id)
        assert again.state is not None
        assert again.state.stop_reason == "stopped by the researcher"
        assert run_count(engine.get_exploration(exp.id)) == len(runs)
    assert kernel_children() == []


@pytest.mark.asyncio
async def test_two_autopilots_share_the_pool(tmp_path: Path) -> None:
    # Given two explorations of two notebooks and a pool of two side kernels
    root = copy_files(tmp_path / "work", "poor_lr.ipynb")
    (root / "other.ipynb").write_bytes((root / "poor_lr.ipynb").read_bytes())
    async with running_engine(engine_config(root)) as engine:
        starts: list[tuple[str, str]] = []
        seen: set[str] = set()

        def record(event: EngineEvent) -> None:
            if event.type == "run" and event.status == "running" and event.id not in seen:
                seen.add(event.id)
                starts.append((event.exploration_id, event.id))

        engine.subscribe(record)
        first = await engine.create_exploration(explore())
        second = await engine.create_exploration(explore("other.ipynb"))
        await engine.wait_proposals(first.id)
        await engine.wait_proposals(second.id)
        settings = AutopilotSettings(rounds=2, budget_runs=20, per_round=2)
        # When both are put on autopilot at once
        await engine.autopilots.start(first.id, settings)
        await engine.autopilots.start(second.id, settings)
        listed = engine.autopilots.active().autopilots
        assert {a.notebook_path for a in listed} == {"poor_lr.ipynb", "other.ipynb"}
        states = await asyncio.gather(
            engine.autopilots.wait(first.id), engine.autopilots.wait(second.id)
        )
        a = engine.get_exploration(first.id)
        b = engine.get_exploration(second.id)

    # Then both finished their rounds
    assert [s.stop_reason for s in states if s is not None] == ["all 2 rounds done"] * 2
    # And their runs interleaved: each started a first-round run after the other had begun
    order = [exp_id for exp_id, _ in starts]

    def last_first_round_start(exp_id: str, runs_of: dict[str, str | None]) -> int:
        rounds = {p.id: p.round for p in (a if exp_id == a.id else b).proposals}
        indexes = [
            i
            for i, (e, run) in enumerate(starts)
            if e == exp_id and rounds.get(runs_of[run] or "", 0) == 0
        ]
        return max(indexes)

    runs_of = {r.id: r.proposal_id for exp in (a, b) for r in [exp.baseline, *exp.runs] if r}
    assert order.index(b.id) < last_first_round_start(a.id, runs_of)
    assert order.index(a.id) < last_first_round_start(b.id, runs_of)


@pytest.mark.asyncio
async def test_a_promising_variation_is_repeated_across_seeds_before_it_counts(
    tmp_path: Path,
) -> None:
    # Given an autopilot that must see a better variation over three seeds
    root = copy_files(tmp_path / "work", "poor_lr.ipynb")
    async with running_engine(engine_config(root)) as engine:
        exp = await engine.create_exploration(explore())
        settings = AutopilotSettings(rounds=1, budget_runs=20, per_round=2, seeds_for_promising=3)
        # When one round runs
        await engine.autopilots.start(exp.id, settings)
        state = await engine.autopilots.wait(exp.id)
        done = engine.get_exploration(exp.id)

    # Then the round's best and the baseline ran with seeds 0, 1 and 2, the other once
    assert state is not None and len(state.best_path) == 1
    [best] = state.best_path
    seeds = sorted(r.seed or 0 for r in done.runs if r.proposal_id == best)
    baseline = sorted(r.seed or 0 for r in [done.baseline, *done.runs] if r and r.is_baseline)
    assert seeds == baseline == [0, 1, 2]
    row = next(r for r in done.comparison.rows if r.proposal_id == best)
    assert row.n == 3 and "accuracy" in row.std
    assert state.runs_used == run_count(done) == 7
    assert "is the new best" in state.notes[-1]


@pytest.mark.asyncio
async def test_the_time_budget_stops_it_and_cancels_its_runs(tmp_path: Path) -> None:
    # Given an autopilot with two seconds on a cell that sleeps for 30
    root = copy_files(tmp_path / "work", "slow.ipynb")
    async with running_engine(engine_config(root)) as engine:
        exp = await engine.create_exploration(
            explore("slow.ipynb", "work", metric="score", direction="maximize")
        )
        began = time.monotonic()
        settings = AutopilotSettings(rounds=3, budget_runs=10, budget_minutes=2 / 60)
        # When it runs out of time
        await engine.autopilots.start(exp.id, settings)
        state = await engine.autopilots.wait(exp.id)
        done = await engine.wait_runs(exp.id)
        took = time.monotonic() - began

    # Then it stopped for the time, soon after, and what it had started was cancelled
    assert state is not None
    assert state.stop_reason == "time budget spent (0.0333333 minutes)"
    assert took < 15
    assert all(r.status == RunStatus.CANCELLED for r in [done.baseline, *done.runs] if r)
    # And each run says the time budget stopped it, not the researcher
    reasons = {r.reason.removesuffix(" (while queued)") for r in [done.baseline, *done.runs] if r}
    assert reasons == {"time budget spent (0.0333333 minutes)"}


@pytest.mark.asyncio
async def test_closing_the_engine_records_why_the_autopilot_stopped(tmp_path: Path) -> None:
    # Given an exploration on autopilot, its runs going
    from jupyter_research_agent.core.engine import Engine
    from jupyter_research_agent.core.ledger import Ledger

    root = copy_files(tmp_path / "work", "slow.ipynb")
    config = engine_config(root)
    engine = Engine(config)
    try:
        exp = await engine.create_exploration(
            explore("slow.ipynb", "work", metric="score", direction="maximize")
        )
        await engine.autopilots.start(exp.id, AutopilotSettings(rounds=3, budget_runs=10))
        await asyncio.sleep(0.5)
    finally:
        # When the engine closes (the server stops)
        await engine.close()
    # Then the ledger records that the autopilot stopped, with that reason alone
    ledger = Ledger(config.ledger_path)
    try:
        recorded = ledger.load_exploration(exp.id)
    finally:
        ledger.close()
    stored = recorded.autopilot
    assert stored is not None and stored.stopped and not stored.enabled
    assert stored.stop_reason == "the engine stopped"
    # And its unfinished runs say the engine stopped them, not the researcher
    runs = [r for r in [recorded.baseline, *recorded.runs] if r is not None]
    assert {(r.status, r.reason) for r in runs} <= {
        (RunStatus.INTERRUPTED, "the engine stopped before this run finished")
    }, runs
    assert kernel_children() == []
