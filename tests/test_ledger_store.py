"""The SQLite ledger: round trips, permissions, restarts and concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_research_agent.core.errors import NotFound
from jupyter_research_agent.core.ledger import INTERRUPTED_REASON, SCHEMA_VERSION, Ledger
from jupyter_research_agent.core.models import (
    Cell,
    CellOutputs,
    Exploration,
    ExplorationStatus,
    NotebookDoc,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
)


def _exploration(notebook: str = "nb.ipynb") -> Exploration:
    exp = Exploration(notebook_path=notebook, cell_id="train", status=ExplorationStatus.RUNNING)
    prop = Proposal(exploration_id=exp.id, title="lr x10", code="lr = 0.1")
    exp.proposals = [prop]
    exp.baseline = Run(exploration_id=exp.id, is_baseline=True, status=RunStatus.SUCCEEDED)
    exp.runs = [
        Run(exploration_id=exp.id, proposal_id=prop.id, status=RunStatus.RUNNING, seed=0),
        Run(exploration_id=exp.id, proposal_id=prop.id, status=RunStatus.SUCCEEDED, seed=1),
    ]
    return exp


def test_round_trip_keeps_proposals_runs_and_baseline(tmp_path: Path) -> None:
    # Given an exploration with a baseline, a proposal and two runs saved in a ledger
    ledger = Ledger(tmp_path / "ledger.sqlite")
    exp = _exploration()
    ledger.save_exploration(exp)
    # When it is loaded back
    loaded = ledger.load_exploration(exp.id)
    # Then every part comes back equal and in order
    assert loaded.model_dump() == exp.model_dump()
    assert loaded.baseline is not None
    assert loaded.baseline.is_baseline
    assert [r.seed for r in loaded.runs] == [0, 1]
    ledger.close()


def test_file_is_private_and_schema_versioned(tmp_path: Path) -> None:
    # Given a ledger created in a directory that does not exist yet
    path = tmp_path / "deep" / "dir" / "ledger.sqlite"
    Ledger(path).close()
    # Then the file is readable by the owner only, the directory too, and the schema versioned
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unfinished_runs_read_interrupted_after_restart(tmp_path: Path) -> None:
    # Given a ledger holding a running run, closed as if the process had died
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    exp = _exploration()
    ledger.save_exploration(exp)
    ledger.close()
    # When the ledger is opened again
    reopened = Ledger(path)
    loaded = reopened.load_exploration(exp.id)
    # Then the running run reads interrupted with a reason, the finished ones are untouched
    running, finished = loaded.runs
    assert running.status == RunStatus.INTERRUPTED
    assert running.reason == INTERRUPTED_REASON
    assert running.ended_at is not None
    assert finished.status == RunStatus.SUCCEEDED
    assert loaded.status == ExplorationStatus.DONE
    assert reopened.interrupted_on_open == [running.id]
    reopened.close()


def test_proposing_exploration_reads_failed_after_restart(tmp_path: Path) -> None:
    # Given an exploration left proposing by a process that died
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    exp = Exploration(notebook_path="nb.ipynb", cell_id="c")
    ledger.save_exploration(exp)
    ledger.close()
    # When reopened, Then it is failed with a message instead of proposing forever
    loaded = Ledger(path).load_exploration(exp.id)
    assert loaded.status == ExplorationStatus.FAILED
    assert "stopped" in loaded.error


def test_outputs_notebook_and_usage(tmp_path: Path) -> None:
    # Given a run with outputs, a notebook snapshot and token usage
    ledger = Ledger(tmp_path / "ledger.sqlite")
    exp = _exploration()
    ledger.save_exploration(exp)
    run = exp.runs[1]
    cells = [CellOutputs(cell_id="train", outputs=[{"output_type": "stream", "text": "a: 1\n"}])]
    ledger.save_run_outputs(run.id, cells)
    nb = NotebookDoc(path="nb.ipynb", cells=[Cell(id="train", source="lr = 0.01")])
    ledger.save_notebook(exp.id, nb)
    ledger.record_usage(exp.id, "m", 10, 5)
    ledger.record_usage(exp.id, "m", 1, 2)
    # Then the run comes back with its outputs, the notebook as saved, the usage summed
    detail = ledger.find_run(run.id)
    assert detail.cells == cells
    assert detail.status == RunStatus.SUCCEEDED
    assert ledger.load_notebook(exp.id) == nb
    assert ledger.usage(exp.id) == {"prompt_tokens": 11, "completion_tokens": 7, "requests": 2}


def test_updates_and_unknown_ids(tmp_path: Path) -> None:
    # Given a saved exploration whose proposal is then rejected
    ledger = Ledger(tmp_path / "ledger.sqlite")
    exp = _exploration()
    ledger.save_exploration(exp)
    prop = exp.proposals[0]
    prop.status = ProposalStatus.REJECTED
    ledger.save_proposal(prop)
    # Then the change is stored, and unknown ids raise NotFound
    assert ledger.find_proposal(prop.id).status == ProposalStatus.REJECTED
    with pytest.raises(NotFound):
        ledger.load_exploration("exp-nope")
    with pytest.raises(NotFound):
        ledger.find_proposal("prop-nope")
    with pytest.raises(NotFound):
        ledger.find_run("run-nope")


def test_list_newest_first_and_by_notebook(tmp_path: Path) -> None:
    # Given explorations of two notebooks
    ledger = Ledger(tmp_path / "ledger.sqlite")
    first, second, other = _exploration("a.ipynb"), _exploration("a.ipynb"), _exploration("b.ipynb")
    for exp in (first, second, other):
        ledger.save_exploration(exp)
    # Then the list is newest first and filters by notebook
    assert [e.id for e in ledger.list_explorations()] == [other.id, second.id, first.id]
    assert [e.id for e in ledger.list_explorations("a.ipynb")] == [second.id, first.id]


def _writer(path: str, tag: str, count: int) -> None:
    ledger = Ledger(Path(path))
    for i in range(count):
        exp = Exploration(notebook_path=f"{tag}.ipynb", cell_id=str(i))
        exp.runs = [Run(exploration_id=exp.id, status=RunStatus.SUCCEEDED)]
        ledger.save_exploration(exp)
    ledger.close()


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    # Given two processes writing many explorations into the same ledger at once
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), tag, 40)) for tag in ("p", "q")]
    for proc in procs:
        proc.start()
    # And this process writing through its own connection meanwhile
    _writer(str(path), "main", 40)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    # Then every write landed
    ledger = Ledger(path)
    assert len(ledger.list_explorations()) == 120
    assert len(ledger.list_explorations("q.ipynb")) == 40


_HOLDER = """
import sys, time
from pathlib import Path
from jupyter_research_agent.core.ledger import Ledger
from jupyter_research_agent.core.models import Exploration, ExplorationStatus, Run, RunStatus
ledger = Ledger(Path(sys.argv[1]))
exp = Exploration(id="exp-live", notebook_path="nb.ipynb", cell_id="c",
                  status=ExplorationStatus.RUNNING)
exp.runs = [Run(id="run-live", exploration_id=exp.id, status=RunStatus.RUNNING)]
ledger.save_exploration(exp)
print("saved", flush=True)
time.sleep(60)
"""


def test_runs_of_a_live_process_are_left_alone(tmp_path: Path) -> None:
    # Given another process that is running a run recorded in the shared ledger
    path = tmp_path / "ledger.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "saved"
        # When this process opens the ledger (say, to list explorations)
        ledger = Ledger(path)
        # Then the other process's run still reads running
        assert ledger.find_run("run-live").status == RunStatus.RUNNING
        assert ledger.load_exploration("exp-live").status == ExplorationStatus.RUNNING
        ledger.close()
    finally:
        holder.kill()
        holder.wait()
    # When that process is gone and the ledger is opened again, Then the run reads interrupted
    ledger = Ledger(path)
    assert ledger.find_run("run-live").status == RunStatus.INTERRUPTED
    assert ledger.load_exploration("exp-live").status == ExplorationStatus.DONE
    ledger.close()
