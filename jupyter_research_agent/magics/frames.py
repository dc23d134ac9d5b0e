"""pandas views of API resources: what `%research results` and `%research list` return."""

from __future__ import annotations

import pandas as pd

from ..core.compare import comparison_frame as core_comparison_frame
from ..core.models import Exploration, ProposalStatus


def comparison_frame(exploration: Exploration) -> pd.DataFrame:
    """Columns: variation, proposal_id, status, the metrics, delta, pct_change, duration_s, best
    (the same frame the headless command and the engine build)."""
    return core_comparison_frame(exploration.comparison)


def explorations_frame(explorations: list[Exploration]) -> pd.DataFrame:
    """One row per exploration, newest first, as the server lists them."""
    records = [
        {
            "id": exp.id,
            "created_at": exp.created_at,
            "cell_id": exp.cell_id,
            "kind": exp.kind.value,
            "status": exp.status.value,
            "proposals": len(exp.proposals),
            "approved": sum(p.status is ProposalStatus.APPROVED for p in exp.proposals),
            "runs": len(exp.runs),
            "metric": exp.comparison.metric,
            "best": exp.comparison.best_proposal_id,
        }
        for exp in explorations
    ]
    columns = [
        "id",
        "created_at",
        "cell_id",
        "kind",
        "status",
        "proposals",
        "approved",
        "runs",
        "metric",
        "best",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def describe(exploration: Exploration) -> str:
    """A plain-text summary for `%research status` and text-only frontends."""
    exp = exploration
    lines = [f"{exp.id} · cell {exp.cell_id} · {exp.kind.value} · {exp.status.value}"]
    if exp.error:
        lines.append(f"  error: {exp.error}")
    for p in exp.proposals:
        lines.append(f"  [{p.status.value}] {p.id} {p.title} ({p.kind.value}, {p.origin.value})")
    titles = {p.id: p.title for p in exp.proposals}
    for run in [*([exp.baseline] if exp.baseline else []), *exp.runs]:
        label = "baseline" if run.is_baseline else titles.get(run.proposal_id or "", run.id)
        metrics = ", ".join(f"{k}={v:.6g}" for k, v in run.metrics.items())
        step = f" {run.progress.done}/{run.progress.total}" if run.progress.total else ""
        lines.append(f"  run {run.id} {label}: {run.status.value}{step} {metrics}".rstrip())
    if exp.comparison.summary:
        lines.append(f"  {exp.comparison.summary}")
    return "\n".join(lines)
