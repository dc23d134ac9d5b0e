"""The side-kernel pool: start, hand out, and always shut down local kernels.

A side kernel serves one run attempt. Afterwards it is shut down, or, when the run left module
state alone, cleared (``execution.recycle``) and offered back as a warm kernel: every run still
starts from an empty namespace, without paying for a kernel start. Warm kernels hide start-up:
they are started ahead of need for one ``KernelKey`` (kernel name and working directory).

jupyter_client is imported inside the functions that start kernels: importing it loads
tornado (through ``jupyter_client.session``), and the core keeps its import graph free of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InvalidInput, KernelError
from .imports import import_off_loop

if TYPE_CHECKING:
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager

log = logging.getLogger(__name__)

# Loaded on the first kernel start, off the event loop (a second or so in a fresh process):
# jupyter_client, then what its kernelspec lookup imports on first use.
KERNEL_START_MODULES = ("jupyter_client.manager", "jupyter_client.kernelspec")
KERNELSPEC_LOOKUP_MODULES = ("IPython.paths", "ipykernel.kernelspec")


class KernelStartError(KernelError):
    """A side kernel could not be started; the message names the kernelspec and the cause."""


def scrubbed_env(patterns: Iterable[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) without variables matching any pattern.

    Matching is case-insensitive shell-style (``*_API_KEY`` drops ``openai_api_key`` too).
    """
    source = os.environ if base is None else base
    upper = [p.upper() for p in patterns]
    return {
        name: value
        for name, value in source.items()
        if not any(fnmatch.fnmatchcase(name.upper(), p) for p in upper)
    }


# Side kernels say what they are (magics refuse to start explorations from inside one) and do
# not pass on the researcher's session name or the agent's own settings.
SIDE_RUN_ENV = {"RESEARCH_AGENT_SIDE_RUN": "1"}
NOT_INHERITED = ("JPY_SESSION_NAME", "RESEARCH_AGENT_*")


def side_kernel_env(
    patterns: Iterable[str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a side kernel: scrubbed of secrets and of our own variables."""
    return {**scrubbed_env([*patterns, *NOT_INHERITED], base), **SIDE_RUN_ENV}


def check_local_kernelspec(name: str) -> None:
    """Refuse a kernelspec this machine does not have before anything starts (blocking: call
    it off the event loop)."""
    from jupyter_client.kernelspec import KernelSpecManager

    known = KernelSpecManager().find_kernel_specs()
    if name not in known:
        offered = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"the notebook's kernel '{name}' is not installed here (kernels available: {offered})"
        )


@dataclass(frozen=True)
class KernelKey:
    """What makes two side kernels interchangeable before they run anything."""

    kernel_name: str
    cwd: Path


class SideKernel:
    """One running kernel process with its manager and a connected async client."""

    def __init__(self, key: KernelKey, manager: AsyncKernelManager, client: AsyncKernelClient):
        self.key = key
        self.manager = manager
        self.client = client
        self.id: str = str(manager.kernel_id)
        self._shutdown_done = False

    @property
    def pid(self) -> int | None:
        process = getattr(self.manager.provisioner, "process", None)
        pid = getattr(process, "pid", None)
        return pid if isinstance(pid, int) else None

    async def is_alive(self) -> bool:
        return bool(await self.manager.is_alive())

    async def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self.manager.interrupt_kernel()

    async def shutdown(self) -> None:
        """Stop the channels and kill the process at once; safe to call twice."""
        if self._shutdown_done:
            return
        self._shutdown_done = True
        try:
            self.client.stop_channels()
        except Exception:  # a broken channel must not keep the process alive
            log.debug("stopping channels of kernel %s failed", self.id, exc_info=True)
        await _shutdown_manager(self.manager)


async def _shutdown_manager(manager: AsyncKernelManager) -> None:
    try:
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)
        else:
            await manager.cleanup_resources()
    except Exception:
        log.warning("shutting down kernel %s failed", manager.kernel_id, exc_info=True)


class KernelLauncher(Protocol):
    """Starts side kernels somewhere other than this machine (a kernel gateway: gateway.py).

    ``start`` gets the scrubbed environment, answers with a ready kernel and cleans up after
    itself when it fails or is cancelled; the pool applies the start timeout around it.
    """

    async def start(self, key: KernelKey, env: Mapping[str, str]) -> SideKernel: ...

    async def close(self) -> None: ...


class KernelPool:
    """Starts side kernels on this machine and keeps warm ones for the last key asked for.

    Every kernel it starts is tracked until shut down; ``close()`` shuts all of them down.
    """

    def __init__(
        self,
        *,
        warm_kernels: int = 0,
        start_timeout_s: float = 60.0,
        secret_env_patterns: Iterable[str] = (),
        launcher: KernelLauncher | None = None,
    ) -> None:
        self.launcher = launcher  # None: kernels start on this machine
        self.warm_target = warm_kernels
        self.start_timeout_s = start_timeout_s
        self.secret_env_patterns = list(secret_env_patterns)
        self._ipc_dir: Path | None = None
        self._live: set[SideKernel] = set()
        self._warm: list[SideKernel] = []
        self._warm_key: KernelKey | None = None
        self._warming = 0
        self._waiting = 0  # acquirers waiting for a kernel that is already starting
        self._warm_changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._warm_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def remote(self) -> bool:
        """Kernels start elsewhere (a gateway) and do not see this machine's files."""
        return self.launcher is not None

    @property
    def warm_count(self) -> int:
        return len(self._warm)

    @property
    def live_count(self) -> int:
        return len(self._live)

    # ---------------------------------------------------------------- start

    def _connection_base(self) -> Path:
        if self._ipc_dir is None:
            # Short path: unix socket paths are limited to about 100 bytes.
            self._ipc_dir = Path(tempfile.mkdtemp(prefix="jra-k-"))
        return self._ipc_dir / uuid.uuid4().hex[:10]

    async def start(self, key: KernelKey) -> SideKernel:
        """Start a fresh kernel and wait until it answers; KernelStartError otherwise."""
        if self._closed:
            raise KernelStartError("the kernel pool is closed")
        if self.launcher is not None:
            return await self._launch(self.launcher, key)
        await import_off_loop(*KERNEL_START_MODULES)
        await import_off_loop(*KERNELSPEC_LOOKUP_MODULES, optional=True)
        from jupyter_client.kernelspec import NoSuchKernel
        from jupyter_client.manager import AsyncKernelManager

        base = self._connection_base()
        manager = AsyncKernelManager(
            kernel_name=key.kernel_name,
            transport="ipc",
            ip=str(base),
            connection_file=str(base) + ".json",
        )
        kernel: SideKernel | None = None
        env = side_kernel_env(self.secret_env_patterns)
        try:
            async with asyncio.timeout(self.start_timeout_s):
                await manager.start_kernel(cwd=str(key.cwd), env=env)
                client = manager.client()
                client.start_channels(hb=False)  # liveness comes from the process, not heartbeats
                kernel = SideKernel(key, manager, client)
                self._live.add(kernel)
                await client.wait_for_ready(timeout=self.start_timeout_s)
            return kernel
        except BaseException as exc:
            # Whatever happened (timeout, bad spec, cancellation), leave no process behind.
            cleanup = kernel.shutdown() if kernel is not None else _shutdown_manager(manager)
            await asyncio.shield(self._track(cleanup))
            if kernel is not None:
                self._live.discard(kernel)
            name = key.kernel_name
            if isinstance(exc, TimeoutError):
                msg = f"kernel {name!r} did not start within {self.start_timeout_s:g} s"
                raise KernelStartError(msg) from exc
            if isinstance(exc, NoSuchKernel):
                msg = f"kernel {name!r} failed to start: no such kernelspec"
                raise KernelStartError(msg) from exc
            if isinstance(exc, Exception):
                raise KernelStartError(f"kernel {name!r} failed to start: {exc}") from exc
            raise

    async def _launch(self, launcher: KernelLauncher, key: KernelKey) -> SideKernel:
        env = side_kernel_env(self.secret_env_patterns)
        try:
            async with asyncio.timeout(self.start_timeout_s):
                kernel = await launcher.start(key, env)
        except TimeoutError as exc:
            msg = f"kernel {key.kernel_name!r} did not start within {self.start_timeout_s:g} s"
            raise KernelStartError(msg) from exc
        self._live.add(kernel)
        return kernel

    async def acquire(self, key: KernelKey) -> SideKernel:
        """A kernel for one run: a warm one for this key if any is alive, else a fresh one."""
        self._retarget(key)
        while self._warm:
            kernel = self._warm.pop(0)
            self._replenish()
            try:
                alive = await kernel.is_alive()
            except BaseException:  # cancelled while checking: the kernel is ours to stop
                await self.release(kernel)
                raise
            if alive:
                return kernel
            await self.release(kernel)
        self._replenish()
        if self._warming > self._waiting:
            # A kernel for this key is already starting: on a busy machine waiting for it is
            # quicker than starting one more next to it.
            self._waiting += 1
            try:
                async with self._warm_changed:
                    await self._warm_changed.wait_for(
                        lambda: bool(self._warm) or self._warming == 0 or self._closed
                    )
            finally:
                self._waiting -= 1
            if self._warm and key == self._warm_key:
                return await self.acquire(key)
        return await self.start(key)

    def prewarm(self, key: KernelKey, count: int = 0) -> None:
        """Start warm kernels for ``key`` in the background: up to ``count`` now (once), and
        ``warm_kernels`` kept replenished."""
        self._retarget(key)
        self._replenish(count)

    async def offer(self, kernel: SideKernel, keep: int) -> None:
        """Take back a cleared kernel as a warm one if its key is wanted and fewer than
        ``keep`` are waiting; shut it down otherwise."""
        if (
            self._closed
            or kernel.key != self._warm_key
            or len(self._warm) >= max(keep, self.warm_target)
        ):
            await self.release(kernel)
            return
        self._warm.append(kernel)
        await self._notify()

    async def release(self, kernel: SideKernel) -> None:
        """Shut a kernel down; finishes even if the caller is cancelled meanwhile."""
        task = self._track(self._shutdown(kernel))
        await asyncio.shield(task)

    async def _shutdown(self, kernel: SideKernel) -> None:
        try:
            await kernel.shutdown()
        finally:
            self._live.discard(kernel)

    # ---------------------------------------------------------------- warm kernels

    def _retarget(self, key: KernelKey) -> None:
        """Warm kernels are kept for one key; asking for another retires the old ones."""
        if key == self._warm_key:
            return
        self._warm_key = key
        stale, self._warm = self._warm, []
        for kernel in stale:
            self._track(self._shutdown(kernel))

    def _replenish(self, at_least: int = 0) -> None:
        if self._closed or self._warm_key is None:
            return
        missing = max(self.warm_target, at_least) - len(self._warm) - self._warming
        for _ in range(max(0, missing)):
            self._warming += 1
            self._warm_tasks.add(self._track(self._warm_one(self._warm_key)))

    async def _warm_one(self, key: KernelKey) -> None:
        try:
            kernel = await self.start(key)
        except KernelStartError as exc:
            log.warning("warm kernel did not start: %s", exc)
            return
        finally:
            self._warming -= 1
            await self._notify()
        if self._closed or key != self._warm_key:
            await self._shutdown(kernel)
        else:
            self._warm.append(kernel)
            await self._notify()

    async def _notify(self) -> None:
        async with self._warm_changed:
            self._warm_changed.notify_all()

    def _track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._warm_tasks.discard)
        return task

    # ---------------------------------------------------------------- close

    async def close(self) -> None:
        """Shut down every kernel this pool started, warm or in use, and wait for it."""
        self._closed = True
        for task in self._warm_tasks:
            task.cancel()  # a cancelled start shuts its half-started kernel down itself
        while self._tasks:  # shutdowns may track further shutdowns while we wait
            await asyncio.wait(set(self._tasks))
        kernels = list(self._live) + self._warm
        self._warm = []
        await asyncio.gather(*(self._shutdown(k) for k in kernels), return_exceptions=True)
        if self.launcher is not None:
            await self.launcher.close()
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None
