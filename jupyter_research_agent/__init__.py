"""A research copilot for JupyterLab.

This module stays free of server imports: `jupyter_research_agent.core` must be importable
without tornado or jupyter_server, and importing a submodule imports this package first.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - only when running from a source tree never installed
    __version__ = "dev"

__all__ = ["__version__", "load_ipython_extension"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-research-agent"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # Imported here, not at module level, so the package import stays server-free.
    from .server.extension import ResearchAgentExtension

    return [{"module": "jupyter_research_agent.server.extension", "app": ResearchAgentExtension}]


def load_ipython_extension(ipython: Any) -> None:
    """Register the notebook magics (`%load_ext jupyter_research_agent`)."""
    if importlib.util.find_spec("jupyter_research_agent.magics") is None:
        return
    magics = importlib.import_module("jupyter_research_agent.magics")
    loader = getattr(magics, "load_ipython_extension", None)
    if loader is not None:
        loader(ipython)
