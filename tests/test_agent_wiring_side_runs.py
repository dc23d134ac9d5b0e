"""Side runs: what their kernels inherit, which cells they skip, and a flat working set."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from agent_wiring_support import engine_config

from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.exploration_store import DEFAULT_CAPACITY
from jupyter_research_agent.core.kernels import side_kernel_env
from jupyter_research_agent.core.models import (
    AddProposal,
    Cell,
    CreateExploration,
    NotebookDoc,
    ProposalStatus,
    RunStatus,
)
from jupyter_research_agent.core.notebook import cells_for_run

PROBE = (
    "import os\n"
    "names = ('RESEARCH_AGENT_SIDE_RUN', 'JPY_SESSION_NAME', 'RESEARCH_AGENT_MODEL', 'HOME')\n"
    "print('env=' + repr({n: os.environ.get(n) is not None for n in names}))\n"
    "print('side=' + str(os.environ.get('RESEARCH_AGENT_SIDE_RUN')))\n"
    "score = 1\n"
    "print(f'score: {score}')"
)


def write(root: Path, name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source, id=cell_id) for cell_id, source in cells]
    (root / name).write_text(nbformat.writes(nb))


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("PATH", True),
        ("JPY_SESSION_NAME", False),
        ("RESEARCH_AGENT_MODEL", False),
        ("research_agent_anything", False),
        ("OPENAI_API_KEY", False),
        ("MY_RESEARCH_AGENT", True),
    ],
)
def test_side_kernel_env_filter(name: str, kept: bool) -> None:
    # Given the server's environment holding `name`
    env = side_kernel_env(["*_API_KEY"], {name: "value", "RESEARCH_AGENT_SIDE_RUN": "0"})
    # Then it reaches side kernels only when it is neither a secret nor ours,
    # and side kernels always say what they are
    assert (name in env) is kept
    assert env["RESEARCH_AGENT_SIDE_RUN"] == "1"


def test_cells_for_run_leave_out_research_magics() -> None:
    # Given a notebook with magics of this product before and after the target
    nb = NotebookDoc(
        path="n.ipynb",
        cells=[
            Cell(id="a", source="x = 1"),
            Cell(id="m1", source="%research explore --cell b"),
            Cell(id="m2", source="  \n%%research\nexplore"),
            Cell(id="b", source="y = x + 1"),
            Cell(id="m3", source="%research status"),
            Cell(id="c", source="%time z = y"),
        ],
    )
    # When the cells of a run are chosen
    cells = cells_for_run(nb, "b", "y = x + 2")
    # Then the magics are left out, other cells (and other magics) stay, the variation applies
    assert [c.id for c in cells] == ["a", "b", "c"]
    assert cells[1].source == "y = x + 2"


@pytest.mark.asyncio
async def test_side_kernel_sees_the_flag_not_our_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server environment with a session name and a setting of ours, and a notebook
    # whose first cell calls the %research magic (unknown in a plain kernel: it would fail)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "private.ipynb"))
    monkeypatch.setenv("RESEARCH_AGENT_MODEL", "some-model")
    write(tmp_path, "probe.ipynb", [("magic", "%research explore --cell fit"), ("fit", PROBE)])
    engine = Engine(engine_config(tmp_path))
    try:
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="probe.ipynb", cell_id="fit", max_proposals=0)
        )
        await engine.wait_proposals(exp.id)
        # When a variation runs (with the baseline)
        proposal = await engine.add_proposal(exp.id, AddProposal(code=PROBE + "\nscore = 2"))
        await engine.approve(proposal.id, proposal.code_sha256)
        done = await engine.wait_runs(exp.id)
        assert done.baseline is not None
        # Then the run succeeded: the magic cell was skipped
        assert done.baseline.status is RunStatus.SUCCEEDED, done.baseline.reason
        printed = engine.get_run(done.baseline.id).model_dump_json()
        # And the kernel saw RESEARCH_AGENT_SIDE_RUN=1, not the session name or our setting
        assert "side=1" in printed
        expected = {
            "RESEARCH_AGENT_SIDE_RUN": True,
            "JPY_SESSION_NAME": False,
            "RESEARCH_AGENT_MODEL": False,
            "HOME": "HOME" in os.environ,
        }
        assert f"env={expected!r}" in json.loads(printed)["cells"][0]["outputs"][0]["text"]
    finally:
        await engine.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# A new exploration prewarms one kernel per pool slot plus one for the prepared kernel.
PREWARMED = 2


async def until_warm(engine: Engine, count: int) -> None:
    """Until the pool holds ``count`` started kernels, their channels connected."""
    deadline = time.monotonic() + 60
    while engine.status()["pool"]["warm"] < count:
        assert time.monotonic() < deadline, "the prewarmed kernels did not start"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_a_hundred_cycles_keep_the_working_set_and_fds_flat(tmp_path: Path) -> None:
    # Given an engine and a notebook with a tunable cell
    write(tmp_path, "study.ipynb", [("fit", "lr = 0.1\nepochs = 3\nprint(lr * epochs)")])
    before = open_fds()
    engine = Engine(engine_config(tmp_path, pool_size=1))
    ids: list[str] = []
    cached: list[int] = []
    fds: list[int] = []
    try:
        # When a hundred explorations are created, proposed and acted on
        for cycle in range(100):
            exp = await engine.create_exploration(
                CreateExploration(
                    notebook_path="study.ipynb", cell_id="fit", max_proposals=2, offline=True
                )
            )
            if cycle == 0:
                # Files are counted once the kernels the first exploration prewarms are up.
                await until_warm(engine, PREWARMED)
            exp = await engine.wait_proposals(exp.id)
            await engine.reject(exp.proposals[0].id)
            ids.append(exp.id)
            cached.append(len(engine._store.explorations))
            fds.append(open_fds())
        # Then the explorations held in memory stay bounded: the most recent finished ones,
        # plus the one that finished proposing since the last eviction
        assert cached[DEFAULT_CAPACITY + 5 :] == [DEFAULT_CAPACITY + 1] * (95 - DEFAULT_CAPACITY)
        # And open files do not grow with the cycles
        assert fds[-1] <= fds[19] + 2, fds
        # And an evicted exploration loads back whole from the ledger
        first = engine.get_exploration(ids[0])
        assert first.proposals[0].status is ProposalStatus.REJECTED
        assert len(engine.list_explorations()) == 100
    finally:
        await engine.close()
    # And closing the engine gives back every file it opened
    assert open_fds() <= before + 1
