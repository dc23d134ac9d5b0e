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
from .metrics import infer_direction, normalize_name
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
_ENDED_EARLY = "the run ended before the baseline showed where the metric comes from"


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

    With no metric named, the one the comparison picks (the baseline's first metric with a
    known direction, else its first) becomes the exploration's metric, so later variations
    that drop the print still report it. A researcher's expression is kept as given.
    True when the metric or its binding changed.
    """
    if not run.is_baseline or run.status != RunStatus.SUCCEEDED:
        return False
    adopted = exp.metric is None and _adopt_metric(exp, run)
    metric = exp.metric
    if metric is None:
        return False
    if metric.binding is not None and metric.binding.source == "researcher":
        return False
    name = normalize_name(metric.name)
    if run.metric_sources.get(name, BINDING_SOURCE) == BINDING_SOURCE:
        return adopted  # not in the output: nothing to learn from it
    ran = notebook.cells_for_run(nb, exp.cell_id, None)
    found = find_binding(name, ran, {c.cell_id: c.outputs for c in cells})
    if found is None or found == metric.binding:
        return adopted
    metric.binding = found
    return True


def _adopt_metric(exp: Exploration, run: Run) -> bool:
    """Make the metric the comparison picks from this baseline the exploration's metric."""
    names = list(run.metrics)
    if not names:
        return False
    directed = [n for n in names if infer_direction(n) is not None]
    exp.metric = MetricSpec(name=(directed or names)[0])
    return True


def missed_binding(run: Run, metric: MetricSpec | None) -> bool:
    """Give a run that ended before the metric was bound its ``no metric: <why>`` reason;
    True when the run changed."""
    if metric is None or run.status != RunStatus.SUCCEEDED:
        return False
    name = normalize_name(metric.name)
    if name in run.metrics or run.reason.startswith("no metric"):
        return False
    before = run.reason
    errors = {metric.binding.name: _ENDED_EARLY} if metric.binding is not None else {}
    apply_bound_metric(run, metric, {}, errors)
    return run.reason != before


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
