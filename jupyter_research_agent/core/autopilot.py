"""The autopilot: rounds of proposals, runs and choices within the researcher's budget.

One pilot per exploration, started and stopped only by the researcher. A round approves the
pending proposals of the kinds the researcher allowed (others wait for a click), waits for the
runs, asks for a repair of what crashed, repeats a promising variation across seeds, and keeps
it as the base of the next round only if it beats the best so far beyond the noise.

Pilots share the side-kernel pool: each keeps at most ``pool_size / active pilots`` runs in
flight (at least one), so several explorations progress side by side instead of one after
another.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import budget as reasons
from . import exploration_tasks as tasks
from .autopilot_verdict import crashed, judge, missing_seeds, round_best, row_of, value_of
from .budget import Budget
from .engine_rounds import AUTOPILOT
from .errors import Conflict, ResearchAgentError
from .lineage import LineageNode, lineage, path_to
from .models import (
    AutopilotSettings,
    AutopilotState,
    Exploration,
    ExplorationKind,
    ExplorationStatus,
    Proposal,
    ProposalStatus,
    ProposeRequest,
    utcnow,
)

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

MAX_NOTES = 50


class AutopilotView(BaseModel):
    """One exploration's autopilot: its state and the lineage tree (the panel's tree view)."""

    exploration_id: str
    notebook_path: str
    cell_id: str
    active: bool
    state: AutopilotState | None
    lineage: LineageNode


class AutopilotSummary(BaseModel):
    """An active autopilot in the list across notebooks."""

    exploration_id: str
    notebook_path: str
    cell_id: str
    exploration_status: ExplorationStatus
    metric: str | None
    best_value: float | None
    state: AutopilotState


class AutopilotList(BaseModel):
    autopilots: list[AutopilotSummary]


class AutopilotManager:
    """The pilots of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pilots: dict[str, _Pilot] = {}

    async def start(self, exploration_id: str, settings: AutopilotSettings) -> AutopilotView:
        """Put an exploration on autopilot with this budget (the researcher's call only)."""
        if exploration_id in self.pilots:
            raise Conflict(
                f"exploration {exploration_id} is already on autopilot; stop it first to "
                "start again with another budget"
            )
        self.engine.live_exploration(exploration_id)  # NotFound for an unknown id
        pilot = _Pilot(self, exploration_id, settings)
        pilot.task = self.engine.spawn_owned(pilot.run())
        self.pilots[exploration_id] = pilot
        pilot.save("started")
        return self.view(exploration_id)

    async def stop(
        self, exploration_id: str, reason: str = reasons.STOPPED_BY_RESEARCHER
    ) -> AutopilotView:
        """End the autopilot at once: no more rounds, queued and running runs cancelled."""
        pilot = self.pilots.get(exploration_id)
        if pilot is None:
            self.engine.live_exploration(exploration_id)  # NotFound for an unknown id
            return self.view(exploration_id)
        pilot.finish(reason)
        if pilot.task is not None:
            pilot.task.cancel()
            await asyncio.gather(pilot.task, return_exceptions=True)
        await pilot.cancel_runs(reasons.runs_stopped(reason))
        return self.view(exploration_id)

    async def wait(self, exploration_id: str) -> AutopilotState | None:
        """Until the exploration's autopilot has stopped (at once when none is active)."""
        await self.engine.wait_for(lambda: exploration_id not in self.pilots)
        return self.engine.get_exploration(exploration_id).autopilot

    def view(self, exploration_id: str) -> AutopilotView:
        exp = self.engine.get_exploration(exploration_id)
        active = exp.id in self.pilots
        state = exp.autopilot
        if state is not None and not state.stopped and not active:
            # Recorded by an engine that ended without closing (a killed server): not running.
            state = state.model_copy(
                update={"stopped": True, "enabled": False, "stop_reason": reasons.ENGINE_STOPPED}
            )
        return AutopilotView(
            exploration_id=exp.id,
            notebook_path=exp.notebook_path,
            cell_id=exp.cell_id,
            active=active,
            state=state,
            lineage=lineage(exp),
        )

    def active(self) -> AutopilotList:
        """Every running autopilot, across notebooks, oldest first."""
        found: list[AutopilotSummary] = []
        for exploration_id in list(self.pilots):
            exp = self.engine.get_exploration(exploration_id)
            if exp.autopilot is None:
                continue
            best = exp.autopilot.best_path[-1] if exp.autopilot.best_path else None
            found.append(
                AutopilotSummary(
                    exploration_id=exp.id,
                    notebook_path=exp.notebook_path,
                    cell_id=exp.cell_id,
                    exploration_status=exp.status,
                    metric=exp.comparison.metric,
                    best_value=value_of(row_of(exp.comparison, best), exp.comparison.metric),
                    state=exp.autopilot,
                )
            )
        return AutopilotList(autopilots=found)

    def share(self) -> int:
        """Runs one pilot may keep in flight: a fair part of the pool, at least one."""
        return max(1, self.engine.config.pool_size // max(1, len(self.pilots)))


class _Pilot:
    """Drives one exploration; every judgement is recorded in its state's notes."""

    def __init__(self, manager: AutopilotManager, exploration_id: str, settings: Any) -> None:
        self.manager = manager
        self.engine = manager.engine
        self.id = exploration_id
        self.budget = Budget(settings)
        self.settings = self.budget.settings
        self.state = AutopilotState(settings=self.settings, started_at=utcnow())
        self.task: asyncio.Task[None] | None = None
        self.incumbent: str | None = None  # the best variation so far; None: the baseline
        self.blocked: str | None = None  # the run budget ran out in the middle of a round
        self.handled: set[str] = set()  # crashed proposals already given their repair attempt
        self.repairs: set[str] = set()
        self.members: set[str] = set()  # proposals run in the current round

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.budget.seconds_left()):
                await self._drive()
        except TimeoutError:
            self.finish(reasons.time_spent(self.settings.budget_minutes))
            await self.cancel_runs(reasons.time_spent(self.settings.budget_minutes))
        except asyncio.CancelledError:
            self.finish(reasons.ENGINE_STOPPED)
            raise
        except Exception as err:
            log.exception("autopilot of exploration %s failed", self.id)
            self.finish(reasons.failed(err))

    def finish(self, reason: str) -> None:
        """Stop with ``reason``; the first reason given is the one kept."""
        if self.state.stopped:
            return
        self._refresh_tokens()
        self.state.stopped = True
        self.state.enabled = False
        self.state.stop_reason = reason
        self.state.ended_at = utcnow()
        if self.manager.pilots.get(self.id) is self:
            del self.manager.pilots[self.id]
        self.save("stopped")

    async def cancel_runs(self, reason: str) -> None:
        """Cancel every unfinished run; ``reason`` is what each run records."""
        exp = self.engine.live_exploration(self.id)
        pending = [self.engine.cancel_run(run.id, reason) for run in tasks.active_runs(exp)]
        await asyncio.gather(*pending, return_exceptions=True)

    def save(self, event: str) -> None:
        self.state.runs_used = self.budget.runs_used
        self.state.tokens_used = self.budget.tokens_used
        self.engine.save_autopilot(self.id, self.state, event)

    def note(self, text: str) -> None:
        self.state.notes = [*self.state.notes, text][-MAX_NOTES:]

    # ------------------------------------------------------------ rounds

    async def _drive(self) -> None:
        exp = await self.engine.wait_proposals(self.id)
        if exp.status == ExplorationStatus.FAILED:
            self.finish(f"proposing failed: {exp.error}")
            return
        round_no = max((p.round for p in exp.proposals), default=0)
        self.state.round = round_no
        self.save("round")
        while True:
            await self._run_round(round_no)
            await self._repair(round_no)
            if not await self._decide(round_no):
                return
            self.state.rounds_done += 1
            self.save("round_done")
            if self.state.rounds_done >= self.settings.rounds:
                self.finish(reasons.rounds_done(self.settings.rounds))
                return
            spent = self.blocked or self._spent()
            if spent:
                self.finish(spent)
                return
            round_no += 1
            self.state.round = round_no
            self.members = set()
            if not await self._propose(round_no) and not self._untried():
                self.finish(reasons.NOTHING_NEW)
                return
            self.save("round")

    def _untried(self) -> list[Proposal]:
        """Allowed proposals built on the best so far that have not run, oldest round first.

        When a round brings no improvement, the next one still has these to try."""
        exp = self.engine.get_exploration(self.id)
        return sorted(
            (
                p
                for p in exp.proposals
                if p.status == ProposalStatus.PROPOSED
                and p.approvable
                and p.parent_id == self.incumbent
                and p.kind in self.settings.allowed_kinds
                and p.id not in self.repairs
            ),
            key=lambda p: p.round,
        )

    async def _run_round(self, round_no: int) -> None:
        exp = self.engine.get_exploration(self.id)
        for proposal in exp.proposals:
            waiting = proposal.status == ProposalStatus.PROPOSED and proposal.round == round_no
            if waiting and proposal.kind not in self.settings.allowed_kinds:
                self.note(f"{proposal.title}: a {proposal.kind.value} change; waits for you")
        await self._approve_all(self._untried()[: self.settings.per_round])
        await self._wait_idle()

    async def _approve_all(self, proposals: list[Proposal]) -> None:
        live = self.engine.live_exploration(self.id)
        for proposal in proposals:
            if self.blocked:
                return
            await self._fair_turn(live)
            needed = live.seeds * (1 if live.baseline is not None else 2)
            if not self.budget.can_start(needed):
                self.blocked = reasons.runs_spent(self.settings.budget_runs)
                return
            before = len(tasks.all_runs(live))
            try:
                await self.engine.approve_as(proposal.id, proposal.code_sha256, AUTOPILOT)
            except Conflict as err:  # edited or rejected by the researcher meanwhile
                self.note(f"{proposal.title}: not approved ({err})")
                continue
            self.members.add(proposal.id)
            self._count(len(tasks.all_runs(live)) - before)

    async def _fair_turn(self, live: Exploration) -> None:
        await self.engine.wait_for(lambda: len(tasks.active_runs(live)) < self.manager.share())

    async def _wait_idle(self) -> None:
        live = self.engine.live_exploration(self.id)
        await self.engine.wait_for(lambda: not tasks.active_runs(live))

    def _count(self, runs: int) -> None:
        self.budget.runs_used += runs
        self.save("runs")

    def _refresh_tokens(self) -> None:
        try:
            self.budget.tokens_used = self.engine.tokens_used(self.id)
        except Exception:  # the ledger may already be closing; the last count stands
            log.debug("token count unavailable for %s", self.id)

    def _spent(self) -> str | None:
        self._refresh_tokens()
        return self.budget.spent_reason()

    # ------------------------------------------------------------ repairs

    async def _repair(self, round_no: int) -> None:
        exp = self.engine.get_exploration(self.id)
        broken = [
            (p, error)
            for p in exp.proposals
            if p.id in self.members and p.id not in self.handled and p.id not in self.repairs
            for error in [crashed(exp, p)]
            if error is not None
        ]
        if not broken:
            return
        use_model = self.engine.model_proposer_used(self.id)
        made: list[Proposal] = []
        for proposal, error in broken:
            self.handled.add(proposal.id)
            what = f"{error.get('ename', 'Error')}: {error.get('evalue', '')}".strip(": ")
            if not use_model:
                self.note(
                    f"{proposal.title} crashed ({what}); a repair needs a language model, "
                    "which this exploration does not use"
                )
                continue
            if self._spent():
                break
            request = _repair_request(self.engine, exp, proposal, error, round_no)
            try:
                kept = await self.engine.propose_more(self.id, request, use_model=True, keep=1)
            except ResearchAgentError as err:
                self.note(f"the repair of {proposal.title} failed: {err}")
                continue
            if not kept:
                self.note(f"no repair of {proposal.title} was proposed")
            self.repairs.update(p.id for p in kept)
            made.extend(kept)
        self._refresh_tokens()
        allowed = [p for p in made if p.kind in self.settings.allowed_kinds and p.approvable]
        for proposal in made:
            if proposal not in allowed:
                self.note(f"repair {proposal.title}: waits for you")
        await self._approve_all(allowed)
        await self._wait_idle()

    # ------------------------------------------------------------ choosing

    async def _decide(self, round_no: int) -> bool:
        """Judge the round; False when the autopilot cannot go on (no metric to judge by)."""
        exp = self.engine.get_exploration(self.id)
        comparison = exp.comparison
        if comparison.metric is None or comparison.direction is None:
            self.finish(reasons.NO_METRIC)
            return False
        candidate = round_best(comparison, self.members)
        if candidate is None or candidate.proposal_id is None:
            self.note(f"round {round_no}: no variation reported {comparison.metric}")
            return True
        first = judge(candidate, row_of(comparison, self.incumbent), comparison)
        if first.verdict in ("not_better", "no_value"):
            self.note(f"round {round_no}: no variation beat the best so far")
            return True
        if self.settings.seeds_for_promising > 1:
            if not await self._repeat(candidate.proposal_id):
                self.note(
                    f"round {round_no}: {candidate.label} looks better, but the run budget "
                    "does not allow repeating it across seeds; not counted as better"
                )
                return True
            exp = self.engine.get_exploration(self.id)
            comparison = exp.comparison
        chosen = row_of(comparison, candidate.proposal_id)
        verdicts = [judge(chosen, row_of(comparison, self.incumbent), comparison)]
        if self.incumbent is not None:
            verdicts.append(judge(chosen, row_of(comparison, None), comparison))
        metric = comparison.metric
        if all(v.better for v in verdicts):
            self.incumbent = candidate.proposal_id
            self.state.best_path = path_to(exp, self.incumbent)
            value = value_of(chosen, metric)
            self.note(f"round {round_no}: {candidate.label} is the new best ({metric} {value:.4g})")
        elif any(v.verdict == "within_noise" for v in verdicts):
            noisy = next(v for v in verdicts if v.verdict == "within_noise")
            self.note(
                f"round {round_no}: {candidate.label} is ahead by {noisy.gap:.4g}, within the "
                f"seed noise (std {noisy.noise:.4g}); not counted as better"
            )
        else:
            self.note(f"round {round_no}: no variation beat the best so far")
        return True

    async def _repeat(self, proposal_id: str) -> bool:
        """Bring the candidate, the baseline and the best so far to the wanted seed count."""
        live = self.engine.live_exploration(self.id)
        wanted = self.settings.seeds_for_promising
        targets: list[str | None] = [proposal_id, None]
        if self.incumbent is not None:
            targets.append(self.incumbent)
        plan = {target: missing_seeds(live, target, wanted) for target in targets}
        total = sum(len(seeds) for seeds in plan.values())
        if not self.budget.can_start(total):
            self.blocked = reasons.runs_spent(self.settings.budget_runs)
            return False
        for target, seeds in plan.items():
            if seeds:
                self._count(self.engine.repeat_runs(self.id, target, seeds))
        await self._wait_idle()
        return True

    # ------------------------------------------------------------ proposing

    async def _propose(self, round_no: int) -> bool:
        exp = self.engine.get_exploration(self.id)
        use_model = self.engine.model_proposer_used(self.id)
        base = tasks.find_proposal(exp, self.incumbent) if self.incumbent else None
        per_round = self.settings.per_round
        # The offline proposer is free: ask for more, since repeats of earlier code are dropped.
        asked = per_round if use_model else per_round + len(exp.proposals) + 1
        request = ProposeRequest(
            notebook=self.engine.exploration_notebook(self.id),
            cell_id=exp.cell_id,
            kind=ExplorationKind.VARIATIONS if exp.kind == ExplorationKind.FIX else exp.kind,
            metric=exp.metric,
            instructions=exp.instructions,
            max_proposals=min(asked, 50),
            seeds=exp.seeds,
            base_code=base.code if base is not None else None,
            round=round_no,
            parent_id=self.incumbent,
        )
        try:
            kept = await self.engine.propose_more(
                self.id, request, use_model=use_model, keep=per_round
            )
        except ResearchAgentError as err:
            self.note(f"round {round_no}: proposing failed: {err}")
            return False
        finally:
            self._refresh_tokens()
        return bool(kept)


def _repair_request(
    engine: Engine,
    exp: Exploration,
    proposal: Proposal,
    error: dict[str, Any],
    round_no: int,
) -> ProposeRequest:
    """A fix request for a crashed variation: its code, with the error where it happened."""
    nb = engine.exploration_notebook(exp.id)
    failing = str(error.get("cell_id") or exp.cell_id)
    output = {
        "output_type": "error",
        "ename": str(error.get("ename", "")),
        "evalue": str(error.get("evalue", "")),
        "traceback": [str(line) for line in error.get("traceback", [])][-40:],
    }
    for cell in nb.cells:
        if cell.id == failing:
            cell.outputs = [output]
    what = f"{output['ename']}: {output['evalue']}".strip(": ")
    instructions = (
        f"This variation ({proposal.title}) failed in cell {failing}: {what}. Repair it so it "
        "runs, keeping the change it tried."
    )
    if exp.instructions.strip():
        instructions += f" The researcher's request: {exp.instructions.strip()}"
    return ProposeRequest(
        notebook=nb,
        cell_id=exp.cell_id,
        kind=ExplorationKind.FIX,
        metric=exp.metric,
        instructions=instructions,
        max_proposals=1,
        seeds=exp.seeds,
        base_code=proposal.code,
        round=round_no,
        parent_id=proposal.id,
    )
