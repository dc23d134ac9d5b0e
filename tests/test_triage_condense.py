"""Offline error condensation: ten-thousand-line logs reduced to what matters."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jupyter_research_agent.core.triage import condense_error, fold_lines


def error_output(ename: str, evalue: str, frames: list[str]) -> dict[str, Any]:
    return {
        "output_type": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": [
            "\x1b[0;31m" + "-" * 75 + "\x1b[0m",
            f"\x1b[0;31m{ename}\x1b[0m" + " " * 34 + "Traceback (most recent call last)",
            *frames,
            f"\x1b[0;31m{ename}\x1b[0m: {evalue}",
        ],
    }


CELL_FRAME = (
    "Cell \x1b[0;32mIn[7], line 12\x1b[0m\n"
    "     11 for epoch in range(100):\n"
    "\x1b[0;32m---> 12\x1b[0m     loss = train_step(model, batch)\n"
)
LIB_FRAMES = [
    "File \x1b[0;32m~/.venv/lib/python3.11/site-packages/torch/nn/modules/module.py:"
    f"{n}\x1b[0m, in \x1b[0;36mModule._call_impl\x1b[0;34m(self, *args)\x1b[0m\n"
    f"   1500 x\n-> {n} return forward_call(*args)\n"
    for n in range(1501, 1541)
]


def test_ten_thousand_line_log_is_condensed() -> None:
    # Given a log of 10,000 lines: progress lines that differ in numbers, a warning repeated
    # 4,999 times, then a NaN loss, and a traceback with 40 library frames
    progress = [f"\x1b[32mepoch {i} loss {1 / (i + 1):.4f}\x1b[0m" for i in range(5000)]
    warning = ["UserWarning: the learning rate scheduler was called before the optimizer"] * 4999
    stream = "\n".join([*progress, *warning, "epoch 5000 loss nan"]) + "\n"
    outputs = [
        {"output_type": "stream", "name": "stderr", "text": stream},
        error_output(
            "RuntimeError",
            "Function 'MseLossBackward0' returned nan values",
            [CELL_FRAME, *LIB_FRAMES],
        ),
    ]
    # When it is condensed
    started = time.perf_counter()
    result = condense_error(outputs)
    elapsed = time.perf_counter() - started
    # Then: fast, counted, folded, ANSI-free, the researcher's frame kept, library frames collapsed
    assert elapsed < 1.0
    assert result.found and result.ename == "RuntimeError"
    assert result.total_lines == 10_000
    assert "… repeated 4,998 more times" in result.lines_before
    assert "… 4,998 similar lines …" in result.lines_before
    assert result.lines_before[-1] == "epoch 5000 loss nan"
    assert result.frames == [
        "Cell In[7], line 12\n  ---> 12     loss = train_step(model, batch)",
        "… 40 library frames (torch) …",
    ]
    assert result.library_frames == 40
    assert result.category == "nan"
    assert "\x1b" not in result.text
    assert len(result.text.splitlines()) < 20


@pytest.mark.parametrize(
    ("ename", "evalue", "stream", "category", "phrase"),
    [
        (
            "ModuleNotFoundError",
            "No module named 'xgboost'",
            "",
            "missing_package",
            "%pip install xgboost",
        ),
        (
            "ValueError",
            "shapes (150,4) and (3,) not aligned: 4 (dim 1) != 3 (dim 0)",
            "",
            "shape_mismatch",
            "shape mismatch",
        ),
        (
            "RuntimeError",
            "mat1 and mat2 shapes cannot be multiplied (64x10 and 12x1)",
            "",
            "shape_mismatch",
            "shape",
        ),
        ("KeyError", "'price'", "", "key_error", "`price` is not"),
        (
            "OutOfMemoryError",
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            "",
            "cuda_oom",
            "batch size",
        ),
        ("ValueError", "Input X contains NaN.", "", "nan", "NaN"),
        ("AssertionError", "", "step 10 loss nan\n", "nan", "NaN"),
        (
            "FileNotFoundError",
            "[Errno 2] No such file or directory: 'data/train.csv'",
            "",
            "file_not_found",
            "`data/train.csv`",
        ),
        ("NameError", "name 'df' is not defined", "", "name_error", "`df` is not defined"),
        ("ZeroDivisionError", "division by zero", "", "zero_division", "division by zero"),
        (
            "TypeError",
            "unsupported operand",
            "",
            "other",
            "TypeError raised at Cell In[7], line 12",
        ),
    ],
)
def test_likely_causes(ename: str, evalue: str, stream: str, category: str, phrase: str) -> None:
    # Given a failed cell with this error, When condensed, Then the cause names the problem
    outputs: list[dict[str, Any]] = [error_output(ename, evalue, [CELL_FRAME])]
    if stream:
        outputs.insert(0, {"output_type": "stream", "name": "stdout", "text": stream})
    result = condense_error(outputs)
    assert result.category == category
    assert phrase in result.likely_cause


def test_traceback_printed_to_stderr_is_found() -> None:
    # Given a script run with ! whose traceback is only text on stderr
    text = (
        "loading\n" * 3
        + "Traceback (most recent call last):\n"
        + '  File "/home/me/project/train.py", line 40, in <module>\n    main()\n'
        + '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n'
        + "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
        + "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n"
    )
    result = condense_error([{"output_type": "stream", "name": "stderr", "text": text}])
    # Then the exception, the researcher's own file frame and the collapsed library frame show
    assert result.found
    assert result.ename == "json.decoder.JSONDecodeError"
    assert result.frames[0].startswith('File "/home/me/project/train.py", line 40')
    assert result.frames[1] == "… 1 library frame (json) …"
    assert result.lines_before == ["loading", "… repeated 2 more times"]


def test_chained_exception_keeps_the_last_and_names_the_first() -> None:
    first = error_output("KeyError", "'price'", LIB_FRAMES[:2])["traceback"]
    second = error_output("KeyError", "'price'", [CELL_FRAME, *LIB_FRAMES[:1]])["traceback"]
    outputs = [
        {
            "output_type": "error",
            "ename": "KeyError",
            "evalue": "'price'",
            "traceback": [
                *first,
                "\nThe above exception was the direct cause of the following exception:\n",
                *second[1:],
            ],
        }
    ]
    result = condense_error(outputs)
    assert result.chained_from == ["KeyError: 'price'"]
    assert result.frames[0].startswith("Cell In[7], line 12")


def test_no_error_is_said_plainly() -> None:
    result = condense_error([{"output_type": "stream", "name": "stdout", "text": "ok\n"}])
    assert not result.found and result.text == "No error in this cell's outputs."


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a", "a", "a"], ["a", "… repeated 2 more times"]),
        (["a", "b"], ["a", "b"]),
        (["x 1", "x 2", "x 3", "x 4"], ["x 1", "… 2 similar lines …", "x 4"]),
        (
            ["w", "  warn()", "w", "  warn()", "w", "  warn()"],
            ["w", "  warn()", "… repeated 2 more times"],
        ),
        (["a", "a", "b"], ["a", "… repeated 1 more times", "b"]),
    ],
)
def test_fold_lines(lines: list[str], expected: list[str]) -> None:
    assert fold_lines(lines)[0] == expected


def test_huge_log_is_bounded() -> None:
    # Given 50 MB of output before an error, When condensed, Then it stays fast and counts lines
    text = "x" * 99 + "\n"
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": text * 500_000},
        error_output("ValueError", "bad", [CELL_FRAME]),
    ]
    started = time.perf_counter()
    result = condense_error(outputs)
    assert time.perf_counter() - started < 2.0
    assert result.total_lines == 500_000
    assert result.lines_before[0] == "x" * 99
    assert result.lines_before[-1].startswith("… repeated")
    assert result.folded_lines > 499_000
