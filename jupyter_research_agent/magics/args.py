"""Parse a `%research` line into one typed model per subcommand.

CELL (for propose, fix and seeds) is one of:
  -1 (default), -2, ...   the code cell just above the magic's cell, the one above that, ...
  N or @N                 the cell at position N of the saved notebook, all cells counted
                          from 0 (3 is the 4th cell); it must be a code cell
  anything else           a cell id (the "id" field of the cell in the .ipynb file)
With the cell form `%%research propose ...`, the code below the magic line is the code to
explore, in place of the magic's own cell; the notebook's other cells come from the saved file.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.models import Direction, ExplorationKind

PROG = "%research"


class UsageError(Exception):
    """A line that does not parse; ``str(err)`` is one line for the researcher."""


class HelpRequested(Exception):
    """``-h`` / no arguments: ``str(err)`` is the help text to print."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Targeted(_Args):
    """Subcommands that create an exploration of one cell."""

    cell: str | None = None
    metric: str | None = None
    direction: Direction | None = None
    instructions: str = ""
    max_proposals: int = Field(default=6, ge=0, le=50)
    seeds: int = Field(default=1, ge=1, le=20)
    offline: bool = False
    sweep: str | None = None
    # The `%%research` cell form: the magic cell's own body is the code to explore.
    body: str | None = None

    @field_validator("metric")
    @classmethod
    def _metric_has_name(cls, value: str | None) -> str | None:
        if value is not None and not value.split("=", 1)[0].strip():
            raise ValueError("--metric needs a name: NAME or NAME=EXPR")
        return value

    @field_validator("cell")
    @classmethod
    def _cell_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("CELL is empty")
        return value

    kind: ClassVar[ExplorationKind]


class ProposeArgs(_Targeted):
    kind = ExplorationKind.VARIATIONS
    command: Literal["propose"] = "propose"


class FixArgs(_Targeted):
    kind = ExplorationKind.FIX
    command: Literal["fix"] = "fix"


class SeedsArgs(_Targeted):
    kind = ExplorationKind.SEEDS
    command: Literal["seeds"] = "seeds"
    seeds: int = Field(default=5, ge=2, le=20)


class ApproveArgs(_Args):
    command: Literal["approve"] = "approve"
    ids: list[str] = Field(min_length=1)


class RunArgs(_Args):
    command: Literal["run"] = "run"


class StatusArgs(_Args):
    command: Literal["status"] = "status"
    exploration_id: str | None = None


class ResultsArgs(_Args):
    command: Literal["results"] = "results"
    exploration_id: str | None = None
    wait: bool = True
    timeout: float = Field(default=600.0, gt=0, le=86_400)


class ListArgs(_Args):
    command: Literal["list"] = "list"


class OpenArgs(_Args):
    command: Literal["open"] = "open"
    exploration_id: str


Command = Annotated[
    ProposeArgs
    | FixArgs
    | SeedsArgs
    | ApproveArgs
    | RunArgs
    | StatusArgs
    | ResultsArgs
    | ListArgs
    | OpenArgs,
    Field(discriminator="command"),
]


class _Holder(BaseModel):
    command: Command


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise HelpRequested(message or "")

    def print_help(self, file: Any = None) -> None:
        raise HelpRequested(self.format_help())


def _add_target_options(sub: argparse.ArgumentParser, *, sweep: bool, seeds_default: int) -> None:
    sub.add_argument(
        "cell",
        nargs="?",
        metavar="CELL",
        help="cell id, position N (0-based, all cells) or -K (Kth code cell above; default -1)",
    )
    sub.add_argument("--metric", metavar="NAME[=EXPR]", help="metric to compare runs on")
    direction = sub.add_mutually_exclusive_group()
    direction.add_argument("--maximize", dest="direction", action="store_const", const="maximize")
    direction.add_argument("--minimize", dest="direction", action="store_const", const="minimize")
    sub.add_argument("--instructions", default="", metavar="TEXT", help="free-text guidance")
    sub.add_argument("--max-proposals", type=int, default=6, metavar="N")
    sub.add_argument("--seeds", type=int, default=seeds_default, metavar="K", help="seeds per run")
    sub.add_argument("--offline", action="store_true", help="use the offline proposer")
    if sweep:
        sub.add_argument("--sweep", metavar="SPEC", help='grid, e.g. "lr=0.001,0.01 epochs=3,10"')


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Propose, approve and compare experiment variations of notebook cells. "
        "Variations run in side kernels, never in this one.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    _add_target_options(
        subs.add_parser("propose", help="propose variations of a cell"), sweep=True, seeds_default=1
    )
    _add_target_options(
        subs.add_parser("fix", help="propose fixes for a failing cell"),
        sweep=False,
        seeds_default=1,
    )
    _add_target_options(
        subs.add_parser("seeds", help="rerun a cell across K seeds"), sweep=False, seeds_default=5
    )
    approve = subs.add_parser("approve", help="approve proposals (ids) or all of an exploration")
    approve.add_argument("ids", nargs="+", metavar="EXP_ID|PROPOSAL_ID")
    subs.add_parser("run", help="approve every proposal shown in the last view")
    status = subs.add_parser("status", help="progress of an exploration (default: the last one)")
    status.add_argument("exploration_id", nargs="?", metavar="EXP_ID")
    results = subs.add_parser("results", help="the comparison as a pandas DataFrame")
    results.add_argument("exploration_id", nargs="?", metavar="EXP_ID")
    results.add_argument("--no-wait", dest="wait", action="store_false", help="do not wait")
    results.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS")
    subs.add_parser("list", help="explorations of this notebook")
    open_ = subs.add_parser("open", help="show an exploration in the widget view")
    open_.add_argument("exploration_id", metavar="EXP_ID")
    return parser


def usage() -> str:
    return build_parser().format_help()


def parse(line: str, body: str | None = None) -> Command:
    """Parse a magic line (and the cell body of `%%research`) into its subcommand model."""
    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"{PROG}: {err}") from None
    if not argv:
        raise HelpRequested(usage())
    namespace = vars(build_parser().parse_args(argv))
    if namespace.get("command") is None:
        raise HelpRequested(usage())
    if body is not None and body.strip():
        if namespace["command"] not in ("propose", "fix", "seeds"):
            raise UsageError(f"{PROG}: the cell form %%research works with propose, fix and seeds")
        namespace["body"] = body
    fields = {key: value for key, value in namespace.items() if value is not None}
    try:
        return _Holder.model_validate({"command": fields}).command
    except ValidationError as err:
        raise UsageError(f"{PROG} {namespace['command']}: {_first_error(err)}") from None


_OPTION_NAMES = {"cell": "CELL", "ids": "EXP_ID|PROPOSAL_ID", "exploration_id": "EXP_ID"}


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    names = [str(part) for part in first["loc"][2:]]  # drop "command" and the tag
    where = _OPTION_NAMES.get(names[0], "--" + names[0].replace("_", "-")) if names else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where and where not in message else message
