"""The comparison of an exploration: rows, deltas, seeds, the best variation, the frame."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from jupyter_research_agent.core.compare import build_comparison, comparison_frame
from jupyter_research_agent.core.interpretation import read_results
from jupyter_research_agent.core.llm.interpret import interpret_numbers
from jupyter_research_agent.core.models import (
    Direction,
    Exploration,
    MetricSpec,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
)

EXP = "exp-1"


def proposal(pid: str, title: str, status: ProposalStatus = ProposalStatus.APPROVED) -> Proposal:
    return Proposal(id=pid, exploration_id=EXP, title=title, code=f"# {title}", status=status)


def run(
    proposal_id: str | None,
    metrics: dict[str, float] | None = None,
    status: RunStatus = RunStatus.SUCCEEDED,
    duration: float | None = 2.0,
    seed: int | None = None,
) -> Run:
    return Run(
        exploration_id=EXP,
        proposal_id=proposal_id,
        is_baseline=proposal_id is None,
        status=status,
        metrics=metrics or {},
        duration_s=duration,
        seed=seed,
    )


def exploration(
    baseline: Run | None,
    proposals: list[Proposal],
    runs: list[Run],
    metric: MetricSpec | None = None,
) -> Exploration:
    return Exploration(
        id=EXP,
        notebook_path="n.ipynb",
        cell_id="c",
        baseline=baseline,
        proposals=proposals,
        runs=runs,
        metric=metric,
    )


def lr_exploration() -> Exploration:
    props = [
        proposal("p1", "lr: 0.5 → 0.05"),
        proposal("p2", "lr: 0.5 → 5.0"),
        proposal("p3", "epochs: 10 → 20"),
    ]
    runs = [
        run("p1", {"accuracy": 0.93, "loss": 0.2}, duration=3.0),
        run("p2", {}, status=RunStatus.FAILED, duration=1.0),
        run("p3", {"accuracy": 0.85, "loss": 0.3}, duration=5.0),
    ]
    return exploration(run(None, {"result": 3.0, "accuracy": 0.81, "loss": 0.4}), props, runs)


def test_rows_deltas_and_best_for_a_single_seed() -> None:
    # Given a baseline at accuracy 0.81 and three variations, one failed
    comparison = build_comparison(lr_exploration())

    # Then the metric with a known direction is chosen over the first printed one
    assert comparison.metric == "accuracy"
    assert comparison.direction == Direction.MAXIMIZE
    # And rows come baseline first, then variations in proposal order
    assert [r.label for r in comparison.rows] == [
        "baseline",
        "lr: 0.5 → 0.05",
        "lr: 0.5 → 5.0",
        "epochs: 10 → 20",
    ]
    base, best, failed, other = comparison.rows
    assert base.is_baseline
    assert base.delta is None
    assert best.delta == pytest.approx(0.12)
    assert best.pct_change == pytest.approx(14.8148, rel=1e-3)
    assert failed.status == "failed"
    assert failed.delta is None
    assert failed.n == 0
    assert other.delta == pytest.approx(0.04)
    # And the best variation is marked
    assert comparison.best_proposal_id == "p1"
    assert [r.best for r in comparison.rows] == [False, True, False, False]
    assert comparison.summary == (
        "lr: 0.5 → 0.05 is best: accuracy 0.93 vs 0.81 baseline (+14.8%). "
        "1 of 3 variations did not succeed."
    )


def test_named_metric_and_direction_are_used() -> None:
    # Given the researcher names "Loss" and asks to minimize it
    exp = lr_exploration()
    exp.metric = MetricSpec(name="Loss", direction=Direction.MINIMIZE)

    # Then the comparison uses the normalised name and the given direction
    comparison = build_comparison(exp)
    assert (comparison.metric, comparison.direction) == ("loss", Direction.MINIMIZE)
    assert comparison.best_proposal_id == "p1"
    assert comparison.rows[1].pct_change == pytest.approx(-50.0)


def test_direction_is_inferred_for_a_named_metric() -> None:
    exp = lr_exploration()
    exp.metric = MetricSpec(name="loss")
    assert build_comparison(exp).direction == Direction.MINIMIZE


def test_no_variation_beating_the_baseline_means_no_best() -> None:
    # Given variations that are all worse than the baseline
    props = [proposal("p1", "C: 1.0 → 0.1"), proposal("p2", "C: 1.0 → 10.0")]
    runs = [run("p1", {"accuracy": 0.7}), run("p2", {"accuracy": 0.79})]
    comparison = build_comparison(exploration(run(None, {"accuracy": 0.8}), props, runs))

    # Then nothing is marked best and the summary names the closest one
    assert comparison.best_proposal_id is None
    assert not any(r.best for r in comparison.rows)
    assert comparison.summary == (
        "No variation beat the baseline on accuracy (0.8); the closest is C: 1.0 → 10.0 at 0.79."
    )


def test_ties_with_the_baseline_are_not_best() -> None:
    props = [proposal("p1", "a")]
    comparison = build_comparison(
        exploration(run(None, {"acc": 0.8}), props, [run("p1", {"acc": 0.8})])
    )
    assert comparison.best_proposal_id is None


def test_seeds_are_aggregated_and_noise_is_mentioned() -> None:
    # Given three seeds per side, with spreads larger than the gap between the means
    props = [proposal("p1", "lr: 0.5 → 0.3")]
    baseline_repeats = [run(None, {"acc": v}, seed=s) for s, v in ((1, 0.82), (2, 0.86))]
    baseline = run(None, {"acc": 0.78}, seed=0)
    variation = [
        run("p1", {"acc": 0.80}, seed=0, duration=1.0),
        run("p1", {"acc": 0.84}, seed=1, duration=2.0),
        run("p1", {"acc": 0.90}, seed=2, duration=3.0),
        run("p1", {}, status=RunStatus.TIMED_OUT, seed=3, duration=9.0),
    ]
    exp = exploration(baseline, props, baseline_repeats + variation)

    # When compared
    comparison = build_comparison(exp)
    base, row = comparison.rows

    # Then means, sample standard deviations and counts cover the succeeded runs only
    assert base.n == 3
    assert base.metrics["acc"] == pytest.approx(0.82)
    assert base.std["acc"] == pytest.approx(0.04)
    assert row.n == 3
    assert row.metrics["acc"] == pytest.approx(0.8466667)
    assert row.std["acc"] == pytest.approx(0.0503322, rel=1e-4)
    assert row.status == "3/4 succeeded"
    assert row.duration_s == pytest.approx(3.75)
    # And the best is reported with the caveat that the gap is within seed noise
    assert comparison.best_proposal_id == "p1"
    assert "within the seed noise (std 0.05033)" in comparison.summary


def test_runs_still_going_show_their_state() -> None:
    # Given one variation running and one approved but not started
    props = [proposal("p1", "a"), proposal("p2", "b"), proposal("p3", "c", ProposalStatus.PROPOSED)]
    runs = [run("p1", status=RunStatus.RUNNING, duration=None)]
    comparison = build_comparison(exploration(run(None, {"acc": 0.5}), props, runs))

    # Then running and approved rows appear, the merely proposed one does not
    assert [(r.label, r.status) for r in comparison.rows] == [
        ("baseline", "succeeded"),
        ("a", "running"),
        ("b", "approved"),
    ]
    assert comparison.summary == "Baseline acc 0.5; variations still running."


def test_a_run_without_the_metric_reads_no_metric() -> None:
    props = [proposal("p1", "drops the print")]
    runs = [run("p1", {"other": 1.0})]
    comparison = build_comparison(exploration(run(None, {"acc": 0.5}), props, runs))
    assert comparison.rows[1].status == "no metric"
    assert comparison.rows[1].delta is None


def test_unknown_direction_gives_no_best_and_says_why() -> None:
    props = [proposal("p1", "x")]
    runs = [run("p1", {"result": 2.0})]
    comparison = build_comparison(exploration(run(None, {"result": 1.0}), props, runs))
    assert comparison.metric == "result"
    assert comparison.direction is None
    assert comparison.best_proposal_id is None
    assert comparison.rows[1].delta == 1.0
    assert "direction unknown" in comparison.summary


def test_failed_baseline_falls_back_to_variation_metrics() -> None:
    # Given a baseline that failed and a variation that reported accuracy
    props = [proposal("p1", "fix")]
    base = run(None, status=RunStatus.FAILED)
    comparison = build_comparison(exploration(base, props, [run("p1", {"accuracy": 0.7})]))

    # Then the metric is still found, there is no delta, and the variation is best
    assert comparison.metric == "accuracy"
    assert comparison.rows[0].status == "failed"
    assert comparison.rows[1].delta is None
    assert comparison.best_proposal_id == "p1"
    # And the summary says the baseline failed before naming the best variation on its own
    assert comparison.summary == (
        "The baseline failed: failed; nothing to compare against. "
        "Among the variations, fix is best: accuracy 0.7."
    )


def test_zero_baseline_has_delta_but_no_percent() -> None:
    props = [proposal("p1", "x")]
    comparison = build_comparison(
        exploration(run(None, {"loss": 0.0}), props, [run("p1", {"loss": 0.5})])
    )
    assert comparison.rows[1].delta == 0.5
    assert comparison.rows[1].pct_change is None


def test_empty_exploration() -> None:
    comparison = build_comparison(exploration(None, [], []))
    assert comparison.rows == []
    assert comparison.metric is None
    assert comparison.summary == "No runs yet."


def test_no_metrics_anywhere() -> None:
    props = [proposal("p1", "x")]
    comparison = build_comparison(exploration(run(None, {}), props, [run("p1", {})]))
    assert comparison.metric is None
    assert comparison.summary.startswith("No metric found in the outputs")


# ---------------------------------------------------------------- frame


def test_comparison_frame_columns_and_values() -> None:
    # Given the single-seed comparison
    frame = comparison_frame(build_comparison(lr_exploration()))

    # Then the columns are fixed around the metrics, the chosen metric first
    assert list(frame.columns) == [
        "variation",
        "proposal_id",
        "status",
        "accuracy",
        "result",
        "loss",
        "delta",
        "pct_change",
        "duration_s",
        "best",
    ]
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["variation"].tolist()[0] == "baseline"
    assert frame["proposal_id"].isna().tolist() == [True, False, False, False]
    assert frame["proposal_id"].tolist()[1:] == ["p1", "p2", "p3"]
    assert frame["best"].tolist() == [False, True, False, False]
    assert frame.loc[1, "accuracy"] == pytest.approx(0.93)
    assert math.isnan(frame.loc[2, "accuracy"])
    assert math.isnan(frame.loc[0, "delta"])
    assert frame["duration_s"].tolist() == [2.0, 3.0, 1.0, 5.0]


def test_comparison_frame_adds_std_when_seeds_repeat() -> None:
    props = [proposal("p1", "x")]
    runs = [run("p1", {"acc": 0.8}), run("p1", {"acc": 0.9})]
    frame = comparison_frame(build_comparison(exploration(run(None, {"acc": 0.5}), props, runs)))
    assert list(frame.columns)[3:5] == ["acc", "acc std"]
    assert math.isnan(frame.loc[0, "acc std"])
    assert frame.loc[1, "acc std"] == pytest.approx(0.0707107)


def test_metric_named_like_a_fixed_column_is_kept_apart() -> None:
    props = [proposal("p1", "x")]
    exp = exploration(run(None, {"delta": 1.0}), props, [run("p1", {"delta": 2.0})])
    exp.metric = MetricSpec(name="delta", direction=Direction.MAXIMIZE)
    frame = comparison_frame(build_comparison(exp))
    assert frame.loc[1, "metric delta"] == 2.0
    assert frame.loc[1, "delta"] == 1.0


def test_empty_comparison_frame_has_the_columns() -> None:
    frame = comparison_frame(build_comparison(exploration(None, [], [])))
    assert frame.empty
    assert list(frame.columns) == [
        "variation",
        "proposal_id",
        "status",
        "delta",
        "pct_change",
        "duration_s",
        "best",
    ]


# ---------------------------------------------------------------- summary when runs fail


def ended(
    proposal_id: str | None,
    status: RunStatus,
    reason: str,
    metrics: dict[str, float] | None = None,
) -> Run:
    failed = run(proposal_id, metrics, status=status)
    failed.reason = reason
    return failed


def seeded(proposal_id: str | None, value: float) -> list[Run]:
    return [run(proposal_id, {"accuracy": value}, seed=seed) for seed in range(3)]


FAILING = [
    (
        # the baseline printed the metric, then a later cell raised
        ended(None, RunStatus.FAILED, "ValueError: bad in cell report", {"test accuracy": 0.9}),
        [ended("p1", RunStatus.FAILED, "ValueError: bad in cell report")],
        "The baseline failed: ValueError: bad in cell report (it had printed test accuracy "
        "0.9 before that); nothing to compare against.",
    ),
    (
        ended(None, RunStatus.TIMED_OUT, "timed out after 3 s"),
        [ended("p1", RunStatus.TIMED_OUT, "timed out after 3 s")],
        "The baseline failed: timed out after 3 s; nothing to compare against.",
    ),
    (
        ended(None, RunStatus.CANCELLED, "time budget spent"),
        [],
        "The baseline stopped: time budget spent; nothing to compare against.",
    ),
    (
        run(None, {"accuracy": 0.8}),
        [
            ended("p1", RunStatus.FAILED, "kernel 'nope' failed to start"),
            ended("p2", RunStatus.TIMED_OUT, "timed out after 3 s"),
        ],
        "No variation succeeded: 'x' ended failed (kernel 'nope' failed to start), "
        "and 1 other variation too.",
    ),
]


@pytest.mark.parametrize(("base", "runs", "expected"), FAILING)
def test_summary_says_why_nothing_compares(base: Run, runs: list[Run], expected: str) -> None:
    # Given runs that failed (the baseline, or every variation)
    props = [proposal("p1", "x"), proposal("p2", "y")]
    # When compared, from the comparison and from the numbers alone
    comparison = build_comparison(exploration(base, props, runs))
    reading = interpret_numbers(comparison)
    # Then the summary gives the failure and its reason, and never asks to name a metric
    assert comparison.summary == expected
    for text in (comparison.summary, reading):
        assert "name one" not in text, text
    assert reading.startswith(("The baseline did not succeed", "No variation succeeded")), reading


def test_identical_repeats_are_not_called_beyond_the_noise() -> None:
    # Given three seeds each for the baseline and a variation, each giving one value
    props = [proposal("p1", "x")]
    base, *repeats = seeded(None, 0.8)
    comparison = build_comparison(exploration(base, props, [*repeats, *seeded("p1", 0.9)]))
    assert comparison.rows[0].std == {"accuracy": 0.0} and comparison.rows[0].n == 3
    # When read, from the comparison and from the numbers alone
    reading = interpret_numbers(comparison)
    # Then both say the seeds changed nothing, and no "larger than the noise (±0)"
    for text in (comparison.summary, reading):
        assert "identical results" in text and "earlier cell" in text, text
        assert "±0" not in text and "larger than the noise" not in text, text


@pytest.mark.asyncio
async def test_the_written_reading_of_a_failed_baseline_gives_its_reason() -> None:
    # Given an exploration whose runs all timed out
    base = ended(None, RunStatus.TIMED_OUT, "timed out after 3 s")
    exp = exploration(base, [proposal("p1", "x")], [ended("p1", RunStatus.TIMED_OUT, "t")])
    # When the results are read (as once every run ended)
    text = await read_results(exp, None)
    # Then the reading is the failure, with its reason
    assert text == "The baseline failed: timed out after 3 s; nothing to compare against."
