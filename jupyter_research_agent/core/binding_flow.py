"""How explorations use metric bindings: what runs evaluate, what their metrics read, and which
proposals no longer compute the metric.

Pure functions over the exploration's models; the engine calls them between awaits.
"""

from __future__ import annotations

from . import notebook
from .binding import (
    WARNING_PREFIX,
    binding_expression_code,
    binding_warnings,
    find_binding,
    parse_metric_arg,
)
from .metrics import normalize_name
from .models import (
    CellOutputs,
    Direction,
    Exploration,
    MetricSpec,
    NotebookDoc,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
)

BINDING_SOURCE = "binding"  # Run.metric_sources value of a metric read through the binding


def metric_spec(
    metric: str | None, direction: Direction | None, nb: NotebookDoc
) -> MetricSpec | None:
    """The exploration's metric: ``name`` or ``name=expression``, bound to the code at once
    when the notebook shows where it comes from (the baseline's outputs may refine it)."""
    if not metric or not metric.strip():
        return None
    spec = parse_metric_arg(metric, direction)
    if spec.binding is None:
        spec.binding = find_binding(spec.name, nb.cells)
    return spec


def run_expressions(metric: MetricSpec | None) -> dict[str, str]:
    """The ``user_expressions`` every run evaluates after its cells."""
    if metric is None or metric.binding is None:
        return {}
    return binding_expression_code([metric.binding])


def apply_bound_metric(
    run: Run, metric: MetricSpec | None, values: dict[str, float], errors: dict[str, str]
) -> None:
    """Fill the metric from the binding when the output lacks it; a succeeded run without it
    gets the reason ``no metric: <why>`` (its status stays succeeded)."""
    if metric is None:
        return
    name = normalize_name(metric.name)
    binding = metric.binding
    if name not in run.metrics and binding is not None and binding.name in values:
        run.metrics = {**run.metrics, name: values[binding.name]}
        run.metric_sources = {**run.metric_sources, name: BINDING_SOURCE}
    if run.status != RunStatus.SUCCEEDED or name in run.metrics:
        return
    why = f"'{name}' was not in the output"
    if binding is not None:
        error = errors.get(binding.name, "it was not evaluated")
        why += f" and `{binding.expression}` gave no number ({error})"
    run.reason = f"no metric: {why}" + (f"; {run.reason}" if run.reason else "")


def bind_from_baseline(
    exp: Exploration, nb: NotebookDoc, run: Run, cells: list[CellOutputs]
) -> bool:
    """After a baseline run that printed the metric, bind it to the code that printed it.

    A researcher's expression is kept as given. True when the binding changed.
    """
    metric = exp.metric
    if metric is None or not run.is_baseline or run.status != RunStatus.SUCCEEDED:
        return False
    if metric.binding is not None and metric.binding.source == "researcher":
        return False
    name = normalize_name(metric.name)
    if run.metric_sources.get(name, BINDING_SOURCE) == BINDING_SOURCE:
        return False  # not in the output: nothing to learn from it
    ran = notebook.cells_for_run(nb, exp.cell_id, None)
    found = find_binding(name, ran, {c.cell_id: c.outputs for c in cells})
    if found is None or found == metric.binding:
        return False
    metric.binding = found
    return True


def check_proposals(exp: Exploration, nb: NotebookDoc) -> list[Proposal]:
    """Warn on proposals whose code no longer defines what the binding reads; the changed ones.

    Earlier binding warnings (ours or the model proposer's) are replaced, so each proposal
    carries the current verdict once.
    """
    binding = exp.metric.binding if exp.metric is not None else None
    if binding is None:
        return []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    index = next((i for i, c in enumerate(code_cells) if c.id == exp.cell_id), None)
    if index is None:
        return []
    earlier, later = code_cells[:index], code_cells[index + 1 :]
    changed: list[Proposal] = []
    for proposal in exp.proposals:
        if proposal.status == ProposalStatus.REJECTED:
            continue
        kept = [w for w in proposal.warnings if not w.startswith(WARNING_PREFIX)]
        warnings = kept + binding_warnings(proposal.code, binding, later, earlier)
        if warnings != proposal.warnings:
            proposal.warnings = warnings
            changed.append(proposal)
    return changed
