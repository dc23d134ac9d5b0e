"""Headless command ``jupyter research-agent``: explore a cell from a terminal or a batch job.

    jupyter research-agent explore NOTEBOOK --cell CELL_ID [options]
    jupyter research-agent triage NOTEBOOK --cell CELL_ID [--verify --yes] [--format json]
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
from typing import Any

from pydantic import ValidationError

from .cli_autopilot import add_autopilot_options
from .cli_gateway import add_gateway_options, gateway_settings
from .cli_model import add_model_options, add_triage_options, llm_config_from_args
from .cli_types import positive_float, positive_int
from .core.config import EngineConfig, default_ledger_path
from .core.errors import InvalidInput, NotFound, ResearchAgentError
from .core.models import Direction, Exploration, ExplorationKind

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our bad-input status."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


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
        "--seeds", type=positive_int, default=1, metavar="K", help="repeat every run K times"
    )
    group.add_argument("--offline", action="store_true", help="propose without a language model")
    group.add_argument(
        "--instructions", default="", help="what to try, in words (for the proposer)"
    )


def _add_metric(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metric")
    group.add_argument(
        "--metric",
        metavar="NAME[=EXPR]",
        help='the metric to compare on; "test accuracy=acc" also reads it from `acc`',
    )
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
        "--parallel", type=positive_int, metavar="P", help="side kernels at once (default: cores)"
    )
    group.add_argument(
        "--timeout", type=positive_float, metavar="SECONDS", help="per run (default: 600)"
    )
    group.add_argument("--yes", action="store_true", help="approve every proposal")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table")


EXPLORE_OPTIONS = (
    _add_target,
    _add_proposing,
    _add_metric,
    _add_execution,
    add_autopilot_options,
    add_model_options,
    add_gateway_options,
    _add_output,
)
TRIAGE_OPTIONS = (_add_target, add_triage_options, add_model_options, _add_execution)


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

    triage = commands.add_parser(
        "triage", help="condense a failed cell's error; with a model, propose and verify fixes"
    )
    for add in (*TRIAGE_OPTIONS, add_gateway_options):
        add(triage)
    _add_common(triage)

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
    if hasattr(args, "offline"):
        # The usual OPENAI_* variables and the model flags; without them proposing is offline.
        settings["llm"] = llm_config_from_args(args)
    settings.update(gateway_settings(args))
    return EngineConfig(**settings)


# ------------------------------------------------------------------ ledger commands


def comparison_table(exp: Exploration) -> str:
    """The comparison as a pandas table (pandas is imported only when a table is shown)."""
    from .core.compare import comparison_frame

    frame = comparison_frame(exp.comparison)
    if frame.empty:
        return "(nothing ran)"
    return str(frame.to_string())


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
    sys.stdout.write(comparison_table(exp) + "\n")
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
        if args.command in ("explore", "triage") and args.dry_run:
            from .cli_agent import dry_run

            kind = ExplorationKind.FIX if args.command == "triage" else ExplorationKind.VARIATIONS
            return dry_run(args, kind)
        if args.command == "triage":
            from .cli_agent import triage_command

            return asyncio.run(triage_command(args))
        if args.command == "explore":
            from .cli_explore import explore

            return asyncio.run(explore(args))
        if args.command == "list":
            return _list(args)
        if args.command == "show":
            return _show(args)
        return _export(args)
    except (InvalidInput, NotFound) as err:
        return _failed(args, str(err), EXIT_BAD_INPUT)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return _failed(args, problems, EXIT_BAD_INPUT)
    except ResearchAgentError as err:
        return _failed(args, str(err), EXIT_FAILURE)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; every side kernel was shut down\n")
        return EXIT_INTERRUPTED
    except OSError as err:
        return _failed(args, str(err), EXIT_FAILURE)


def _failed(args: argparse.Namespace, message: str, code: int) -> int:
    """Report an error on stderr; with ``--format json`` also as the one JSON document on
    stdout, so a script reading it never gets empty input."""
    sys.stderr.write(f"error: {message}\n")
    if getattr(args, "format", None) == "json":
        doc = {"error": message, "exploration_id": None, "exit_code": code}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
