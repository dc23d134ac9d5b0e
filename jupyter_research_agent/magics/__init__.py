"""Notebook magics: `%load_ext jupyter_research_agent`, then `%research` (see `%research -h`)."""

from __future__ import annotations

from typing import Any

from .magic import ResearchMagics

__all__ = ["ResearchMagics", "load_ipython_extension", "unload_ipython_extension"]

_registered: list[ResearchMagics] = []


def load_ipython_extension(ipython: Any) -> None:
    magics = ResearchMagics(ipython)
    ipython.register_magics(magics)
    _registered.append(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop the views' polling threads (`%unload_ext` / `%reload_ext`)."""
    while _registered:
        magics = _registered.pop()
        if magics._session is not None:
            magics._session.close()
