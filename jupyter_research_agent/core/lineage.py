"""The tree of an exploration's variations: each built on its parent, round after round.

The root is the cell as written (the baseline); round-0 proposals are its children; a next
round's proposals are children of the variation they were built on; a repair is a child of the
variation that crashed.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .models import Comparison, ComparisonRow, Exploration, Proposal, ProposalKind


class LineageNode(BaseModel):
    proposal_id: str | None = None  # None: the cell as written
    title: str
    kind: ProposalKind | None = None
    round: int | None = None
    status: str = ""  # the comparison row's status, else the proposal's
    approved_by: str | None = None
    value: float | None = None  # mean of the comparison metric
    std: float | None = None
    n: int = 0
    on_best_path: bool = False
    children: list[LineageNode] = Field(default_factory=list)


def path_to(exp: Exploration, proposal_id: str | None) -> list[str]:
    """Proposal ids from the root's child down to ``proposal_id`` (empty for None)."""
    by_id = {p.id: p for p in exp.proposals}
    path: list[str] = []
    current = by_id.get(proposal_id) if proposal_id is not None else None
    while current is not None and current.id not in path:
        path.append(current.id)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return list(reversed(path))


def lineage(exp: Exploration, best_path: list[str] | None = None) -> LineageNode:
    """The tree, with values from the exploration's comparison and the best path marked."""
    comparison = exp.comparison
    rows = {row.proposal_id: row for row in comparison.rows}
    on_path = set(best_path if best_path is not None else _default_path(exp))
    known = {p.id for p in exp.proposals}
    children: dict[str | None, list[Proposal]] = {}
    for proposal in exp.proposals:
        parent = proposal.parent_id if proposal.parent_id in known else None
        children.setdefault(parent, []).append(proposal)

    def node(proposal: Proposal, seen: frozenset[str]) -> LineageNode:
        made = _node(proposal.id, proposal.title, rows.get(proposal.id), comparison)
        made.kind = proposal.kind
        made.round = proposal.round
        made.approved_by = proposal.approved_by
        made.status = made.status or proposal.status.value
        made.on_best_path = proposal.id in on_path
        inner = seen | {proposal.id}
        made.children = [
            node(child, inner) for child in children.get(proposal.id, []) if child.id not in inner
        ]
        return made

    root = _node(None, "baseline", rows.get(None), comparison)
    root.status = root.status or "not run"
    root.on_best_path = True
    root.children = [node(p, frozenset()) for p in children.get(None, [])]
    return root


def _default_path(exp: Exploration) -> list[str]:
    if exp.autopilot is not None:
        return exp.autopilot.best_path
    return path_to(exp, exp.comparison.best_proposal_id)


def _node(
    proposal_id: str | None, title: str, row: ComparisonRow | None, comparison: Comparison
) -> LineageNode:
    metric = comparison.metric
    if row is None or metric is None:
        return LineageNode(proposal_id=proposal_id, title=title, status=row.status if row else "")
    return LineageNode(
        proposal_id=proposal_id,
        title=title,
        status=row.status,
        value=row.metrics.get(metric),
        std=row.std.get(metric),
        n=row.n,
    )
