"""One chat-completions call to an OpenAI-compatible server, with our own reliability rules.

The ``openai`` client runs with ``max_retries=0``: retries, deadlines and error messages are
ours, because they must be bounded, visible to the researcher and free of secrets.

- 429: wait for Retry-After (bounded) and retry, telling ``on_status``; quota exhausted stops.
- 401 / 403 / 404: stop at once with what to fix in the configuration.
- 5xx and connection errors: retried ``max_retries`` times with exponential backoff.
- A hung server: cut by ``asyncio.wait_for`` at ``timeout_s`` (ProviderTimeout).
- Cancelling the awaiting task closes the HTTP request.
- Structured output: ``json_schema`` mode first, then ``json_object``, then plain text; the
  mode that worked is remembered per endpoint and model.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import openai
from pydantic import BaseModel

from ..config import LLMConfig
from ..errors import (
    ProviderAuthError,
    ProviderError,
    ProviderQuotaError,
    ProviderTimeout,
)
from ..redact import redact

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.5  # first 5xx backoff; doubles each attempt
MAX_BACKOFF_S = 8.0
RATE_LIMIT_RETRIES = 5
MAX_RETRY_AFTER_S = 60.0
# Local servers usually need no key but the client insists on one.
NO_KEY = "no-key-configured"


class OutputMode(StrEnum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    TEXT = "text"


_FALLBACK = {
    OutputMode.JSON_SCHEMA: OutputMode.JSON_OBJECT,
    OutputMode.JSON_OBJECT: OutputMode.TEXT,
}
# Which structured-output mode each (base_url, model) accepted; shared by every provider.
_ENDPOINT_MODES: dict[tuple[str, str], OutputMode] = {}

usage_label: ContextVar[str | None] = ContextVar("research_agent_usage_label", default=None)


@contextlib.contextmanager
def label_usage(label: str | None) -> Iterator[None]:
    """Tag the usage of every model call made inside this block (e.g. with an exploration id).

    Context variables follow the asyncio task, so the engine sets this inside the task that
    proposes for one exploration.
    """
    token = usage_label.set(label)
    try:
        yield
    finally:
        usage_label.reset(token)


class Usage(BaseModel):
    """Tokens spent by one model request (the ledger stores these)."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    purpose: str = "propose"  # propose / repair / fix / interpret
    label: str | None = None  # what the caller tagged with label_usage (an exploration id)
    estimated: bool = False  # the server sent no usage; counted as characters / 4


@dataclass
class ChatAnswer:
    content: str
    finish_reason: str | None
    mode: OutputMode
    usage: Usage


class _FormatRejected(Exception):
    """The server refused the response_format we asked for."""


def remembered_mode(base_url: str | None, model: str) -> OutputMode | None:
    return _ENDPOINT_MODES.get((base_url or "", model))


def forget_modes() -> None:
    _ENDPOINT_MODES.clear()


class ChatProvider:
    def __init__(
        self,
        config: LLMConfig,
        *,
        http_client: Any | None = None,
        usage_sink: Callable[[Usage], None] | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._secret = config.api_key.get_secret_value() if config.api_key else ""
        self._client = openai.AsyncOpenAI(
            api_key=self._secret or NO_KEY,
            base_url=config.base_url or None,
            timeout=config.timeout_s,
            max_retries=0,
            http_client=http_client,
        )
        self._usage_sink = usage_sink
        self._on_status = on_status
        self._limit = asyncio.Semaphore(max(1, config.max_concurrency))

    @property
    def where(self) -> str:
        return f"model {self.config.model!r} at {self.config.base_url or 'api.openai.com'}"

    def scrub(self, text: str) -> str:
        return redact(text, [self._secret])

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        purpose: str = "propose",
    ) -> ChatAnswer:
        """Send one request; structured output when ``schema`` is given."""
        async with self._limit:
            try:
                return await asyncio.wait_for(
                    self._complete(messages, schema, purpose), self.config.timeout_s
                )
            except TimeoutError:
                raise ProviderTimeout(
                    f"The {self.where} did not answer within {self.config.timeout_s:g} s. "
                    "Check that the server is up, or raise the timeout."
                ) from None

    async def _complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, purpose: str
    ) -> ChatAnswer:
        key = (self.config.base_url or "", self.config.model)
        mode = (
            OutputMode.TEXT if schema is None else _ENDPOINT_MODES.get(key, OutputMode.JSON_SCHEMA)
        )
        while True:
            try:
                completion = await self._create_with_retries(messages, mode, schema)
            except _FormatRejected as exc:
                next_mode = _FALLBACK.get(mode)
                if next_mode is None:
                    raise ProviderError(self.scrub(str(exc))) from None
                log.info("%s refused %s output; trying %s", self.where, mode, next_mode)
                mode = next_mode
                continue
            if schema is not None:
                _ENDPOINT_MODES[key] = mode
            break
        choice = completion.choices[0] if completion.choices else None
        content = (choice.message.content or "") if choice else ""
        usage = self._record_usage(completion, messages, content, purpose)
        return ChatAnswer(
            content=content,
            finish_reason=choice.finish_reason if choice else None,
            mode=mode,
            usage=usage,
        )

    def _record_usage(
        self, completion: Any, messages: list[dict[str, str]], content: str, purpose: str
    ) -> Usage:
        raw = getattr(completion, "usage", None)
        if raw is not None and raw.prompt_tokens is not None:
            usage = Usage(
                model=completion.model or self.config.model,
                prompt_tokens=int(raw.prompt_tokens or 0),
                completion_tokens=int(raw.completion_tokens or 0),
                purpose=purpose,
                label=usage_label.get(),
            )
        else:
            usage = Usage(
                model=self.config.model,
                prompt_tokens=sum(len(m["content"]) for m in messages) // 4,
                completion_tokens=len(content) // 4,
                purpose=purpose,
                label=usage_label.get(),
                estimated=True,
            )
        if self._usage_sink is not None:
            try:
                self._usage_sink(usage)
            except Exception:  # the sink must never lose the answer
                log.exception("Recording model usage failed")
        return usage

    def _status(self, message: str) -> None:
        log.info("%s", message)
        if self._on_status is not None:
            try:
                self._on_status(message)
            except Exception:
                log.exception("Status callback failed")

    async def _create_with_retries(
        self, messages: list[dict[str, str]], mode: OutputMode, schema: dict[str, Any] | None
    ) -> Any:
        kwargs: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if mode is OutputMode.JSON_SCHEMA and schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif mode is OutputMode.JSON_OBJECT:
            kwargs["response_format"] = {"type": "json_object"}
        server_failures = 0
        rate_limited = 0
        while True:
            try:
                return await self._client.chat.completions.create(**kwargs)
            except openai.RateLimitError as exc:
                if _error_code(exc) == "insufficient_quota":
                    raise ProviderQuotaError(
                        f"The quota of the {self.where} is exhausted: check the plan and billing "
                        "of this API key, or use another model or endpoint."
                    ) from None
                rate_limited += 1
                wait = _retry_after(exc.response.headers)
                if rate_limited > RATE_LIMIT_RETRIES or (wait or 0) > MAX_RETRY_AFTER_S:
                    raise ProviderError(
                        f"The {self.where} keeps refusing requests (rate limit, 429): "
                        "try again later or lower the number of concurrent requests."
                    ) from None
                delay = wait if wait is not None else _backoff(rate_limited - 1)
                self._status(f"Rate limited by the model provider; retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
            except openai.AuthenticationError:
                raise ProviderAuthError(
                    f"The {self.where} rejected the API key (401): set a valid key "
                    "(OPENAI_API_KEY or c.ResearchAgent.api_key)."
                ) from None
            except openai.PermissionDeniedError:
                raise ProviderAuthError(
                    f"The API key may not use the {self.where} (403): check the key's "
                    "permissions or choose another model."
                ) from None
            except openai.NotFoundError:
                raise ProviderAuthError(
                    f"The {self.where} was not found (404): check the model name and the base "
                    "URL (OpenAI-compatible servers usually serve under /v1)."
                ) from None
            except openai.APIStatusError as exc:
                message = self.scrub(_error_message(exc))
                status = exc.status_code
                refused_format = status in (400, 422, 500) and _mentions_format(message)
                if refused_format and mode is not OutputMode.TEXT:
                    raise _FormatRejected(message) from None
                if status < 500:
                    raise ProviderError(
                        f"The {self.where} refused the request ({status}): {message}"
                    ) from None
                server_failures += 1
                if server_failures > self.config.max_retries:
                    raise ProviderError(
                        f"The {self.where} failed {server_failures} times ({status}): {message}"
                    ) from None
                await self._wait_before_retry(server_failures, f"server error {status}")
            except openai.APIConnectionError as exc:
                server_failures += 1
                if server_failures > self.config.max_retries:
                    raise ProviderError(
                        f"Could not reach the {self.where}: {self.scrub(str(exc))}"
                    ) from None
                await self._wait_before_retry(server_failures, "connection error")

    async def _wait_before_retry(self, attempt: int, what: str) -> None:
        delay = _backoff(attempt - 1)
        self._status(
            f"The model provider failed ({what}); retry {attempt} of "
            f"{self.config.max_retries} in {delay:.1f} s"
        )
        await asyncio.sleep(delay)


def _backoff(attempt: int) -> float:
    base: float = min(MAX_BACKOFF_S, RETRY_BACKOFF_S * 2**attempt)
    return base * (0.8 + 0.4 * random.random())


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("code") or body.get("type") or getattr(exc, "code", "") or "")


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:500]
    if isinstance(body, str) and body:
        return body[:500]
    return str(exc)[:500]


def _mentions_format(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in ("response_format", "json_schema", "response format"))
