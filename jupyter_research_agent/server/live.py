"""The researcher's running kernels as a source of state for side kernels.

For a notebook open in this server, its session names its kernel; when that kernel is local
and idle (``execution_state`` as the kernel manager tracks it), the engine may run its snapshot
dump there through a client of its own (``core/live.ClientKernelSource``): silent, without
history, binding no name. A busy, remote or unknown kernel is never asked: runs then rebuild
their state in a prepared kernel instead.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any

from ..core.live import ClientKernelSource, LiveKernelSource

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

log = logging.getLogger(__name__)


def _normal(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/")


class ServerLiveKernels:
    """``LiveKernels`` for the engine: notebook path -> its idle local kernel, or None."""

    def __init__(self, server: ServerApp) -> None:
        self.server = server

    async def __call__(self, notebook_path: str) -> LiveKernelSource | None:
        kernel_id = await self._kernel_of(_normal(notebook_path))
        if kernel_id is None:
            return None
        manager: Any = self.server.kernel_manager
        try:
            kernel = manager.get_kernel(kernel_id)
            info = kernel.get_connection_info()
        except Exception:  # gone meanwhile, or a gateway kernel without local connection info
            log.debug("no connection info for kernel %s", kernel_id, exc_info=True)
            return None
        if not info.get("shell_port") and info.get("transport", "tcp") == "tcp":
            return None

        def is_idle() -> bool:
            return getattr(kernel, "execution_state", None) == "idle"

        return ClientKernelSource(dict(info), is_idle=is_idle)

    async def _kernel_of(self, path: str) -> str | None:
        sessions: list[dict[str, Any]] = await self.server.session_manager.list_sessions()
        for session in sessions:
            where = session.get("path") or (session.get("notebook") or {}).get("path") or ""
            kernel = session.get("kernel") or {}
            if _normal(str(where)) == path and kernel.get("id"):
                return str(kernel["id"])
        return None
