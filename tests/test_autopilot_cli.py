"""The headless command on autopilot, run as a real process: rounds, budget, consent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FILES = Path(__file__).parent / "files"
REPO = Path(__file__).resolve().parent.parent
FAST = ("--offline", "--parallel", "2", "--timeout", "30", "--max-proposals", "2")


def run_cli(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_research_agent.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_rounds_and_budget_from_the_command_line(tmp_path: Path) -> None:
    # Given the poor learning-rate notebook
    shutil.copy(FILES / "poor_lr.ipynb", tmp_path / "poor_lr.ipynb")
    # When it is explored for up to three rounds with a budget of five runs, consent by --yes
    proc = run_cli(
        "explore", "poor_lr.ipynb", "--cell", "train", *FAST, "--metric", "accuracy",
        "--rounds", "3", "--budget-runs", "5", "--budget-minutes", "5", "--per-round", "2",
        "--allow-kinds", "parameter,seed", "--yes", "--format", "json",
        "--ledger", "ledger.sqlite", cwd=tmp_path,
    )  # fmt: skip
    # Then it succeeds with one JSON document giving each variation's round and parent
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    autopilot = doc["autopilot"]
    assert autopilot["runs_used"] == 5
    assert autopilot["stop_reason"] == "run budget spent (5 runs)"
    assert autopilot["rounds_done"] == 2
    variations = {v["id"]: v for v in doc["variations"]}
    assert {v["round"] for v in variations.values()} == {0, 1}
    for v in variations.values():
        if v["round"] == 1:
            assert variations[v["parent"]]["round"] == 0
        else:
            assert v["parent"] is None
    # And the best path runs from round 0 down one lineage
    path = autopilot["best_path"]
    assert [variations[p]["round"] for p in path] == [0, 1]
    assert variations[path[1]]["parent"] == path[0]


def test_without_yes_the_budget_is_shown_once_and_a_no_runs_nothing(tmp_path: Path) -> None:
    # Given the poor learning-rate notebook
    shutil.copy(FILES / "poor_lr.ipynb", tmp_path / "poor_lr.ipynb")
    # When the autopilot is asked for without --yes, and the researcher answers no twice
    proc = run_cli(
        "explore", "poor_lr.ipynb", "--cell", "train", *FAST, "--rounds", "3",
        "--budget-runs", "7", "--format", "json", "--ledger", "ledger.sqlite",
        cwd=tmp_path, stdin="n\nn\nn\n",
    )  # fmt: skip
    # Then the question showed the budget, and nothing ran
    assert proc.returncode == 0, proc.stderr
    assert "at most 7 runs" in proc.stderr and "Start it?" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["autopilot"] is None
    assert doc["baseline"]["status"] == "not run"
    assert all(v["runs"] == [] for v in doc["variations"])
