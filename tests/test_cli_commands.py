"""The headless command, run as a real process: explore, list, show, export, exit codes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

FILES = Path(__file__).parent / "files"
REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_research_agent.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


FAST = ("--offline", "--parallel", "2", "--timeout", "30", "--max-proposals", "2")


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One explore of the poor learning-rate notebook, shared by the ledger commands."""
    work = tmp_path_factory.mktemp("cli")
    shutil.copy(FILES / "poor_lr.ipynb", work / "poor_lr.ipynb")
    proc = run_cli(
        "explore", "poor_lr.ipynb", "--cell", "train", *FAST, "--yes", "--format", "json",
        "--ledger", "ledger.sqlite", cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return work, json.loads(proc.stdout)


def test_explore_json_finds_the_better_learning_rate(
    explored: tuple[Path, dict[str, Any]],
) -> None:
    # Given the poor learning-rate notebook explored offline with every proposal approved
    _, doc = explored
    # Then stdout held exactly one JSON document describing baseline, variations and the best
    assert doc["notebook"] == "poor_lr.ipynb"
    assert doc["cell"] == "train"
    assert doc["proposer"] == "offline"
    assert doc["baseline"]["status"] == "succeeded"
    assert doc["baseline"]["metrics"]["accuracy"] == pytest.approx(0.655)
    assert len(doc["variations"]) == 2
    for variation in doc["variations"]:
        assert {"id", "title", "kind", "origin", "code", "status", "reason", "metrics"} <= set(
            variation
        )
        assert variation["status"] == "succeeded"
        assert variation["duration_s"] > 0
    best = next(v for v in doc["variations"] if v["id"] == doc["best"])
    assert "lr = 0.01" in best["code"]
    assert best["metrics"]["accuracy"] > doc["baseline"]["metrics"]["accuracy"]


def test_list_show_and_export(explored: tuple[Path, dict[str, Any]]) -> None:
    # Given the ledger written by explore
    work, doc = explored
    exp_id = doc["exploration_id"]
    ledger = ("--ledger", "ledger.sqlite")
    # When listing, Then the exploration is there, also filtered by its notebook
    listed = run_cli("list", *ledger, cwd=work)
    assert listed.returncode == 0
    assert exp_id in listed.stdout
    as_json = json.loads(run_cli("list", "--notebook", "poor_lr.ipynb", "--format", "json",
                                 *ledger, cwd=work).stdout)  # fmt: skip
    assert [e["id"] for e in as_json] == [exp_id]
    assert run_cli("list", "--notebook", "other.ipynb", *ledger, cwd=work).stdout.startswith("no")
    # When showing it, Then the comparison table marks the best variation
    shown = run_cli("show", exp_id, *ledger, cwd=work)
    assert shown.returncode == 0
    assert "accuracy" in shown.stdout
    assert "True" in shown.stdout
    # When exporting to each format, Then the files hold the runs and the variations
    for fmt in ("csv", "json", "ipynb"):
        out = run_cli("export", exp_id, "--to", fmt, "-o", f"out.{fmt}", *ledger, cwd=work)
        assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((work / "out.csv").open()))
    assert [r["row_type"] for r in rows].count("run") == 3
    assert {r["best"] for r in rows if r["row_type"] == "comparison"} == {"True", "False"}
    exported = json.loads((work / "out.json").read_text())
    assert exported["id"] == exp_id
    assert len(exported["outputs"]) == 3
    nb = nbformat.read(work / "out.ipynb", as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code_cells) == 3  # the baseline and two variations
    assert "accuracy: 0.7175" in str(code_cells[2].outputs)


def test_unknown_exploration_is_bad_input(explored: tuple[Path, dict[str, Any]]) -> None:
    work, _ = explored
    proc = run_cli("show", "exp-nope", "--ledger", "ledger.sqlite", cwd=work)
    assert proc.returncode == 2
    assert "no exploration 'exp-nope'" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("explore", "poor_lr.ipynb", "--cell", "nope"), "unknown cell 'nope'"),
        (("explore", "missing.ipynb", "--cell", "train"), "notebook not found"),
        (("explore", "poor_lr.ipynb", "--cell", "train", "--sweep", "zz=1"), "zz"),
        (("explore", "poor_lr.ipynb"), "--cell"),
        (("explore", "poor_lr.ipynb", "--cell", "train", "--seeds", "0"), "positive"),
        (("explore", "poor_lr.ipynb", "--cell", "train", "--max-proposals", "99"), "50"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    # Given a bad cell, path, sweep or option
    shutil.copy(FILES / "poor_lr.ipynb", tmp_path / "poor_lr.ipynb")
    # When the command runs, Then it exits 2, says why on stderr and writes nothing on stdout
    proc = run_cli(*args, "--offline", "--ledger", "l.sqlite", cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


def test_interactive_approval_and_table(tmp_path: Path) -> None:
    # Given the researcher answers "no" to the first proposal and "yes" to the second
    shutil.copy(FILES / "poor_lr.ipynb", tmp_path / "poor_lr.ipynb")
    proc = run_cli(
        "explore", "poor_lr.ipynb", "--cell", "train", *FAST, "--ledger", "l.sqlite",
        cwd=tmp_path, stdin="n\ny\n",
    )  # fmt: skip
    # Then only the second ran: progress went to stderr, the comparison table to stdout
    assert proc.returncode == 0, proc.stderr
    assert "Run it?" in proc.stderr
    assert "lr: 0.001 → 0.01: succeeded" in proc.stderr
    assert "baseline: running" in proc.stderr
    lines = proc.stdout.splitlines()
    assert "variation" in lines[0]
    assert any("lr: 0.001 → 0.01" in line for line in lines)
    assert not any("0.0001" in line for line in lines)


def test_jupyter_finds_the_subcommand() -> None:
    # Given the package installed, When `jupyter research-agent --help` runs, Then it answers
    if shutil.which("jupyter-research-agent") is None:
        pytest.skip("the console script is not installed")
    proc = subprocess.run(
        ["jupyter", "research-agent", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "explore" in proc.stdout


def _processes_marked(mark: str) -> set[int]:
    """Live processes whose environment holds ``mark`` (side kernels inherit it)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.add(int(entry.name))
        except OSError:
            continue
    return found


def test_ctrl_c_shuts_every_kernel_down(tmp_path: Path) -> None:
    # Given an explore of a slow cell whose runs are going on in side kernels
    shutil.copy(FILES / "slow.ipynb", tmp_path / "slow.ipynb")
    mark = f"JRA_CTRL_C_TEST={tmp_path.name}"
    env = {**os.environ, "PYTHONPATH": str(REPO), mark.split("=")[0]: mark.split("=")[1]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_research_agent.cli", "explore", "slow.ipynb",
         "--cell", "work", *FAST, "--yes", "--ledger", "l.sqlite"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    while "running" not in seen:
        line = proc.stderr.readline()
        assert line, f"explore ended early: {seen}"
        seen += line
    assert len(_processes_marked(mark) - {proc.pid}) >= 1
    # When the researcher presses Ctrl-C
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    # Then the command exits 130 with a note, and no side kernel is left
    assert proc.returncode == 130
    assert "interrupted" in rest
    assert _processes_marked(mark) == set()
    # And the ledger records the runs as interrupted, not running
    shown = json.loads(
        run_cli("list", "--format", "json", "--ledger", "l.sqlite", cwd=tmp_path).stdout
    )
    detail = json.loads(
        run_cli("show", shown[0]["id"], "--format", "json", "--ledger", "l.sqlite",
                cwd=tmp_path).stdout
    )  # fmt: skip
    statuses = {detail["baseline"]["status"], *(r["status"] for r in detail["runs"])}
    assert statuses == {"interrupted"}
    assert "Ctrl-C" in detail["baseline"]["reason"]
