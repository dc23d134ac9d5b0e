"""``jupyter research-agent explore``: propose, ask, run and compare, in one process."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from .cli import EXIT_FAILURE, EXIT_OK, comparison_table, config_from_args
from .cli_autopilot import (
    AutopilotProgress,
    autopilot_document,
    autopilot_settings,
    confirmed,
    drive,
)
from .core.engine import Engine
from .core.models import (
    CreateExploration,
    EngineEvent,
    Exploration,
    ExplorationStatus,
    Proposal,
    Run,
    RunStatus,
)


def _notebook_location(path: Path) -> tuple[Path, str]:
    """Root and notebook path for the engine: relative to the working directory when inside it."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved.is_relative_to(cwd):
        return cwd, resolved.relative_to(cwd).as_posix()
    return resolved.parent, resolved.name


class _Progress:
    """Status changes of runs as lines on stderr (the table format's live view)."""

    def __init__(self, engine: Engine, stream: TextIO) -> None:
        self.engine = engine
        self.stream = stream
        self.labels: dict[str, str] = {}
        self.last: dict[str, str] = {}

    def _label(self, event: EngineEvent) -> str:
        if event.id not in self.labels:
            exp = self.engine.get_exploration(event.exploration_id)
            titles = {p.id: p.title for p in exp.proposals}
            for run in [exp.baseline, *exp.runs]:
                if run is None:
                    continue
                name = "baseline" if run.is_baseline else titles.get(run.proposal_id or "", "")
                seed = f" (seed {run.seed})" if exp.seeds > 1 else ""
                self.labels[run.id] = f"{name}{seed}"
        return self.labels.get(event.id, event.id)

    def __call__(self, event: EngineEvent) -> None:
        if event.type != "run" or self.last.get(event.id) == event.status:
            return
        self.last[event.id] = event.status
        label = self._label(event)
        extra = ""
        if event.status not in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING):
            reason = event.data.get("reason") or ""
            found = event.data.get("metrics") or {}
            shown = ", ".join(f"{k}={v:.4g}" for k, v in list(found.items())[:4])
            if event.status != RunStatus.SUCCEEDED:
                extra = f" ({reason})"
            else:  # a succeeded run may still lack the metric: "no metric: <why>"
                extra = f"  {shown}" + (f" ({reason})" if reason else "")
        self.stream.write(f"  {label}: {event.status}{extra}\n")
        self.stream.flush()


async def _ask(question: str) -> str:
    """One answer from the terminal. The question goes to stderr: stdout is for results."""
    sys.stderr.write(question)
    sys.stderr.flush()
    # readline blocks: a thread keeps the event loop (and the runs on it) going.
    line = await asyncio.to_thread(sys.stdin.readline)
    return line.strip().lower() if line else "q"


async def _choose(proposals: list[Proposal], approve_all: bool) -> list[Proposal]:
    """The proposals the researcher approves: all with --yes, else asked one by one."""
    if approve_all:
        return [p for p in proposals if p.approvable]
    chosen: list[Proposal] = []
    for index, proposal in enumerate(proposals):
        sys.stderr.write(
            f"\n[{index + 1}/{len(proposals)}] {proposal.title}  ({proposal.kind.value})\n"
            f"  {proposal.rationale}\n"
            + "".join(f"  | {line}\n" for line in proposal.code.splitlines())
        )
        if not proposal.approvable:
            sys.stderr.write(f"  cannot be approved: {'; '.join(proposal.warnings)}\n")
            continue
        for warning in proposal.warnings:
            sys.stderr.write(f"  warning: {warning}\n")
        answer = ""
        while answer not in ("y", "n", "a", "q"):
            answer = await _ask("Run it? [y]es / [n]o / [a]ll remaining / [q]uit asking: ")
        if answer == "y":
            chosen.append(proposal)
        elif answer == "a":
            chosen.extend(p for p in proposals[index:] if p.approvable)
            break
        elif answer == "q":
            break
    return chosen


async def explore(args: argparse.Namespace) -> int:
    root, notebook_path = _notebook_location(args.notebook)
    engine = Engine(config_from_args(args, root))
    progress = _Progress(engine, sys.stderr)
    if args.format == "table":
        engine.subscribe(progress)
    interrupted = True
    error = ""
    try:
        request = CreateExploration(
            notebook_path=notebook_path,
            cell_id=args.cell,
            metric=args.metric,
            direction=args.direction,
            sweep=args.sweep,
            instructions=args.instructions,
            max_proposals=args.max_proposals,
            seeds=args.seeds,
            offline=args.offline,
        )
        exp = await engine.create_exploration(request)
        exp = final = await engine.wait_proposals(exp.id)
        if exp.status != ExplorationStatus.FAILED:
            found = f"{len(exp.proposals)} proposals ({exp.proposer.value})"
            _note(args, f"{found} for cell {exp.cell_id}")
        settings = autopilot_settings(args)
        if exp.status == ExplorationStatus.FAILED:
            # Reported after the engine closed: one JSON document even when nothing ran.
            error = f"proposing failed: {exp.error}"
        elif settings is not None and await confirmed(settings, args.yes, _ask):
            if args.format == "table":
                engine.subscribe(AutopilotProgress(engine))
            final = await drive(engine, exp.id, settings)
        else:
            for proposal in await _choose(exp.proposals, args.yes):
                await engine.approve(proposal.id, proposal.code_sha256)
            final = await engine.wait_runs(exp.id)
        interrupted = False
    finally:
        reason = "interrupted (Ctrl-C)" if interrupted else "the command ended"
        await engine.close(reason)
    if not error and final.baseline is not None and final.baseline.status != RunStatus.SUCCEEDED:
        error = f"the baseline run {final.baseline.status.value}: {final.baseline.reason}"
    if args.format == "json" or final.baseline is not None or final.runs:
        _print_result(args.format, final, error)
    if error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_FAILURE
    return EXIT_OK


def _note(args: argparse.Namespace, text: str) -> None:
    if args.format == "table":
        sys.stderr.write(text + "\n")


def _strategy(run: Run | None) -> str | None:
    return run.state_strategy.value if run is not None and run.state_strategy else None


def explore_document(exp: Exploration) -> dict[str, Any]:
    """The JSON answer of ``explore --format json``."""
    rows = {row.proposal_id: row for row in exp.comparison.rows if not row.is_baseline}
    variations = []
    for proposal in exp.proposals:
        runs = [r for r in exp.runs if r.proposal_id == proposal.id]
        row = rows.get(proposal.id)
        unfinished = next((r for r in runs if r.status != RunStatus.SUCCEEDED), None)
        first = runs[0] if runs else None
        telling = unfinished or first
        variations.append(
            {
                "id": proposal.id,
                "title": proposal.title,
                "kind": proposal.kind.value,
                "origin": proposal.origin.value,
                "code": proposal.code,
                "verification": proposal.verification,
                "status": row.status if row else (first.status.value if first else "not run"),
                "proposal_status": proposal.status.value,
                "reason": telling.reason if telling else "",
                # Checks of the code before approval, e.g. it no longer computes the metric.
                "warnings": list(proposal.warnings),
                "metrics": row.metrics if row else (first.metrics if first else {}),
                "metric_sources": _sources(runs),
                "duration_s": row.duration_s if row else (first.duration_s if first else None),
                "runs": [r.id for r in runs],
                # How the state before the cell was rebuilt, and what that cost (first run).
                "state_strategy": _strategy(first),
                "rebuild_s": first.rebuild_s if first else None,
                "round": proposal.round,
                "parent": proposal.parent_id,
                "approved_by": proposal.approved_by,
            }
        )
    baseline = exp.baseline
    return {
        "exploration_id": exp.id,
        "notebook": exp.notebook_path,
        "cell": exp.cell_id,
        "proposer": exp.proposer.value,
        "state_strategy": baseline.state_strategy.value
        if baseline and baseline.state_strategy
        else None,
        "baseline": {
            "status": baseline.status.value if baseline else "not run",
            "reason": baseline.reason if baseline else "",
            "metrics": baseline.metrics if baseline else {},
            "metric_sources": _sources([baseline] if baseline else []),
            "duration_s": baseline.duration_s if baseline else None,
            "state_strategy": _strategy(baseline),
            "rebuild_s": baseline.rebuild_s if baseline else None,
        },
        "variations": variations,
        "best": exp.comparison.best_proposal_id,
        "autopilot": autopilot_document(exp),
        "interpretation": exp.interpretation,
        "comparison": exp.comparison.model_dump(mode="json"),
    }


def _sources(runs: list[Run]) -> dict[str, str]:
    """Where each metric was read (a cell's output, or ``binding``); the first run's first."""
    found: dict[str, str] = {}
    for run in runs:
        for name, source in run.metric_sources.items():
            found.setdefault(name, source)
    return found


def _print_result(fmt: str, exp: Exploration, error: str = "") -> None:
    if fmt == "json":
        doc = explore_document(exp)
        if error:
            doc = {"error": error, **doc}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    sys.stdout.write(comparison_table(exp) + "\n")
    if exp.comparison.summary:
        sys.stdout.write(exp.comparison.summary + "\n")
