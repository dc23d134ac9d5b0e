"""How explorations use bindings, without kernels: the metric spec, the run's metric and reason,
binding from the baseline's outputs, and proposal warnings."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.binding_flow import (
    apply_bound_metric,
    bind_from_baseline,
    check_proposals,
    metric_spec,
    run_expressions,
)
from jupyter_research_agent.core.errors import InvalidInput
from jupyter_research_agent.core.models import (
    Cell,
    CellOutputs,
    Exploration,
    MetricBinding,
    MetricSpec,
    NotebookDoc,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
)


def notebook(*sources: str) -> NotebookDoc:
    cells = [Cell(id=f"c{i}", source=s) for i, s in enumerate(sources)]
    return NotebookDoc(path="n.ipynb", cells=cells)


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


BOUND = MetricSpec(
    name="Test Accuracy",
    binding=MetricBinding(name="test accuracy", expression="acc", cell_id="c1", names=["acc"]),
)


def test_metric_spec_binds_to_the_code_or_keeps_the_researchers_expression() -> None:
    # Given a notebook that prints the metric from `acc`
    nb = notebook("X = load()", 'acc = fit(X)\nprint(f"test accuracy: {acc:.3f}")')
    # When the exploration's metric is made from a name, or from name=expression
    by_name = metric_spec("test accuracy", None, nb)
    by_expression = metric_spec("test accuracy=float(acc)", None, nb)
    # Then the name is bound to the code; the expression is the researcher's
    assert by_name is not None and by_name.binding is not None
    assert (by_name.binding.expression, by_name.binding.cell_id) == ("acc", "c1")
    assert by_expression is not None and by_expression.binding is not None
    assert by_expression.binding.expression == "float(acc)"
    assert by_expression.binding.source == "researcher"
    assert metric_spec(None, None, nb) is None
    assert metric_spec("  ", None, nb) is None
    with pytest.raises(InvalidInput):
        metric_spec("acc=acc +", None, nb)


def test_run_expressions_come_from_the_binding() -> None:
    assert run_expressions(None) == {}
    assert run_expressions(MetricSpec(name="acc")) == {}
    (name,) = run_expressions(BOUND)
    assert name == "test accuracy"


@pytest.mark.parametrize(
    ("metrics", "values", "errors", "status", "expected", "source", "reason"),
    [
        # the output has it: the output wins
        ({"test accuracy": 0.8}, {"test accuracy": 0.9}, {}, RunStatus.SUCCEEDED, 0.8, "x", ""),
        # the output lacks it: the binding gives it
        ({}, {"test accuracy": 0.9}, {}, RunStatus.SUCCEEDED, 0.9, "binding", ""),
        # neither: no metric, with the binding's error
        (
            {},
            {},
            {"test accuracy": "NameError: name 'acc' is not defined"},
            RunStatus.SUCCEEDED,
            None,
            None,
            "no metric: 'test accuracy' was not in the output and `acc` gave no number "
            "(NameError: name 'acc' is not defined)",
        ),
        # a failed run keeps its own reason
        ({}, {}, {}, RunStatus.FAILED, None, None, "ValueError in cell c1"),
    ],
)
def test_apply_bound_metric(
    metrics: dict[str, float],
    values: dict[str, float],
    errors: dict[str, str],
    status: RunStatus,
    expected: float | None,
    source: str | None,
    reason: str,
) -> None:
    # Given a finished run with what its output and its binding gave
    run = Run(exploration_id="e", status=status, metrics=dict(metrics))
    run.metric_sources = dict.fromkeys(metrics, "x")
    if status == RunStatus.FAILED:
        run.reason = reason
    # When the bound metric is applied
    apply_bound_metric(run, BOUND, values, errors)
    # Then the metric, its source and the reason say where it came from or why it is missing
    assert run.metrics.get("test accuracy") == expected
    assert run.metric_sources.get("test accuracy") == source
    assert run.reason == reason


def test_no_metric_without_a_binding_keeps_an_earlier_reason() -> None:
    run = Run(exploration_id="e", status=RunStatus.SUCCEEDED, reason="succeeded after retry")
    apply_bound_metric(run, MetricSpec(name="acc"), {}, {})
    assert run.reason == "no metric: 'acc' was not in the output; succeeded after retry"


def baseline(found: bool, is_baseline: bool = True) -> Run:
    run = Run(exploration_id="e", is_baseline=is_baseline, status=RunStatus.SUCCEEDED)
    if found:
        run.metrics = {"acc": 0.7}
        run.metric_sources = {"acc": "stdout of cell c1"}
    return run


def test_bind_from_baseline() -> None:
    # Given an exploration whose metric is not bound yet, and a baseline that printed it
    nb = notebook("X = load()", 'a = fit(X)\nprint(f"acc: {a}")')
    exp = Exploration(notebook_path="n.ipynb", cell_id="c1", metric=MetricSpec(name="acc"))
    outputs = [CellOutputs(cell_id="c1", outputs=[stdout("acc: 0.7\n")])]
    # When the baseline's result is read
    assert not bind_from_baseline(exp, nb, baseline(found=False), outputs)
    assert not bind_from_baseline(exp, nb, baseline(found=True, is_baseline=False), outputs)
    changed = bind_from_baseline(exp, nb, baseline(found=True), outputs)
    # Then the metric is bound to the expression that printed it, once
    assert changed
    assert exp.metric is not None and exp.metric.binding is not None
    assert exp.metric.binding.expression == "a"
    assert not bind_from_baseline(exp, nb, baseline(found=True), outputs)


def test_bind_from_baseline_keeps_a_researchers_expression() -> None:
    nb = notebook("X = load()", 'a = fit(X)\nprint(f"acc: {a}")')
    given = MetricBinding(name="acc", expression="mine", source="researcher")
    exp = Exploration(
        notebook_path="n.ipynb", cell_id="c1", metric=MetricSpec(name="acc", binding=given)
    )
    outputs = [CellOutputs(cell_id="c1", outputs=[stdout("acc: 0.7\n")])]
    assert not bind_from_baseline(exp, nb, baseline(found=True), outputs)
    assert exp.metric is not None and exp.metric.binding == given


def test_check_proposals_replaces_earlier_verdicts() -> None:
    # Given proposals: one keeps acc, one drops it (with the model's own warning), one rejected
    nb = notebook("X = load()", 'acc = fit(X)\nprint(f"test accuracy: {acc}")', "print(1)")
    exp = Exploration(notebook_path="n.ipynb", cell_id="c1", metric=BOUND)
    keeps = Proposal(title="k", code="acc = fit(X, C=2)", warnings=["the code was cut"])
    drops = Proposal(
        title="d", code="score = fit(X)", warnings=["this variation no longer computes `acc`"]
    )
    rejected = Proposal(title="r", code="score = 1", status=ProposalStatus.REJECTED)
    exp.proposals = [keeps, drops, rejected]
    # When they are checked against the binding
    changed = check_proposals(exp, nb)
    # Then only the dropping one carries one binding warning; others keep their own warnings
    assert [p.title for p in changed] == ["d"]
    assert keeps.warnings == ["the code was cut"]
    assert drops.warnings == [
        "this variation no longer computes `acc`; the metric 'test accuracy' is read from `acc`"
    ]
    assert rejected.warnings == []
    # And checking again changes nothing
    assert check_proposals(exp, nb) == []
    # And without a binding nothing is touched
    exp.metric = MetricSpec(name="acc")
    assert check_proposals(exp, nb) == []
