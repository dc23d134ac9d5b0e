"""What the engine offers iterative work (the autopilot): more proposals, repeats, its state.

These are methods of :class:`~.engine.Engine` (mixed in), kept here so the orchestrator stays
readable. Each change happens between two awaits, is written to the ledger and announced, like
every other change of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import exploration_tasks as tasks
from .errors import Conflict
from .models import (
    AutopilotState,
    Exploration,
    ExplorationStatus,
    NotebookDoc,
    Origin,
    Proposal,
    ProposalStatus,
    ProposeRequest,
    Run,
    utcnow,
)
from .proposing import load_model_support, usage_labelled

if TYPE_CHECKING:
    from .autopilot import AutopilotManager
    from .config import EngineConfig
    from .engine_events import EventHub
    from .exploration_store import ExplorationStore
    from .ledger import Ledger
    from .offline import OfflineProposer
    from .proposing import Proposer

AUTOPILOT = "autopilot"


class EngineRounds:
    """Mixed into the engine: the building blocks of rounds, repairs and repeats."""

    if TYPE_CHECKING:
        config: EngineConfig
        _store: ExplorationStore
        _ledger: Ledger
        _events: EventHub
        _offline: OfflineProposer
        _closed: bool
        _tasks: set[asyncio.Task[None]]

        def _submit(
            self, exp: Exploration, nb: NotebookDoc, run: Run, code: str | None
        ) -> None: ...

        def _refresh(self, exp: Exploration) -> None: ...

        def _the_proposer(self) -> Proposer: ...

        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

        def _check_open(self) -> None: ...

        async def approve(self, proposal_id: str, code_sha256: str) -> Proposal: ...

    _autopilots: AutopilotManager | None = None

    @property
    def autopilots(self) -> AutopilotManager:
        """The autopilots of this engine's explorations (created on first use)."""
        if self._autopilots is None:
            from .autopilot import AutopilotManager

            self._autopilots = AutopilotManager(self)  # type: ignore[arg-type]
        return self._autopilots

    # ------------------------------------------------------------ proposals

    async def propose_more(
        self,
        exploration_id: str,
        request: ProposeRequest,
        *,
        use_model: bool,
        keep: int | None = None,
    ) -> list[Proposal]:
        """Ask the proposer again (a next round, a repair) and add at most ``keep`` new ones.

        Proposals repeating the code of an earlier one, the cell as written, or the code they
        are built on are dropped. Model usage is counted against the exploration.
        """
        if use_model:
            await load_model_support(self.config)
        self._check_open()
        exp = self._store.load(exploration_id)
        proposer = self._the_proposer() if use_model else self._offline
        with usage_labelled(exp.id):
            found = await proposer.propose(request)
        base = request.base_code if request.base_code is not None else exp.cell_source
        fresh = [p for p in found if p.seed is not None or p.code != exp.cell_source]
        limit = keep if keep is not None else request.max_proposals
        kept = tasks.accept_proposals(exp, fresh, base, limit=limit)
        for proposal in kept:
            # Lineage is the engine's to record, whatever the proposer wrote.
            proposal.round = request.round
            proposal.parent_id = request.parent_id
        exp.proposals.extend(kept)
        if exp.status == ExplorationStatus.FAILED and kept:
            exp.status = ExplorationStatus.READY
        self._refresh(exp)
        for proposal in kept:
            self._events.emit("proposal", exp, proposal.id, proposal.status)
        return [p.model_copy(deep=True) for p in kept]

    def model_proposer_used(self, exploration_id: str) -> bool:
        """True when the exploration's proposals come from a language model."""
        return self._store.load(exploration_id).proposer == Origin.LLM

    async def approve_as(self, proposal_id: str, code_sha256: str, by: str) -> Proposal:
        """The engine's normal approval, recording who gave it (``autopilot``)."""
        approved = await self.approve(proposal_id, code_sha256)
        _, proposal = self._store.find_proposal(proposal_id)
        if proposal.approved_by is None and proposal.status == ProposalStatus.APPROVED:
            proposal.approved_by = by
            self._ledger.save_proposal(proposal)
            approved.approved_by = by
        return approved

    # ------------------------------------------------------------ repeats

    def repeat_runs(self, exploration_id: str, proposal_id: str | None, seeds: list[int]) -> int:
        """Run a variation (``None``: the baseline) again with these seeds; returns runs started.

        Only approved code is repeated, with the same hash: a seed swap is a mechanical repeat.
        """
        self._check_open()
        exp = self._store.load(exploration_id)
        nb = self._store.notebook(exp)
        repeats = max(len(seeds) + 1, 2)
        if proposal_id is None:
            code = exp.cell_source
            sha = exp.baseline.code_sha256 if exp.baseline is not None else ""
        else:
            proposal = tasks.find_proposal(exp, proposal_id)
            if proposal is None or proposal.status != ProposalStatus.APPROVED:
                raise Conflict(f"proposal {proposal_id} is not approved; it cannot be repeated")
            code, sha = proposal.code, proposal.code_sha256
        for seed in seeds:
            run = Run(
                exploration_id=exp.id,
                proposal_id=proposal_id,
                is_baseline=proposal_id is None,
                seed=seed,
                code_sha256=sha,
            )
            exp.runs.append(run)
            seeded = tasks.seeded_code(code, seed, repeats)
            self._submit(exp, nb, run, None if seeded == exp.cell_source else seeded)
        self._refresh(exp)
        return len(seeds)

    # ------------------------------------------------------------ waiting and state

    async def wait_for(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds, re-checked after every change (or the engine closes)."""
        await self._events.wait_until(done)

    def live_exploration(self, exploration_id: str) -> Exploration:
        """The engine's own object, for read-only checks in ``wait_for`` conditions."""
        return self._store.load(exploration_id)

    def exploration_notebook(self, exploration_id: str) -> NotebookDoc:
        """A copy of the notebook snapshot the exploration runs against."""
        return self._store.notebook(self._store.load(exploration_id)).model_copy(deep=True)

    def spawn_owned(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A background task the engine cancels when it closes; the caller may cancel it too."""
        self._check_open()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def tokens_used(self, exploration_id: str) -> int:
        usage = self._ledger.usage(exploration_id)
        return usage["prompt_tokens"] + usage["completion_tokens"]

    def save_autopilot(self, exploration_id: str, state: AutopilotState, event: str) -> None:
        """Record the autopilot's state on the exploration and announce it.

        While the engine closes, the state is only set: closing saves every exploration.
        """
        exp = self._store.load(exploration_id)
        exp.autopilot = state.model_copy(deep=True)
        if self._closed:
            return
        exp.updated_at = utcnow()
        self._ledger.save_exploration(exp)
        data = {
            "round": state.round,
            "rounds_done": state.rounds_done,
            "runs_used": state.runs_used,
            "stop_reason": state.stop_reason,
        }
        self._events.emit(AUTOPILOT, exp, exp.id, event, data)
        self._events.signal()
