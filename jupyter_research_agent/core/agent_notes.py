"""What the agent adds to an exploration's results: fix verifications and the written reading.

Pure functions over an :class:`Exploration`. A fix is model code, so it never runs on its own:
it stays "unverified" until the researcher approves it and its side run ends. Verifications
are derived from the runs of the fix's current code, so an edited fix is unverified again.
"""

from __future__ import annotations

from typing import Any

from .models import (
    Comparison,
    Exploration,
    ExplorationKind,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Run,
    RunStatus,
)
from .triage import condense_error

UNVERIFIED = "unverified"
VERIFIED = "verified: the cell now runs"
STILL_FAILS = "still fails"
MAX_ERROR_CHARS = 300


def _clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def condensed_run_error(error: dict[str, Any]) -> str:
    """One line for a run's error: the exception and its likely cause."""
    condensed = condense_error([{"output_type": "error", **error}])
    head = f"{condensed.ename}: {condensed.evalue}".rstrip(": ") or "an error"
    if condensed.likely_cause and condensed.category != "other":
        head += f" ({condensed.likely_cause})"
    return _clip(head)


def verification_of(exp: Exploration, proposal: Proposal) -> str:
    """What the side runs of the fix's current code say about it."""
    runs = [
        r
        for r in exp.runs
        if r.proposal_id == proposal.id and r.code_sha256 == proposal.code_sha256
    ]
    ended = [r for r in runs if r.status.terminal]
    for run in ended:
        if run.status is RunStatus.SUCCEEDED:
            continue
        if run.status in (RunStatus.CANCELLED, RunStatus.INTERRUPTED):
            return f"{UNVERIFIED}: its run was {run.status.value} ({_clip(run.reason, 120)})"
        return _failure_text(exp, run)
    if runs and len(ended) == len(runs):
        return VERIFIED
    return UNVERIFIED


def _failure_text(exp: Exploration, run: Run) -> str:
    error = run.error
    if error is None:
        return f"{STILL_FAILS}: {_clip(run.reason or run.status.value)}"
    where = error.get("cell_id")
    if where is not None and where != exp.cell_id:
        # The fixed cell ran; a later cell of the notebook failed.
        return f"{VERIFIED}; a later cell ({where}) fails: {condensed_run_error(error)}"
    return f"{STILL_FAILS}: {condensed_run_error(error)}"


def settle_verifications(exp: Exploration) -> None:
    """Bring every fix's ``verification`` up to date with its runs."""
    if exp.kind is not ExplorationKind.FIX:
        return
    for proposal in exp.proposals:
        if proposal.kind is ProposalKind.FIX:
            text = verification_of(exp, proposal)
            if proposal.verification != text:
                proposal.verification = text


def fix_summary(exp: Exploration) -> str:
    """The reading of a fix exploration: which fixes work, which still fail and why."""
    fixes = [
        p
        for p in exp.proposals
        if p.kind is ProposalKind.FIX and p.status is not ProposalStatus.REJECTED
    ]
    cause = (exp.triage or {}).get("likely_cause") or ""
    if not fixes:
        base = f"Likely cause: {cause}" if cause else "No fix proposed."
        return base + " No fix was proposed: fix the cell by hand, or ask a model for fixes."
    working = [p for p in fixes if (p.verification or "").startswith(VERIFIED)]
    failing = [p for p in fixes if (p.verification or "").startswith(STILL_FAILS)]
    waiting = len(fixes) - len(working) - len(failing)
    parts: list[str] = []
    if working:
        names = ", ".join(repr(p.title) for p in working[:3])
        parts.append(f"{len(working)} of {len(fixes)} fixes verified in a side kernel: {names}.")
    for proposal in failing[:3]:
        detail = (proposal.verification or "")[len(STILL_FAILS) + 2 :]
        parts.append(f"{proposal.title!r} still fails: {detail}.")
    if waiting:
        parts.append(f"{waiting} unverified: approve a fix to run it in a side kernel.")
    if exp.baseline is not None and exp.baseline.status is RunStatus.SUCCEEDED:
        parts.append(
            "The cell as written also runs in a fresh side kernel: the error likely came from "
            "the notebook kernel's state (cells run out of order, a stale variable)."
        )
    return " ".join(parts)


def with_agent_notes(exp: Exploration, comparison: Comparison) -> Comparison:
    """The comparison with the agent's summary; fix verifications are settled on the way.

    A fix exploration is summed up by its verifications; any other exploration by its written
    interpretation once every run has ended (runs still going make it stale).
    """
    settle_verifications(exp)
    if exp.kind is ExplorationKind.FIX:
        comparison.summary = fix_summary(exp)
        return comparison
    runs = [exp.baseline, *exp.runs] if exp.baseline is not None else exp.runs
    if exp.interpretation and all(r.status.terminal for r in runs):
        comparison.summary = exp.interpretation
    return comparison
