"""An autopilot's budget: runs started, wall-clock minutes, model tokens; and why it stopped.

The budget is a private copy of the researcher's settings, taken when the autopilot starts.
Nothing the proposer writes, nothing a run prints and nothing written to the ledger afterwards
is ever read back into it: the only way to change a budget is to stop and start again, which
only the researcher's own API calls do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .models import AutopilotSettings

STOPPED_BY_RESEARCHER = "stopped by the researcher"
ENGINE_STOPPED = "the engine stopped"
NOTHING_NEW = "no new proposals to try"
NO_METRIC = "no metric with a known direction to choose the best variation by"


def rounds_done(rounds: int) -> str:
    return f"all {rounds} rounds done" if rounds != 1 else "the round is done"


def runs_spent(runs: int) -> str:
    return f"run budget spent ({runs} runs)"


def time_spent(minutes: float) -> str:
    unit = "minute" if minutes == 1 else "minutes"
    return f"time budget spent ({minutes:g} {unit})"


def runs_stopped(reason: str) -> str:
    """The reason of runs an autopilot cancels when it is stopped for ``reason``."""
    return f"autopilot {reason}" if reason.startswith("stopped") else f"autopilot stopped: {reason}"


def tokens_spent(tokens: int) -> str:
    return f"token budget spent ({tokens} tokens)"


def failed(err: BaseException) -> str:
    return f"the autopilot failed: {type(err).__name__}: {err}"


@dataclass
class Budget:
    """Counts against the limits of one autopilot. ``settings`` is frozen; so is the copy."""

    settings: AutopilotSettings
    started: float = field(default_factory=time.monotonic)
    runs_used: int = 0
    tokens_used: int = 0

    def __post_init__(self) -> None:
        # A copy nobody else holds: later changes to the caller's object cannot reach it.
        self.settings = AutopilotSettings.model_validate(self.settings.model_dump())

    @property
    def runs_left(self) -> int:
        return max(0, self.settings.budget_runs - self.runs_used)

    def can_start(self, runs: int) -> bool:
        return runs <= self.runs_left

    def seconds_left(self, now: float | None = None) -> float:
        spent = (time.monotonic() if now is None else now) - self.started
        return max(0.0, self.settings.budget_minutes * 60.0 - spent)

    def tokens_exhausted(self) -> bool:
        limit = self.settings.budget_tokens
        return limit is not None and self.tokens_used >= limit

    def spent_reason(self, now: float | None = None) -> str | None:
        """Why no more work may start, or None while budget is left."""
        if self.runs_left == 0:
            return runs_spent(self.settings.budget_runs)
        if self.seconds_left(now) <= 0:
            return time_spent(self.settings.budget_minutes)
        if self.tokens_exhausted():
            return tokens_spent(self.settings.budget_tokens or 0)
        return None
