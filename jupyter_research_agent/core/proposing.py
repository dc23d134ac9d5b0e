"""Choosing a proposer and gathering the proposals of a new exploration."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any, Protocol

from . import exploration_tasks as tasks
from .config import EngineConfig
from .imports import import_off_loop
from .models import Exploration, NotebookDoc, Origin, Proposal, ProposeRequest
from .offline import OfflineProposer

log = logging.getLogger(__name__)


class Proposer(Protocol):
    """Anything that turns a request into proposals: offline, a language model, a test double."""

    origin: Origin

    async def propose(self, request: ProposeRequest) -> list[Proposal]: ...


_LLM_MODULE = "jupyter_research_agent.core.llm"


def default_proposer(
    config: EngineConfig,
    usage_sink: Callable[[Any], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> Proposer:
    """The model proposer when a model is configured and its module offers one, else offline.

    The model proposer's module provides ``make_proposer(config, usage_sink=..., on_status=...)``;
    the sink receives the token usage of every model request, ``on_status`` the provider's
    passing notes (rate limited, retrying).
    """
    if config.llm.configured:
        try:
            module = importlib.import_module(_LLM_MODULE)
        except ImportError:
            log.info("no model proposer available; proposing offline")
        else:
            factory = getattr(module, "make_proposer", None)
            if factory is not None:
                made: Proposer = factory(config, usage_sink=usage_sink, on_status=on_status)
                return made
    return OfflineProposer()


async def load_model_support(config: EngineConfig) -> None:
    """Import the model proposer's module off the event loop (openai: seconds the first time).

    Await it before :func:`default_proposer` on the loop; a missing module is left for
    :func:`default_proposer` to report.
    """
    if config.llm.configured:
        await import_off_loop(_LLM_MODULE, optional=True)


def usage_labelled(exploration_id: str) -> contextlib.AbstractContextManager[Any]:
    """Tag model usage inside this block with the exploration (a no-op without the model)."""
    module = sys.modules.get(_LLM_MODULE)
    labeler = getattr(module, "label_usage", None) if module is not None else None
    if labeler is None:
        return contextlib.nullcontext()
    labelled: contextlib.AbstractContextManager[Any] = labeler(exploration_id)
    return labelled


async def gather_proposals(
    exp: Exploration,
    nb: NotebookDoc,
    proposer: Proposer,
    max_proposals: int,
    sweep_found: list[Proposal],
) -> tuple[list[Proposal], Origin]:
    """The researcher's sweep, whole, then the proposer's ideas in the places left.

    Returns the proposals bound to ``exp`` and the origin to record; proposer errors propagate.
    """
    room = max(0, max_proposals - len(sweep_found))
    found: list[Proposal] = []
    if room:
        request = ProposeRequest(
            notebook=nb,
            cell_id=exp.cell_id,
            kind=exp.kind,
            metric=exp.metric,
            instructions=exp.instructions,
            max_proposals=room,
            seeds=exp.seeds,
        )
        with usage_labelled(exp.id):
            found = await proposer.propose(request)
    kept = tasks.accept_proposals(exp, sweep_found, exp.cell_source)
    kept += tasks.accept_proposals(exp, found, exp.cell_source, limit=room)
    origin = proposer.origin if found or not sweep_found else Origin.RESEARCHER
    return kept, origin
