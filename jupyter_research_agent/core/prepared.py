"""Prepared kernels: run a notebook's prefix once, then serve snapshots of it to many runs.

A prepared kernel is a side kernel that has executed the (sliced) prefix of one target cell,
with the seed the runs use. It never runs a variation: runs take copies of the variables they
read (one snapshot file per set of names, shared by every run asking for that set) and load
them into their own kernels, so nothing a variation does can reach another variation.

Prepared kernels are kept for later approvals of the same exploration, at most ``keep`` of them;
the least recently used idle one is shut down first. Snapshot files live in a private
directory (0700, files 0600) and are deleted with their prepared kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .capture import OutputCapture
from .execution import execute_code, seed_prelude
from .kernels import KernelKey, KernelPool, KernelStartError, SideKernel
from .models import Cell, CellOutputs, RunStatus
from .snapshot import Snapshot, take_snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareKey:
    """Two runs can share a prepared kernel when these are equal."""

    kernel: KernelKey
    cells: tuple[tuple[str, str], ...]  # (id, source) of the prefix cells it runs
    seed: int | None

    @property
    def digest(self) -> str:
        text = repr((self.kernel.kernel_name, str(self.kernel.cwd), self.cells, self.seed))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Prepared:
    key: PrepareKey
    ready: asyncio.Task[None] | None = None
    kernel: SideKernel | None = None
    outputs: list[CellOutputs] = field(default_factory=list)
    error: str | None = None  # why the prefix could not be prepared
    prefix_s: float = 0.0
    snapshots: dict[frozenset[str], asyncio.Task[Snapshot | None]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one request at a time per kernel
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class _Quiet:
    """Listener for the prefix run: progress goes nowhere, outputs stay in the capture."""

    def on_status(self, status: RunStatus, kernel_id: str | None) -> None: ...
    def on_progress(self, done: int, total: int, cell_id: str | None) -> None: ...
    def on_output(self, capture: OutputCapture) -> None: ...


class PreparedKernels:
    def __init__(
        self,
        pool: KernelPool,
        *,
        timeout_s: float,
        output_cap_bytes: int,
        keep: int = 2,
    ) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.output_cap_bytes = output_cap_bytes
        self.keep = keep
        self._entries: dict[PrepareKey, Prepared] = {}
        self._dir: Path | None = None
        self._closed = False

    @property
    def directory(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="jra-state-"))  # mode 0700
        return self._dir

    @property
    def count(self) -> int:
        return len(self._entries)

    async def snapshot(
        self, key: PrepareKey, cells: list[Cell], names: frozenset[str]
    ) -> tuple[Prepared, Snapshot] | None:
        """A snapshot of ``names`` after the prefix; None when the prefix could not be
        prepared or nothing could be copied. The caller must ``release`` the entry."""
        if self._closed:
            return None
        entry = self._entries.get(key)
        if entry is None:
            entry = Prepared(key)
            self._entries[key] = entry
            entry.ready = asyncio.ensure_future(self._prepare(entry, cells))
            await self._evict()
        entry.users += 1
        entry.last_used = time.monotonic()
        try:
            await asyncio.shield(entry.ready)  # type: ignore[arg-type]
            if entry.error is not None or entry.kernel is None:
                self.release(entry)
                return None
            task = entry.snapshots.get(names)
            if task is None:
                task = asyncio.ensure_future(self._dump(entry, names))
                entry.snapshots[names] = task
            snap = await asyncio.shield(task)
        except BaseException:
            self.release(entry)
            raise
        if snap is None:
            self.release(entry)
            return None
        return entry, snap

    def release(self, entry: Prepared) -> None:
        entry.users = max(0, entry.users - 1)
        entry.last_used = time.monotonic()

    async def close(self) -> None:
        self._closed = True
        entries, self._entries = list(self._entries.values()), {}
        await asyncio.gather(*(self._drop(e) for e in entries), return_exceptions=True)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # ---------------------------------------------------------------- internals

    async def _prepare(self, entry: Prepared, cells: list[Cell]) -> None:
        started = time.monotonic()
        try:
            kernel = await self.pool.acquire(entry.key.kernel)
        except KernelStartError as exc:
            entry.error = str(exc)
            return
        entry.kernel = kernel
        capture = OutputCapture(self.output_cap_bytes)
        listener = _Quiet()
        try:
            async with asyncio.timeout(self.timeout_s):
                if entry.key.seed is not None:
                    uses_torch = any("torch" in c.source for c in cells)
                    prelude = seed_prelude(entry.key.seed, uses_torch)
                    if await execute_code(kernel, prelude, None, listener) != "ok":
                        entry.error = "the seed prelude failed"
                for cell in cells:
                    if entry.error is not None:
                        break
                    capture.begin_cell(cell.id)
                    if not cell.source.strip():
                        continue
                    result = await execute_code(kernel, cell.source, capture, listener)
                    if result == "died":
                        entry.error = f"the kernel died while preparing cell {cell.id}"
                    elif isinstance(result, dict):
                        entry.error = f"{result.get('ename', 'Error')} in cell {cell.id}"
        except TimeoutError:
            entry.error = f"preparing the prefix took longer than {self.timeout_s:g} s"
        except Exception as exc:  # a broken channel: the runs replay instead
            log.warning("preparing a kernel failed", exc_info=True)
            entry.error = f"preparing failed: {exc!r}"
        entry.outputs = capture.cells()
        entry.prefix_s = time.monotonic() - started
        if entry.error is not None:
            log.info("prepared kernel not usable: %s", entry.error)
            entry.kernel = None
            await self.pool.release(kernel)

    async def _dump(self, entry: Prepared, names: frozenset[str]) -> Snapshot | None:
        kernel = entry.kernel
        if kernel is None:
            return None
        stem = f"{entry.key.digest}-{len(entry.snapshots)}"

        async def run(code: str) -> bool:
            async with entry.lock:
                result = await execute_code(kernel, code, None, _Quiet())
            return result == "ok"

        return await take_snapshot(run, names, self.directory, stem, with_rng=True)

    async def _evict(self) -> None:
        idle = [e for e in self._entries.values() if e.users == 0 and e.ready and e.ready.done()]
        idle.sort(key=lambda e: e.last_used)
        while len(self._entries) > self.keep and idle:
            victim = idle.pop(0)
            self._entries.pop(victim.key, None)
            await self._drop(victim)

    async def _drop(self, entry: Prepared) -> None:
        if entry.ready is not None and not entry.ready.done():
            entry.ready.cancel()
            with contextlib.suppress(BaseException):
                await entry.ready
        for task in entry.snapshots.values():
            if not task.done():
                task.cancel()
                continue
            with contextlib.suppress(BaseException):
                snap = task.result()
                if snap is not None:
                    snap.delete()
        if entry.kernel is not None:
            kernel, entry.kernel = entry.kernel, None
            await self.pool.release(kernel)
