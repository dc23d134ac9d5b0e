"""Pure judgements of the autopilot: a round's best, whether it is better, what crashed.

"Better" means better beyond the noise: when runs were repeated across seeds, the gap to the
reference must exceed the larger of the two standard deviations. A smaller gap is reported as
within the noise and does not move the lineage forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .exploration_tasks import BASE_SEED
from .models import Comparison, ComparisonRow, Direction, Exploration, Proposal, RunStatus

Verdict = Literal["better", "within_noise", "not_better", "no_value"]


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    gap: float = 0.0  # signed so that positive is an improvement
    noise: float = 0.0

    @property
    def better(self) -> bool:
        return self.verdict == "better"


def value_of(row: ComparisonRow | None, metric: str | None) -> float | None:
    if row is None or metric is None:
        return None
    return row.metrics.get(metric)


def row_of(comparison: Comparison, proposal_id: str | None) -> ComparisonRow | None:
    """The baseline's row for None, else the proposal's."""
    for row in comparison.rows:
        if (proposal_id is None and row.is_baseline) or (
            proposal_id is not None and row.proposal_id == proposal_id
        ):
            return row
    return None


def sign_of(direction: Direction) -> float:
    return 1.0 if direction == Direction.MAXIMIZE else -1.0


def round_best(comparison: Comparison, ids: set[str]) -> ComparisonRow | None:
    """The row of the round's variations (``ids``) with the best value (None: no value)."""
    if comparison.metric is None or comparison.direction is None:
        return None
    sign = sign_of(comparison.direction)
    scored = [
        row
        for row in comparison.rows
        if row.proposal_id in ids and value_of(row, comparison.metric) is not None
    ]
    if not scored:
        return None
    return max(scored, key=lambda row: sign * (value_of(row, comparison.metric) or 0.0))


def judge(
    candidate: ComparisonRow | None, reference: ComparisonRow | None, comparison: Comparison
) -> Judgement:
    """Is ``candidate`` better than ``reference`` beyond the seed noise of either?"""
    metric, direction = comparison.metric, comparison.direction
    mine, theirs = value_of(candidate, metric), value_of(reference, metric)
    if mine is None or direction is None or metric is None:
        return Judgement("no_value")
    if theirs is None:
        # Nothing to beat (the reference reported no value): any value is progress.
        return Judgement("better")
    gap = sign_of(direction) * (mine - theirs)
    spreads = [row.std.get(metric, 0.0) for row in (candidate, reference) if row is not None]
    noise = max(spreads, default=0.0)
    if gap <= 0:
        return Judgement("not_better", gap, noise)
    if gap <= noise:
        return Judgement("within_noise", gap, noise)
    return Judgement("better", gap, noise)


def missing_seeds(exp: Exploration, proposal_id: str | None, wanted: int) -> list[int]:
    """Seeds still to run so that the variation (None: baseline) has ``wanted`` runs that
    succeeded or are still going."""
    runs = [
        r
        for r in [exp.baseline, *exp.runs]
        if r is not None
        and (r.is_baseline if proposal_id is None else r.proposal_id == proposal_id)
        and r.status
        in (RunStatus.SUCCEEDED, RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)
    ]
    used = {r.seed for r in [exp.baseline, *exp.runs] if r is not None and r in runs}
    need = wanted - len(runs)
    seeds: list[int] = []
    candidate = BASE_SEED
    while len(seeds) < need:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


def crashed(exp: Exploration, proposal: Proposal) -> dict[str, object] | None:
    """The error of a variation whose runs all ended and failed with an error, else None."""
    runs = [r for r in exp.runs if r.proposal_id == proposal.id]
    if not runs or any(not r.status.terminal or r.status == RunStatus.SUCCEEDED for r in runs):
        return None
    failing = next((r for r in runs if r.status == RunStatus.FAILED and r.error), None)
    return dict(failing.error) if failing is not None and failing.error else None
