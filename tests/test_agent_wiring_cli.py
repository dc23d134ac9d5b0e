"""The headless command with a model: --model, --base-url, --dry-run, and `triage`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from agent_wiring_support import (
    FIXED,
    SENTINEL_KEY,
    STILL_BROKEN,
    executed_notebook,
    failed_notebook,
)
from openai_server import FakeOpenAI, chat, error, fake_openai, proposals_answer

__all__ = ["fake_openai"]

REPO = Path(__file__).resolve().parent.parent
TARGET = "lr = 0.1\nsecret = 'sk-abcdefghijklmnopqrstuvwxyz012345'\nprint(f'score: {lr * 2}')"
BETTER = "lr = 0.3\nprint(f'score: {lr * 2}')"


def run_cli(*args: str, cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a process, with none of the developer's OPENAI_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(REPO)
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "jupyter_research_agent.cli", *args],
        cwd=cwd,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_study(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(TARGET, id="train")]
    (root / "study.ipynb").write_text(nbformat.writes(nb))


def model_flags(server: FakeOpenAI) -> tuple[str, ...]:
    return ("--model", "test-model", "--base-url", server.url, "--ledger", "ledger.sqlite")


def test_dry_run_prints_the_redacted_request_and_sends_nothing(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a notebook whose target cell holds a secret, and a model with a key in the env
    write_study(tmp_path)
    # When explore runs with --dry-run
    proc = run_cli(
        "explore", "study.ipynb", "--cell", "train", "--metric", "score", "--dry-run",
        *model_flags(fake_openai), cwd=tmp_path, key=SENTINEL_KEY,
    )  # fmt: skip
    # Then it exits 0 with the exact request as JSON, and the model got nothing
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["proposer"] == "llm" and doc["model"] == "test-model"
    assert [m["role"] for m in doc["messages"]] == ["system", "user"]
    user = doc["messages"][1]["content"]
    assert "lr = 0.1" in user and "The metric is `score` (maximize)" in user
    assert doc["response_format"]["type"] == "json_schema"
    # And neither the key nor the notebook's secret is in it
    assert SENTINEL_KEY not in proc.stdout and "sk-abcdefghijklmnop" not in proc.stdout
    assert fake_openai.requests == []


def test_model_flags_are_checked(tmp_path: Path) -> None:
    write_study(tmp_path)
    base = ("explore", "study.ipynb", "--cell", "train", "--ledger", "ledger.sqlite")
    # --offline with --model contradicts itself
    proc = run_cli(*base, "--offline", "--model", "m", cwd=tmp_path)
    assert proc.returncode == 2 and "--offline contradicts --model" in proc.stderr
    # --model without a key or a base URL cannot reach anything
    proc = run_cli(*base, "--model", "m", cwd=tmp_path)
    assert proc.returncode == 2 and "OPENAI_API_KEY" in proc.stderr
    # Without a model, the dry run says so and sends nothing
    proc = run_cli(*base, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["messages"] == []


def test_explore_with_a_model_says_who_proposed(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    # Given a model that proposes one variation, then reads the results
    write_study(tmp_path)
    fake_openai.script(chat(proposals_answer(BETTER)), chat("A clear win for lr 0.3."))
    # When explore approves everything
    proc = run_cli(
        "explore", "study.ipynb", "--cell", "train", "--metric", "score", "--maximize", "--yes",
        "--format", "json", "--parallel", "2", *model_flags(fake_openai), cwd=tmp_path,
        key=SENTINEL_KEY,
    )  # fmt: skip
    # Then the JSON names the model as the proposer of the exploration and of the variation
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["proposer"] == "llm"
    [variation] = doc["variations"]
    assert variation["origin"] == "llm" and variation["status"] == "succeeded"
    assert variation["metrics"]["score"] == pytest.approx(0.6)
    # And the model's reading of the results is in it
    assert doc["interpretation"] == "A clear win for lr 0.3."
    assert SENTINEL_KEY not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def failed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("triage")
    failed_notebook(root)
    executed_notebook(root / "clean.ipynb", [("ok", "print(1)")])
    return root


def test_triage_offline_prints_the_condensed_cause(failed_dir: Path) -> None:
    # When a failed cell is triaged without a model, as text and as JSON
    text = run_cli(
        "triage", "analysis.ipynb", "--cell", "sum", "--offline", "--ledger", "l.sqlite",
        cwd=failed_dir,
    )  # fmt: skip
    doc = run_cli(
        "triage", "analysis.ipynb", "--cell", "sum", "--offline", "--format", "json",
        "--ledger", "l.sqlite", cwd=failed_dir,
    )  # fmt: skip
    # Then the text shows the exception, the likely cause and where it happened
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("KeyError: 'price'")
    assert "Likely cause: `price` is not a DataFrame column" in text.stdout
    assert "Cell In[2], line 2" in text.stdout
    # And the JSON says the same, with no fixes and the offline proposer
    assert doc.returncode == 0, doc.stderr
    report = json.loads(doc.stdout)
    assert report["error"]["category"] == "key_error" and report["fixes"] == []
    assert report["proposer"] == "offline" and report["cause_source"] == "offline"


def test_triage_of_a_clean_cell_is_bad_input(failed_dir: Path) -> None:
    proc = run_cli("triage", "clean.ipynb", "--cell", "ok", "--ledger", "l.sqlite", cwd=failed_dir)
    assert proc.returncode == 2
    assert "cell ok has no error in its outputs" in proc.stderr


def test_triage_verifies_the_models_fixes(failed_dir: Path, fake_openai: FakeOpenAI) -> None:
    # Given a model proposing a right and a wrong fix
    cause = "The column is 'cost'."
    fake_openai.script(chat(proposals_answer(FIXED, STILL_BROKEN, kind="fix", cause=cause)))
    # When triage runs with --verify --yes
    proc = run_cli(
        "triage", "analysis.ipynb", "--cell", "sum", "--verify", "--yes", "--format", "json",
        *model_flags(fake_openai), cwd=failed_dir, key=SENTINEL_KEY,
    )  # fmt: skip
    # Then each fix is reported as verified or still failing with its new error
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["likely_cause"] == cause and report["cause_source"] == "llm"
    right, wrong = report["fixes"]
    assert right["origin"] == "llm" and right["verification"] == "verified: the cell now runs"
    assert wrong["verification"].startswith("still fails: KeyError: 'Price'")
    assert "1 of 2 fixes verified" in report["summary"]


def test_triage_with_a_rejected_key_keeps_the_cause_and_fails(
    failed_dir: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.always(error(401, "bad key"))
    proc = run_cli(
        "triage", "analysis.ipynb", "--cell", "sum", *model_flags(fake_openai), cwd=failed_dir,
        key=SENTINEL_KEY,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Likely cause: `price` is not a DataFrame column" in proc.stdout
    assert "rejected the API key (401)" in proc.stderr
    assert SENTINEL_KEY not in proc.stdout + proc.stderr
