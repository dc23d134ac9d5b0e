"""A Jupyter Server whose side kernels run on a Kernel Gateway; its notebook kernel stays here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_support import Gateway, kernel_gateway
from server_support import (
    Fetch,
    all_runs_ended,
    approve,
    create_exploration,
    poll,
    side_kernel_pids,
    training_notebook,
)

from jupyter_research_agent.server.handlers import EXTENSION_SETTINGS_KEY


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with kernel_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], tmp_path: Path, gateway: Gateway
) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"),
        pool_size=2,
        side_kernel_gateway_url=gateway.url,
        side_kernel_gateway_auth_token=gateway.token,
        side_kernel_gateway_request_timeout=20.0,
    )
    return jp_server_config


async def open_session(fetch: Fetch, path: str) -> dict[str, Any]:
    """The researcher opens the notebook: POST /api/sessions starts the notebook's kernel."""
    body = {"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}}
    response = await fetch("api", "sessions", method="POST", body=json.dumps(body))
    session: dict[str, Any] = json.loads(response.body)
    return session


async def run_exploration(fetch: Fetch) -> dict[str, Any]:
    """An offline exploration of exp.ipynb's train cell, two proposals approved, runs done."""
    exp = await create_exploration(
        fetch, notebook_path="exp.ipynb", cell_id="train", metric="score", max_proposals=2
    )
    for proposal in exp["proposals"][:2]:
        reply = await approve(fetch, proposal)
        assert reply.code == 200, reply.text
    done: dict[str, Any] = await poll(fetch, ("explorations", exp["id"]), all_runs_ended, 90)
    return done


async def test_side_kernels_go_to_the_gateway_and_the_notebook_kernel_stays(
    jp_fetch: Fetch, jp_root_dir: Path, jp_serverapp: Any, gateway: Gateway
) -> None:
    # Given a server configured with a side-kernel gateway, and a notebook open in it
    training_notebook(jp_root_dir)
    session = await open_session(jp_fetch, "exp.ipynb")
    notebook_kernel = session["kernel"]["id"]
    local_before = side_kernel_pids()
    assert local_before, "the notebook's kernel should run on this machine"

    # When an exploration of a cell runs
    done = await run_exploration(jp_fetch)

    # Then every run succeeded with its metric, in kernels the gateway started
    runs = [done["baseline"], *done["runs"]]
    assert [r["status"] for r in runs] == ["succeeded"] * 3, runs
    assert all("score" in r["metrics"] for r in runs)
    started = set(gateway.started_ids())
    assert {r["kernel_id"] for r in runs} <= started
    # And the researcher's kernel is this server's own, unknown to the gateway
    assert notebook_kernel in jp_serverapp.kernel_manager.list_kernel_ids()
    assert notebook_kernel not in started
    assert side_kernel_pids() == local_before  # no side kernel process here
    # And the engine says where its side kernels go
    engine = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine
    assert engine.config.gateway.url == gateway.url
    await jp_fetch("api", "sessions", session["id"], method="DELETE")


@pytest.fixture
def whole_server_on_gateway(
    jp_server_config: dict[str, Any], gateway: Gateway
) -> Iterator[dict[str, Any]]:
    """The server itself runs with --gateway-url; the side-kernel settings are left empty."""
    from jupyter_server.gateway.gateway_client import GatewayClient

    jp_server_config["ResearchAgent"].pop("side_kernel_gateway_url")
    jp_server_config["ResearchAgent"].pop("side_kernel_gateway_auth_token")
    jp_server_config["GatewayClient"] = {"url": gateway.url, "auth_token": gateway.token}
    GatewayClient.clear_instance()
    try:
        yield jp_server_config
    finally:
        # The gateway client is a process-wide singleton: later servers must not inherit it.
        GatewayClient.clear_instance()


@pytest.mark.usefixtures("whole_server_on_gateway")
async def test_side_kernels_follow_a_server_running_on_a_gateway(
    jp_fetch: Fetch, jp_root_dir: Path, jp_serverapp: Any, gateway: Gateway
) -> None:
    # Given a server started with --gateway-url and a notebook open in it
    training_notebook(jp_root_dir)
    session = await open_session(jp_fetch, "exp.ipynb")

    # When an exploration of a cell runs
    done = await run_exploration(jp_fetch)

    # Then the notebook's kernel and every side kernel were started by the gateway
    runs = [done["baseline"], *done["runs"]]
    assert [r["status"] for r in runs] == ["succeeded"] * 3, runs
    started = set(gateway.started_ids())
    assert session["kernel"]["id"] in started
    assert {r["kernel_id"] for r in runs} <= started
    engine = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine
    assert engine.config.gateway.url == gateway.url
    await jp_fetch("api", "sessions", session["id"], method="DELETE")
