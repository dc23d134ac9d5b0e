"""A small blocking client of the server's REST API (/api/research-agent) and contents API.

Blocking on purpose: a magic runs on the kernel's main thread, and every request has a short
deadline (connect 3 s, read 10 s), so the kernel never hangs on a server that went away.
A kernel interrupt (SIGINT) raises KeyboardInterrupt inside the socket read or the sleep of a
wait loop, which stops waiting at once.

    ClientError               a request failed; ``str(err)`` is one line for the researcher
    ├── ServerUnreachable     nothing answered at the server's address
    └── ApiError              the server answered with an error (status, reason)
    WaitTimeout               a wait loop passed its deadline
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from ..core.models import (
    AddProposal,
    CreateExploration,
    EditProposal,
    Exploration,
    Proposal,
    Run,
    RunDetail,
)

API = "api/research-agent"
T = TypeVar("T")


class ClientError(Exception):
    """A request to the server failed."""


class ServerUnreachable(ClientError):
    pass


class ApiError(ClientError):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class WaitTimeout(ClientError):
    pass


class ResearchClient:
    """Typed calls to one Jupyter server. ``base_url`` includes the server's base path."""

    def __init__(
        self,
        base_url: str,
        token: str = "",
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"not a server address: {base_url!r}")
        self.base_url = base_url
        self._parts = parts
        self._prefix = parts.path.rstrip("/") + "/"
        self._token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    # ------------------------------------------------------------ research-agent API

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", f"{API}/status")
        return body

    def list_explorations(self, notebook_path: str | None = None) -> list[Exploration]:
        query = {"notebook_path": notebook_path} if notebook_path else None
        body = self.request("GET", f"{API}/explorations", query=query)
        return [Exploration.model_validate(item) for item in body["explorations"]]

    def create_exploration(self, req: CreateExploration) -> Exploration:
        payload = req.model_dump(mode="json", exclude_none=True)
        return Exploration.model_validate(self.request("POST", f"{API}/explorations", payload))

    def get_exploration(self, exploration_id: str) -> Exploration:
        body = self.request("GET", f"{API}/explorations/{_seg(exploration_id)}")
        return Exploration.model_validate(body)

    def add_proposal(self, exploration_id: str, req: AddProposal) -> Proposal:
        path = f"{API}/explorations/{_seg(exploration_id)}/proposals"
        return Proposal.model_validate(self.request("POST", path, req.model_dump(mode="json")))

    def approve(self, proposal_id: str, code_sha256: str) -> Proposal:
        path = f"{API}/proposals/{_seg(proposal_id)}/approve"
        return Proposal.model_validate(self.request("POST", path, {"code_sha256": code_sha256}))

    def reject(self, proposal_id: str) -> Proposal:
        path = f"{API}/proposals/{_seg(proposal_id)}/reject"
        return Proposal.model_validate(self.request("POST", path, {}))

    def edit(self, proposal_id: str, req: EditProposal) -> Proposal:
        payload = req.model_dump(mode="json", exclude_none=True)
        path = f"{API}/proposals/{_seg(proposal_id)}"
        return Proposal.model_validate(self.request("PATCH", path, payload))

    def get_run(self, run_id: str) -> RunDetail:
        return RunDetail.model_validate(self.request("GET", f"{API}/runs/{_seg(run_id)}"))

    def cancel_run(self, run_id: str) -> Run:
        return Run.model_validate(self.request("POST", f"{API}/runs/{_seg(run_id)}/cancel", {}))

    # ------------------------------------------------------------ jupyter_server APIs

    def notebook(self, path: str) -> dict[str, Any]:
        """The saved notebook (nbformat JSON) through the contents API."""
        body = self.request(
            "GET", f"api/contents/{quote(path)}", query={"type": "notebook", "content": "1"}
        )
        content: dict[str, Any] = body["content"]
        return content

    def sessions(self) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.request("GET", "api/sessions")
        return body

    # ------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        query: dict[str, str] | None = None,
    ) -> Any:
        """One JSON request; raises ClientError subclasses with one-line messages."""
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = self._connect()
        try:
            conn.request(method, target, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except TimeoutError:
            raise ServerUnreachable(
                f"the server at {self.base_url} did not answer within {self.read_timeout:g} s"
            ) from None
        except OSError as err:
            raise ServerUnreachable(f"lost the server at {self.base_url} ({err})") from None
        finally:
            conn.close()
        return _decode(response.status, raw)

    def _connect(self) -> http.client.HTTPConnection:
        host = self._parts.hostname or ""
        cls = (
            http.client.HTTPSConnection
            if self._parts.scheme == "https"
            else http.client.HTTPConnection
        )
        conn = cls(host, self._parts.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except OSError as err:
            conn.close()
            raise ServerUnreachable(f"cannot reach {self.base_url} ({_short(err)})") from None
        if conn.sock is not None:
            conn.sock.settimeout(self.read_timeout)
        return conn


def _decode(status: int, raw: bytes) -> Any:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        return body
    message, reason = f"HTTP {status}", None
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        reason = body.get("reason")
    if status == 403:
        message = f"the server refused the request (403): {message}"
    elif status == 404 and message == "HTTP 404":
        message = "not found (404): is the jupyter_research_agent server extension enabled?"
    raise ApiError(status, " ".join(message.split()), reason)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _short(err: OSError) -> str:
    return err.strerror or type(err).__name__


def wait_for(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Poll ``fetch`` until ``done`` holds; WaitTimeout after ``timeout`` seconds.

    A KeyboardInterrupt (kernel interrupt) raised during ``fetch`` or ``sleep`` propagates as is:
    the caller turns it into one line.
    """
    deadline = clock() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(f"still not done after {timeout:g} s")
        sleep(min(interval, remaining))
