"""One attempt of a run: get a kernel, execute the cells over zmq, stop it on time or on request.

The kernel is talked to directly with the async client (no nbclient) so every cell reports
progress, outputs stream into the capture as they arrive, and a dead kernel is noticed within
a fraction of a second (its process is polled whenever iopub goes quiet).

The state before the target cell comes from a ``StateRoute`` (``rebuild.py``) worked out while
the kernel is acquired: a hidden snapshot load and/or the cells to replay. Time spent on it is
the run's ``rebuild_s``. A kernel whose run left module state alone is cleared and handed back
to the pool for the next run (``recycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .binding_kernel import evaluate_in_kernel
from .capture import OutputCapture
from .kernels import KernelKey, KernelPool, KernelStartError, SideKernel
from .models import CellOutputs, RunStatus, StateStrategy

if TYPE_CHECKING:
    from .rebuild import StateBuilder, StateRoute
    from .runner import RunSpec

log = logging.getLogger(__name__)

POLL_S = 0.2  # how long iopub may stay quiet before the kernel process is checked
ALIVE_EVERY_S = 1.0  # check the process this often even while output keeps flowing
REPLY_TIMEOUT_S = 2.0
EVALUE_CHARS = 300

StopKind = Literal["cancel", "shutdown"]
CANCELLED_REASON = "cancelled by the researcher"


class StopSignal:
    """Set when a run is cancelled (by the researcher, or an autopilot's budget: ``reason``
    says which) or the executor shuts down."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.kind: StopKind | None = None
        self.reason: str | None = None

    def request(self, kind: StopKind, reason: str | None = None) -> None:
        if self.kind is None:
            self.kind = kind
            self.reason = reason
        self.event.set()


class AttemptListener(Protocol):
    def on_status(self, status: RunStatus, kernel_id: str | None) -> None: ...
    def on_progress(self, done: int, total: int, cell_id: str | None) -> None: ...
    def on_output(self, capture: OutputCapture) -> None: ...


@dataclass
class AttemptOutcome:
    status: RunStatus
    reason: str
    cells: list[CellOutputs] = field(default_factory=list)
    error: dict[str, Any] | None = None
    rebuild_s: float | None = None
    kernel_id: str | None = None
    died: bool = False
    cell_id: str | None = None  # the cell that was running when the kernel died
    strategy: StateStrategy = StateStrategy.FULL_REPLAY
    # Metric binding: values and errors of the spec's user_expressions.
    expression_values: dict[str, float] = field(default_factory=dict)
    expression_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _CellsOutcome:
    kind: Literal["ok", "error", "died"]
    cell_id: str | None = None
    error: dict[str, Any] | None = None
    rebuild_s: float | None = None
    strategy: StateStrategy = StateStrategy.FULL_REPLAY
    expression_values: dict[str, float] = field(default_factory=dict)  # metric binding
    expression_errors: dict[str, str] = field(default_factory=dict)  # metric binding


def seed_prelude(seed: int, with_torch: bool) -> str:
    """Code that seeds the global generators; libraries that are not installed are skipped.

    It runs in a function so the notebook's namespace gains nothing.
    """
    torch = (
        # importing torch costs seconds: only when the notebook uses it
        f"    try:\n        import torch\n        torch.manual_seed({seed})\n"
        "    except Exception:\n        pass\n"
        if with_torch
        else ""
    )
    return (
        "def _jra_seed():\n"
        f"    import random\n    random.seed({seed})\n"
        f"    try:\n        import numpy\n        numpy.random.seed({seed})\n"
        "    except Exception:\n        pass\n"
        f"{torch}"
        "_jra_seed()\n"
        "del _jra_seed\n"
    )


async def _execute(
    kernel: SideKernel, code: str, capture: OutputCapture | None, listener: AttemptListener
) -> Literal["ok", "died"] | dict[str, Any]:
    """Run one piece of code; "ok", "died", or the error content the kernel reported."""
    client = kernel.client
    msg_id = client.execute(
        code, silent=capture is None, store_history=False, allow_stdin=False, stop_on_error=True
    )
    error: dict[str, Any] | None = None
    checked = time.monotonic()
    while True:
        try:
            msg = await client.get_iopub_msg(timeout=POLL_S)
        except queue.Empty:
            if not await kernel.is_alive():
                return "died"
            checked = time.monotonic()
            continue
        if time.monotonic() - checked > ALIVE_EVERY_S:
            if not await kernel.is_alive():
                return "died"
            checked = time.monotonic()
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        if msg_type == "status" and content.get("execution_state") == "idle":
            break
        if msg_type == "error":
            error = content
        if capture is not None:
            version = capture.version
            capture.add(msg_type, content)
            if capture.version != version:
                listener.on_output(capture)
    reply = await _shell_reply(kernel, msg_id)
    if error is None and reply is not None and reply.get("status") == "error":
        error = reply
    return "ok" if error is None else error


async def _shell_reply(kernel: SideKernel, msg_id: str) -> dict[str, Any] | None:
    # The reply is sent before the kernel goes idle, so it is normally waiting already;
    # reading it keeps the shell socket drained.
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            reply = await kernel.client.get_shell_msg(timeout=left)
        except queue.Empty:
            return None
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            content: dict[str, Any] = reply["content"]
            return content
    return None


async def _run_cells(
    kernel: SideKernel,
    spec: RunSpec,
    route: StateRoute,
    capture: OutputCapture,
    listener: AttemptListener,
) -> _CellsOutcome:
    rebuild_s = route.wait_s
    strategy = route.strategy
    if route.load is not None:
        started = time.monotonic()
        loaded = await _execute(kernel, route.load, None, listener)
        route.release()
        rebuild_s += time.monotonic() - started
        if loaded == "died":
            return _CellsOutcome("died", cell_id="(state load)", strategy=strategy)
        if loaded != "ok" and route.fallback is not None:
            why = loaded.get("evalue", "") if isinstance(loaded, dict) else loaded
            log.warning("run %s: loading its state failed (%s); replaying", spec.run_id, why)
            route = route.fallback
            strategy = route.strategy
    cells = [c for c in route.cells if c.cell_type == "code"]
    target = route.target_index
    if spec.seed is not None and route.seed_prelude:
        uses_torch = any("torch" in c.source for c in cells)
        result = await _execute(kernel, seed_prelude(spec.seed, uses_torch), None, listener)
        if result == "died":
            return _CellsOutcome("died", cell_id="(seed prelude)", strategy=strategy)
    for index, cell in enumerate(cells):
        listener.on_progress(index, len(cells), cell.id)
        capture.begin_cell(cell.id)
        if not cell.source.strip():
            continue
        started = time.monotonic()
        result = await _execute(kernel, cell.source, capture, listener)
        if target is not None and index < target:
            rebuild_s += time.monotonic() - started
        rebuilt = rebuild_s if target is not None else None
        if result == "died":
            return _CellsOutcome("died", cell_id=cell.id, rebuild_s=rebuilt, strategy=strategy)
        if isinstance(result, dict):
            error = {
                "ename": str(result.get("ename", "")),
                "evalue": str(result.get("evalue", "")),
                "traceback": list(result.get("traceback", [])),
                "cell_id": cell.id,
            }
            return _CellsOutcome(
                "error", cell_id=cell.id, error=error, rebuild_s=rebuilt, strategy=strategy
            )
    listener.on_progress(len(cells), len(cells), None)
    # Metric binding: read the bound metrics silently once every cell has run.
    values, errors = await evaluate_in_kernel(kernel, spec.user_expressions)
    return _CellsOutcome(
        "ok",
        rebuild_s=rebuild_s if target is not None else None,
        strategy=strategy,
        expression_values=values,
        expression_errors=errors,
    )


def full_route(spec: RunSpec) -> StateRoute:
    """Every cell as written: the route when no state builder is given."""
    from .rebuild import StateRoute

    cells = [c for c in spec.cells if c.cell_type == "code"]
    return StateRoute(StateStrategy.FULL_REPLAY, cells, spec.target_index)


async def _until(task: asyncio.Task[Any], stop: StopSignal, limit_s: float | None) -> bool:
    """Wait for ``task``; False if the stop signal or the timeout came first."""
    if stop.event.is_set():
        return task.done()
    waiter = asyncio.ensure_future(stop.event.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return task.done()


def _stopped(stop: StopSignal) -> tuple[RunStatus, str]:
    if stop.kind == "shutdown":
        return RunStatus.INTERRUPTED, "server shut down"
    return RunStatus.CANCELLED, stop.reason or CANCELLED_REASON


async def run_attempt(
    pool: KernelPool,
    spec: RunSpec,
    *,
    interrupt_grace_s: float,
    stop: StopSignal,
    listener: AttemptListener,
    state: StateBuilder | None = None,
    reuse_keep: int = 0,
) -> AttemptOutcome:
    """Get a kernel and the run's state route at once, run the cells, and always give the
    kernel back: shut down, or cleared for the next run when the route allows it."""
    capture = OutputCapture(spec.output_cap_bytes)
    kernel: SideKernel | None = None
    work: asyncio.Task[Any] | None = None
    routing: asyncio.Task[StateRoute] | None = None
    route: StateRoute | None = None
    outcome: AttemptOutcome | None = None
    try:
        listener.on_status(RunStatus.STARTING, None)
        work = asyncio.ensure_future(pool.acquire(KernelKey(spec.kernel_name, spec.cwd)))
        if state is not None:
            routing = asyncio.ensure_future(state.route(spec))
        if not await _until(work, stop, None):
            status, reason = _stopped(stop)
            return AttemptOutcome(status, reason)
        try:
            kernel = work.result()
        except KernelStartError as exc:
            return AttemptOutcome(RunStatus.FAILED, str(exc))
        if routing is not None and not await _until(routing, stop, None):
            status, reason = _stopped(stop)
            return AttemptOutcome(status, reason, kernel_id=kernel.id)
        route = _route_of(routing) or full_route(spec)
        listener.on_status(RunStatus.RUNNING, kernel.id)
        shown = route.prefix_outputs
        work = asyncio.ensure_future(_run_cells(kernel, spec, route, capture, listener))
        if await _until(work, stop, spec.timeout_s):
            outcome = await _finished(work, kernel, capture, shown, route.strategy)
            return outcome
        # Timed out or stopped: interrupt first so a well-behaved cell ends cleanly.
        if stop.kind is None:
            status, reason = RunStatus.TIMED_OUT, f"timed out after {spec.timeout_s:g} s"
        else:
            status, reason = _stopped(stop)
        if stop.kind != "shutdown":
            await kernel.interrupt()
            await asyncio.wait({work}, timeout=interrupt_grace_s)
        cells = [*shown, *capture.cells()]
        return AttemptOutcome(
            status, reason, cells=cells, kernel_id=kernel.id, strategy=route.strategy
        )
    finally:
        if routing is not None:
            if not routing.done():
                routing.cancel()
                with contextlib.suppress(BaseException):
                    await routing
            route = route or _route_of(routing)
        if route is not None:
            route.release()
        if work is not None:
            if not work.done():
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work  # a cancelled acquire shuts its half-started kernel down itself
            # Reading the exception marks it retrieved; a kernel acquired just as the stop
            # came must still be shut down.
            if not work.cancelled() and work.exception() is None and kernel is None:
                got = work.result()
                if isinstance(got, SideKernel):
                    kernel = got
        if kernel is not None:
            if reuse_keep > 0 and route is not None and route.recyclable and _clean(outcome):
                await recycle(pool, kernel, reuse_keep, spec)
            else:
                await pool.release(kernel)


def _route_of(routing: asyncio.Task[StateRoute] | None) -> StateRoute | None:
    """The route if it was worked out; a failure there must not fail the run."""
    if routing is None or not routing.done() or routing.cancelled():
        return None
    error = routing.exception()
    if error is not None:
        log.error("working out the state route failed; replaying every cell", exc_info=error)
        return None
    return routing.result()


def _clean(outcome: AttemptOutcome | None) -> bool:
    """The run ended by itself: succeeded, or a cell raised (the kernel is fine)."""
    if outcome is None or outcome.died:
        return False
    return outcome.status == RunStatus.SUCCEEDED or (
        outcome.status == RunStatus.FAILED and outcome.error is not None
    )


# Clears the namespace to what a new kernel has (the names IPython hides) and the working
# directory; runs in a throwaway namespace, so it binds nothing itself.
_RESET = (
    "ns = ip.user_ns\n"
    "for k in [k for k in ns if k not in ip.user_ns_hidden and not k.startswith('__')]:\n"
    "    del ns[k]\n"
    "import os\n"
    "os.chdir(cwd)\n"
)


def _reset_code(cwd: str) -> str:
    return f"__import__('builtins').exec({_RESET!r}, {{'ip': get_ipython(), 'cwd': {cwd!r}}})\n"


async def recycle(pool: KernelPool, kernel: SideKernel, keep: int, spec: RunSpec) -> None:
    """Clear the kernel's namespace and offer it to the pool; shut it down if that fails."""
    try:
        cleared = await asyncio.wait_for(
            _execute(kernel, _reset_code(str(spec.cwd)), None, _NoListener()), 5.0
        )
    except Exception:
        cleared = "died"
    if cleared == "ok" and await kernel.is_alive():
        await pool.offer(kernel, keep)
    else:
        await pool.release(kernel)


class _NoListener:
    def on_status(self, status: RunStatus, kernel_id: str | None) -> None: ...
    def on_progress(self, done: int, total: int, cell_id: str | None) -> None: ...
    def on_output(self, capture: OutputCapture) -> None: ...


execute_code = _execute


async def _finished(
    work: asyncio.Task[_CellsOutcome],
    kernel: SideKernel,
    capture: OutputCapture,
    shown: list[CellOutputs],
    strategy: StateStrategy,
) -> AttemptOutcome:
    try:
        done = work.result()
    except Exception as exc:  # a protocol failure: blame the kernel if it is gone
        if not await kernel.is_alive():
            cells = capture.cells()
            last = cells[-1].cell_id if cells else None
            done = _CellsOutcome("died", cell_id=last, strategy=strategy)
        else:
            log.exception("run failed on kernel %s", kernel.id)
            cells = [*shown, *capture.cells()]
            reason = f"run failed: {exc!r}"
            return AttemptOutcome(
                RunStatus.FAILED, reason, cells, kernel_id=kernel.id, strategy=strategy
            )
    if done.strategy != strategy:
        shown = []  # the snapshot did not load: the replay printed the prefix itself
    cells = [*shown, *capture.cells()]
    if done.kind == "ok":
        return AttemptOutcome(
            RunStatus.SUCCEEDED,
            "",
            cells,
            rebuild_s=done.rebuild_s,
            kernel_id=kernel.id,
            strategy=done.strategy,
            expression_values=done.expression_values,
            expression_errors=done.expression_errors,
        )
    if done.kind == "died":
        reason = f"kernel died while running cell {done.cell_id}"
        return AttemptOutcome(
            RunStatus.FAILED,
            reason,
            cells,
            rebuild_s=done.rebuild_s,
            kernel_id=kernel.id,
            died=True,
            cell_id=done.cell_id,
            strategy=done.strategy,
        )
    error = done.error or {}
    evalue = str(error.get("evalue", ""))
    if len(evalue) > EVALUE_CHARS:
        evalue = evalue[:EVALUE_CHARS] + "…"
    ename = error.get("ename") or "Error"
    what = f"{ename}: {evalue}" if evalue else ename
    reason = f"{what} in cell {done.cell_id}"
    return AttemptOutcome(
        RunStatus.FAILED,
        reason,
        cells,
        error=error,
        rebuild_s=done.rebuild_s,
        kernel_id=kernel.id,
        strategy=done.strategy,
    )
