"""A real HTTP server on 127.0.0.1 that speaks OpenAI's ``/v1/chat/completions``.

Each test scripts the answers: a queue of replies consumed one per request, then a default
(``always``). A reply can also be a function of the request body, to answer differently by
``response_format`` for instance. Everything received is kept for inspection (``requests``),
and a client that hangs up during a delayed reply is counted (``disconnects``).

Streaming (``"stream": true``) is answered with server-sent events.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}


@dataclass
class Reply:
    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    body: Any = None  # a raw body (dict or text) instead of a completion
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: dict[str, int] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))


Rule = Reply | Callable[[dict[str, Any]], Reply]


def chat(content: str, finish_reason: str = "stop", usage: dict[str, int] | None = None) -> Reply:
    return Reply(content=content, finish_reason=finish_reason, usage=usage or dict(DEFAULT_USAGE))


def error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    type_: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply(status=status, body=body, headers=headers or {})


def hang(seconds: float = 30.0) -> Reply:
    """Accept the request and answer nothing for ``seconds`` (or until the client leaves)."""
    return Reply(delay_s=seconds, content="late")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw: str
    body: dict[str, Any]


class FakeOpenAI:
    def __init__(self, model: str = "test-model") -> None:
        self.model = model
        self.requests: list[Received] = []
        self.disconnects = 0
        self._queue: deque[Rule] = deque()
        self._default: Rule | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *replies: Rule) -> None:
        with self._lock:
            self._queue.extend(replies)

    def always(self, reply: Rule) -> None:
        self._default = reply

    @property
    def chat_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ serving

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            rule = self._queue.popleft() if self._queue else self._default
        if rule is None:
            return error(500, "no scripted reply left", type_="server_error")
        return rule(body) if callable(rule) else rule

    def _completion(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": reply.usage,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send_json(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _client_left(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _wait(self, seconds: float) -> bool:
                """Sleep; False when the client hung up or the server stops."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    if server._stopping.is_set():
                        return False
                    if self._client_left():
                        with server._lock:
                            server.disconnects += 1
                        return False
                    time.sleep(0.01)
                return True

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send_json(200, {"object": "list", "data": [{"id": server.model}]}, {})
                else:
                    self._send_json(404, {"error": {"message": "not found"}}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                server.requests.append(
                    Received(
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        raw,
                        body,
                    )
                )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": "unknown path"}}, {})
                    return
                reply = server._next_reply(body)
                if reply.delay_s and not self._wait(reply.delay_s):
                    self.close_connection = True
                    return
                if reply.status != 200 or reply.body is not None:
                    self._send_json(reply.status, reply.body, reply.headers)
                elif body.get("stream"):
                    self._stream(reply, body)
                else:
                    self._send_json(200, server._completion(reply, body), reply.headers)

            def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                base = server._completion(reply, body)
                content = reply.content or ""
                pieces = [content[i : i + 20] for i in range(0, len(content), 20)] or [""]
                for n, piece in enumerate(pieces):
                    last = n == len(pieces) - 1
                    chunk = {
                        "id": base["id"],
                        "object": "chat.completion.chunk",
                        "created": base["created"],
                        "model": base["model"],
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": piece},
                                "finish_reason": reply.finish_reason if last else None,
                            }
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {**chunk, "choices": [], "usage": reply.usage}
                    self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started fake server, stopped after the test.

    The provider remembers per endpoint which output mode worked; a new server may reuse an old
    port, so that memory is cleared first."""
    from jupyter_research_agent.core.llm import provider

    provider.forget_modes()
    with FakeOpenAI() as server:
        yield server


def proposals_answer(*codes: str, kind: str = "parameter", cause: str | None = None) -> str:
    """A valid proposals answer with one proposal per code."""
    items = [
        {
            "title": f"Variation {i + 1}",
            "kind": kind,
            "rationale": f"Because idea {i + 1} might help.",
            "expected_effect": "accuracy up a little",
            "code": code,
        }
        for i, code in enumerate(codes)
    ]
    answer: dict[str, Any] = {"proposals": items}
    if cause is not None:
        answer = {"likely_cause": cause, **answer}
    return json.dumps(answer)
