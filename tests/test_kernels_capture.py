"""Output capture and environment scrubbing, without kernels."""

from __future__ import annotations

import pytest

from jupyter_research_agent.core.capture import OutputCapture
from jupyter_research_agent.core.kernels import scrubbed_env

PATTERNS = ["*_API_KEY", "*_TOKEN", "*_SECRET", "*_PASSWORD"]


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("OPENAI_API_KEY", False),
        ("openai_api_key", False),
        ("JUPYTERHUB_API_TOKEN", False),
        ("AWS_SECRET", False),
        ("DB_PASSWORD", False),
        ("PATH", True),
        ("TOKENIZERS_PARALLELISM", True),
        ("API_KEY_FILE", True),
    ],
)
def test_scrubbed_env_drops_secret_names(name: str, kept: bool) -> None:
    # Given an environment with one variable
    # When it is scrubbed with the default patterns
    env = scrubbed_env(PATTERNS, {name: "value"})
    # Then only secret-looking names are gone
    assert (name in env) is kept


def test_consecutive_stream_chunks_merge_per_stream() -> None:
    # Given stdout, stdout, stderr, stdout chunks
    capture = OutputCapture(10_000)
    capture.begin_cell("a")
    for name, text in [("stdout", "1\n"), ("stdout", "2\n"), ("stderr", "w\n"), ("stdout", "3")]:
        capture.add("stream", {"name": name, "text": text})

    # When the outputs are read
    (cell,) = capture.cells()

    # Then consecutive chunks of one stream are one output
    assert [(o["name"], o["text"]) for o in cell.outputs] == [
        ("stdout", "1\n2\n"),
        ("stderr", "w\n"),
        ("stdout", "3"),
    ]
    assert capture.tail() == ["1", "2", "w", "3"]


def test_cap_drops_rich_outputs_but_keeps_errors() -> None:
    # Given a tiny cap nearly used by text
    capture = OutputCapture(1024)
    capture.begin_cell("a")
    capture.add("stream", {"name": "stdout", "text": "x" * 1000})

    # When a large display and then an error arrive
    capture.add("display_data", {"data": {"text/plain": "y" * 500}, "metadata": {}})
    error = {"ename": "ValueError", "evalue": "bad", "traceback": ["tb"]}
    capture.add("error", error)

    # Then the display is dropped and counted, the error is kept, and one marker closes the cell
    (cell,) = capture.cells()
    kinds = [o["output_type"] for o in cell.outputs]
    assert kinds == ["stream", "error", "stream"]
    assert cell.truncated
    assert cell.outputs[-1]["text"].startswith("[output truncated: ")


def test_clear_output_frees_its_bytes() -> None:
    # Given a progress display that clears itself before each redraw
    capture = OutputCapture(2048)
    capture.begin_cell("a")
    for step in range(100):
        capture.add("clear_output", {"wait": True})
        capture.add("stream", {"name": "stdout", "text": f"step {step} " + "." * 100})

    # When the outputs are read
    (cell,) = capture.cells()

    # Then only the last drawing is kept and nothing was truncated
    assert len(cell.outputs) == 1
    assert cell.outputs[0]["text"].startswith("step 99 ")
    assert not cell.truncated


def test_tail_keeps_last_lines_of_huge_chunks_and_carriage_returns() -> None:
    # Given a chunk of many lines, then a progress bar drawn with carriage returns
    capture = OutputCapture(1024)
    capture.begin_cell("a")
    capture.add("stream", {"name": "stdout", "text": "".join(f"{i}\n" for i in range(100_000))})
    capture.add("stream", {"name": "stderr", "text": "10%\r50%\r100%\n"})

    # When the tail is read
    tail = capture.tail()

    # Then it holds the last twenty lines, each as last drawn
    assert len(tail) == 20
    assert tail[-2] == "99999"
    assert tail[-1] == "100%"
