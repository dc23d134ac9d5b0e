"""Export an exploration from the ledger: CSV, JSON, or a notebook of its variations."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

import nbformat

from .ledger import Ledger
from .models import CellOutputs, Exploration, Run

# nbformat's functions carry no annotations; going through Any keeps strict mypy quiet.
_nbf: Any = nbformat

ExportFormat = Literal["csv", "json", "ipynb"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "json", "ipynb")


def _metric_names(exp: Exploration) -> list[str]:
    names: dict[str, None] = {}
    for row in exp.comparison.rows:
        names.update(dict.fromkeys(row.metrics))
    for run in _runs(exp):
        names.update(dict.fromkeys(run.metrics))
    return list(names)


def _runs(exp: Exploration) -> list[Run]:
    return [exp.baseline, *exp.runs] if exp.baseline is not None else list(exp.runs)


def to_csv(exp: Exploration) -> str:
    """One table: the comparison rows (``row_type`` comparison), then every run (``run``)."""
    names = _metric_names(exp)
    titles = {p.id: p.title for p in exp.proposals}
    header = [
        "row_type",
        "label",
        "proposal_id",
        "run_id",
        "is_baseline",
        "seed",
        "status",
        "reason",
        "duration_s",
        "n",
        "delta",
        "pct_change",
        "best",
        *names,
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in exp.comparison.rows:
        writer.writerow(
            [
                "comparison",
                row.label,
                row.proposal_id or "",
                "",
                row.is_baseline,
                "",
                row.status,
                "",
                _num(row.duration_s),
                row.n,
                _num(row.delta),
                _num(row.pct_change),
                row.best,
                *(_num(row.metrics.get(name)) for name in names),
            ]
        )
    for run in _runs(exp):
        label = "baseline" if run.is_baseline else titles.get(run.proposal_id or "", "")
        writer.writerow(
            [
                "run",
                label,
                run.proposal_id or "",
                run.id,
                run.is_baseline,
                "" if run.seed is None else run.seed,
                run.status.value,
                run.reason,
                _num(run.duration_s),
                "",
                "",
                "",
                "",
                *(_num(run.metrics.get(name)) for name in names),
            ]
        )
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def to_json(exp: Exploration, outputs: dict[str, list[CellOutputs]]) -> str:
    """The whole exploration, with the captured outputs of every run."""
    doc: dict[str, Any] = exp.model_dump(mode="json")
    doc["outputs"] = {
        run_id: [c.model_dump(mode="json") for c in cells] for run_id, cells in outputs.items()
    }
    return json.dumps(doc, indent=2)


def _metrics_text(metrics: dict[str, float]) -> str:
    if not metrics:
        return "_no metrics_"
    return ", ".join(f"`{name}` = {value:.6g}" for name, value in metrics.items())


def _outputs_from_target(cells: list[CellOutputs], cell_id: str) -> list[dict[str, Any]]:
    """Outputs of the target cell and the cells after it (metrics are often printed later)."""
    start = next((i for i, c in enumerate(cells) if c.cell_id == cell_id), 0)
    return [dict(o) for c in cells[start:] for o in c.outputs]


def to_notebook(exp: Exploration, outputs: dict[str, list[CellOutputs]]) -> nbformat.NotebookNode:
    """A notebook with, for the baseline and each variation, a description and its code."""
    node = _nbf.v4.new_notebook()
    node.cells.append(
        _nbf.v4.new_markdown_cell(
            f"# Exploration `{exp.id}`\n\nNotebook `{exp.notebook_path}`, cell `{exp.cell_id}`."
            f"\n\n{exp.comparison.summary}"
        )
    )
    first_run: dict[str | None, Run] = {}
    for run in _runs(exp):
        key = None if run.is_baseline else run.proposal_id
        first_run.setdefault(key, run)
    rows = {row.proposal_id: row for row in exp.comparison.rows if not row.is_baseline}
    baseline_row = next((row for row in exp.comparison.rows if row.is_baseline), None)
    entries: list[tuple[str, str, str, dict[str, float], str | None]] = [
        (
            "Baseline",
            "The cell as written.",
            exp.cell_source,
            baseline_row.metrics if baseline_row else {},
            None,
        )
    ]
    for p in exp.proposals:
        row = rows.get(p.id)
        title = f"{p.title} ({p.kind.value}, {p.origin.value}, {p.status.value})"
        entries.append((title, p.rationale, p.code, row.metrics if row else {}, p.id))
    for title, rationale, code, metrics, key in entries:
        found = first_run.get(key)
        status = f"run {found.status.value}" if found else "not run"
        text = f"## {title}\n\n{rationale}\n\n{status}; metrics: {_metrics_text(metrics)}"
        node.cells.append(_nbf.v4.new_markdown_cell(text))
        code_cell = _nbf.v4.new_code_cell(code)
        if found is not None:
            shown = _outputs_from_target(outputs.get(found.id, []), exp.cell_id)
            code_cell.outputs = [_nbf.from_dict(o) for o in shown]
        node.cells.append(code_cell)
    result: nbformat.NotebookNode = node
    return result


def export_exploration(ledger: Ledger, exploration_id: str, fmt: ExportFormat, dest: Path) -> None:
    """Write one exploration from the ledger to ``dest`` in ``fmt``."""
    exp = ledger.load_exploration(exploration_id)
    if fmt == "csv":
        dest.write_text(to_csv(exp), encoding="utf-8")
        return
    outputs = {run.id: ledger.load_run_outputs(run.id) for run in _runs(exp)}
    if fmt == "json":
        dest.write_text(to_json(exp, outputs), encoding="utf-8")
    else:
        _nbf.write(to_notebook(exp, outputs), str(dest))
