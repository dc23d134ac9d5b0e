"""The headless command reports what it knows: one JSON document even when proposing fails,
the warnings and metric sources of each variation, and "no metric: <why>" as runs end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from agent_wiring_support import SENTINEL_KEY
from openai_server import FakeOpenAI, chat, error, fake_openai, proposals_answer

__all__ = ["fake_openai"]

TRAIN = "alpha = 0.5\nacc = 0.8 + alpha / 10\nprint(f'test accuracy: {acc:.4f}')"
DROPS_PRINT = "alpha = 1.0\nacc = 0.8 + alpha / 10"
DROPS_VARIABLE = "alpha = 1.0\nscore = 0.8 + alpha / 10\nprint(f'score: {score:.4f}')"
WARNING = "this variation no longer computes `acc`"


def write_bound(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(TRAIN, id="train")]
    (root / "bound.ipynb").write_text(nbformat.writes(nb))


def run_cli(
    *args: str, cwd: Path, key: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The command as a process, with none of the developer's OPENAI_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "jupyter_research_agent.cli", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def model_flags(server: FakeOpenAI) -> tuple[str, ...]:
    return ("--model", "test-model", "--base-url", server.url, "--ledger", "ledger.sqlite")


EXPLORE = ("explore", "bound.ipynb", "--cell", "train", "--metric", "test accuracy")


def test_a_model_error_still_gives_one_json_document(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model that refuses the key
    write_bound(tmp_path)
    fake_openai.always(error(401, "bad key"))
    # When explore runs with --format json
    proc = run_cli(
        *EXPLORE, "--yes", "--format", "json", *model_flags(fake_openai), cwd=tmp_path,
        key=SENTINEL_KEY,
    )  # fmt: skip
    # Then it exits 1 with the error on stderr and as the one JSON document on stdout
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["error"].startswith("proposing failed: ") and "401" in doc["error"]
    assert doc["exploration_id"] and doc["variations"] == []
    assert "error: proposing failed" in proc.stderr
    assert SENTINEL_KEY not in proc.stdout + proc.stderr


def test_bad_input_in_json_is_a_json_error(tmp_path: Path) -> None:
    # Given a cell that does not exist, When explore runs with --format json
    write_bound(tmp_path)
    proc = run_cli(
        "explore", "bound.ipynb", "--cell", "nosuch", "--offline", "--format", "json",
        "--ledger", "l.sqlite", cwd=tmp_path,
    )  # fmt: skip
    # Then it exits 2, and stdout is one JSON document with the error
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert "nosuch" in doc["error"] and doc["exploration_id"] is None


def test_warnings_are_shown_before_asking_and_no_metric_says_why(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model proposing a variation that no longer computes `acc`
    write_bound(tmp_path)
    fake_openai.script(chat(proposals_answer(DROPS_VARIABLE)), chat("No winner."))
    # When the researcher is asked and answers yes
    proc = run_cli(*EXPLORE, *model_flags(fake_openai), cwd=tmp_path, key=SENTINEL_KEY, stdin="y\n")
    # Then the warning was shown before the question
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {WARNING}" in proc.stderr
    assert proc.stderr.index(WARNING) < proc.stderr.index("Run it?")
    # And the progress line of the run says why it has no metric
    line = next(x for x in proc.stderr.splitlines() if x.strip().startswith("Variation 1: succ"))
    assert "(no metric: 'test accuracy' was not in the output" in line, proc.stderr


def test_json_variations_carry_warnings_and_metric_sources(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model proposing one variation without the print and one without `acc`
    write_bound(tmp_path)
    fake_openai.script(chat(proposals_answer(DROPS_PRINT, DROPS_VARIABLE)), chat("Read."))
    # When both run with the baseline, as JSON
    proc = run_cli(
        *EXPLORE, "--yes", "--format", "json", "--parallel", "3", *model_flags(fake_openai),
        cwd=tmp_path, key=SENTINEL_KEY,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    quiet, renamed = doc["variations"]
    # Then the variation without the print reports the metric through the binding
    assert quiet["warnings"] == []
    assert quiet["metrics"]["test accuracy"] == pytest.approx(0.9)
    assert quiet["metric_sources"] == {"test accuracy": "binding"}
    # And the one without `acc` carries its warning and says why it has no metric
    assert any(WARNING in w for w in renamed["warnings"])
    assert renamed["status"] == "no metric"
    assert renamed["reason"].startswith("no metric: 'test accuracy' was not in the output")
    assert doc["baseline"]["metric_sources"]["test accuracy"].startswith("stdout")
