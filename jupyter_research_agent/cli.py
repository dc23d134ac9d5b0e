"""Headless command ``jupyter research-agent``: explore a cell from a terminal or a batch job.

    jupyter research-agent explore NOTEBOOK --cell CELL_ID [options]
    jupyter research-agent list [--notebook PATH]
    jupyter research-agent show EXPLORATION_ID
    jupyter research-agent export EXPLORATION_ID --to csv|json|ipynb -o FILE

Exit status: 0 done, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from .core.config import EngineConfig, default_ledger_path
from .core.errors import InvalidInput, NotFound, ResearchAgentError
from .core.models import (
    CreateExploration,
    Direction,
    EngineEvent,
    Exploration,
    ExplorationStatus,
    Proposal,
    RunStatus,
)

if TYPE_CHECKING:
    from .core.engine import Engine

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our bad-input status."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


# ------------------------------------------------------------------ argument building
# Every option of ``explore`` is declared in these functions, grouped by concern, so new
# options (model, base URL, dry run, rounds...) are added in one place with their config.


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        type=Path,
        default=None,
        help=f"the ledger file (default: {default_ledger_path()})",
    )


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, help="the notebook (.ipynb)")
    parser.add_argument(
        "--cell", required=True, help="id of the cell to vary, or @N for the Nth cell (from 0)"
    )


def _add_proposing(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("proposals")
    group.add_argument("--max-proposals", type=int, default=6, metavar="N")
    group.add_argument(
        "--sweep",
        metavar="SPEC",
        help='a grid over variables of the cell: "lr=0.01,0.1 epochs=5,10"',
    )
    group.add_argument(
        "--seeds", type=_positive_int, default=1, metavar="K", help="repeat every run K times"
    )
    group.add_argument("--offline", action="store_true", help="propose without a language model")
    group.add_argument(
        "--instructions", default="", help="what to try, in words (for the proposer)"
    )


def _add_metric(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metric")
    group.add_argument("--metric", metavar="NAME", help="the metric to compare on")
    direction = group.add_mutually_exclusive_group()
    direction.add_argument(
        "--maximize", dest="direction", action="store_const", const=Direction.MAXIMIZE
    )
    direction.add_argument(
        "--minimize", dest="direction", action="store_const", const=Direction.MINIMIZE
    )


def _add_execution(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("execution")
    group.add_argument(
        "--parallel", type=_positive_int, metavar="P", help="side kernels at once (default: cores)"
    )
    group.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="per run (default: 600)"
    )
    group.add_argument("--yes", action="store_true", help="approve every proposal")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table")


EXPLORE_OPTIONS = (_add_target, _add_proposing, _add_metric, _add_execution, _add_output)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jupyter research-agent",
        description="Explore variations of a notebook cell in side kernels.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    explore = commands.add_parser("explore", help="propose, approve and run variations of a cell")
    for add in EXPLORE_OPTIONS:
        add(explore)
    _add_common(explore)

    listing = commands.add_parser("list", help="explorations in the ledger, newest first")
    listing.add_argument("--notebook", help="only explorations of this notebook path")
    _add_output(listing)
    _add_common(listing)

    show = commands.add_parser("show", help="one exploration and its comparison")
    show.add_argument("exploration_id")
    _add_output(show)
    _add_common(show)

    export = commands.add_parser("export", help="write an exploration to a file")
    export.add_argument("exploration_id")
    export.add_argument("--to", choices=("csv", "json", "ipynb"), required=True)
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    _add_common(export)
    return parser


def config_from_args(args: argparse.Namespace, root_dir: Path) -> EngineConfig:
    """The engine settings the flags ask for; unset flags keep the defaults."""
    settings: dict[str, Any] = {"root_dir": root_dir}
    if args.ledger is not None:
        settings["ledger_path"] = args.ledger
    if getattr(args, "parallel", None):
        settings["pool_size"] = args.parallel
    if getattr(args, "timeout", None):
        settings["run_timeout_s"] = args.timeout
    return EngineConfig(**settings)


def _notebook_location(path: Path) -> tuple[Path, str]:
    """Root and notebook path for the engine: relative to the working directory when inside it."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved.is_relative_to(cwd):
        return cwd, resolved.relative_to(cwd).as_posix()
    return resolved.parent, resolved.name


# ------------------------------------------------------------------ explore


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
            extra = f" ({reason})" if event.status != RunStatus.SUCCEEDED else f"  {shown}"
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


async def _explore(args: argparse.Namespace) -> int:
    # Imported here: the ledger commands stay quick to start without kernels and nbformat.
    from .core.engine import Engine

    root, notebook_path = _notebook_location(args.notebook)
    engine = Engine(config_from_args(args, root))
    progress = _Progress(engine, sys.stderr)
    if args.format == "table":
        engine.subscribe(progress)
    interrupted = True
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
        exp = await engine.wait_proposals(exp.id)
        if exp.status == ExplorationStatus.FAILED:
            raise ResearchAgentError(f"proposing failed: {exp.error}")
        _note(args, f"{len(exp.proposals)} proposals ({exp.proposer.value}) for cell {exp.cell_id}")
        for proposal in await _choose(exp.proposals, args.yes):
            await engine.approve(proposal.id, proposal.code_sha256)
        final = await engine.wait_runs(exp.id)
        interrupted = False
    finally:
        reason = "interrupted (Ctrl-C)" if interrupted else "the command ended"
        await engine.close(reason)
    _print_result(args.format, final)
    if final.baseline is not None and final.baseline.status != RunStatus.SUCCEEDED:
        sys.stderr.write(
            f"error: the baseline run {final.baseline.status.value}: {final.baseline.reason}\n"
        )
        return EXIT_FAILURE
    return EXIT_OK


def _note(args: argparse.Namespace, text: str) -> None:
    if args.format == "table":
        sys.stderr.write(text + "\n")


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
                "status": row.status if row else (first.status.value if first else "not run"),
                "proposal_status": proposal.status.value,
                "reason": telling.reason if telling else "",
                "metrics": row.metrics if row else (first.metrics if first else {}),
                "duration_s": row.duration_s if row else (first.duration_s if first else None),
                "runs": [r.id for r in runs],
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
            "duration_s": baseline.duration_s if baseline else None,
        },
        "variations": variations,
        "best": exp.comparison.best_proposal_id,
        "comparison": exp.comparison.model_dump(mode="json"),
    }


def _comparison_table(exp: Exploration) -> str:
    from .core.compare import comparison_frame

    frame = comparison_frame(exp.comparison)
    if frame.empty:
        return "(nothing ran)"
    return str(frame.to_string())


def _print_result(fmt: str, exp: Exploration) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(explore_document(exp), indent=2) + "\n")
        return
    sys.stdout.write(_comparison_table(exp) + "\n")
    if exp.comparison.summary:
        sys.stdout.write(exp.comparison.summary + "\n")


# ------------------------------------------------------------------ ledger commands


def _open_ledger(args: argparse.Namespace) -> Any:
    from .core.ledger import Ledger

    return Ledger(args.ledger or default_ledger_path())


def _list(args: argparse.Namespace) -> int:
    ledger = _open_ledger(args)
    try:
        explorations: list[Exploration] = ledger.list_explorations(args.notebook)
    finally:
        ledger.close()
    if args.format == "json":
        doc = [
            {
                "id": e.id,
                "notebook": e.notebook_path,
                "cell": e.cell_id,
                "status": e.status.value,
                "created_at": e.created_at.isoformat(),
                "proposals": len(e.proposals),
                "best": e.comparison.best_proposal_id,
            }
            for e in explorations
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_OK
    for e in explorations:
        runs = len(e.runs) + (e.baseline is not None)
        sys.stdout.write(
            f"{e.id}  {e.created_at:%Y-%m-%d %H:%M}  {e.status.value:<9}  "
            f"{e.notebook_path} [{e.cell_id}]  {len(e.proposals)} proposals, {runs} runs\n"
        )
    if not explorations:
        sys.stdout.write("no explorations\n")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    ledger = _open_ledger(args)
    try:
        exp: Exploration = ledger.load_exploration(args.exploration_id)
    finally:
        ledger.close()
    if args.format == "json":
        sys.stdout.write(exp.model_dump_json(indent=2) + "\n")
        return EXIT_OK
    sys.stdout.write(
        f"exploration {exp.id}: {exp.notebook_path} [{exp.cell_id}], {exp.status.value}, "
        f"proposer {exp.proposer.value}\n"
    )
    if exp.error:
        sys.stdout.write(f"error: {exp.error}\n")
    for p in exp.proposals:
        sys.stdout.write(f"  {p.id}  {p.status.value:<8}  {p.title}\n")
    sys.stdout.write(_comparison_table(exp) + "\n")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .core.export import export_exploration

    ledger = _open_ledger(args)
    try:
        export_exploration(ledger, args.exploration_id, args.to, args.output)
    finally:
        ledger.close()
    sys.stderr.write(f"wrote {args.output}\n")
    return EXIT_OK


# ------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "explore":
            return asyncio.run(_explore(args))
        if args.command == "list":
            return _list(args)
        if args.command == "show":
            return _show(args)
        return _export(args)
    except (InvalidInput, NotFound) as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_BAD_INPUT
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        sys.stderr.write(f"error: {problems}\n")
        return EXIT_BAD_INPUT
    except ResearchAgentError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; every side kernel was shut down\n")
        return EXIT_INTERRUPTED
    except OSError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
