"""The written reading of an exploration once every run has ended.

From the model when the exploration's proposals came from one, from the numbers otherwise
(and whenever the model fails); a fix exploration is read from its verifications. The reading
is a background task: it may wait on the model, and the engine never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import compare
from . import exploration_tasks as tasks
from .agent_notes import fix_summary
from .imports import import_off_loop
from .models import Exploration, ExplorationKind, Origin
from .proposing import usage_labelled

if TYPE_CHECKING:
    from .llm.proposer import LLMProposer

log = logging.getLogger(__name__)

ModelFor = Callable[[Exploration], "LLMProposer | None"]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
Done = Callable[[Exploration, str], None]

# Its package loads openai: seconds the first time, so it is imported off the event loop.
_INTERPRET_MODULE = "jupyter_research_agent.core.llm.interpret"


async def read_results(exp: Exploration, model: LLMProposer | None) -> str:
    """The interpretation of the exploration's comparison as it stands."""
    if exp.kind is ExplorationKind.FIX:
        return fix_summary(exp)
    await import_off_loop(_INTERPRET_MODULE)
    from .llm.interpret import interpret, interpret_numbers

    current = tasks.compared(exp)
    if compare.failure_summary(current) is not None:
        # Nothing to compare: the runs' own reasons say more than any reading of the numbers.
        return compare.build_comparison(current).summary
    comparison = tasks.comparison_of(exp)
    if model is None or exp.proposer is Origin.OFFLINE:
        return interpret_numbers(comparison)
    with usage_labelled(exp.id):
        return await interpret(comparison, model)


class ResultReader:
    """Starts one reading per exploration whose runs have all ended; knows which are pending."""

    def __init__(self, model_for: ModelFor, spawn: Spawn, done: Done) -> None:
        self._model_for = model_for
        self._spawn = spawn
        self._done = done
        # Exploration ids being read: the engine keeps them in memory and waits for them.
        self.pending: set[str] = set()

    def runs_ended(self, exp: Exploration) -> None:
        """Call after a run ends; starts the reading once none is left running."""
        if not tasks.all_runs(exp) or tasks.active_runs(exp) or exp.id in self.pending:
            return
        self.pending.add(exp.id)
        self._spawn(self._read(exp))

    async def _read(self, exp: Exploration) -> None:
        rows = tasks.comparison_of(exp).rows
        try:
            text = await read_results(exp, self._model_for(exp))
        except asyncio.CancelledError:
            self.pending.discard(exp.id)
            raise
        except Exception:
            log.exception("could not interpret the results of exploration %s", exp.id)
            text = ""
        self.pending.discard(exp.id)
        if tasks.active_runs(exp):
            return  # new runs started meanwhile: their end starts a fresh reading
        if tasks.comparison_of(exp).rows != rows:
            self.runs_ended(exp)  # the results moved under the reading: read them again
            return
        self._done(exp, text)
