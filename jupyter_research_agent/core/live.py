"""The researcher's own kernel as a source of state, offered by whoever can reach it.

The core never finds that kernel by itself: the server knows which kernel belongs to which
notebook and supplies a :data:`LiveKernels` callable (``server/live.py``); tests and benchmarks
supply one backed by a kernel they started. The only thing the engine ever runs there is the
snapshot dump of ``core/snapshot.py``: silent, without history, binding no name, and only while
the kernel is idle.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class LiveKernelSource(Protocol):
    """The researcher's kernel of one notebook."""

    async def run_silently(self, code: str, timeout_s: float) -> bool:
        """Run ``code`` with ``silent=True, store_history=False`` if the kernel is idle.

        True when it ran to completion without error; False when the kernel was busy, gone,
        or the code failed. Never waits for a busy kernel.
        """
        ...


# notebook path (as the engine knows it) -> its live kernel, or None
LiveKernels = Callable[[str], Awaitable[LiveKernelSource | None]]


class ClientKernelSource:
    """A live source that talks to a kernel through its connection info.

    It opens its own client (shell channel only) for each request, so the researcher's
    connections are untouched. ``is_idle`` says whether the kernel may be asked now.
    """

    def __init__(
        self, connection_info: dict[str, Any], is_idle: Callable[[], bool] | None = None
    ) -> None:
        self.connection_info = connection_info
        self.is_idle = is_idle

    async def run_silently(self, code: str, timeout_s: float) -> bool:
        if self.is_idle is not None and not self.is_idle():
            return False
        from jupyter_client.asynchronous.client import AsyncKernelClient

        client = AsyncKernelClient()
        client.load_connection_info(self.connection_info)  # type: ignore[arg-type]
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    reply = await client.get_shell_msg(timeout=left)
                except queue.Empty:
                    break
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    return bool(reply["content"].get("status") == "ok")
            log.warning("the live kernel did not answer the snapshot request in time")
            return False
        finally:
            client.stop_channels()
