"""Autopilot options of ``explore``: ``--rounds``, ``--budget-runs``, ``--budget-minutes`` ...

The command itself is the researcher's consent; without ``--yes`` it asks once, showing the
budget, before any run starts. Declining falls back to asking proposal by proposal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

from .cli_types import positive_float, positive_int
from .core.models import AutopilotSettings, EngineEvent, Exploration, ProposalKind

if TYPE_CHECKING:
    from .core.engine import Engine

_BUDGET_FLAGS = ("budget_runs", "budget_minutes", "budget_tokens", "allow_kinds", "per_round")


def _kinds(text: str) -> list[ProposalKind]:
    known = {k.value for k in ProposalKind}
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in known]
    if unknown or not words:
        raise argparse.ArgumentTypeError(
            f"unknown kind {', '.join(unknown) or '(none)'}; use {', '.join(sorted(known))}"
        )
    return [ProposalKind(w) for w in words]


def add_autopilot_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autopilot (several rounds within a budget)")
    group.add_argument(
        "--rounds",
        type=positive_int,
        metavar="N",
        help="build each round on the best variation so far, N rounds at most",
    )
    group.add_argument("--budget-runs", type=positive_int, metavar="N", help="runs at most (20)")
    group.add_argument(
        "--budget-minutes", type=positive_float, metavar="M", help="wall-clock minutes at most (60)"
    )
    group.add_argument(
        "--budget-tokens", type=positive_int, metavar="T", help="model tokens at most (no limit)"
    )
    group.add_argument(
        "--allow-kinds",
        type=_kinds,
        metavar="KINDS",
        help="kinds run without asking, e.g. parameter,seed (the default); others wait",
    )
    group.add_argument(
        "--per-round", type=positive_int, metavar="N", help="proposals per round (3)"
    )
    group.add_argument(
        "--seeds-for-promising",
        type=positive_int,
        metavar="K",
        help="repeat a promising variation across K seeds before calling it better (1)",
    )


def autopilot_settings(args: argparse.Namespace) -> AutopilotSettings | None:
    """The settings the flags ask for; None when the autopilot was not asked for."""
    rounds = getattr(args, "rounds", None)
    budget_given = any(getattr(args, name, None) is not None for name in _BUDGET_FLAGS)
    if not budget_given and (rounds is None or rounds <= 1):
        return None
    fields: dict[str, Any] = {
        "rounds": rounds or 1,
        "budget_runs": args.budget_runs,
        "budget_minutes": args.budget_minutes,
        "budget_tokens": args.budget_tokens,
        "allowed_kinds": args.allow_kinds,
        "per_round": args.per_round,
        "seeds_for_promising": args.seeds_for_promising,
    }
    return AutopilotSettings(**{k: v for k, v in fields.items() if v is not None})


def describe(settings: AutopilotSettings) -> str:
    tokens = f", {settings.budget_tokens} model tokens" if settings.budget_tokens else ""
    kinds = ", ".join(k.value for k in settings.allowed_kinds)
    return (
        f"up to {settings.rounds} rounds of {settings.per_round} proposals, at most "
        f"{settings.budget_runs} runs and {settings.budget_minutes:g} minutes{tokens}; "
        f"{kinds} changes run without asking"
    )


async def confirmed(
    settings: AutopilotSettings, approve_all: bool, ask: Callable[[str], Awaitable[str]]
) -> bool:
    """``--yes``, or the researcher's yes to the budget shown once."""
    if approve_all:
        return True
    answer = await ask(f"\nAutopilot: {describe(settings)}.\nStart it? [y/N]: ")
    return answer in ("y", "yes")


class AutopilotProgress:
    """Round ends and the stop reason as lines on stderr (the table format's live view)."""

    def __init__(self, engine: Engine, stream: TextIO = sys.stderr) -> None:
        self.engine = engine
        self.stream = stream

    def __call__(self, event: EngineEvent) -> None:
        if event.type != "autopilot" or event.status not in ("round_done", "stopped"):
            return
        state = self.engine.get_exploration(event.exploration_id).autopilot
        if state is None:
            return
        if event.status == "round_done":
            last = state.notes[-1] if state.notes else ""
            self.stream.write(
                f"autopilot: round {state.round} done, {state.runs_used} runs used. {last}\n"
            )
        else:
            self.stream.write(f"autopilot stopped: {state.stop_reason}\n")
        self.stream.flush()


async def drive(engine: Engine, exploration_id: str, settings: AutopilotSettings) -> Exploration:
    """Start the autopilot, wait until it stops and its last runs end."""
    await engine.autopilots.start(exploration_id, settings)
    await engine.autopilots.wait(exploration_id)
    return await engine.wait_runs(exploration_id)


def autopilot_document(exp: Exploration) -> dict[str, Any] | None:
    """The ``autopilot`` part of ``explore --format json``."""
    state = exp.autopilot
    if state is None:
        return None
    return {
        "rounds_done": state.rounds_done,
        "runs_used": state.runs_used,
        "tokens_used": state.tokens_used,
        "stop_reason": state.stop_reason,
        "best_path": state.best_path,
        "notes": state.notes,
        "settings": state.settings.model_dump(mode="json"),
    }
