"""GET /api/research-agent/status over a real Jupyter Server."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import jupyter_research_agent
from jupyter_research_agent.server.extension import ResearchAgent

Fetch = Callable[..., Awaitable[Any]]

SENTINEL_KEY = "sk-sentinel-never-leak-0123456789"


async def test_status_reports_version_and_no_model(jp_fetch: Fetch) -> None:
    # Given a server with the extension and no model configured
    # When the status is requested with credentials
    response = await jp_fetch("api", "research-agent", "status")

    # Then it answers the package version and that no model is configured
    assert response.code == 200
    body = json.loads(response.body)
    assert body["version"] == jupyter_research_agent.__version__
    assert body["model"] == {"configured": False, "name": None, "base_url_configured": False}


@pytest.fixture
def configured_model(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ResearchAgent"] = {
        "model": "test-model-1",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": SENTINEL_KEY,
    }
    return jp_server_config


@pytest.mark.usefixtures("configured_model")
async def test_status_reports_configured_model_but_never_the_key(
    jp_fetch: Fetch, jp_serverapp: Any
) -> None:
    # Given c.ResearchAgent.* set in the server's config, with a sentinel API key
    # When the status is requested
    response = await jp_fetch("api", "research-agent", "status")

    # Then the model is reported as configured, by name
    body = json.loads(response.body)
    assert body["model"] == {
        "configured": True,
        "name": "test-model-1",
        "base_url_configured": True,
    }
    # And the key appears nowhere in the response, headers included
    assert SENTINEL_KEY not in response.body.decode()
    assert all(SENTINEL_KEY not in value for _, value in response.headers.get_all())


def test_model_settings_default_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the OPENAI_* variables set in the environment
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)

    # When the configuration is built without explicit values
    config = ResearchAgent()

    # Then the environment supplies the defaults
    assert (config.model, config.base_url, config.api_key) == (
        "env-model",
        "http://127.0.0.1:9/v1",
        SENTINEL_KEY,
    )
    assert config.model_configured


def test_model_settings_empty_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no OPENAI_* variables
    for name in ("OPENAI_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    # When the configuration is built
    config = ResearchAgent()

    # Then no model is configured
    assert not config.model_configured
    assert config.base_url == ""
