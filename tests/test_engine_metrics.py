"""Metric extraction from cell outputs, and the direction a metric should move."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.metrics import (
    extract_metrics,
    extract_run_metrics,
    extract_run_metrics_with_sources,
    infer_direction,
    metrics_from_text,
)
from jupyter_research_agent.core.models import CellOutputs, Direction


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def stderr(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stderr", "text": text}


def result(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "execute_result", "execution_count": 1, "data": data, "metadata": {}}


def display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # the usual shapes
        ("test accuracy: 0.91", {"test accuracy": 0.91}),
        ("val_loss=0.3", {"val_loss": 0.3}),
        ("val loss = 0.25", {"val loss": 0.25}),
        ("Epoch 3 - loss: 0.2", {"loss": 0.2}),
        ("acc: 91.2%", {"acc": 91.2}),
        ("loss: 1.5e-3", {"loss": 0.0015}),
        ("loss=2E+2", {"loss": 200.0}),
        ("acc=.95", {"acc": 0.95}),
        ("R2 = -0.3", {"r2": -0.3}),
        ("loss=0.1, acc=0.9", {"loss": 0.1, "acc": 0.9}),
        ("val loss = 0.25 | val acc = 0.8", {"val loss": 0.25, "val acc": 0.8}),
        ("Test   Accuracy :  0.5", {"test accuracy": 0.5}),
        ("f1-score: 0.7", {"f1-score": 0.7}),
        ("time: 3.2s", {"time": 3.2}),
        ("Error: 0.05", {"error": 0.05}),
        ("The final test accuracy is: 0.9", {"test accuracy": 0.9}),
        ("[INFO] step 100: loss=0.25", {"loss": 0.25}),
        ("2024-01-05 12:30:45 INFO loss=0.3", {"loss": 0.3}),
        ("epoch=3 loss=0.2", {"loss": 0.2}),
        ("Training with lr=0.1 done", {"lr": 0.1}),
        ("loss: 0.25 (best so far)", {"loss": 0.25}),
        ("\x1b[32macc: 0.8\x1b[0m", {"acc": 0.8}),
        # not metrics
        ("epoch 3/10", {}),
        ("accuracy: 45/50", {}),
        ("date: 2024-01-05", {}),
        ("time: 12:30", {}),
        ("started 12:30:45", {}),
        ("version: 1.2.3", {}),
        ("samples: 1,000", {}),
        ("shape: (100, 20)", {}),
        ("Name: Bob", {}),
        ("see http://example.org/?a=1&b=2", {}),
        ("UserWarning: alpha=0.5 is deprecated", {}),
        ("warning: loss=0.3 looks off", {}),
        ("DeprecationWarning: use x=1", {}),
        ("ValueError: x=1", {}),
        ("Traceback (most recent call last): x=1", {}),
        ("ERROR root: loss=0.3", {}),
        ("loss: nan", {}),
        ("acc: inf", {}),
        ("100%|██████████| 10/10 [00:01<00:00, 9.5it/s]", {}),
        ("", {}),
    ],
)
def test_metrics_from_printed_lines(line: str, expected: dict[str, float]) -> None:
    # Given one printed line, When parsed, Then exactly the expected metrics come out
    assert metrics_from_text(line) == expected


def test_later_values_win_so_the_last_epoch_counts() -> None:
    # Given a training log over three epochs
    text = "epoch 1 loss=0.9 acc=0.5\nepoch 2 loss=0.5 acc=0.7\nepoch 3 loss=0.2 acc=0.9\n"

    # Then the final epoch's values are the metrics
    assert metrics_from_text(text) == {"loss": 0.2, "acc": 0.9}


def test_a_final_nan_removes_the_earlier_value() -> None:
    # Given a run whose loss diverged in the end
    # Then it has no loss rather than the stale value of an early epoch
    assert metrics_from_text("loss: 0.5\nacc: 0.7\nloss: nan\n") == {"acc": 0.7}


def test_progress_bar_redraws_with_carriage_returns() -> None:
    assert metrics_from_text("loss=0.9\rloss=0.4\rloss=0.1\n") == {"loss": 0.1}


def test_stderr_is_never_a_metric_source() -> None:
    # Given a warning on stderr that contains name=value text, and a real metric on stdout
    outputs = [
        stderr("/lib/x.py:3: FutureWarning: alpha=0.5 will change\n  warnings.warn(...)\n"),
        stderr("loss=0.123\n"),
        stdout("accuracy: 0.88\n"),
    ]

    # Then only the stdout metric is found
    assert extract_metrics(outputs) == {"accuracy": 0.88}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"text/plain": "{'acc': 0.9, 'loss': 0.1}"}, {"acc": 0.9, "loss": 0.1}),
        ({"text/plain": "{'Test Acc': 0.9, 'model': 'ridge', 'ok': True}"}, {"test acc": 0.9}),
        ({"text/plain": "{'acc': np.float64(0.9), 'n': np.int64(3)}"}, {"acc": 0.9}),
        ({"text/plain": "0.93"}, {"result": 0.93}),
        ({"text/plain": "np.float64(0.93)"}, {"result": 0.93}),
        ({"text/plain": "42"}, {"result": 42.0}),
        ({"text/plain": "True"}, {}),
        ({"text/plain": "'accuracy: 0.8'"}, {"accuracy": 0.8}),
        ({"text/plain": "   acc  loss\n0  0.9   0.3"}, {"acc": 0.9, "loss": 0.3}),
        ({"text/plain": "acc     0.9\nloss    0.3\ndtype: float64"}, {"acc": 0.9, "loss": 0.3}),
        ({"text/plain": "   acc\n0  0.9\n1  0.8"}, {}),
        ({"text/plain": "<Figure size 640x480 with 1 Axes>"}, {}),
        ({"text/plain": "[0.1, 0.2]"}, {}),
        ({"image/png": "iVBORw0KGgo="}, {}),
    ],
)
def test_metrics_from_results(data: dict[str, Any], expected: dict[str, float]) -> None:
    # Given a cell's result bundle, When parsed, Then dicts, numbers and tables give metrics
    assert extract_metrics([result(data)]) == expected


ONE_ROW_HTML = """<div>
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;"><th></th><th>accuracy</th><th>Val Loss</th><th>model</th></tr>
  </thead>
  <tbody>
    <tr><th>0</th><td>0.91</td><td>0.27</td><td>ridge</td></tr>
  </tbody>
</table>
</div>"""

TWO_ROW_HTML = ONE_ROW_HTML.replace(
    "</tbody>", "<tr><th>1</th><td>0.5</td><td>0.9</td><td>lasso</td></tr></tbody>"
)


def test_one_row_dataframe_html_gives_column_metrics() -> None:
    # Given a one-row DataFrame displayed as HTML (with a text fallback)
    output = display({"text/html": ONE_ROW_HTML, "text/plain": "unparsed fallback"})

    # Then numeric columns become metrics by column name
    assert extract_metrics([output]) == {"accuracy": 0.91, "val loss": 0.27}


def test_many_row_dataframe_is_not_a_metric_source() -> None:
    assert extract_metrics([display({"text/html": TWO_ROW_HTML})]) == {}


def test_outputs_are_read_in_order_across_kinds() -> None:
    # Given printed progress, then a dict result that reports the final value
    outputs = [
        stdout("acc: 0.5\n"),
        {"output_type": "error", "ename": "X", "evalue": "acc=0.1", "traceback": []},
        result({"text/plain": "{'acc': 0.75}"}),
        stdout(["loss: 0.4\n", "loss: 0.3\n"]),
    ]

    # Then the later acc wins, error outputs are ignored, list text is joined
    assert extract_metrics(outputs) == {"acc": 0.75, "loss": 0.3}


def test_run_metrics_span_cells_and_record_their_source() -> None:
    # Given a run of two cells: training prints, a later cell reports
    cells = [
        CellOutputs(cell_id="train", outputs=[stdout("loss=0.4\nacc=0.6\n")]),
        CellOutputs(cell_id="report", outputs=[result({"text/plain": "{'acc': 0.8}"})]),
    ]

    # When metrics are extracted
    metrics, sources = extract_run_metrics_with_sources(cells)

    # Then later cells win and each metric says where it came from
    assert metrics == {"loss": 0.4, "acc": 0.8}
    assert sources == {"loss": "stdout of cell train", "acc": "result of cell report"}
    assert extract_run_metrics(cells) == metrics


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("loss", Direction.MINIMIZE),
        ("val_loss", Direction.MINIMIZE),
        ("Test Error", Direction.MINIMIZE),
        ("err", Direction.MINIMIZE),
        ("mae", Direction.MINIMIZE),
        ("mse", Direction.MINIMIZE),
        ("rmse", Direction.MINIMIZE),
        ("train time", Direction.MINIMIZE),
        ("latency_ms", Direction.MINIMIZE),
        ("perplexity", Direction.MINIMIZE),
        ("wer", Direction.MINIMIZE),
        ("cer", Direction.MINIMIZE),
        ("mean_squared_error", Direction.MINIMIZE),
        ("accuracy", Direction.MAXIMIZE),
        ("test accuracy", Direction.MAXIMIZE),
        ("acc", Direction.MAXIMIZE),
        ("val_acc", Direction.MAXIMIZE),
        ("f1", Direction.MAXIMIZE),
        ("f1-score", Direction.MAXIMIZE),
        ("auc", Direction.MAXIMIZE),
        ("roc_auc", Direction.MAXIMIZE),
        ("r2", Direction.MAXIMIZE),
        ("r2_score", Direction.MAXIMIZE),
        ("score", Direction.MAXIMIZE),
        ("precision", Direction.MAXIMIZE),
        ("recall", Direction.MAXIMIZE),
        ("bleu", Direction.MAXIMIZE),
        ("mAP", Direction.MAXIMIZE),
        ("iou", Direction.MAXIMIZE),
        ("mean reward", Direction.MAXIMIZE),
        ("neg_mean_squared_error", Direction.MAXIMIZE),
        ("result", None),
        ("lr", None),
        ("temperature", None),
    ],
)
def test_infer_direction(name: str, direction: Direction | None) -> None:
    assert infer_direction(name) == direction
