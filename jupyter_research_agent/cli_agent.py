"""``jupyter research-agent triage`` and ``--dry-run``: the agent's side of the command.

    jupyter research-agent triage NOTEBOOK --cell ID [--format text|json] [--offline]
        [--model NAME] [--base-url URL] [--verify [--yes]]

Prints the condensed error and its likely cause and, with a model, the proposed fixes. Fixes are
model code: they run only with ``--verify`` and an approval (``--yes`` approves every one),
each in a side kernel, and are reported as "verified" or "still fails" with the new error.
Exit status: 0 done (with ``--verify``: at least one fix works), 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .cli import EXIT_FAILURE, EXIT_OK, config_from_args
from .cli_explore import _choose, _notebook_location
from .cli_model import redact_key, request_preview
from .core.agent_notes import VERIFIED
from .core.engine import Engine
from .core.errors import ResearchAgentError
from .core.models import CreateExploration, Exploration, ExplorationKind, ExplorationStatus


def dry_run(args: argparse.Namespace, kind: ExplorationKind) -> int:
    """Print the request the model would get, as JSON; nothing is sent, nothing runs."""
    root, notebook_path = _notebook_location(args.notebook)
    doc = request_preview(args, root, notebook_path, kind)
    sys.stdout.write(redact_key(json.dumps(doc, indent=2)) + "\n")
    return EXIT_OK


def triage_document(exp: Exploration) -> dict[str, Any]:
    """The JSON answer of ``triage --format json``."""
    report = exp.triage or {}
    fixes = []
    for proposal in exp.proposals:
        runs = [r for r in exp.runs if r.proposal_id == proposal.id]
        fixes.append(
            {
                "id": proposal.id,
                "title": proposal.title,
                "origin": proposal.origin.value,
                "rationale": proposal.rationale,
                "code": proposal.code,
                "approvable": proposal.approvable,
                "warnings": proposal.warnings,
                "verification": proposal.verification,
                "runs": [r.id for r in runs],
            }
        )
    return {
        "exploration_id": exp.id,
        "notebook": exp.notebook_path,
        "cell": exp.cell_id,
        "proposer": exp.proposer.value,
        "error": {
            "ename": report.get("ename", ""),
            "evalue": report.get("evalue", ""),
            "category": report.get("category", ""),
            "condensed": report.get("condensed", ""),
        },
        "likely_cause": report.get("likely_cause", ""),
        "cause_source": report.get("cause_source", "offline"),
        "provider_error": report.get("provider_error"),
        "fixes": fixes,
        "summary": exp.comparison.summary,
    }


def triage_text(doc: dict[str, Any]) -> str:
    lines = [doc["error"]["condensed"]]
    if doc["cause_source"] == "llm":
        lines.append(f"Likely cause (model): {doc['likely_cause']}")
    if doc["fixes"]:
        lines.append("")
        lines.append(f"Fixes proposed by the model ({len(doc['fixes'])}):")
    for index, fix in enumerate(doc["fixes"], 1):
        lines.append(f"[{index}] {fix['title']}  ({fix['verification'] or 'unverified'})")
        if fix["rationale"]:
            lines.append(f"    {fix['rationale']}")
        lines += [f"    | {line}" for line in fix["code"].splitlines()]
    if doc["fixes"] and doc["summary"]:
        lines.append("")
        lines.append(doc["summary"])
    return "\n".join(lines)


async def triage_command(args: argparse.Namespace) -> int:
    root, notebook_path = _notebook_location(args.notebook)
    engine = Engine(config_from_args(args, root))
    ended = False
    try:
        request = CreateExploration(
            notebook_path=notebook_path,
            cell_id=args.cell,
            kind=ExplorationKind.FIX,
            instructions=args.instructions,
            max_proposals=max(0, min(args.max_fixes, 50)),
            offline=args.offline,
        )
        exp = await engine.create_exploration(request)
        exp = await engine.wait_proposals(exp.id)
        if exp.status == ExplorationStatus.FAILED:
            raise ResearchAgentError(f"triage failed: {exp.error}")
        if args.verify and exp.proposals:
            for proposal in await _choose(exp.proposals, args.yes):
                await engine.approve(proposal.id, proposal.code_sha256)
            exp = await engine.wait_runs(exp.id)
        else:
            exp = engine.get_exploration(exp.id)
        ended = True
    finally:
        await engine.close("the command ended" if ended else "interrupted (Ctrl-C)")
    doc = triage_document(exp)
    text = json.dumps(doc, indent=2) if args.format == "json" else triage_text(doc)
    sys.stdout.write(text + "\n")
    if doc["provider_error"]:
        sys.stderr.write(f"error: the model proposed no fixes: {doc['provider_error']}\n")
        return EXIT_FAILURE
    if args.verify:
        works = [f for f in doc["fixes"] if (f["verification"] or "").startswith(VERIFIED)]
        if not works:
            sys.stderr.write("error: no proposed fix made the cell run\n")
            return EXIT_FAILURE
    return EXIT_OK
