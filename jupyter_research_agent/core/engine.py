"""The engine: explorations of one cell, approvals, runs in side kernels, live events.

One asyncio orchestrator shared by every front door (server, magics through the server, the
headless command). State changes happen between awaits, so concurrent requests on one event
loop see each change whole; every change is written to the ledger before it is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from . import binding_flow, notebook, sweep, triage_flow
from . import exploration_tasks as tasks
from .config import EngineConfig
from .engine_events import EventHub, Listener
from .engine_rounds import EngineRounds
from .errors import Conflict, NotebookError, ResearchAgentError
from .execution import CANCELLED_REASON
from .exploration_store import ExplorationStore
from .interpretation import ResultReader
from .kernels import check_local_kernelspec
from .ledger import Ledger
from .live import LiveKernels
from .models import (
    AddProposal,
    CreateExploration,
    EditProposal,
    Exploration,
    ExplorationStatus,
    MetricSpec,
    NotebookDoc,
    Origin,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Run,
    RunDetail,
    RunStatus,
    sha256_of,
    utcnow,
)
from .offline import OfflineProposer
from .proposing import Proposer, default_proposer, load_model_support
from .runner import Executor, RunHandle, RunUpdate

log = logging.getLogger(__name__)

STOPPED_REASON = "the engine stopped before this run finished"
PROPOSING_STOPPED = "the engine stopped before the proposals were ready"
# How long cancel_run waits for the executor to confirm before answering.
CANCEL_WAIT_S = 10.0


class Engine(EngineRounds):
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
        self._store = ExplorationStore(self._ledger)
        self._reader = ResultReader(self._model_for, self._spawn, self._interpreted)
        self._store.pinned = self._reader.pending
        self._events = EventHub()
        self._executor = executor
        self._live_kernels: LiveKernels | None = None
        if executor is not None:
            self._live_kernels = executor.live_kernels
        self._proposer = proposer
        self._offline = OfflineProposer()
        self._handles: dict[str, RunHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------ explorations

    async def create_exploration(self, req: CreateExploration) -> Exploration:
        """Validate the request, record the exploration and start proposing in the background."""
        if not req.offline:
            await load_model_support(self.config)
        self._check_open()
        # A notebook on disk can be tens of MB (big outputs): parse it off the event loop.
        nb = await asyncio.to_thread(self._read_notebook, req)
        self._check_open()
        _, cell = notebook.find_cell(nb, req.cell_id)
        triage_flow.check_request(req, cell)
        sweep_found = sweep.sweep_proposals(cell.source, req.sweep) if req.sweep else []
        proposer = self._offline if req.offline else self._the_proposer()
        exp = Exploration(
            notebook_path=nb.path,
            cell_id=cell.id,
            kind=req.kind,
            metric=self._metric_spec(req, nb),
            sweep=req.sweep,
            instructions=req.instructions,
            seeds=req.seeds,
            proposer=proposer.origin,
            cell_source=cell.source,
        )
        self._store.add(exp, nb)
        # Kernels start while the researcher reads the proposals: approving runs at once.
        self._the_executor().prewarm(nb.kernel_name, tasks.notebook_dir(self.config.root_dir, nb))
        self._spawn(self._propose(exp, nb, proposer, req, sweep_found))
        self._events.emit("exploration", exp, exp.id, exp.status)
        return exp.model_copy(deep=True)

    async def wait_proposals(self, exploration_id: str) -> Exploration:
        exp = self._store.load(exploration_id)
        await self._events.wait_until(lambda: exp.status != ExplorationStatus.PROPOSING)
        return self.get_exploration(exploration_id)

    async def wait_runs(self, exploration_id: str) -> Exploration:
        """Until proposing has ended and every run of the exploration is terminal."""
        exp = self._store.load(exploration_id)
        await self._events.wait_until(
            lambda: (
                exp.status != ExplorationStatus.PROPOSING
                and not tasks.active_runs(exp)
                and exp.id not in self._reader.pending
            )
        )
        return self.get_exploration(exploration_id)

    def get_exploration(self, exploration_id: str) -> Exploration:
        exp = self._store.load(exploration_id)
        exp.comparison = tasks.comparison_of(exp)
        return exp.model_copy(deep=True)

    def list_explorations(self, notebook_path: str | None = None) -> list[Exploration]:
        stored = self._ledger.list_explorations(notebook_path)
        # Explorations held in memory are as fresh as the ledger or fresher.
        return [
            self._store.explorations[e.id].model_copy(deep=True)
            if e.id in self._store.explorations
            else e
            for e in stored
        ]

    # ------------------------------------------------------------ proposals

    async def approve(self, proposal_id: str, code_sha256: str) -> Proposal:
        """Approve exactly the code the researcher saw; start its runs (and the baseline's)."""
        self._check_open()
        exp, proposal = self._store.find_proposal(proposal_id)
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
        nb = self._store.notebook(exp)
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
        self._events.emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def reject(self, proposal_id: str) -> Proposal:
        exp, proposal = self._store.find_proposal(proposal_id)
        if proposal.status != ProposalStatus.REJECTED:
            proposal.status = ProposalStatus.REJECTED
            proposal.approved_sha256 = None
            self._cancel_runs_of(exp, proposal.id)
            self._ledger.save_proposal(proposal)
            self._refresh(exp)
            self._events.emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def edit_proposal(self, proposal_id: str, req: EditProposal) -> Proposal:
        """New code needs a new approval: the proposal goes back to proposed."""
        exp, proposal = self._store.find_proposal(proposal_id)
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
        self._events.emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    async def add_proposal(self, exploration_id: str, req: AddProposal) -> Proposal:
        exp = self._store.load(exploration_id)
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
        self._events.emit("proposal", exp, proposal.id, proposal.status)
        return proposal.model_copy(deep=True)

    # ------------------------------------------------------------ runs

    def get_run(self, run_id: str) -> RunDetail:
        detail = self._ledger.find_run(run_id)
        live = self._store.live_run(run_id)
        if live is not None:
            detail = RunDetail(**live.model_dump(), cells=detail.cells)
        return detail

    async def cancel_run(self, run_id: str, reason: str = CANCELLED_REASON) -> Run:
        """Stop a run; ``reason`` is recorded on it (an autopilot gives its own)."""
        exp, run = self._store.find_run(run_id)
        if not run.status.terminal:
            handle = self._handles.get(run_id)
            if handle is None:
                run.status = RunStatus.CANCELLED
                run.reason = reason
                run.ended_at = utcnow()
                self._ledger.save_run(run)
                self._refresh(exp)
            else:
                handle.cancel(reason)
                try:
                    await asyncio.wait_for(
                        self._events.wait_until(lambda: run.status.terminal), CANCEL_WAIT_S
                    )
                except TimeoutError:
                    log.warning("run %s did not confirm its cancellation in time", run_id)
        return run.model_copy(deep=True)

    # ------------------------------------------------------------ events and status

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear every state change; listener errors are logged, never raised."""
        return self._events.subscribe(listener)

    def status(self) -> dict[str, Any]:
        pool = (
            self._executor.status()
            if self._executor is not None
            else {"pool_size": self.config.pool_size, "busy": 0, "queued": 0, "warm": 0}
        )
        active = sum(
            1
            for e in self._store.explorations.values()
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
            for exp in self._store.explorations.values():
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
            self._events.close()
            await self._close_proposer()

    async def _close_proposer(self) -> None:
        # The model's HTTP client must close while its event loop still runs.
        aclose = getattr(self._proposer, "aclose", None)
        if aclose is None:
            return
        try:
            await aclose()
        except Exception:
            log.exception("could not close the model proposer")

    # ------------------------------------------------------------ internals: proposing

    async def _propose(
        self,
        exp: Exploration,
        nb: NotebookDoc,
        proposer: Proposer,
        req: CreateExploration,
        sweep_found: list[Proposal],
    ) -> None:
        try:
            kept, origin = await triage_flow.gather(
                exp, nb, proposer, req.max_proposals, sweep_found
            )
        except asyncio.CancelledError:
            raise
        except ResearchAgentError as err:
            self._fail(exp, str(err))
            return
        except Exception as err:
            log.exception("proposer failed for exploration %s", exp.id)
            self._fail(exp, f"the proposer failed: {type(err).__name__}: {err}")
            return
        exp.proposals.extend(kept)
        exp.proposer = origin
        exp.status = ExplorationStatus.READY
        self._refresh(exp)
        for proposal in kept:
            self._events.emit("proposal", exp, proposal.id, proposal.status)

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
        self._events.emit(
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
            tasks.apply_result(run, result, exp.metric)
            self._ledger.save_run_outputs(run.id, result.cells)
            # Metric binding: learn where the metric comes from once the baseline printed it.
            with contextlib.suppress(Conflict):
                nb = self._store.notebook(exp)
                if binding_flow.bind_from_baseline(exp, nb, run, result.cells):
                    self._rebind(exp)
        finally:
            self._handles.pop(run.id, None)
        self._ledger.save_run(run)
        self._refresh(exp)
        self._events.emit(
            "run", exp, run.id, run.status, {"metrics": run.metrics, "reason": run.reason}
        )
        self._reader.runs_ended(exp)

    def _rebind(self, exp: Exploration) -> None:
        """The metric or its binding changed: runs still going read it after their last cell,
        and runs that ended before it say why they have no metric."""
        expressions = binding_flow.run_expressions(exp.metric)
        for other in tasks.all_runs(exp):
            handle = self._handles.get(other.id)
            if handle is not None:
                handle.spec.user_expressions = expressions
            elif binding_flow.missed_binding(other, exp.metric):
                self._ledger.save_run(other)

    def _cancel_runs_of(self, exp: Exploration, proposal_id: str) -> None:
        for run in tasks.active_runs(exp, proposal_id):
            handle = self._handles.get(run.id)
            if handle is not None:
                handle.cancel()

    # ------------------------------------------------------------ internals: state

    def _refresh(self, exp: Exploration) -> None:
        """Recompute comparison and status, store, announce."""
        # Metric binding: flag proposals that no longer compute the bound metric.
        with contextlib.suppress(Conflict):
            binding_flow.check_proposals(exp, self._store.notebook(exp))
        tasks.settle_status(exp)
        exp.comparison = tasks.comparison_of(exp)
        exp.updated_at = utcnow()
        self._ledger.save_exploration(exp)
        self._events.emit("exploration", exp, exp.id, exp.status)
        self._events.signal()

    def _read_notebook(self, req: CreateExploration) -> NotebookDoc:
        path = notebook.resolve_notebook_path(self.config.root_dir, req.notebook_path)
        if req.cells is not None:
            kernel_name = req.kernel_name
            if kernel_name is None and path.is_file():
                # Unsaved cells still run with the kernel the saved notebook names.
                with contextlib.suppress(NotebookError):
                    kernel_name = notebook.read_notebook(path).kernel_name
            nb = notebook.notebook_from_cells(req.notebook_path, req.cells, kernel_name)
        else:
            nb = notebook.read_notebook(path, display_path=req.notebook_path)
            if req.kernel_name:
                nb.kernel_name = req.kernel_name
        if not self.config.gateway.url:
            # A gateway has kernelspecs of its own; locally, refuse a missing one up front.
            check_local_kernelspec(nb.kernel_name)
        return nb

    @staticmethod
    def _metric_spec(req: CreateExploration, nb: NotebookDoc) -> MetricSpec | None:
        # "name" or "name=expression"; bound to the code that shows it (metric binding).
        return binding_flow.metric_spec(req.metric, req.direction, nb)

    def _the_proposer(self) -> Proposer:
        if self._proposer is None:
            self._proposer = default_proposer(
                self.config, usage_sink=self._record_usage, on_status=self._provider_status
            )
        return self._proposer

    def _record_usage(self, usage: Any) -> None:
        """Token counts of one model request, kept per exploration in the ledger."""
        label = getattr(usage, "label", None)
        if not label or self._closed:
            return
        try:
            self._ledger.record_usage(
                label, str(usage.model), int(usage.prompt_tokens), int(usage.completion_tokens)
            )
        except Exception:
            log.exception("could not record model usage")

    def use_live_kernels(self, provider: LiveKernels | None) -> None:
        """Let runs copy state from the researcher's running kernels (the server calls this)."""
        self._live_kernels = provider
        if self._executor is not None:
            self._executor.live_kernels = provider

    def _provider_status(self, message: str) -> None:
        """A passing note from the model provider (429, retrying), on its exploration."""
        from .llm.provider import usage_label

        exp = self._store.explorations.get(usage_label.get() or "")
        if exp is None or self._closed:
            return
        exp.status_message = message
        self._events.emit("exploration", exp, exp.id, exp.status, {"status_message": message})

    def _model_for(self, exp: Exploration) -> Any:
        """The model that reads the results: the one that proposed, if any."""
        return triage_flow.model_of(self._proposer) if exp.proposer is Origin.LLM else None

    def _interpreted(self, exp: Exploration, text: str) -> None:
        """Keep the reading of the results; its exploration event tells live views."""
        if text and not self._closed:
            exp.interpretation = text
            exp.status_message = ""
            self._refresh(exp)
        else:
            self._events.signal()  # wake wait_runs all the same

    def _the_executor(self) -> Executor:
        # Created on first use: listing or showing explorations starts no kernel machinery.
        if self._executor is None:
            self._executor = Executor(self.config)
            self._executor.live_kernels = self._live_kernels
        return self._executor

    def _check_open(self) -> None:
        if self._closed:
            raise Conflict("the engine is shutting down")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
