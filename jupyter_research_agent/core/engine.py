"""The engine: explorations of one cell, approvals, runs in side kernels, live events.

One asyncio orchestrator shared by every front door (server, magics through the server, the
headless command). State changes happen between awaits, so concurrent requests on one event
loop see each change whole; every change is written to the ledger before it is announced.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from . import exploration_tasks as tasks
from . import metrics, notebook, sweep
from .config import EngineConfig
from .errors import Conflict, NotFound, ResearchAgentError
from .ledger import Ledger
from .models import (
    AddProposal,
    CreateExploration,
    EditProposal,
    EngineEvent,
    Exploration,
    ExplorationStatus,
    MetricSpec,
    NotebookDoc,
    Origin,
    Proposal,
    ProposalKind,
    ProposalStatus,
    ProposeRequest,
    Run,
    RunDetail,
    RunStatus,
    sha256_of,
    utcnow,
)
from .offline import OfflineProposer
from .runner import Executor, RunHandle, RunUpdate

log = logging.getLogger(__name__)

STOPPED_REASON = "the engine stopped before this run finished"
PROPOSING_STOPPED = "the engine stopped before the proposals were ready"
# How long cancel_run waits for the executor to confirm before answering.
CANCEL_WAIT_S = 10.0


class Proposer(Protocol):
    origin: Origin

    async def propose(self, request: ProposeRequest) -> list[Proposal]: ...


Listener = Callable[[EngineEvent], None]


def default_proposer(config: EngineConfig) -> Proposer:
    """The model proposer when a model is configured and its module is present, else offline."""
    if config.llm.configured:
        try:
            module = importlib.import_module("jupyter_research_agent.core.llm")
            factory = getattr(module, "make_proposer", None)
            if factory is not None:
                made: Proposer = factory(config)
                return made
        except ImportError:
            log.info("no model proposer available; proposing offline")
    return OfflineProposer()


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        *,
        ledger: Ledger | None = None,
        executor: Executor | None = None,
        proposer: Proposer | None = None,
    ) -> None:
        self.config = config
        self._ledger = ledger if ledger is not None else Ledger(config.ledger_path)
        self._executor = executor
        self._proposer = proposer
        self._offline = OfflineProposer()
        self._explorations: dict[str, Exploration] = {}
        self._notebooks: dict[str, NotebookDoc] = {}
        self._handles: dict[str, RunHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------ explorations

    async def create_exploration(self, req: CreateExploration) -> Exploration:
        """Validate the request, record the exploration and start proposing in the background."""
        self._check_open()
        nb = self._read_notebook(req)
        _, cell = notebook.find_cell(nb, req.cell_id)
        sweep_found = sweep.sweep_proposals(cell.source, req.sweep) if req.sweep else []
        proposer = self._offline if req.offline else self._the_proposer()
        exp = Exploration(
            notebook_path=nb.path,
            cell_id=cell.id,
            kind=req.kind,
            metric=self._metric_spec(req),
            sweep=req.sweep,
            instructions=req.instructions,
            seeds=req.seeds,
            proposer=proposer.origin,
            cell_source=cell.source,
        )
        self._explorations[exp.id] = exp
        self._notebooks[exp.id] = nb
        self._ledger.save_exploration(exp)
        self._ledger.save_notebook(exp.id, nb)
        self._spawn(self._propose(exp, nb, proposer, req, sweep_found))
        self._emit("exploration", exp, exp.id, exp.status)
        return exp.model_copy(deep=True)

    async def wait_proposals(self, exploration_id: str) -> Exploration:
        exp = self._load(exploration_id)
        await self._wait_until(lambda: exp.status != ExplorationStatus.PROPOSING)
        return self.get_exploration(exploration_id)

    async def wait_runs(self, exploration_id: str) -> Exploration:
        """Until proposing has ended and every run of the exploration is terminal."""
        exp = self._load(exploration_id)
        await self._wait_until(
            lambda: exp.status != ExplorationStatus.PROPOSING and not tasks.active_runs(exp)
        )
        return self.get_exploration(exploration_id)

    def get_exploration(self, exploration_id: str) -> Exploration:
        exp = self._load(exploration_id)
        exp.comparison = tasks.comparison_of(exp)
        return exp.model_copy(deep=True)

    def list_explorations(self, notebook_path: str | None = None) -> list[Exploration]:
        stored = self._ledger.list_explorations(notebook_path)
        # Explorations held in memory are as fresh as the ledger or fresher.
        return [
            self._explorations[e.id].model_copy(deep=True) if e.id in self._explorations else e
            for e in stored
        ]

    # ------------------------------------------------------------ proposals

    async def approve(self, proposal_id: str, code_sha256: str) -> Proposal:
        """Approve exactly the code the researcher saw; start its runs (and the baseline's)."""
        self._check_open()
        exp, proposal = self._find_proposal(proposal_id)
        if proposal.status == ProposalStatus.REJECTED:
            raise Conflict(f"proposal {proposal_id} was rejected; it cannot be approved")
        if code_sha256 != proposal.code_sha256:
            raise Conflict(
                f"the code of proposal {proposal_id} is not the code you approved "
                "(it changed since it was shown); review it and approve again"
            )
        if not proposal.approvable:
            why = "; ".join(proposal.warnings) or "it is marked not approvable"
            raise Conflict(f"proposal {proposal_id} cannot be approved: {why}")
        if proposal.status == ProposalStatus.APPROVED and proposal.approved_sha256 == code_sha256:
            return proposal.model_copy(deep=True)
        nb = self._notebook(exp)
        proposal.status = ProposalStatus.APPROVED
        proposal.approved_sha256 = code_sha256
        if exp.baseline is None:
            _, cell = notebook.find_cell(nb, exp.cell_id)
            for index, (run, code) in enumerate(tasks.baseline_runs(exp, cell)):
                if index == 0:
                    exp.baseline = run
                else:
                    exp.runs.append(run)
                self._submit(exp, nb, run, code)
        for run, code in tasks.variation_runs(exp, proposal):
            exp.runs.append(run)
            self._submit(exp, nb, run, code)
        self._ledger.save_proposal(proposal)
        self._refresh(exp)
        self._emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def reject(self, proposal_id: str) -> Proposal:
        exp, proposal = self._find_proposal(proposal_id)
        if proposal.status != ProposalStatus.REJECTED:
            proposal.status = ProposalStatus.REJECTED
            proposal.approved_sha256 = None
            self._cancel_runs_of(exp, proposal.id)
            self._ledger.save_proposal(proposal)
            self._refresh(exp)
            self._emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def edit_proposal(self, proposal_id: str, req: EditProposal) -> Proposal:
        """New code needs a new approval: the proposal goes back to proposed."""
        exp, proposal = self._find_proposal(proposal_id)
        if proposal.status == ProposalStatus.REJECTED:
            raise Conflict(f"proposal {proposal_id} was rejected; add a new proposal instead")
        self._cancel_runs_of(exp, proposal.id)
        proposal.code = req.code
        proposal.code_sha256 = sha256_of(req.code)
        if req.title is not None:
            proposal.title = req.title
        proposal.status = ProposalStatus.PROPOSED
        proposal.approved_sha256 = None
        # The researcher wrote this code: it is theirs to approve.
        proposal.approvable = True
        self._ledger.save_proposal(proposal)
        self._refresh(exp)
        self._emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def add_proposal(self, exploration_id: str, req: AddProposal) -> Proposal:
        exp = self._load(exploration_id)
        proposal = Proposal(
            exploration_id=exp.id,
            title=req.title,
            kind=ProposalKind.OTHER,
            origin=Origin.RESEARCHER,
            rationale=req.rationale,
            code=req.code,
        )
        exp.proposals.append(proposal)
        if exp.status == ExplorationStatus.FAILED:
            # The proposer failed, but the researcher's own variation can still run.
            exp.status = ExplorationStatus.READY
        self._ledger.save_proposal(proposal)
        self._refresh(exp)
        self._emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    # ------------------------------------------------------------ runs

    def get_run(self, run_id: str) -> RunDetail:
        detail = self._ledger.find_run(run_id)
        live = self._live_run(run_id)
        if live is not None:
            detail = RunDetail(**live.model_dump(), cells=detail.cells)
        return detail

    async def cancel_run(self, run_id: str) -> Run:
        exp, run = self._find_run(run_id)
        if not run.status.terminal:
            handle = self._handles.get(run_id)
            if handle is None:
                run.status = RunStatus.CANCELLED
                run.reason = "cancelled by the researcher"
                run.ended_at = utcnow()
                self._ledger.save_run(run)
                self._refresh(exp)
            else:
                handle.cancel()
                try:
                    await asyncio.wait_for(
                        self._wait_until(lambda: run.status.terminal), CANCEL_WAIT_S
                    )
                except TimeoutError:
                    log.warning("run %s did not confirm its cancellation in time", run_id)
        return run.model_copy(deep=True)

    # ------------------------------------------------------------ events and status

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def status(self) -> dict[str, Any]:
        pool = (
            self._executor.status()
            if self._executor is not None
            else {"pool_size": self.config.pool_size, "busy": 0, "queued": 0, "warm": 0}
        )
        active = sum(
            1
            for e in self._explorations.values()
            if e.status in (ExplorationStatus.PROPOSING, ExplorationStatus.RUNNING)
        )
        llm = self.config.llm
        return {
            "pool": pool,
            "model": {
                "configured": llm.configured,
                "name": llm.model,
                "base_url_configured": llm.base_url is not None,
            },
            "explorations_active": active,
        }

    async def close(self, reason: str = STOPPED_REASON) -> None:
        """Stop everything this engine started; unfinished runs are recorded as interrupted."""
        if self._closed:
            return
        self._closed = True
        # Watchers go first, so the executor's own cancellation is not recorded as the cause.
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            if self._executor is not None:
                await self._executor.close()
        finally:
            for exp in self._explorations.values():
                for run in tasks.active_runs(exp):
                    tasks.interrupt(run, reason)
                if exp.status == ExplorationStatus.PROPOSING:
                    exp.status = ExplorationStatus.FAILED
                    exp.error = PROPOSING_STOPPED
                tasks.settle_status(exp)
                exp.updated_at = utcnow()
                self._ledger.save_exploration(exp)
            self._handles.clear()
            self._ledger.close()
            self._signal()

    # ------------------------------------------------------------ internals: proposing

    async def _propose(
        self,
        exp: Exploration,
        nb: NotebookDoc,
        proposer: Proposer,
        req: CreateExploration,
        sweep_found: list[Proposal],
    ) -> None:
        # The researcher's sweep is kept whole; the proposer fills the remaining places.
        room = max(0, req.max_proposals - len(sweep_found))
        try:
            found: list[Proposal] = []
            if room:
                request = ProposeRequest(
                    notebook=nb,
                    cell_id=exp.cell_id,
                    kind=exp.kind,
                    metric=exp.metric,
                    instructions=exp.instructions,
                    max_proposals=room,
                    seeds=exp.seeds,
                )
                found = await proposer.propose(request)
        except asyncio.CancelledError:
            raise
        except ResearchAgentError as err:
            self._fail(exp, str(err))
            return
        except Exception as err:
            log.exception("proposer failed for exploration %s", exp.id)
            self._fail(exp, f"the proposer failed: {type(err).__name__}: {err}")
            return
        kept = tasks.accept_proposals(exp, sweep_found, exp.cell_source)
        kept += tasks.accept_proposals(exp, found, exp.cell_source, limit=room)
        exp.proposals.extend(kept)
        exp.proposer = proposer.origin if found or not sweep_found else Origin.RESEARCHER
        exp.status = ExplorationStatus.READY
        self._refresh(exp)
        for proposal in kept:
            self._emit("proposal", exp, proposal.id, proposal.status)

    def _fail(self, exp: Exploration, message: str) -> None:
        exp.status = ExplorationStatus.FAILED
        exp.error = message
        self._refresh(exp)

    # ------------------------------------------------------------ internals: runs

    def _submit(self, exp: Exploration, nb: NotebookDoc, run: Run, code: str | None) -> None:
        spec = tasks.run_spec(
            nb,
            exp,
            run,
            code,
            cwd=tasks.notebook_dir(self.config.root_dir, nb),
            timeout_s=self.config.run_timeout_s,
            output_cap_bytes=self.config.output_cap_bytes,
        )
        self._ledger.save_run(run)
        handle = self._the_executor().submit(spec, lambda u: self._on_update(exp, run, u))
        self._handles[run.id] = handle
        self._spawn(self._watch(exp, run, handle))

    def _on_update(self, exp: Exploration, run: Run, update: RunUpdate) -> None:
        if run.status.terminal:
            return  # a late update after the result
        moved = update.status != run.status
        run.status = update.status
        run.progress = update.progress
        run.tail = update.tail
        run.kernel_id = update.kernel_id or run.kernel_id
        if update.status == RunStatus.RUNNING and run.started_at is None:
            run.started_at = utcnow()
        if moved:
            self._ledger.save_run(run)
        self._emit(
            "run",
            exp,
            run.id,
            run.status,
            {"progress": run.progress.model_dump(mode="json"), "tail": run.tail[-5:]},
        )

    async def _watch(self, exp: Exploration, run: Run, handle: RunHandle) -> None:
        try:
            result = await handle.wait()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("run %s: the executor failed", run.id)
            run.status = RunStatus.FAILED
            run.reason = f"the executor failed: {type(err).__name__}: {err}"
            run.ended_at = utcnow()
        else:
            tasks.apply_result(run, result)
            self._ledger.save_run_outputs(run.id, result.cells)
        finally:
            self._handles.pop(run.id, None)
        self._ledger.save_run(run)
        self._refresh(exp)
        self._emit("run", exp, run.id, run.status, {"metrics": run.metrics, "reason": run.reason})

    def _cancel_runs_of(self, exp: Exploration, proposal_id: str) -> None:
        for run in tasks.active_runs(exp, proposal_id):
            handle = self._handles.get(run.id)
            if handle is not None:
                handle.cancel()

    # ------------------------------------------------------------ internals: state

    def _refresh(self, exp: Exploration) -> None:
        """Recompute comparison and status, store, announce."""
        tasks.settle_status(exp)
        exp.comparison = tasks.comparison_of(exp)
        exp.updated_at = utcnow()
        self._ledger.save_exploration(exp)
        self._emit("exploration", exp, exp.id, exp.status)
        self._signal()

    def _load(self, exploration_id: str) -> Exploration:
        exp = self._explorations.get(exploration_id)
        if exp is None:
            exp = self._ledger.load_exploration(exploration_id)
            self._explorations[exp.id] = exp
        return exp

    def _notebook(self, exp: Exploration) -> NotebookDoc:
        nb = self._notebooks.get(exp.id)
        if nb is None:
            nb = self._ledger.load_notebook(exp.id)
            if nb is None:
                raise Conflict(f"exploration {exp.id} has no stored notebook; start a new one")
            self._notebooks[exp.id] = nb
        return nb

    def _find_proposal(self, proposal_id: str) -> tuple[Exploration, Proposal]:
        for exp in self._explorations.values():
            found = tasks.find_proposal(exp, proposal_id)
            if found is not None:
                return exp, found
        exp = self._load(self._ledger.find_proposal(proposal_id).exploration_id)
        found = tasks.find_proposal(exp, proposal_id)
        if found is None:
            raise NotFound(f"no proposal {proposal_id!r}")
        return exp, found

    def _live_run(self, run_id: str) -> Run | None:
        for exp in self._explorations.values():
            found = tasks.find_run(exp, run_id)
            if found is not None:
                return found
        return None

    def _find_run(self, run_id: str) -> tuple[Exploration, Run]:
        live = self._live_run(run_id)
        exp_id = live.exploration_id if live else self._ledger.find_run(run_id).exploration_id
        exp = self._load(exp_id)
        found = tasks.find_run(exp, run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}")
        return exp, found

    def _read_notebook(self, req: CreateExploration) -> NotebookDoc:
        path = notebook.resolve_notebook_path(self.config.root_dir, req.notebook_path)
        if req.cells is not None:
            return notebook.notebook_from_cells(req.notebook_path, req.cells, req.kernel_name)
        nb = notebook.read_notebook(path, display_path=req.notebook_path)
        if req.kernel_name:
            nb.kernel_name = req.kernel_name
        return nb

    @staticmethod
    def _metric_spec(req: CreateExploration) -> MetricSpec | None:
        if not req.metric:
            return None
        direction = req.direction or metrics.infer_direction(req.metric)
        return MetricSpec(name=req.metric, direction=direction)

    def _the_proposer(self) -> Proposer:
        if self._proposer is None:
            self._proposer = default_proposer(self.config)
        return self._proposer

    def _the_executor(self) -> Executor:
        # Created on first use: listing or showing explorations starts no kernel machinery.
        if self._executor is None:
            self._executor = Executor(self.config)
        return self._executor

    def _check_open(self) -> None:
        if self._closed:
            raise Conflict("the engine is shutting down")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _signal(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        while not done() and not self._closed:
            await self._changed.wait()

    def _emit(
        self,
        kind: str,
        exp: Exploration,
        object_id: str,
        status: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = EngineEvent(
            type=kind,
            exploration_id=exp.id,
            notebook_path=exp.notebook_path,
            id=object_id,
            status=str(status),
            data=data or {},
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken live view must never break the engine.
                log.exception("engine event listener failed")
