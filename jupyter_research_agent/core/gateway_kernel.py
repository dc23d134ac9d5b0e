"""A side kernel on a kernel gateway, talked to over its websocket with Jupyter messages in JSON.

``GatewayChannels`` offers the part of jupyter_client's async client that runs use (``execute``,
``get_iopub_msg``, ``get_shell_msg``, ``stop_channels``), so ``execution.py`` drives a remote
kernel exactly as it drives a local one. Messages that arrive are sorted into one queue per
channel as they come; nothing reads the socket in a loop of its own.

tornado is imported inside the functions that connect: the core's import graph stays free of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import queue
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from .kernels import KernelKey, SideKernel

if TYPE_CHECKING:
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from tornado.websocket import WebSocketClientConnection

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "5.3"
ALIVE_CHECK_S = 10.0  # how often the gateway is asked whether the kernel still exists
PING_INTERVAL_S = 30.0  # keeps idle connections open through proxies and ingresses
MAX_MESSAGE_BYTES = 512 * 1024 * 1024  # big outputs (images, frames) arrive in one message


def _decode(frame: str | bytes) -> dict[str, Any] | None:
    """A message of the default websocket protocol: JSON text, or JSON plus binary buffers."""
    try:
        if isinstance(frame, str):
            data: Any = json.loads(frame)
        else:
            # Binary frames: a count, offsets, then the JSON message and its buffers.
            count = int.from_bytes(frame[:4], "big")
            offsets = [int.from_bytes(frame[4 * i : 4 * i + 4], "big") for i in range(1, count + 1)]
            end = offsets[1] if count > 1 else len(frame)
            data = json.loads(frame[offsets[0] : end])
    except (ValueError, IndexError):
        log.warning("ignored a malformed message from the kernel gateway")
        return None
    return data if isinstance(data, dict) else None


class GatewayChannels:
    """The shell and iopub channels of one remote kernel, over one websocket."""

    def __init__(self) -> None:
        self.session = uuid.uuid4().hex
        self.username = getpass.getuser()
        self.shell: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.iopub: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = False
        self.restarted = False  # the gateway restarted the kernel: its state is gone
        self._socket: WebSocketClientConnection | None = None
        self._raw: socket.socket | None = None

    async def connect(
        self, url: str, headers: dict[str, str], timeout_s: float, verify: bool
    ) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        request = HTTPRequest(url, headers=headers, connect_timeout=timeout_s, validate_cert=verify)
        self._socket = await websocket_connect(
            request,
            on_message_callback=self._received,
            ping_interval=PING_INTERVAL_S,
            max_message_size=MAX_MESSAGE_BYTES,
        )
        # The server's replies are small writes behind Nagle's algorithm: answer them at once
        # (no delayed ACKs), or every cell waits about 40 ms for nothing.
        protocol = self._socket.protocol
        stream = getattr(protocol, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)
            self._raw = stream.socket
        self._quickack()

    def _quickack(self) -> None:
        if self._raw is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                self._raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _received(self, frame: str | bytes | None) -> None:
        if frame is None:
            self.closed = True
            return
        self._quickack()
        msg = _decode(frame)
        if msg is None:
            return
        channel = msg.get("channel")
        if channel == "iopub":
            state = msg.get("content", {}).get("execution_state")
            if msg.get("msg_type") == "status" and state in ("restarting", "dead"):
                self.restarted = True
            self.iopub.put_nowait(msg)
        elif channel == "shell":
            self.shell.put_nowait(msg)

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Queue a request on the socket (tornado keeps the order); returns its msg_id."""
        if self._socket is None or self.closed:
            raise ConnectionError("the kernel's websocket is closed")
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session,
            "date": datetime.now(UTC).isoformat(),
            "version": PROTOCOL_VERSION,
        }
        msg = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "buffers": [],
            "channel": channel,
        }
        written = self._socket.write_message(json.dumps(msg))
        written.add_done_callback(_log_write_failure)
        return msg_id

    # ------------------------------------------------------------ the client API runs use

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
        user_expressions: dict[str, str] | None = None,  # read by the metric binding
    ) -> str:
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }
        return self.send("shell", "execute_request", content)

    async def get_iopub_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return await _get(self.iopub, timeout)

    async def get_shell_msg(self, timeout: float | None = None) -> dict[str, Any]:
        return await _get(self.shell, timeout)

    def stop_channels(self) -> None:
        self.closed = True
        if self._socket is not None:
            self._socket.close()


async def _get(source: asyncio.Queue[dict[str, Any]], timeout: float | None) -> dict[str, Any]:
    """Like jupyter_client: ``queue.Empty`` when nothing came within ``timeout``."""
    try:
        return await asyncio.wait_for(source.get(), timeout)
    except TimeoutError:
        raise queue.Empty from None


def _log_write_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.debug("writing to a kernel's websocket failed: %s", done.exception())


async def wait_ready(channels: GatewayChannels, timeout_s: float) -> None:
    """Ask for kernel_info until the kernel answers (a fresh kernel may miss the first ask)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        msg_id = channels.send("shell", "kernel_info_request", {})
        ask_until = time.monotonic() + min(left, 2.0)
        while (wait := ask_until - time.monotonic()) > 0:
            try:
                reply = await channels.get_shell_msg(timeout=wait)
            except queue.Empty:
                break
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return
        if channels.closed:
            raise ConnectionError("the kernel gateway closed the kernel's websocket")
    raise TimeoutError


class GatewayKernel(SideKernel):
    """A side kernel that lives on a kernel gateway; shutting it down deletes it there."""

    def __init__(
        self,
        key: KernelKey,
        kernel_id: str,
        channels: GatewayChannels,
        *,
        exists: Callable[[], Awaitable[bool]],
        interrupt: Callable[[], Awaitable[None]],
        delete: Callable[[], Awaitable[None]],
    ) -> None:
        # No local manager or process: the gateway owns both.
        self.key = key
        self.id = kernel_id
        self.channels = channels
        # execution.py uses the client only through what GatewayChannels implements.
        self.client = cast("AsyncKernelClient", channels)
        self._exists = exists
        self._interrupt = interrupt
        self._delete = delete
        self._checked = time.monotonic()
        self._gone = False
        self._shutdown_done = False

    @property
    def pid(self) -> int | None:
        return None

    async def is_alive(self) -> bool:
        """Alive while the socket is open, the gateway did not restart it, and it still exists."""
        if self._gone or self.channels.closed or self.channels.restarted:
            return False
        if time.monotonic() - self._checked > ALIVE_CHECK_S:
            self._checked = time.monotonic()
            self._gone = not await self._exists()
        return not self._gone

    async def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self._interrupt()

    async def shutdown(self) -> None:
        """Close the socket and delete the kernel on the gateway; safe to call twice."""
        if self._shutdown_done:
            return
        self._shutdown_done = True
        self.channels.stop_channels()
        try:
            await self._delete()
        except Exception as exc:  # the gateway culls what it cannot delete now; say so, go on
            log.warning("deleting kernel %s on the gateway failed: %s", self.id, exc)
