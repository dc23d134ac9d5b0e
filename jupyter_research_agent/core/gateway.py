"""Side kernels on a Jupyter Kernel Gateway or Enterprise Gateway instead of this machine.

The gateway's kernel REST API starts, interrupts and deletes kernels (``/api/kernels``); each
kernel is then driven over its websocket (``/api/kernels/{id}/channels``, see gateway_kernel.py).
The pool, queue, timeouts, cancel and retry of the executor stay as they are: only the way a
kernel is started differs, through ``KernelPool(launcher=...)``.

Only ``KERNEL_*`` variables of the (already secret-scrubbed) environment travel to the gateway:
gateways ignore the rest, and nothing else of this machine needs to leave it.

tornado is imported inside the functions that talk to the gateway, never at import time.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from .config import EngineConfig, GatewayConfig
from .gateway_kernel import GatewayChannels, GatewayKernel, wait_ready
from .kernels import KernelKey, KernelStartError, SideKernel

if TYPE_CHECKING:
    from tornado.httpclient import AsyncHTTPClient

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 128  # concurrent requests to the gateway (starts can be slow on a cluster)
CLOSE_WAIT_S = 10.0  # how long close() waits for abandoned starts to be cleaned up


class GatewayRefused(KernelStartError):
    """The gateway answered, but with an error (wrong token, no such kernelspec, limits)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def gateway_launcher(config: EngineConfig) -> GatewayLauncher | None:
    """The launcher the config asks for: a gateway when a URL is set, else None (local)."""
    if not config.gateway.url:
        return None
    return GatewayLauncher(config.gateway, start_timeout_s=config.kernel_start_timeout_s)


def display_url(url: str) -> str:
    """The URL without credentials or query, fit for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def kernel_env(env: Mapping[str, str], key: KernelKey, start_timeout_s: float) -> dict[str, str]:
    """What the gateway receives: ``KERNEL_*`` variables and what gateways read to launch."""
    sent = {name: value for name, value in env.items() if name.startswith("KERNEL_")}
    sent.setdefault("KERNEL_USERNAME", getpass.getuser())
    # Enterprise Gateway waits this long for a pod or container to come up.
    sent.setdefault("KERNEL_LAUNCH_TIMEOUT", str(max(1, int(start_timeout_s))))
    sent.setdefault("KERNEL_WORKING_DIR", str(key.cwd))
    return sent


class GatewayLauncher:
    """Starts side kernels on one gateway; ``close()`` releases its HTTP connections."""

    def __init__(self, config: GatewayConfig, *, start_timeout_s: float) -> None:
        if not config.url:
            raise ValueError("a gateway launcher needs the gateway's URL")
        self.config = config
        parts = urlsplit(config.url)  # paths are appended to it: no query, no trailing slash
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.where = display_url(self.base_url)
        self.start_timeout_s = start_timeout_s
        self._http: AsyncHTTPClient | None = None
        self._cleanups: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ REST

    def headers(self) -> dict[str, str]:
        config = self.config
        headers = dict(config.headers)
        key = config.auth_header_key
        has_auth = any(name.lower() == key.lower() for name in headers)
        if config.auth_token is not None and not has_auth:
            token = config.auth_token.get_secret_value()
            headers[key] = f"{config.auth_scheme} {token}" if config.auth_scheme else token
        return headers

    def _client(self) -> AsyncHTTPClient:
        if self._http is None:
            from tornado.httpclient import AsyncHTTPClient

            self._http = AsyncHTTPClient(force_instance=True, max_clients=MAX_CONNECTIONS)
        return self._http

    async def request(
        self, method: str, path: str, body: Any = None, timeout_s: float | None = None
    ) -> Any:
        """One REST call; the decoded JSON answer (None if empty). Errors as KernelStartError."""
        from tornado.httpclient import HTTPClientError, HTTPRequest

        headers = self.headers()
        data: str | None = None
        if body is not None or method == "POST":
            data = json.dumps(body if body is not None else {})
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self.base_url + path,
            method=method,
            headers=headers,
            body=data,
            connect_timeout=self.config.connect_timeout_s,
            request_timeout=timeout_s or self.config.request_timeout_s,
            validate_cert=self.config.validate_cert,
        )
        try:
            response = await self._client().fetch(request)
        except HTTPClientError as exc:
            raise self._refusal(exc) from exc
        except OSError as exc:
            raise self.unreachable(exc) from exc
        except ValueError as exc:  # a URL tornado cannot use
            raise KernelStartError(f"kernel gateway at {self.where}: {exc}") from exc
        try:
            return json.loads(response.body) if response.body else None
        except ValueError as exc:  # a proxy's HTML page, say
            msg = f"kernel gateway at {self.where} answered {method} {path} with no JSON"
            raise KernelStartError(msg) from exc

    def unreachable(self, exc: BaseException) -> KernelStartError:
        return KernelStartError(f"kernel gateway at {self.where} is unreachable: {exc}")

    def _refusal(self, exc: Any) -> KernelStartError:
        code: int = exc.code
        if code == 599:  # tornado's code for timeouts and dropped connections
            return self.unreachable(exc.message or exc)
        detail = _error_detail(exc.response.body if exc.response is not None else b"")
        if code in (401, 403) and not detail:
            message = f"kernel gateway at {self.where} refused the token ({code})"
        elif code in (401, 403):
            message = f"kernel gateway at {self.where} refused ({code}): {detail}"
        else:
            what = detail or exc.message or "error"
            message = f"kernel gateway at {self.where} answered {code}: {what}"
        return GatewayRefused(message, code)

    async def exists(self, kernel_id: str) -> bool:
        """False once the gateway no longer knows the kernel; True if it cannot tell."""
        try:
            await self.request("GET", f"/api/kernels/{quote(kernel_id)}")
        except GatewayRefused as exc:
            return exc.code != 404
        except KernelStartError:
            return True  # a network hiccup; the websocket tells if the kernel is really gone
        return True

    async def interrupt(self, kernel_id: str) -> None:
        await self.request("POST", f"/api/kernels/{quote(kernel_id)}/interrupt")

    async def delete(self, kernel_id: str) -> None:
        try:
            await self.request("DELETE", f"/api/kernels/{quote(kernel_id)}")
        except GatewayRefused as exc:
            if exc.code != 404:  # already gone is what we wanted
                raise

    # ------------------------------------------------------------ start

    async def start(self, key: KernelKey, env: Mapping[str, str]) -> SideKernel:
        """Create a kernel on the gateway, connect to it, and wait until it answers."""
        body = {"name": key.kernel_name, "env": kernel_env(env, key, self.start_timeout_s)}
        # A cluster may take long to schedule a kernel: the request may take the start timeout.
        timeout_s = max(self.config.request_timeout_s, self.start_timeout_s)
        create = asyncio.ensure_future(self.request("POST", "/api/kernels", body, timeout_s))
        try:
            model = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Abandoned mid-request: the gateway may still create it; delete it when it does.
            self._track(self._delete_when_created(create))
            raise
        if not isinstance(model, dict) or "id" not in model:
            raise KernelStartError(f"kernel gateway at {self.where} answered without a kernel id")
        kernel_id = str(model["id"])
        try:
            return await self._connect(key, kernel_id)
        except BaseException:
            self._track(self.delete(kernel_id))
            raise

    async def _connect(self, key: KernelKey, kernel_id: str) -> GatewayKernel:
        from tornado.httpclient import HTTPClientError

        channels = GatewayChannels()
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        socket_base = urlunsplit(parts._replace(scheme=scheme))
        query = f"?session_id={channels.session}"  # names this client in the gateway's logs
        url = f"{socket_base}/api/kernels/{quote(kernel_id)}/channels{query}"
        try:
            await channels.connect(
                url, self.headers(), self.config.connect_timeout_s, self.config.validate_cert
            )
            await wait_ready(channels, self.start_timeout_s)
        except HTTPClientError as exc:
            channels.stop_channels()
            raise self._refusal(exc) from exc
        except TimeoutError:  # the pool's start timeout says it better (an OSError otherwise)
            channels.stop_channels()
            raise
        except OSError as exc:  # ConnectionError included
            channels.stop_channels()
            raise self.unreachable(exc) from exc
        except Exception as exc:  # a websocket protocol error: say where, not "internal error"
            channels.stop_channels()
            msg = f"kernel gateway at {self.where}: connecting to kernel {kernel_id} failed: {exc}"
            raise KernelStartError(msg) from exc
        except BaseException:
            channels.stop_channels()
            raise
        log.debug("side kernel %s started on %s", kernel_id, self.where)
        return GatewayKernel(
            key,
            kernel_id,
            channels,
            exists=lambda: self.exists(kernel_id),
            interrupt=lambda: self.interrupt(kernel_id),
            delete=lambda: self.delete(kernel_id),
        )

    async def _delete_when_created(self, create: asyncio.Future[Any]) -> None:
        try:
            model = await create
        except KernelStartError:
            return  # never created
        if isinstance(model, dict) and "id" in model:
            await self.delete(str(model["id"]))

    def _track(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(_quietly(coro))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def close(self) -> None:
        """Wait briefly for pending deletions, then drop the HTTP connections."""
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=CLOSE_WAIT_S)
        if self._http is not None:
            self._http.close()
            self._http = None


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception as exc:
        log.warning("cleaning up a kernel on the gateway failed: %s", exc)


def _error_detail(body: bytes) -> str:
    """The gateway's own words from a JSON error body: the message, else the last trace line."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    message = str(data.get("message") or "")
    trace = str(data.get("traceback") or "").strip()
    if trace and (not message or message == "Unknown server error"):
        return trace.splitlines()[-1]
    return message
