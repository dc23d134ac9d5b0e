"""The server's pure parts: error mapping, event payloads, settings, the OpenAPI file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from tornado import web

from jupyter_research_agent.core import errors
from jupyter_research_agent.core.models import CreateExploration, EngineEvent
from jupyter_research_agent.server.autopilot_handlers import autopilot_handlers
from jupyter_research_agent.server.errors import UNEXPECTED_MESSAGE, EngineStopped, reply_for
from jupyter_research_agent.server.events import MAX_LIST_ITEMS, MAX_STRING_CHARS, event_payload
from jupyter_research_agent.server.handlers import API_PREFIX, default_handlers
from jupyter_research_agent.server.options import ResearchAgent

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("exc", "status", "reason"),
    [
        (errors.InvalidInput("bad"), 400, "invalid_input"),
        (errors.NotebookError("outside the root"), 400, "invalid_input"),
        (errors.CellError("no such cell"), 400, "invalid_input"),
        (errors.NotFound("no run"), 404, "not_found"),
        (errors.Conflict("stale hash"), 409, "conflict"),
        (errors.ProviderAuthError("bad key"), 502, "provider_auth"),
        (errors.ProviderQuotaError("quota"), 503, "provider_quota"),
        (errors.ProviderTimeout("slow"), 503, "provider_timeout"),
        (errors.ProposalFormatError("junk"), 503, "proposal_format"),
        (errors.ProviderError("down"), 503, "provider_unavailable"),
        (errors.KernelError("no kernel"), 503, "kernel_unavailable"),
        (EngineStopped("stopping"), 503, "stopping"),
        (web.HTTPError(413, "too big", reason="too_large"), 413, "too_large"),
    ],
)
def test_domain_errors_map_to_their_status(exc: Exception, status: int, reason: str) -> None:
    # Given an error raised while serving a request
    # When it is mapped
    reply = reply_for(exc)
    # Then it gets its status, its reason and its own message
    assert (reply.status, reply.reason) == (status, reason)
    assert reply.message == (exc.log_message if isinstance(exc, web.HTTPError) else str(exc))
    assert reply.expected


def test_validation_errors_name_the_fields() -> None:
    # Given a request body with wrong types and a missing field
    with pytest.raises(ValidationError) as caught:
        CreateExploration.model_validate_json('{"notebook_path": 3, "seeds": "x"}')
    # When it is mapped
    reply = reply_for(caught.value)
    # Then it is a 400 that names each field
    assert reply.status == 400
    for field in ("notebook_path", "cell_id", "seeds"):
        assert field in reply.message


def test_invalid_json_says_so() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateExploration.model_validate_json("{oops")
    assert reply_for(caught.value).message == "Request body is not valid JSON."


def test_unexpected_errors_reveal_nothing() -> None:
    # Given a bug whose message holds internals
    reply = reply_for(KeyError("/home/me/secret"))
    # Then the reply is a fixed 500 message, flagged for the log
    assert (reply.status, reply.message, reply.expected) == (500, UNEXPECTED_MESSAGE, False)


def test_event_payload_is_small_and_redacted() -> None:
    # Given a run event carrying many long lines, deep data and a key
    event = EngineEvent(
        type="run_output",
        exploration_id="exp-1",
        notebook_path="a.ipynb",
        id="run-1",
        status="running",
        data={
            "tail": [f"line {i} " + "y" * 1000 for i in range(500)],
            "deep": {"a": {"b": {"c": {"d": 1}}}},
            "note": "key sk-abc123 in text",
        },
    )
    # When it becomes a jupyter_events payload
    payload = event_payload(event, secrets=["sk-abc123"])
    # Then lists keep their last items, strings are clipped, depth is bounded, keys redacted
    tail = payload["data"]["tail"]
    assert len(tail) == MAX_LIST_ITEMS
    assert tail[-1].startswith("line 499 ")
    assert all(len(line) <= MAX_STRING_CHARS for line in tail)
    assert payload["data"]["deep"] == {"a": {"b": None}}
    assert payload["data"]["note"] == "key [redacted] in text"
    assert set(payload) == {"type", "exploration_id", "notebook_path", "id", "status", "data"}


def test_engine_config_follows_the_traitlets(tmp_path: Path) -> None:
    # Given c.ResearchAgent.* settings
    options = ResearchAgent(
        pool_size=3,
        warm_kernels=1,
        run_timeout=5.0,
        kernel_start_timeout=7.0,
        output_cap_bytes=4096,
        max_proposals=2,
        state_mode="sliced_replay",
        reuse_kernels=False,
        ledger_path=str(tmp_path / "l.sqlite"),
        model="m",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-x",
        request_timeout=9.0,
        max_retries=0,
        context_token_budget=100,
    )
    # When the engine settings are built
    config = options.engine_config(tmp_path)
    # Then every setting arrives, and the key only as a secret
    assert (config.root_dir, config.ledger_path) == (tmp_path, tmp_path / "l.sqlite")
    assert (config.pool_size, config.warm_kernels, config.max_proposals) == (3, 1, 2)
    assert (config.run_timeout_s, config.kernel_start_timeout_s) == (5.0, 7.0)
    assert config.output_cap_bytes == 4096
    assert (config.state_mode, config.reuse_kernels) == ("sliced_replay", False)
    assert (config.llm.timeout_s, config.llm.max_retries, config.llm.context_token_budget) == (
        9.0,
        0,
        100,
    )
    assert config.llm.configured
    assert "sk-x" not in repr(config)


def test_openapi_file_is_up_to_date() -> None:
    # Given the committed docs/openapi.yaml
    # When the generator checks it against the models
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_openapi.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it matches (run scripts/gen_openapi.py after changing a model or a route)
    assert result.returncode == 0, result.stderr


def test_openapi_documents_every_route_and_verb() -> None:
    # Given the routes the extension registers
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    routes = [*default_handlers, *autopilot_handlers]
    for pattern, handler in routes:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        verbs = {v for v in ("get", "post", "patch", "put", "delete") if v in vars(handler)}
        # Then each route and each verb it implements is documented
        assert path in spec["paths"], path
        assert set(spec["paths"][path]) == verbs, path
    assert len(spec["paths"]) == len(routes)
    assert all(p.startswith(API_PREFIX) for p in spec["paths"])
