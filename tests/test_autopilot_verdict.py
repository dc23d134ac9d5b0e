"""Pure parts of the autopilot: better beyond the noise, seeds to repeat, lineage, budget."""

from __future__ import annotations

import pytest

from jupyter_research_agent.core.autopilot_verdict import (
    crashed,
    judge,
    missing_seeds,
    round_best,
)
from jupyter_research_agent.core.budget import Budget
from jupyter_research_agent.core.lineage import lineage, path_to
from jupyter_research_agent.core.models import (
    AutopilotSettings,
    AutopilotState,
    Comparison,
    ComparisonRow,
    Direction,
    Exploration,
    Proposal,
    Run,
    RunStatus,
)


def _row(pid: str | None, value: float, std: float | None = None) -> ComparisonRow:
    return ComparisonRow(
        label=pid or "baseline",
        proposal_id=pid,
        is_baseline=pid is None,
        status="succeeded",
        metrics={"acc": value},
        std={"acc": std} if std is not None else {},
        n=3 if std is not None else 1,
    )


def _comparison(*rows: ComparisonRow, direction: Direction = Direction.MAXIMIZE) -> Comparison:
    return Comparison(metric="acc", direction=direction, rows=list(rows))


@pytest.mark.parametrize(
    ("mine", "theirs", "direction", "verdict"),
    [
        ((0.80, None), (0.70, None), Direction.MAXIMIZE, "better"),
        ((0.80, 0.02), (0.70, 0.02), Direction.MAXIMIZE, "better"),
        ((0.72, 0.05), (0.70, 0.01), Direction.MAXIMIZE, "within_noise"),
        ((0.60, None), (0.70, None), Direction.MAXIMIZE, "not_better"),
        ((0.30, 0.01), (0.40, 0.01), Direction.MINIMIZE, "better"),
        ((0.39, 0.02), (0.40, 0.01), Direction.MINIMIZE, "within_noise"),
    ],
)
def test_better_means_beyond_the_seed_noise(
    mine: tuple[float, float | None],
    theirs: tuple[float, float | None],
    direction: Direction,
    verdict: str,
) -> None:
    # Given a candidate and a reference, each with its spread across seeds (if repeated)
    candidate, reference = _row("p1", *mine), _row(None, *theirs)
    # When judged, Then the gap must exceed the larger standard deviation to count
    assert (
        judge(candidate, reference, _comparison(reference, candidate, direction=direction)).verdict
        == verdict
    )


def test_round_best_looks_only_at_the_round() -> None:
    # Given rows of two rounds
    comparison = _comparison(_row(None, 0.5), _row("a", 0.9), _row("b", 0.6), _row("c", 0.7))
    # When the best of the round holding b and c is asked for, Then c, not a
    best = round_best(comparison, {"b", "c"})
    assert best is not None and best.proposal_id == "c"
    assert round_best(comparison, set()) is None


def _exp(**fields: object) -> Exploration:
    return Exploration.model_validate({"notebook_path": "n.ipynb", "cell_id": "c", **fields})


def test_missing_seeds_fill_up_to_the_wanted_count() -> None:
    # Given a variation run once with seed 0 and once with seed 1 that failed
    runs = [
        Run(exploration_id="e", proposal_id="p", seed=0, status=RunStatus.SUCCEEDED),
        Run(exploration_id="e", proposal_id="p", seed=1, status=RunStatus.FAILED),
        Run(exploration_id="e", is_baseline=True, seed=0, status=RunStatus.SUCCEEDED),
    ]
    exp = _exp(runs=runs)
    # When three runs are wanted, Then two more seeds are run, the failed one again
    assert missing_seeds(exp, "p", 3) == [1, 2]
    assert missing_seeds(exp, None, 2) == [1]
    assert missing_seeds(exp, "p", 1) == []


def test_lineage_tree_and_best_path() -> None:
    # Given three rounds along one line, a side branch, and a repair under a crash
    a = Proposal(title="a", code="a", round=0)
    b = Proposal(title="b", code="b", round=0)
    c = Proposal(title="c", code="c", round=1, parent_id=a.id)
    fix = Proposal(title="fix", code="f", round=1, parent_id=c.id)
    d = Proposal(title="d", code="d", round=2, parent_id=c.id)
    exp = _exp(
        proposals=[a, b, c, fix, d],
        autopilot=AutopilotState(best_path=[a.id, c.id, d.id]),
    )
    # When its tree is built
    tree = lineage(exp)
    # Then the baseline is the root, children follow parents, and the best path is marked
    assert tree.proposal_id is None and [n.proposal_id for n in tree.children] == [a.id, b.id]
    [node_c] = tree.children[0].children
    assert [n.proposal_id for n in node_c.children] == [fix.id, d.id]
    assert node_c.on_best_path and node_c.children[1].on_best_path
    assert not node_c.children[0].on_best_path and not tree.children[1].on_best_path
    assert path_to(exp, d.id) == [a.id, c.id, d.id]


def test_crashed_needs_every_run_ended_and_failed_with_an_error() -> None:
    error = {"ename": "NameError", "evalue": "x", "traceback": []}
    failed = Run(exploration_id="e", proposal_id="p", status=RunStatus.FAILED, error=error)
    cancelled = Run(exploration_id="e", proposal_id="q", status=RunStatus.CANCELLED)
    running = Run(exploration_id="e", proposal_id="r", status=RunStatus.RUNNING)
    exp = _exp(runs=[failed, cancelled, running])
    assert crashed(exp, Proposal(id="p", title="p", code="p")) == error
    assert crashed(exp, Proposal(id="q", title="q", code="q")) is None
    assert crashed(exp, Proposal(id="r", title="r", code="r")) is None


def test_budget_reasons() -> None:
    settings = AutopilotSettings(budget_runs=3, budget_minutes=1, budget_tokens=100)
    budget = Budget(settings, started=0.0)
    assert budget.spent_reason(now=1.0) is None
    assert budget.spent_reason(now=61.0) == "time budget spent (1 minute)"
    budget.tokens_used = 100
    assert budget.spent_reason(now=1.0) == "token budget spent (100 tokens)"
    budget.runs_used = 2
    assert budget.can_start(1) and not budget.can_start(2)
