"""Access, approval and bad input over a real server (see RELIABILITY.md: Access, Approval)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from server_support import (
    TRAIN_SOURCE,
    Fetch,
    all_runs_ended,
    approve,
    call,
    create_exploration,
    peek,
    poll,
    researcher_kernel,
    training_notebook,
    write_notebook,
)
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from jupyter_research_agent.core.models import sha256_of
from jupyter_research_agent.server.handlers import EXTENSION_SETTINGS_KEY, MAX_BODY_BYTES

BASE = "/a%40b/api/research-agent"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"), pool_size=2, run_timeout=60.0
    )
    return jp_server_config


def _error_shape(text: str) -> dict[str, Any]:
    """Every error is JSON {message, reason} and carries no traceback."""
    body = json.loads(text)
    assert set(body) == {"message", "reason"}, body
    assert body["message"]
    assert "Traceback" not in text
    assert 'File "' not in text
    return body


async def _raw(port: int, path: str, method: str = "GET", **kwargs: Any) -> HTTPResponse:
    """A request without jp_fetch's token header."""
    request = HTTPRequest(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        allow_nonstandard_methods=True,
        follow_redirects=False,
        **kwargs,
    )
    return await AsyncHTTPClient().fetch(request, raise_error=False)


# ---------------------------------------------------------------- access


async def test_no_token_is_refused_without_side_effect(
    jp_fetch: Fetch, jp_serverapp: Any, jp_http_port: int, jp_root_dir: Path
) -> None:
    # Given an exploration whose proposals wait for approval
    training_notebook(jp_root_dir)
    exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
    proposal = exp["proposals"][0]
    headers = {"Cookie": "_xsrf=x", "X-XSRFToken": "x"}

    # When approval and a new exploration are requested without a token
    approve_reply = await _raw(
        jp_http_port,
        f"{BASE}/proposals/{proposal['id']}/approve",
        "POST",
        body=json.dumps({"code_sha256": proposal["code_sha256"]}),
        headers=headers,
    )
    create_reply = await _raw(
        jp_http_port,
        f"{BASE}/explorations",
        "POST",
        body=json.dumps({"notebook_path": "exp.ipynb", "cell_id": "train"}),
        headers=headers,
    )

    # Then both are refused with 403
    assert (approve_reply.code, create_reply.code) == (403, 403)
    # And nothing happened: the proposal is unapproved, nothing ran, no kernel exists
    after = await call(jp_fetch, "GET", "explorations", exp["id"])
    assert after.body["proposals"][0]["status"] == "proposed"
    assert after.body["runs"] == []
    assert after.body["baseline"] is None
    listed = await call(jp_fetch, "GET", "explorations")
    assert [e["id"] for e in listed.body["explorations"]] == [exp["id"]]
    status = await call(jp_fetch, "GET", "status")
    assert status.body["pool"]["busy"] == 0
    assert status.body["pool"]["queued"] == 0
    engine = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine
    # (the authorised creation warmed kernels ahead of approval; no run was ever submitted)
    assert engine._handles == {}


async def _login_cookie(port: int, token: str) -> str:
    """Log in with the token once and keep the login cookie the server sets."""
    reply = await _raw(port, f"{BASE}/status", headers={"Authorization": f"token {token}"})
    cookies = [c.split(";", 1)[0] for c in reply.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-")]
    assert login, cookies
    return login[0]


async def test_cookie_post_without_xsrf_token_is_refused(
    jp_fetch: Fetch, jp_serverapp: Any, jp_http_port: int, jp_root_dir: Path
) -> None:
    # Given a browser session authenticated by cookie
    training_notebook(jp_root_dir)
    cookie = await _login_cookie(jp_http_port, jp_serverapp.identity_provider.token)
    body = json.dumps({"notebook_path": "exp.ipynb", "cell_id": "train"})

    # When it POSTs without the XSRF token
    refused = await _raw(
        jp_http_port, f"{BASE}/explorations", "POST", body=body, headers={"Cookie": cookie}
    )

    # Then the request is refused with 403 and nothing was created
    assert refused.code == 403
    # (control: the same cookie with a matching XSRF token and header is accepted)
    accepted = await _raw(
        jp_http_port,
        f"{BASE}/explorations",
        "POST",
        body=body,
        headers={"Cookie": f"{cookie}; _xsrf=abc", "X-XSRFToken": "abc"},
    )
    assert accepted.code == 201, accepted.body
    listed = await _raw(jp_http_port, f"{BASE}/explorations", headers={"Cookie": cookie})
    assert len(json.loads(listed.body)["explorations"]) == 1


async def test_foreign_origin_is_refused(
    jp_fetch: Fetch, jp_serverapp: Any, jp_http_port: int, jp_root_dir: Path
) -> None:
    # Given a cookie-authenticated browser with a valid XSRF token
    training_notebook(jp_root_dir)
    cookie = await _login_cookie(jp_http_port, jp_serverapp.identity_provider.token)
    headers = {"Cookie": f"{cookie}; _xsrf=abc", "X-XSRFToken": "abc"}

    # When a page on another origin makes the request
    reply = await _raw(
        jp_http_port,
        f"{BASE}/explorations",
        "POST",
        body=json.dumps({"notebook_path": "exp.ipynb", "cell_id": "train"}),
        headers={**headers, "Origin": "http://evil.example.com"},
    )

    # Then it is refused and nothing was created
    assert reply.code in (403, 404)
    listed = await _raw(jp_http_port, f"{BASE}/explorations", headers=headers)
    assert json.loads(listed.body)["explorations"] == []


class NoKernelExecution(Authorizer):
    """Allows everything except executing code in kernels."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "kernels" and action == "execute")


@pytest.fixture
def no_kernel_execution(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"]["authorizer_class"] = NoKernelExecution
    return jp_server_config


@pytest.mark.usefixtures("no_kernel_execution")
async def test_denying_kernel_execution_denies_approval(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given a user the authorizer denies `kernels: execute`, and a proposal made by someone who may
    training_notebook(jp_root_dir)
    engine = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine
    from jupyter_research_agent.core.models import CreateExploration

    exp = await engine.create_exploration(
        CreateExploration(notebook_path="exp.ipynb", cell_id="train")
    )
    exp = await engine.wait_proposals(exp.id)
    proposal = exp.proposals[0]

    # When the user approves, creates an exploration or adds code
    approved = await approve(jp_fetch, proposal.model_dump(mode="json"))
    created = await call(
        jp_fetch, "POST", "explorations", body={"notebook_path": "exp.ipynb", "cell_id": "train"}
    )
    added = await call(jp_fetch, "POST", "explorations", exp.id, "proposals", body={"code": "1"})

    # Then each is refused with 403 and a clear message
    for reply in (approved, created, added):
        assert reply.code == 403, reply.text
        assert "execute" in _error_shape(reply.text)["message"]
    # And nothing ran; reading and rejecting stay allowed
    seen = await call(jp_fetch, "GET", "explorations", exp.id)
    assert seen.code == 200
    assert seen.body["runs"] == []
    assert seen.body["proposals"][0]["status"] == "proposed"
    rejected = await call(jp_fetch, "POST", "proposals", proposal.id, "reject")
    assert rejected.code == 200


# ---------------------------------------------------------------- bad input


async def test_bad_requests_get_clear_json_errors(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given a server with one exploration
    training_notebook(jp_root_dir)
    exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
    prop_id = exp["proposals"][0]["id"]
    huge = json.dumps(
        {"notebook_path": "exp.ipynb", "cell_id": "train", "instructions": "x" * MAX_BODY_BYTES}
    )
    cases: list[tuple[str, tuple[str, ...], str | None, int, str]] = [
        # (method, path, raw body, expected status, expected words in the message)
        ("POST", ("explorations",), "{not json", 400, "not valid JSON"),
        ("POST", ("explorations",), '{"notebook_path": 3, "cell_id": []}', 400, "notebook_path"),
        ("POST", ("explorations",), '{"notebook_path": "exp.ipynb"}', 400, "cell_id"),
        ("POST", ("explorations",), '{"notebook_path": "a", "cell_id": "b", "x": 1}', 400, "x"),
        ("POST", ("explorations",), "[1, 2]", 400, "Invalid request body"),
        ("POST", ("explorations",), huge, 413, "larger than"),
        ("POST", ("proposals", prop_id, "approve"), '{"code_sha256": "abc"}', 400, "code_sha256"),
        ("POST", ("proposals", prop_id, "approve"), "{}", 400, "code_sha256"),
        ("PATCH", ("proposals", prop_id), '{"code": 5}', 400, "code"),
        ("POST", ("explorations",), '{"notebook_path": "exp.ipynb", "cell_id": "nope"}', 400, ""),
        ("GET", ("explorations", "exp-unknown"), None, 404, "exp-unknown"),
        ("POST", ("explorations", "exp-unknown", "proposals"), '{"code": "1"}', 404, ""),
        (
            "POST",
            ("proposals", "prop-unknown", "approve"),
            '{"code_sha256": "' + "0" * 64 + '"}',
            404,
            "",
        ),
        ("POST", ("proposals", "prop-unknown", "reject"), None, 404, ""),
        ("PATCH", ("proposals", "prop-unknown"), '{"code": "1"}', 404, ""),
        ("GET", ("runs", "run-unknown"), None, 404, ""),
        ("POST", ("runs", "run-unknown", "cancel"), None, 404, ""),
    ]
    for method, parts, raw, status, words in cases:
        # When the request is sent
        reply = await call(jp_fetch, method, *parts, raw=raw)
        # Then it gets the status and a JSON message that says what is wrong
        assert reply.code == status, (method, parts, raw and raw[:80], reply.text[:300])
        assert words in _error_shape(reply.text)["message"], (parts, reply.text[:300])
    # And nothing was created or approved by any of them
    listed = await call(jp_fetch, "GET", "explorations")
    assert len(listed.body["explorations"]) == 1
    assert listed.body["explorations"][0]["runs"] == []


async def test_notebook_paths_outside_the_root_are_rejected(
    jp_fetch: Fetch, jp_root_dir: Path, tmp_path: Path
) -> None:
    # Given notebooks outside the server root, one in a sibling directory sharing its prefix
    sibling = tmp_path / f"{jp_root_dir.name}2"
    write_notebook(sibling, "x.ipynb", [("train", TRAIN_SOURCE)])
    write_notebook(tmp_path, "outside.ipynb", [("train", TRAIN_SOURCE)])
    cells = [{"id": "train", "source": TRAIN_SOURCE}]
    paths = [
        "../outside.ipynb",
        f"../{sibling.name}/x.ipynb",
        str(tmp_path / "outside.ipynb"),
        str(sibling / "x.ipynb"),
        "/etc/passwd",
        "sub/../../outside.ipynb",
    ]
    for path in paths:
        for with_cells in (False, True):
            body: dict[str, Any] = {"notebook_path": path, "cell_id": "train"}
            if with_cells:
                body["cells"] = cells
            # When an exploration is requested for it
            reply = await call(jp_fetch, "POST", "explorations", body=body)
            # Then it is rejected as bad input
            assert reply.code == 400, (path, with_cells, reply.text)
            _error_shape(reply.text)
    listed = await call(jp_fetch, "GET", "explorations")
    assert listed.body["explorations"] == []


class BrokenEngineError(RuntimeError):
    pass


def _broken_engine_class() -> type:
    from jupyter_research_agent.core.engine import Engine

    class BrokenEngine(Engine):
        def get_exploration(self, exploration_id: str) -> Any:
            raise BrokenEngineError("internal detail /secret/path")

    return BrokenEngine


@pytest.fixture
def broken_engine(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ResearchAgent"]["engine_class"] = _broken_engine_class()
    jp_server_config["ServerApp"]["tornado_settings"] = {"debug": True, "serve_traceback": True}
    return jp_server_config


@pytest.mark.usefixtures("broken_engine")
async def test_a_bug_answers_500_without_details_even_in_debug_mode(jp_fetch: Fetch) -> None:
    # Given an engine that fails unexpectedly, on a server in debug mode
    # When the failing resource is requested
    reply = await call(jp_fetch, "GET", "explorations", "exp-any")

    # Then the answer is a 500 with a fixed message: no traceback, no internal detail
    assert reply.code == 500
    body = _error_shape(reply.text)
    assert "secret" not in reply.text
    assert "server log" in body["message"]


# ---------------------------------------------------------------- approval


async def test_approving_twice_makes_one_run(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given a proposal
    training_notebook(jp_root_dir)
    exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
    proposal = exp["proposals"][0]

    # When it is approved twice at the same moment, then once more
    first, second = await asyncio.gather(approve(jp_fetch, proposal), approve(jp_fetch, proposal))
    third = await approve(jp_fetch, proposal)

    # Then every approval succeeds, and the proposal ran exactly once
    assert (first.code, second.code, third.code) == (200, 200, 200)
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=90)
    assert [r["proposal_id"] for r in done["runs"]] == [proposal["id"]]


async def test_stale_hash_and_edits_need_a_new_approval(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    # Given a proposal
    training_notebook(jp_root_dir)
    exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
    proposal = exp["proposals"][0]

    # When its code is edited
    edited = await call(
        jp_fetch, "PATCH", "proposals", proposal["id"], body={"code": "print('score=1')"}
    )

    # Then it has a new hash, and approving with the old hash is a conflict
    assert edited.code == 200
    assert edited.body["code_sha256"] == sha256_of("print('score=1')")
    assert edited.body["status"] == "proposed"
    stale = await approve(jp_fetch, proposal)
    assert stale.code == 409
    assert _error_shape(stale.text)["reason"] == "conflict"
    fresh = await approve(jp_fetch, edited.body)
    assert fresh.code == 200


async def test_rejected_stays_rejected_across_a_restart(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given a rejected proposal
    training_notebook(jp_root_dir)
    exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
    proposal = exp["proposals"][0]
    rejected = await call(jp_fetch, "POST", "proposals", proposal["id"], "reject")
    assert rejected.body["status"] == "rejected"

    # When it is approved, before and after the engine restarts on the same ledger
    before = await approve(jp_fetch, proposal)
    extension = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY]
    await extension.stop_extension()
    extension.start_engine()
    after = await approve(jp_fetch, proposal)

    # Then both approvals conflict and it is still rejected, with nothing run
    assert (before.code, after.code) == (409, 409)
    reloaded = await call(jp_fetch, "GET", "explorations", exp["id"])
    status = {p["id"]: p["status"] for p in reloaded.body["proposals"]}
    assert status[proposal["id"]] == "rejected"
    assert reloaded.body["runs"] == []


async def test_notebook_metadata_claiming_approval_is_ignored(
    jp_fetch: Fetch, jp_root_dir: Path
) -> None:
    # Given a notebook whose metadata claims the cell's variations were approved
    claim = {
        "research_agent": {
            "approved": True,
            "status": "approved",
            "approved_sha256": sha256_of(TRAIN_SOURCE),
            "auto_run": True,
        }
    }
    write_notebook(
        jp_root_dir,
        "claims.ipynb",
        [("setup", "base = 0.5"), ("train", TRAIN_SOURCE)],
        cell_metadata={"train": claim, "setup": claim},
    )

    # When an exploration is created for it
    exp = await create_exploration(jp_fetch, notebook_path="claims.ipynb", cell_id="train")
    await asyncio.sleep(0.5)
    again = await call(jp_fetch, "GET", "explorations", exp["id"])

    # Then every proposal still waits for approval and nothing runs
    assert exp["proposals"]
    assert all(p["status"] == "proposed" for p in again.body["proposals"])
    assert again.body["runs"] == []
    assert again.body["baseline"] is None


async def test_no_endpoint_runs_code_in_the_researchers_kernel(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    # Given the researcher's own kernel, started for the notebook through /api/sessions
    training_notebook(jp_root_dir)
    async with researcher_kernel(jp_fetch, jp_serverapp, "exp.ipynb") as (kernel_id, client):
        first = await client.execute("marker = 41", reply=True, timeout=30)
        assert first["content"]["execution_count"] == 1

        # When an exploration of that notebook runs code that would change the marker
        exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
        added = await call(
            jp_fetch,
            "POST",
            "explorations",
            exp["id"],
            "proposals",
            body={"code": "marker = 99\nprint('score=1')"},
        )
        await approve(jp_fetch, added.body)
        done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=90)
        assert all(r["status"] == "succeeded" for r in done["runs"])

        # Then the researcher's kernel never saw it: same marker, no extra execution
        marker, execution_count = await peek(client, "marker")
        assert execution_count == 2
        assert marker == "41"
        # And the side kernels are not the researcher's and not among the server's kernels
        assert all(r["kernel_id"] != kernel_id for r in done["runs"])
        assert jp_serverapp.kernel_manager.list_kernel_ids() == [kernel_id]
