"""The autopilot over the REST API of a real server: start, list, watch, stop, consent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from server_support import Fetch, call, create_exploration, poll, write_notebook

SLOW = "import time\ndelay = 60\ntime.sleep(delay)\nprint(f'score: {delay}')"
QUICK = "lr = 0.1\nscore = 0.5 + lr\nprint(f'score={score}')"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"), pool_size=4
    )
    return jp_server_config


async def _exploration(fetch: Fetch, root: Path, name: str, source: str) -> dict[str, Any]:
    write_notebook(root, name, [("target", source)])
    return await create_exploration(
        fetch, notebook_path=name, cell_id="target", metric="score", direction="maximize"
    )


async def test_autopilot_start_list_watch_and_stop(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given two explorations in two notebooks, one slow, one quick
    slow = await _exploration(jp_fetch, jp_root_dir, "a/slow.ipynb", SLOW)
    quick = await _exploration(jp_fetch, jp_root_dir, "b/quick.ipynb", QUICK)

    # When the researcher starts the autopilot on both with a budget
    settings = {"rounds": 2, "budget_runs": 6, "budget_minutes": 5, "per_round": 1}
    started = await call(jp_fetch, "POST", "explorations", slow["id"], "autopilot", body=settings)
    other = await call(jp_fetch, "POST", "explorations", quick["id"], "autopilot", body=settings)

    # Then both start, with the budget on record
    assert started.code == 201, started.text
    assert other.code == 201, other.text
    assert started.body["active"] is True
    assert started.body["state"]["settings"]["budget_runs"] == 6
    assert started.body["lineage"]["proposal_id"] is None
    # And the list across notebooks shows the running ones
    listed = await call(jp_fetch, "GET", "autopilot")
    assert listed.code == 200
    paths = {a["notebook_path"] for a in listed.body["autopilots"]}
    assert "a/slow.ipynb" in paths
    # And a second start with another budget is refused while one runs
    again = await call(
        jp_fetch, "POST", "explorations", slow["id"], "autopilot", body={"budget_runs": 1000}
    )
    assert again.code == 409, again.text
    # And fields that are not settings are refused
    odd = await call(
        jp_fetch, "POST", "explorations", quick["id"], "autopilot", body={"unlimited": True}
    )
    assert odd.code == 400, odd.text

    # When the quick one finishes by itself
    done = await poll(
        jp_fetch,
        ("explorations", quick["id"], "autopilot"),
        lambda v: not v["active"],
        wait_s=90,
    )
    # Then its lineage tree holds its variations with round and parent
    assert done["state"]["stop_reason"] in ("all 2 rounds done", "no new proposals to try")
    kids = done["lineage"]["children"]
    assert kids and all(k["round"] == 0 for k in kids)

    # When the slow one is stopped while it runs
    await poll(
        jp_fetch,
        ("explorations", slow["id"]),
        lambda e: any(r["status"] == "running" for r in e["runs"]),
        wait_s=60,
    )
    stopped = await call(jp_fetch, "DELETE", "explorations", slow["id"], "autopilot")
    # Then it stops for that reason, its runs cancelled, and it leaves the list
    assert stopped.code == 200, stopped.text
    assert stopped.body["active"] is False
    assert stopped.body["state"]["stop_reason"] == "stopped by the researcher"
    exp = (await call(jp_fetch, "GET", "explorations", slow["id"])).body
    assert all(r["status"] == "cancelled" for r in [exp["baseline"], *exp["runs"]])
    assert exp["autopilot"]["stopped"] is True
    listed = await call(jp_fetch, "GET", "autopilot")
    assert listed.body["autopilots"] == []
    # And stopping again through the stop route changes nothing
    again = await call(jp_fetch, "POST", "explorations", slow["id"], "autopilot", "stop")
    assert again.code == 200
    assert again.body["state"]["stop_reason"] == "stopped by the researcher"
    # And unknown explorations are 404
    missing = await call(jp_fetch, "GET", "explorations", "exp-unknown", "autopilot")
    assert missing.code == 404


class NoKernelExecution(Authorizer):
    """Allows everything except executing code in kernels."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "kernels" and action == "execute")


@pytest.fixture
def no_kernel_execution(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"]["authorizer_class"] = NoKernelExecution
    return jp_server_config


@pytest.mark.usefixtures("no_kernel_execution")
async def test_starting_the_autopilot_needs_kernel_execution(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given a user the authorizer denies `kernels: execute`, and an exploration
    from jupyter_research_agent.core.models import CreateExploration
    from jupyter_research_agent.server.handlers import EXTENSION_SETTINGS_KEY

    write_notebook(jp_root_dir, "q.ipynb", [("target", QUICK)])
    engine = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine
    exp = await engine.create_exploration(
        CreateExploration(notebook_path="q.ipynb", cell_id="target")
    )
    await engine.wait_proposals(exp.id)
    # When the user starts the autopilot
    reply = await call(jp_fetch, "POST", "explorations", exp.id, "autopilot", body={})
    # Then it is refused and nothing runs; reading and stopping stay allowed
    assert reply.code == 403, reply.text
    assert "execute" in reply.body["message"]
    assert engine.get_exploration(exp.id).runs == []
    assert (await call(jp_fetch, "GET", "explorations", exp.id, "autopilot")).code == 200
    assert (await call(jp_fetch, "DELETE", "explorations", exp.id, "autopilot")).code == 200
