"""A whole exploration over the REST API, against a real server and real side kernels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from server_support import (
    Fetch,
    add_and_approve,
    all_runs_ended,
    approve,
    call,
    create_exploration,
    poll,
    side_kernel_pids,
    training_notebook,
    write_notebook,
)

from jupyter_research_agent.server.handlers import EXTENSION_SETTINGS_KEY


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"),
        pool_size=2,
    )
    return jp_server_config


async def test_whole_exploration_over_the_api(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given a tiny notebook under the server root whose target cell prints a score
    training_notebook(jp_root_dir)

    # When an exploration of the cell is created
    created = await call(
        jp_fetch,
        "POST",
        "explorations",
        body={
            "notebook_path": "exp.ipynb",
            "cell_id": "train",
            "metric": "score",
            "direction": "maximize",
            "max_proposals": 3,
        },
    )

    # Then it is created at once with a Location, and proposals appear
    assert created.code == 201, created.text
    exp_id = created.body["id"]
    assert created.headers["Location"].endswith(f"/api/research-agent/explorations/{exp_id}")
    exp = await poll(jp_fetch, ("explorations", exp_id), lambda e: e["status"] != "proposing")
    assert exp["status"] == "ready", exp
    proposals = exp["proposals"]
    assert len(proposals) >= 2
    assert all(p["status"] == "proposed" and len(p["code_sha256"]) == 64 for p in proposals)
    assert exp["runs"] == []  # nothing runs before approval
    assert exp["baseline"] is None

    # When two proposals are approved with their hashes
    chosen = proposals[:2]
    for proposal in chosen:
        reply = await approve(jp_fetch, proposal)
        assert reply.code == 200, reply.text
        assert reply.body["status"] == "approved"

    # Then the baseline and both variations run to completion with the metric
    done = await poll(jp_fetch, ("explorations", exp_id), all_runs_ended, wait_s=90)
    runs = done["runs"]
    assert {r["proposal_id"] for r in runs} == {p["id"] for p in chosen}
    for run in [*runs, done["baseline"]]:
        assert run["status"] == "succeeded", run
        assert "score" in run["metrics"]
        assert run["duration_s"] is not None
    assert done["baseline"]["metrics"]["score"] == pytest.approx(0.6)

    # And the comparison names the variation with the highest score as best
    comparison = done["comparison"]
    assert comparison["metric"] == "score"
    best = max(runs, key=lambda r: r["metrics"]["score"])
    assert comparison["best_proposal_id"] == best["proposal_id"]
    assert {row["proposal_id"] for row in comparison["rows"]} >= {p["id"] for p in chosen}

    # And the single-run resource carries the captured outputs
    run = await call(jp_fetch, "GET", "runs", best["id"])
    assert run.code == 200
    printed = json.dumps(run.body["cells"])
    assert f"score={best['metrics']['score']}" in printed

    # And the exploration is listed for its notebook only
    listed = await call(jp_fetch, "GET", "explorations", params={"notebook_path": "exp.ipynb"})
    assert [e["id"] for e in listed.body["explorations"]] == [exp_id]
    other = await call(jp_fetch, "GET", "explorations", params={"notebook_path": "other.ipynb"})
    assert other.body["explorations"] == []


async def test_unsaved_cells_from_the_frontend_count(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given a notebook on disk whose target cell differs from what the editor shows
    training_notebook(jp_root_dir)
    cells = [
        {"id": "setup", "source": "base = 10"},
        {"id": "train", "source": 'lr = 0.5\nprint(f"score={base + lr}")'},
    ]

    # When an exploration is created with the editor's cells and a proposal is approved
    exp = await create_exploration(
        jp_fetch, notebook_path="exp.ipynb", cell_id="train", cells=cells, metric="score"
    )
    await approve(jp_fetch, exp["proposals"][0])
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=90)

    # Then the unsaved sources were explored and run
    assert exp["cell_source"] == cells[1]["source"]
    assert done["baseline"]["metrics"]["score"] == pytest.approx(10.5)


async def test_results_survive_a_restart_and_interrupted_runs_say_so(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given one finished exploration and one whose run is still going
    training_notebook(jp_root_dir)
    finished = await create_exploration(
        jp_fetch, notebook_path="exp.ipynb", cell_id="train", metric="score", max_proposals=1
    )
    await approve(jp_fetch, finished["proposals"][0])
    finished = await poll(jp_fetch, ("explorations", finished["id"]), all_runs_ended, wait_s=90)

    write_notebook(jp_root_dir, "slow.ipynb", [("wait", "import time\ntime.sleep(60)")])
    slow = await create_exploration(jp_fetch, notebook_path="slow.ipynb", cell_id="wait")
    slow_run = await add_and_approve(jp_fetch, slow["id"], "import time\ntime.sleep(61)")
    await poll(
        jp_fetch,
        ("explorations", slow["id"]),
        lambda e: any(r["status"] == "running" for r in e["runs"]),
        wait_s=60,
    )

    assert side_kernel_pids()

    # When the server's engine stops and a new one starts on the same ledger
    extension = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY]
    await extension.stop_extension()
    # (stopping shut every side kernel down)
    assert side_kernel_pids() == set()
    extension.start_engine()

    # Then the finished exploration and its results are still there
    again = await call(jp_fetch, "GET", "explorations", finished["id"])
    assert again.code == 200
    assert again.body["status"] == "done"
    assert again.body["runs"][0]["metrics"] == finished["runs"][0]["metrics"]
    assert (
        again.body["comparison"]["best_proposal_id"] == finished["comparison"]["best_proposal_id"]
    )

    # And the run that was going says it was interrupted, and why
    after = await call(jp_fetch, "GET", "explorations", slow["id"])
    run = next(r for r in after.body["runs"] if r["proposal_id"] == slow_run["id"])
    assert run["status"] == "interrupted"
    assert run["reason"]
    detail = await call(jp_fetch, "GET", "runs", run["id"])
    assert detail.body["status"] == "interrupted"
