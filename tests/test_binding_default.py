"""Metric binding when the researcher names no metric: the metric the comparison picks from the
baseline is bound all the same, so variations that drop the print still report it."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_binding_engine import (
    DROPS_PRINT,
    DROPS_VARIABLE,
    METRIC,
    TRAIN,
    add,
    make_config,
    run_of,
)

from jupyter_research_agent.core.binding_flow import bind_from_baseline, missed_binding
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.models import (
    Cell,
    CellOutputs,
    CreateExploration,
    Exploration,
    NotebookDoc,
    Run,
    RunStatus,
)

# ---------------------------------------------------------------- pure


def test_the_baseline_names_the_metric_when_none_was_named() -> None:
    # Given an exploration with no metric, and a baseline that printed a count and an accuracy
    nb = NotebookDoc(
        path="n.ipynb",
        cells=[Cell(id="c1", source='acc = 0.7\nprint(f"rows: 3")\nprint(f"accuracy: {acc}")')],
    )
    exp = Exploration(notebook_path="n.ipynb", cell_id="c1")
    run = Run(exploration_id=exp.id, is_baseline=True, status=RunStatus.SUCCEEDED)
    run.metrics = {"rows": 3.0, "accuracy": 0.7}
    run.metric_sources = {"rows": "stdout of cell c1", "accuracy": "stdout of cell c1"}
    text = {"output_type": "stream", "name": "stdout", "text": "rows: 3\naccuracy: 0.7\n"}
    outputs = [CellOutputs(cell_id="c1", outputs=[text])]
    # When the baseline's result is read
    changed = bind_from_baseline(exp, nb, run, outputs)
    # Then the metric with a known direction is adopted and bound to the code that printed it
    assert changed
    assert exp.metric is not None and exp.metric.name == "accuracy"
    assert exp.metric.binding is not None and exp.metric.binding.expression == "acc"


def test_a_run_that_ended_before_the_binding_says_why_it_has_no_metric() -> None:
    # Given a variation that ended without the metric before the baseline named it
    exp = Exploration(notebook_path="n.ipynb", cell_id="c1")
    baseline = Run(exploration_id=exp.id, is_baseline=True, status=RunStatus.SUCCEEDED)
    baseline.metrics = {"accuracy": 0.7}
    baseline.metric_sources = {"accuracy": "binding"}  # nothing to bind from
    early = Run(exploration_id=exp.id, proposal_id="p", status=RunStatus.SUCCEEDED)
    failed = Run(exploration_id=exp.id, proposal_id="q", status=RunStatus.FAILED, reason="boom")
    nb = NotebookDoc(path="n.ipynb", cells=[Cell(id="c1", source="acc = 0.7")])
    # When the baseline names the metric
    assert bind_from_baseline(exp, nb, baseline, [])
    # Then the ended variation gets a reason, once; a failed run keeps its own
    assert missed_binding(early, exp.metric)
    assert early.reason == "no metric: 'accuracy' was not in the output"
    assert not missed_binding(early, exp.metric)
    assert not missed_binding(failed, exp.metric) and failed.reason == "boom"


# ---------------------------------------------------------------- real kernels


@pytest.mark.asyncio
async def test_no_metric_named_still_binds_the_compared_metric(tmp_path: Path) -> None:
    # Given an exploration of a cell that prints the metric, with no metric named
    engine = Engine(make_config(tmp_path))
    try:
        request = CreateExploration(
            notebook_path="bound.ipynb", cell_id="train", offline=True, max_proposals=0
        )
        exp = await engine.wait_proposals((await engine.create_exploration(request)).id)
        assert exp.metric is None
        # When a first variation runs with the baseline
        first = await add(engine, exp, TRAIN.replace("0.5", "0.7"), "first")
        await engine.approve(first.id, first.code_sha256)
        ran = await engine.wait_runs(exp.id)
        # Then the metric the comparison picked is bound to `acc`
        assert ran.comparison.metric == METRIC
        assert ran.metric is not None and ran.metric.name == METRIC
        assert ran.metric.binding is not None and ran.metric.binding.expression == "acc"

        # When the researcher adds a variation without the print, and one without `acc`
        quiet = await add(engine, exp, DROPS_PRINT, "no print")
        renamed = await add(engine, exp, DROPS_VARIABLE, "renamed")
        # Then the one without `acc` is flagged before it is approved
        assert quiet.warnings == []
        assert renamed.warnings and "`acc`" in renamed.warnings[0]
        for proposal in (quiet, renamed):
            await engine.approve(proposal.id, proposal.code_sha256)
        done = await engine.wait_runs(exp.id)
    finally:
        await engine.close()

    # Then the variation without the print reports the metric through the binding
    quiet_run = run_of(done, quiet)
    assert quiet_run.status == RunStatus.SUCCEEDED
    assert quiet_run.metrics[METRIC] == pytest.approx(0.9)
    assert quiet_run.metric_sources[METRIC] == "binding"
    # And the one without `acc` ends "no metric" with its reason
    lost = run_of(done, renamed)
    assert lost.status == RunStatus.SUCCEEDED and METRIC not in lost.metrics
    assert lost.reason.startswith("no metric: 'test accuracy' was not in the output")
    assert "NameError" in lost.reason
    rows = {row.proposal_id: row for row in done.comparison.rows}
    assert rows[renamed.id].status == "no metric"
    assert rows[quiet.id].metrics[METRIC] == pytest.approx(0.9)
