"""Metric bindings end to end on real side kernels: runs read the bound expression, variations
that drop the metric's variable are flagged and end "no metric", noise stays out, and the
binding survives a restart of the engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kernels_support import ExecutorFactory, executors, make_spec

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.models import (
    AddProposal,
    Cell,
    CreateExploration,
    Exploration,
    NotebookDoc,
    Proposal,
    Run,
    RunStatus,
)
from jupyter_research_agent.core.notebook import to_nbformat

METRIC = "test accuracy"
TRAIN = (
    "alpha = 0.5\n"
    "acc = 0.8 + alpha / 10\n"
    'print(f"test accuracy: {acc:.4f}")\n'
    "# library chatter on stderr that looks like a metric\n"
    'sys.stderr.write("solver: alpha=0.5 clipped\\n")\n'
    'warnings.warn("alpha=0.5 is deprecated")\n'
)
DROPS_PRINT = "alpha = 1.0\nacc = 0.8 + alpha / 10\n"
DROPS_VARIABLE = 'alpha = 1.0\nscore = 0.8 + alpha / 10\nprint(f"score: {score:.4f}")\n'


def write_notebook(root: Path) -> None:
    cells = [
        Cell(id="setup", source="import sys\nimport warnings"),
        Cell(id="train", source=TRAIN),
        Cell(id="report", source='print("done")'),
    ]
    node = to_nbformat(NotebookDoc(path="bound.ipynb", cells=cells))
    (root / "bound.ipynb").write_text(json.dumps(node))


def make_config(tmp_path: Path) -> EngineConfig:
    root = tmp_path / "work"
    root.mkdir(exist_ok=True)
    write_notebook(root)
    return EngineConfig(
        root_dir=root,
        ledger_path=tmp_path / "ledger.sqlite",
        pool_size=2,
        run_timeout_s=30,
        kernel_start_timeout_s=30,
        interrupt_grace_s=1,
    )


async def explore(engine: Engine, metric: str = METRIC) -> Exploration:
    request = CreateExploration(
        notebook_path="bound.ipynb", cell_id="train", offline=True, max_proposals=0, metric=metric
    )
    return await engine.wait_proposals((await engine.create_exploration(request)).id)


async def add(engine: Engine, exp: Exploration, code: str, title: str) -> Proposal:
    return await engine.add_proposal(exp.id, AddProposal(code=code, title=title))


def run_of(exp: Exploration, proposal: Proposal) -> Run:
    return next(r for r in exp.runs if r.proposal_id == proposal.id)


# ---------------------------------------------------------------- the executor


@pytest_asyncio.fixture
async def make_executor(tmp_path: Path) -> AsyncIterator[ExecutorFactory]:
    async with executors(tmp_path) as make:
        yield make


@pytest.mark.asyncio
async def test_executor_evaluates_user_expressions_after_the_last_cell(
    make_executor: ExecutorFactory,
) -> None:
    # Given a run whose last cell changes acc, with expressions for acc, a string and a typo
    executor = make_executor()
    expressions = {
        "acc": "float(acc)",
        "label": "float(label)",
        "typo": "float(acx)",
    }
    spec = make_spec("r-expr", "acc = 0.5\nlabel = 'x'", "acc = 0.75", user_expressions=expressions)
    # When it runs
    result = await executor.submit(spec).wait()
    # Then the values are read after every cell, silently: no output is added
    assert result.status == RunStatus.SUCCEEDED, result.reason
    assert result.expression_values == {"acc": 0.75}
    assert set(result.expression_errors) == {"label", "typo"}
    assert result.expression_errors["typo"].startswith("NameError")
    assert [c.outputs for c in result.cells] == [[], []]


@pytest.mark.asyncio
async def test_a_failed_run_evaluates_nothing(make_executor: ExecutorFactory) -> None:
    # Given a run whose cell raises, with an expression to read
    executor = make_executor()
    spec = make_spec("r-fail", "acc = 1\nraise ValueError('bad')", user_expressions={"a": "acc"})
    # When it runs; Then it fails as usual and reads no value
    result = await executor.submit(spec).wait()
    assert result.status == RunStatus.FAILED
    assert result.expression_values == {} and result.expression_errors == {}


# ---------------------------------------------------------------- the engine


@pytest.mark.asyncio
async def test_variations_keep_or_lose_the_metric_through_the_binding(tmp_path: Path) -> None:
    # Given an exploration of a cell that prints the metric from `acc`
    engine = Engine(make_config(tmp_path))
    try:
        exp = await explore(engine)
        # Then the metric is bound to `acc` in that cell before anything runs
        assert exp.metric is not None and exp.metric.binding is not None
        binding = exp.metric.binding
        assert (binding.expression, binding.cell_id, binding.names) == ("acc", "train", ["acc"])

        # When the researcher adds a variation without the print, and one without `acc`
        quiet = await add(engine, exp, DROPS_PRINT, "no print")
        renamed = await add(engine, exp, DROPS_VARIABLE, "renamed")
        # Then only the second is flagged, before it is approved
        assert quiet.warnings == []
        assert renamed.warnings == [
            "this variation no longer computes `acc`; the metric 'test accuracy' is read from `acc`"
        ]

        # When both run (with the baseline)
        for proposal in (quiet, renamed):
            await engine.approve(proposal.id, proposal.code_sha256)
        done = await engine.wait_runs(exp.id)
    finally:
        await engine.close()

    # Then the baseline reads the metric from its output
    baseline = done.baseline
    assert baseline is not None and baseline.status == RunStatus.SUCCEEDED
    assert baseline.metrics[METRIC] == pytest.approx(0.85)
    assert baseline.metric_sources[METRIC].startswith("stdout")
    # And the variation that dropped the print still reports it, through the binding
    quiet_run = run_of(done, quiet)
    assert quiet_run.status == RunStatus.SUCCEEDED
    assert quiet_run.metrics[METRIC] == pytest.approx(0.9)
    assert quiet_run.metric_sources[METRIC] == "binding"
    assert quiet_run.reason == ""
    # And the one that removed `acc` succeeded without the metric, and says why
    lost = run_of(done, renamed)
    assert lost.status == RunStatus.SUCCEEDED
    assert METRIC not in lost.metrics
    assert lost.reason.startswith("no metric: 'test accuracy' was not in the output")
    assert "NameError" in lost.reason
    rows = {row.proposal_id: row for row in done.comparison.rows}
    assert rows[renamed.id].status == "no metric"
    assert rows[quiet.id].metrics[METRIC] == pytest.approx(0.9)
    # And the warnings on stderr that read like `alpha=0.5` are no metric of any run
    for run in (baseline, quiet_run, lost):
        assert "alpha" not in run.metrics
        assert "solver: alpha" not in run.metrics


@pytest.mark.asyncio
async def test_the_binding_survives_a_restart(tmp_path: Path) -> None:
    # Given an exploration whose baseline ran and bound the metric, then the engine closed
    config = make_config(tmp_path)
    first = Engine(config)
    try:
        exp = await explore(first)
        quiet = await add(first, exp, DROPS_PRINT, "no print")
        await first.approve(quiet.id, quiet.code_sha256)
        before = await first.wait_runs(exp.id)
    finally:
        await first.close()
    assert before.metric is not None and before.metric.binding is not None

    # When a new engine opens the same ledger
    second = Engine(config)
    try:
        again = second.get_exploration(exp.id)
        # Then the binding is still there, as it was
        assert again.metric is not None
        assert again.metric.binding == before.metric.binding
        # And a new variation without the print is read through it, and one without acc flagged
        later = await add(second, again, "alpha = 2.0\nacc = 0.8 + alpha / 10\n", "bigger")
        renamed = await add(second, again, DROPS_VARIABLE, "renamed")
        assert later.warnings == []
        assert renamed.warnings and "`acc`" in renamed.warnings[0]
        await second.approve(later.id, later.code_sha256)
        done = await second.wait_runs(exp.id)
    finally:
        await second.close()
    run = run_of(done, later)
    assert run.metrics[METRIC] == pytest.approx(1.0)
    assert run.metric_sources[METRIC] == "binding"


@pytest.mark.asyncio
async def test_a_researcher_expression_is_read_from_every_run(tmp_path: Path) -> None:
    # Given a metric the notebook never prints, given as an expression
    engine = Engine(make_config(tmp_path))
    try:
        exp = await explore(engine, metric="quality=acc * 100")
        assert exp.metric is not None and exp.metric.name == "quality"
        assert exp.metric.binding is not None and exp.metric.binding.source == "researcher"
        # When a variation and the baseline run
        quiet = await add(engine, exp, DROPS_PRINT, "no print")
        await engine.approve(quiet.id, quiet.code_sha256)
        done = await engine.wait_runs(exp.id)
    finally:
        await engine.close()
    # Then both read it through the expression, and the researcher's binding is kept
    assert done.baseline is not None
    assert done.baseline.metrics["quality"] == pytest.approx(85.0)
    assert run_of(done, quiet).metrics["quality"] == pytest.approx(90.0)
    assert done.baseline.metric_sources["quality"] == "binding"
    assert done.metric is not None and done.metric.binding is not None
    assert done.metric.binding.source == "researcher"
    assert done.comparison.metric == "quality"
