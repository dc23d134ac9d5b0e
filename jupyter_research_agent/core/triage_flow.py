"""Error triage as an exploration: the condensed cause, then fixes that run only once approved.

``CreateExploration(kind=FIX)`` on a cell whose outputs hold an error: the engine stores the
triage report on the exploration (offline, always) and the model's fixes as proposals of kind
FIX, each "unverified". Approving a fix runs it like any variation; its verification then says
whether the cell now runs (see :mod:`.agent_notes`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from . import exploration_tasks as tasks
from .agent_notes import UNVERIFIED
from .errors import InvalidInput
from .models import (
    Cell,
    CreateExploration,
    Exploration,
    ExplorationKind,
    NotebookDoc,
    Origin,
    Proposal,
)
from .proposing import Proposer, gather_proposals, usage_labelled
from .triage import TriageReport, condense_error, triage

if TYPE_CHECKING:
    from .llm.proposer import LLMProposer

_PROPOSER_MODULE = "jupyter_research_agent.core.llm.proposer"


def model_of(proposer: object) -> LLMProposer | None:
    """The proposer when it is the model's (it can propose fixes and interpret), else None."""
    module = sys.modules.get(_PROPOSER_MODULE)
    klass = getattr(module, "LLMProposer", None) if module is not None else None
    if klass is not None and isinstance(proposer, klass):
        return cast("LLMProposer", proposer)
    return None


def check_request(req: CreateExploration, cell: Cell) -> None:
    """A fix needs an error to fix; refuse before anything is recorded."""
    if req.kind is not ExplorationKind.FIX:
        return
    if req.sweep:
        raise InvalidInput("a sweep does not apply to fixing an error; leave out the sweep")
    if not condense_error(cell.outputs).found:
        raise InvalidInput(
            f"cell {cell.id} has no error in its outputs: run it in the notebook first (the "
            "saved notebook or the cells sent must hold the error), or ask for variations"
        )


def triage_summary(report: TriageReport) -> dict[str, Any]:
    """What the exploration keeps of a triage report (the fixes become its proposals)."""
    return {
        "ename": report.error.ename,
        "evalue": report.error.evalue,
        "category": report.error.category,
        "likely_cause": report.likely_cause,
        "cause_source": report.cause_source,
        "condensed": report.error.text,
        "provider_error": report.provider_error,
    }


async def gather_fixes(
    exp: Exploration, nb: NotebookDoc, proposer: Proposer, max_proposals: int
) -> tuple[list[Proposal], Origin]:
    """Triage the cell; with a model, its fixes (unverified) bound to ``exp``."""
    model = model_of(proposer) if max_proposals > 0 else None
    with usage_labelled(exp.id):
        report = await triage(
            nb, exp.cell_id, model, instructions=exp.instructions, max_fixes=max_proposals
        )
    exp.triage = triage_summary(report)
    if report.provider_error:
        exp.error = f"no fixes proposed: {report.provider_error}"
    for fix in report.fixes:
        fix.verification = UNVERIFIED
    kept = tasks.accept_proposals(exp, report.fixes, exp.cell_source, limit=max_proposals)
    return kept, Origin.LLM if model is not None else Origin.OFFLINE


async def gather(
    exp: Exploration,
    nb: NotebookDoc,
    proposer: Proposer,
    max_proposals: int,
    sweep_found: list[Proposal],
) -> tuple[list[Proposal], Origin]:
    """Proposals for a new exploration: fixes for FIX, else the proposer's variations."""
    try:
        if exp.kind is ExplorationKind.FIX:
            return await gather_fixes(exp, nb, proposer, max_proposals)
        return await gather_proposals(exp, nb, proposer, max_proposals, sweep_found)
    finally:
        exp.status_message = ""  # the provider's passing notes end with the request
