"""Run execution: the Executor queues runs, runs them on side kernels, and reports on them.

At most ``pool_size`` runs hold a kernel at once; the rest wait in a FIFO queue. Each run ends
in exactly one terminal ``RunResult``; ``RunHandle.wait()`` never raises for run failures.
A run whose kernel died is retried once on a fresh kernel when the config allows it.
How each run's state is rebuilt (replay, or a copy from a prepared or live kernel) is chosen by
the executor's ``StateBuilder`` and recorded on its result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .capture import OutputCapture
from .config import EngineConfig
from .execution import AttemptOutcome, StopSignal, run_attempt
from .gateway import gateway_launcher
from .kernels import KernelKey, KernelPool
from .live import LiveKernels
from .models import Cell, CellOutputs, RunProgress, RunStatus, StateStrategy
from .rebuild import StateBuilder

log = logging.getLogger(__name__)

UPDATE_INTERVAL_S = 0.1  # at most ~10 updates per second per run
PREWARM_MAX = 4  # kernels started ahead of an exploration's first approval


class RunSpec(BaseModel):
    """What to execute: the cells in order (the variation already applied)."""

    run_id: str
    kernel_name: str
    cwd: Path
    cells: list[Cell]
    seed: int | None = None  # when set, a hidden prelude seeds random, numpy (and torch)
    timeout_s: float = Field(gt=0)  # for the cells of one attempt, kernel start excluded
    output_cap_bytes: int = Field(ge=0)
    # Index (among the code cells) of the varied cell: time spent before it is ``rebuild_s``.
    target_index: int | None = None
    # The notebook as the engine knows it: lets the state come from its live kernel.
    notebook_path: str | None = None
    # Metric binding: expressions evaluated silently after the last cell (name -> code).
    user_expressions: dict[str, str] = Field(default_factory=dict)


class RunUpdate(BaseModel):
    """Pushed while a run goes on (never for the terminal state: ``wait()`` gives that)."""

    run_id: str
    status: RunStatus
    progress: RunProgress
    tail: list[str]
    kernel_id: str | None = None


class RunResult(BaseModel):
    status: RunStatus
    reason: str
    cells: list[CellOutputs] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    duration_s: float = 0.0
    state_strategy: StateStrategy = StateStrategy.FULL_REPLAY
    rebuild_s: float | None = None
    attempts: int = 0
    kernel_id: str | None = None
    run_id: str = ""
    # Metric binding: what the spec's user_expressions gave, by name.
    expression_values: dict[str, float] = Field(default_factory=dict)
    expression_errors: dict[str, str] = Field(default_factory=dict)


OnUpdate = Callable[[RunUpdate], None]


class RunHandle:
    """The caller's view of one submitted run."""

    def __init__(
        self, executor: Executor, spec: RunSpec, on_update: OnUpdate | None, loop: Any
    ) -> None:
        self.run_id = spec.run_id
        self.spec = spec
        self._executor = executor
        self._on_update = on_update
        self._future: asyncio.Future[RunResult] = loop.create_future()
        self.stop = StopSignal()
        self.status = RunStatus.QUEUED
        self.progress = RunProgress(total=sum(1 for c in spec.cells if c.cell_type == "code"))
        self.tail: list[str] = []
        self.kernel_id: str | None = None
        self._last_sent = 0.0
        self._flush: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self._future.done()

    def cancel(self, reason: str | None = None) -> None:
        """Queued: dropped at once. Running: interrupted, then its kernel shut down.

        ``reason`` is the run's reason (default: cancelled by the researcher)."""
        self._executor._cancel(self, reason)

    async def wait(self) -> RunResult:
        return await asyncio.shield(self._future)

    def snapshot(self) -> RunUpdate:
        return RunUpdate(
            run_id=self.run_id,
            status=self.status,
            progress=self.progress.model_copy(),
            tail=list(self.tail),
            kernel_id=self.kernel_id,
        )

    # ---------------------------------------------------------------- AttemptListener

    def on_status(self, status: RunStatus, kernel_id: str | None) -> None:
        self.status = status
        self.kernel_id = kernel_id
        self._publish(force=True)

    def on_progress(self, done: int, total: int, cell_id: str | None) -> None:
        self.progress = RunProgress(done=done, total=total, current_cell_id=cell_id)
        self._publish()

    def on_output(self, capture: OutputCapture) -> None:
        self.tail = capture.tail()
        self._publish()

    # ---------------------------------------------------------------- internals

    def _publish(self, force: bool = False) -> None:
        if self.done or self._on_update is None:
            return
        now = time.monotonic()
        wait = self._last_sent + UPDATE_INTERVAL_S - now
        if force or wait <= 0:
            self._send()
        elif self._flush is None:
            # Throttled: make sure the latest state still goes out shortly.
            self._flush = asyncio.get_running_loop().call_later(wait, self._send)

    def _send(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.done or self._on_update is None:
            return
        self._last_sent = time.monotonic()
        try:
            self._on_update(self.snapshot())
        except Exception:  # a listener's bug must not end the run
            log.exception("on_update callback failed for run %s", self.run_id)

    def _finish(self, result: RunResult) -> None:
        if self._flush is not None:
            self._send()  # the last progress and tail still reach live views
        if not self._future.done():
            result.run_id = self.run_id
            self.status = result.status
            self._future.set_result(result)


class Executor:
    """Runs RunSpecs on side kernels from a pool it owns; ``close()`` shuts everything down."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.pool = KernelPool(
            warm_kernels=config.warm_kernels,
            start_timeout_s=config.kernel_start_timeout_s,
            secret_env_patterns=config.secret_env_patterns,
            launcher=gateway_launcher(config),  # None unless side kernels go to a gateway
        )
        self.state = StateBuilder(self.pool, config)
        self._queue: deque[RunHandle] = deque()
        self._running: set[RunHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def live_kernels(self) -> LiveKernels | None:
        """Where runs may copy state from the researcher's running kernel (set by the server)."""
        return self.state.live_kernels

    @live_kernels.setter
    def live_kernels(self, provider: LiveKernels | None) -> None:
        self.state.live_kernels = provider

    def submit(self, spec: RunSpec, on_update: OnUpdate | None = None) -> RunHandle:
        """Queue a run; it starts as soon as a slot of the pool is free (FIFO)."""
        handle = RunHandle(self, spec, on_update, asyncio.get_running_loop())
        if self._closed:
            handle._finish(_ended(RunStatus.CANCELLED, "the executor is closed"))
            return handle
        self._queue.append(handle)
        handle._publish(force=True)
        self._dispatch()
        return handle

    def prewarm(self, kernel_name: str, cwd: Path, count: int | None = None) -> None:
        """Start kernels for runs that are about to come, so an approval does not wait for a
        kernel start: ``count`` once (default: one per pool slot, at most PREWARM_MAX, plus one
        for the prepared kernel that rebuilds the notebook's state), and ``warm_kernels`` kept
        replenished."""
        if self._closed:
            return
        if count is None:
            count = min(self.config.pool_size, PREWARM_MAX) + 1
        self.pool.prewarm(KernelKey(kernel_name, cwd), count)

    def status(self) -> dict[str, int]:
        return {
            "pool_size": self.config.pool_size,
            "busy": len(self._running),
            "queued": len(self._queue),
            "warm": self.pool.warm_count,
        }

    async def close(self) -> None:
        """Cancel queued runs, interrupt running ones, and wait until every kernel is gone."""
        self._closed = True
        while self._queue:
            handle = self._queue.popleft()
            handle._finish(_ended(RunStatus.CANCELLED, "cancelled while queued: server shut down"))
        for handle in self._running:
            handle.stop.request("shutdown")
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        try:
            await self.state.close()
        finally:
            await self.pool.close()

    # ---------------------------------------------------------------- internals

    def _cancel(self, handle: RunHandle, reason: str | None = None) -> None:
        if handle.done:
            return
        if handle in self._queue:
            self._queue.remove(handle)
            why = f"{reason} (while queued)" if reason else "cancelled while queued"
            handle._finish(_ended(RunStatus.CANCELLED, why))
        else:
            handle.stop.request("cancel", reason)

    def _dispatch(self) -> None:
        while self._queue and len(self._running) < self.config.pool_size and not self._closed:
            handle = self._queue.popleft()
            self._running.add(handle)
            task = asyncio.ensure_future(self._drive(handle))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drive(self, handle: RunHandle) -> None:
        started = time.monotonic()
        try:
            result = await self._run(handle)
        except asyncio.CancelledError:
            handle._finish(_ended(RunStatus.INTERRUPTED, "server shut down", started))
            raise
        except Exception as exc:  # a bug here must still end the run with a reason
            log.exception("run %s failed inside the executor", handle.run_id)
            handle._finish(_ended(RunStatus.FAILED, f"internal error: {exc!r}", started))
        else:
            result.duration_s = time.monotonic() - started
            handle._finish(result)
        finally:
            self._running.discard(handle)
            self._dispatch()

    async def _run(self, handle: RunHandle) -> RunResult:
        first = await self._attempt(handle)
        if not (first.died and self.config.retry_dead_kernel and not handle.stop.event.is_set()):
            return _result(first, attempts=1)
        log.info("run %s: %s; retrying on a fresh kernel", handle.run_id, first.reason)
        second = await self._attempt(handle)
        result = _result(second, attempts=2)
        if second.status == RunStatus.SUCCEEDED:
            result.reason = f"succeeded after retry ({first.reason})"
        elif second.died and second.cell_id == first.cell_id:
            result.reason = f"kernel died twice while running cell {first.cell_id}"
        elif second.died:
            again = f"and again on retry while running cell {second.cell_id}"
            result.reason = f"{first.reason}, {again}"
        else:
            result.reason = f"{second.reason} (on retry after: {first.reason})"
        return result

    async def _attempt(self, handle: RunHandle) -> AttemptOutcome:
        return await run_attempt(
            self.pool,
            handle.spec,
            interrupt_grace_s=self.config.interrupt_grace_s,
            stop=handle.stop,
            listener=handle,
            state=self.state,
            reuse_keep=self.config.pool_size if self.config.reuse_kernels else 0,
        )


def _ended(status: RunStatus, reason: str, started: float | None = None) -> RunResult:
    duration = 0.0 if started is None else time.monotonic() - started
    return RunResult(status=status, reason=reason, duration_s=duration)


def _result(outcome: AttemptOutcome, attempts: int) -> RunResult:
    return RunResult(
        status=outcome.status,
        reason=outcome.reason,
        cells=outcome.cells,
        error=outcome.error,
        state_strategy=outcome.strategy,
        rebuild_s=outcome.rebuild_s,
        attempts=attempts,
        kernel_id=outcome.kernel_id,
        expression_values=outcome.expression_values,
        expression_errors=outcome.expression_errors,
    )
