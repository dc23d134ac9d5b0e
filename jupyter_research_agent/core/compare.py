"""The comparison of an exploration: baseline and variations side by side on one metric.

Runs of one proposal (repeats across seeds) are aggregated: mean and sample standard deviation
over the runs that succeeded. Deltas are against the baseline's mean. A variation is marked
best only when it beats the baseline (or when the baseline has no value to beat).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import pandas as pd

from .metrics import infer_direction, normalize_name
from .models import (
    Comparison,
    ComparisonRow,
    Direction,
    Exploration,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
)

_ACTIVE_ORDER = (RunStatus.RUNNING, RunStatus.STARTING, RunStatus.QUEUED)


def build_comparison(exploration: Exploration) -> Comparison:
    """Rows for the baseline and each variation with runs (or approved), plus the verdict."""
    baseline_runs = _baseline_runs(exploration)
    by_proposal: dict[str, list[Run]] = {}
    for run in exploration.runs:
        if not run.is_baseline and run.proposal_id is not None:
            by_proposal.setdefault(run.proposal_id, []).append(run)

    metric = _choose_metric(exploration, baseline_runs)
    direction: Direction | None = None
    if exploration.metric is not None and exploration.metric.direction is not None:
        direction = exploration.metric.direction
    elif metric is not None:
        direction = infer_direction(metric)

    rows: list[ComparisonRow] = []
    if baseline_runs:
        rows.append(_row("baseline", None, True, baseline_runs, metric))
    proposals = {p.id: p for p in exploration.proposals}
    for proposal in exploration.proposals:
        runs = by_proposal.get(proposal.id, [])
        if runs or proposal.status == ProposalStatus.APPROVED:
            rows.append(_row(proposal.title, proposal.id, False, runs, metric))
    for proposal_id, runs in by_proposal.items():
        if proposal_id not in proposals:  # runs of a proposal no longer listed
            rows.append(_row(proposal_id, proposal_id, False, runs, metric))

    base_value = _value(rows[0], metric) if rows and rows[0].is_baseline else None
    if metric is not None and base_value is not None:
        for row in rows[1:]:
            value = _value(row, metric)
            if value is not None:
                row.delta = value - base_value
                row.pct_change = (
                    (value - base_value) / abs(base_value) * 100 if base_value != 0 else None
                )

    best = _best_row(rows, metric, direction, base_value)
    if best is not None:
        best.best = True
    comparison = Comparison(
        metric=metric,
        direction=direction,
        rows=rows,
        best_proposal_id=best.proposal_id if best is not None else None,
    )
    summary = _summary(comparison, proposals)
    failure = failure_summary(exploration)
    if failure is not None:
        # A variation can still be best on its own when the baseline failed: say both.
        summary = f"{failure} Among the variations, {summary}" if best else failure
    comparison.summary = summary
    return comparison


def _baseline_runs(exploration: Exploration) -> list[Run]:
    runs: list[Run] = []
    if exploration.baseline is not None:
        runs.append(exploration.baseline)
    seen = {run.id for run in runs}
    runs.extend(r for r in exploration.runs if r.is_baseline and r.id not in seen)
    return runs


def _choose_metric(exploration: Exploration, baseline_runs: list[Run]) -> str | None:
    """The named metric, else the baseline's first metric with a known direction, else its first.

    Falls back to the variations' metrics when the baseline reported none (e.g. it failed).
    """
    if exploration.metric is not None and exploration.metric.name.strip():
        return normalize_name(exploration.metric.name)
    for group in (baseline_runs, [r for r in exploration.runs if not r.is_baseline]):
        names: list[str] = []
        for run in group:
            if run.status == RunStatus.SUCCEEDED:
                names.extend(n for n in run.metrics if n not in names)
        if names:
            directed = [n for n in names if infer_direction(n) is not None]
            return (directed or names)[0]
    return None


def _row(
    label: str, proposal_id: str | None, is_baseline: bool, runs: list[Run], metric: str | None
) -> ComparisonRow:
    ok = [run for run in runs if run.status == RunStatus.SUCCEEDED]
    means: dict[str, float] = {}
    spreads: dict[str, float] = {}
    names: list[str] = []
    for run in ok:
        names.extend(n for n in run.metrics if n not in names)
    for name in names:
        values = [run.metrics[name] for run in ok if name in run.metrics]
        means[name] = statistics.fmean(values)
        if len(values) >= 2:
            spreads[name] = statistics.stdev(values)
    durations = [run.duration_s for run in runs if run.duration_s is not None]
    return ComparisonRow(
        label=label,
        proposal_id=proposal_id,
        is_baseline=is_baseline,
        status=_status(runs, ok, metric, means),
        metrics=means,
        std=spreads,
        n=len(ok),
        duration_s=statistics.fmean(durations) if durations else None,
    )


def _status(runs: list[Run], ok: list[Run], metric: str | None, means: dict[str, float]) -> str:
    """One word for the row: the runs' common state, ``no metric``, or ``2/3 succeeded``."""
    if not runs:
        return "approved"
    for active in _ACTIVE_ORDER:
        if any(run.status == active for run in runs):
            return active.value
    if len(ok) == len(runs):
        return "no metric" if metric is not None and metric not in means else "succeeded"
    if ok:
        return f"{len(ok)}/{len(runs)} succeeded"
    return runs[0].status.value


def _value(row: ComparisonRow, metric: str | None) -> float | None:
    return row.metrics.get(metric) if metric is not None else None


def _best_row(
    rows: Sequence[ComparisonRow],
    metric: str | None,
    direction: Direction | None,
    base_value: float | None,
) -> ComparisonRow | None:
    if metric is None or direction is None:
        return None
    sign = 1.0 if direction == Direction.MAXIMIZE else -1.0
    best: ComparisonRow | None = None
    for row in rows:
        value = _value(row, metric)
        if row.is_baseline or value is None:
            continue
        best_value = _value(best, metric) if best is not None else None
        if best_value is None or sign * value > sign * best_value:
            best = row
    if best is None:
        return None
    best_value = _value(best, metric)
    if base_value is not None and best_value is not None and sign * best_value <= sign * base_value:
        return None
    return best


# ---------------------------------------------------------------- summary


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _summary(comparison: Comparison, proposals: dict[str, Proposal]) -> str:
    rows = comparison.rows
    metric = comparison.metric
    if not rows:
        return "No runs yet."
    variations = [row for row in rows if not row.is_baseline]
    failed = [row for row in variations if row.n == 0 and row.status not in _pending_states()]
    tail = f" {len(failed)} of {len(variations)} variations did not succeed." if failed else ""
    if metric is None:
        return "No metric found in the outputs; name one (e.g. --metric accuracy)." + tail
    baseline = rows[0] if rows[0].is_baseline else None
    base_value = _value(baseline, metric) if baseline is not None else None
    base_text = _fmt(base_value) if base_value is not None else "no value"
    if comparison.direction is None:
        return (
            f"{metric}: direction unknown; say whether to maximize or minimize it. "
            f"Baseline {base_text}." + tail
        )
    scored = [row for row in variations if _value(row, metric) is not None]
    if not scored:
        pending = any(row.status in _pending_states() for row in variations)
        if pending:
            return f"Baseline {metric} {base_text}; variations still running." + tail
        return f"Baseline {metric} {base_text}; no variation reported {metric}." + tail
    best = next((row for row in variations if row.best), None)
    if best is None:
        sign = 1.0 if comparison.direction == Direction.MAXIMIZE else -1.0
        top = max(scored, key=lambda row: sign * (_value(row, metric) or 0.0))
        return (
            f"No variation beat the baseline on {metric} ({base_text}); the closest is "
            f"{top.label} at {_fmt(_value(top, metric) or 0.0)}." + tail
        )
    value = _value(best, metric) or 0.0
    text = f"{best.label} is best: {metric} {_fmt(value)}"
    if base_value is not None:
        text += f" vs {base_text} baseline"
        if best.pct_change is not None:
            text += f" ({best.pct_change:+.1f}%)"
        noise = max(best.std.get(metric, 0.0), baseline.std.get(metric, 0.0) if baseline else 0.0)
        if best.delta is not None and noise > 0 and abs(best.delta) <= noise:
            text += f", within the seed noise (std {_fmt(noise)})"
        elif identical_repeats([best, baseline] if baseline else [best], metric):
            text += f"; {IDENTICAL_REPEATS}"
    return text + "." + tail


def _pending_states() -> set[str]:
    return {"approved"} | {state.value for state in _ACTIVE_ORDER}


def identical_repeats(rows: Sequence[ComparisonRow], metric: str) -> bool:
    """Runs were repeated across seeds, yet every repeat gave the same value."""
    spreads = [row.std[metric] for row in rows if metric in row.std]
    return bool(spreads) and all(spread == 0 for spread in spreads)


IDENTICAL_REPEATS = (
    "the repeats across seeds gave identical results, so the seeds changed nothing: the "
    "randomness is probably fixed elsewhere (e.g. a seed set in an earlier cell)"
)


def failure_summary(exploration: Exploration) -> str | None:
    """What to say instead of a comparison when there is nothing to compare: the baseline
    ended without succeeding, or every variation did. None otherwise (or while runs go on)."""
    baseline = _baseline_runs(exploration)
    variations = [run for run in exploration.runs if not run.is_baseline]
    if baseline and _all_unsuccessful(baseline):
        first = baseline[0]
        how = "failed" if first.status in (RunStatus.FAILED, RunStatus.TIMED_OUT) else "stopped"
        text = f"The baseline {how}: {first.reason or first.status.value}"
        if first.metrics:
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in list(first.metrics.items())[:2])
            text += f" (it had printed {shown} before that)"
        return text + "; nothing to compare against."
    if variations and _all_unsuccessful(variations):
        titles = {p.id: p.title for p in exploration.proposals}
        first = variations[0]
        title = titles.get(first.proposal_id or "", first.proposal_id or "a variation")
        text = f"No variation succeeded: {title!r} ended {first.status.value}"
        if first.reason:
            text += f" ({first.reason})"
        others = len({run.proposal_id for run in variations}) - 1
        if others > 0:
            text += f", and {others} other variation{'s' if others > 1 else ''} too"
        return text + "."
    return None


def _all_unsuccessful(runs: Sequence[Run]) -> bool:
    return all(run.status.terminal and run.status != RunStatus.SUCCEEDED for run in runs)


# ---------------------------------------------------------------- frame


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """The comparison as a DataFrame: one row per baseline/variation, the metric first.

    Columns: variation, proposal_id, status, the metrics (with ``<metric> std`` after the
    chosen metric when seeds were repeated), delta, pct_change, duration_s, best.
    """
    metric_names: list[str] = []
    if comparison.metric is not None:
        metric_names.append(comparison.metric)
    for row in comparison.rows:
        metric_names.extend(n for n in row.metrics if n not in metric_names)
    std_column = None
    if comparison.metric is not None and any(comparison.metric in r.std for r in comparison.rows):
        std_column = f"{comparison.metric} std"
    fixed = {"variation", "proposal_id", "status", "delta", "pct_change", "duration_s", "best"}
    # A metric that shares a name with a fixed column gets its own label instead of replacing it.
    labels = {name: f"metric {name}" if name in fixed else name for name in metric_names}
    columns = ["variation", "proposal_id", "status"]
    for name in metric_names:
        columns.append(labels[name])
        if name == comparison.metric and std_column is not None:
            columns.append(std_column)
    columns += ["delta", "pct_change", "duration_s", "best"]

    records: list[dict[str, object]] = []
    for row in comparison.rows:
        record: dict[str, object] = {
            "variation": row.label,
            "proposal_id": row.proposal_id,
            "status": row.status,
        }
        for name in metric_names:
            record[labels[name]] = row.metrics.get(name, float("nan"))
        if std_column is not None and comparison.metric is not None:
            record[std_column] = row.std.get(comparison.metric, float("nan"))
        record["delta"] = row.delta if row.delta is not None else float("nan")
        record["pct_change"] = row.pct_change if row.pct_change is not None else float("nan")
        record["duration_s"] = row.duration_s if row.duration_s is not None else float("nan")
        record["best"] = row.best
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)
