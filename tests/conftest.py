"""Shared fixtures: a real Jupyter Server with the extension enabled (pytest-jupyter)."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """Enable the extension on a server that requires authentication on every endpoint.

    The model settings are pinned so the developer's OPENAI_* variables cannot leak into tests.
    """
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_research_agent": True},
            "allow_unauthenticated_access": False,
        },
        "ResearchAgent": {"model": "", "base_url": "", "api_key": ""},
    }
