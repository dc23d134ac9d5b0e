"""Provider faults against a real HTTP server on 127.0.0.1 (RELIABILITY.md: the provider)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
from openai_server import FakeOpenAI, Reply, chat, error, fake_openai, hang, proposals_answer
from pydantic import SecretStr

from jupyter_research_agent.core.config import LLMConfig
from jupyter_research_agent.core.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderQuotaError,
    ProviderTimeout,
)
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.llm.provider import ChatProvider, OutputMode, Usage, label_usage

__all__ = ["fake_openai"]

SENTINEL_KEY = "sk-test-SENTINEL0123456789abcdefSENTINEL"
MESSAGES = [{"role": "user", "content": "Answer in JSON."}]
SCHEMA = {"name": "x", "strict": True, "schema": {"type": "object", "properties": {}}}


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(provider_module, "RETRY_BACKOFF_S", 0.01)
    provider_module.forget_modes()
    yield
    provider_module.forget_modes()


def config_for(server: FakeOpenAI, **overrides: object) -> LLMConfig:
    values: dict[str, object] = {
        "model": "test-model",
        "base_url": server.url,
        "api_key": SecretStr(SENTINEL_KEY),
        "timeout_s": 5.0,
        "max_retries": 2,
    }
    values.update(overrides)
    return LLMConfig.model_validate(values)


@pytest.mark.asyncio
async def test_answer_and_usage_are_recorded(fake_openai: FakeOpenAI) -> None:
    # Given a server that answers once, and a usage sink
    fake_openai.script(chat('{"ok": 1}', usage={"prompt_tokens": 42, "completion_tokens": 7}))
    seen: list[Usage] = []
    provider = ChatProvider(config_for(fake_openai), usage_sink=seen.append)
    # When a request is sent inside a labelled block
    with label_usage("exp-123"):
        answer = await provider.complete(MESSAGES, schema=SCHEMA)
    # Then the answer, the mode and the usage (with its label) come back
    assert answer.content == '{"ok": 1}'
    assert answer.finish_reason == "stop"
    assert answer.mode is OutputMode.JSON_SCHEMA
    assert seen == [answer.usage]
    assert (seen[0].prompt_tokens, seen[0].completion_tokens, seen[0].label) == (42, 7, "exp-123")
    # And the request asked for strict JSON-schema output with our retries off in the client
    sent = fake_openai.chat_requests[0]
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.headers["authorization"] == f"Bearer {SENTINEL_KEY}"
    assert sent.headers.get("x-stainless-retry-count", "0") == "0"
    await provider.close()


@pytest.mark.asyncio
async def test_rate_limit_is_retried_after_retry_after_and_shown(fake_openai: FakeOpenAI) -> None:
    # Given a 429 with Retry-After: 0.1, then a good answer
    fake_openai.script(
        error(
            429, "Rate limit reached", code="rate_limit_exceeded", headers={"Retry-After": "0.1"}
        ),
        chat("{}"),
    )
    statuses: list[str] = []
    provider = ChatProvider(config_for(fake_openai), on_status=statuses.append)
    # When a request is sent
    started = time.monotonic()
    answer = await provider.complete(MESSAGES)
    # Then it waited about the Retry-After, told the status callback, and succeeded
    assert answer.content == "{}"
    assert time.monotonic() - started >= 0.1
    assert len(fake_openai.chat_requests) == 2
    assert statuses and "Rate limited" in statuses[0] and "0.1 s" in statuses[0]
    await provider.close()


@pytest.mark.asyncio
async def test_quota_exhausted_stops_at_once(fake_openai: FakeOpenAI) -> None:
    # Given a 429 whose code says the quota is gone
    fake_openai.always(
        error(
            429,
            "You exceeded your current quota",
            code="insufficient_quota",
            type_="insufficient_quota",
        )
    )
    provider = ChatProvider(config_for(fake_openai))
    # When a request is sent, Then ProviderQuotaError with what to check, after one request
    with pytest.raises(ProviderQuotaError, match=r"quota .* exhausted"):
        await provider.complete(MESSAGES)
    assert len(fake_openai.chat_requests) == 1
    await provider.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "rejected the API key"), (403, "may not use"), (404, "not found .*model name")],
)
async def test_auth_and_unknown_model_fail_at_once_without_the_key(
    fake_openai: FakeOpenAI, status: int, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a server that refuses, echoing the key in its message as some providers do
    fake_openai.always(error(status, f"Incorrect API key provided: {SENTINEL_KEY}"))
    provider = ChatProvider(config_for(fake_openai))
    caplog.set_level(logging.DEBUG)
    # When a request is sent
    with pytest.raises(ProviderAuthError, match=expected) as raised:
        await provider.complete(MESSAGES)
    # Then it failed after one request, and the key is neither in the message nor in the logs
    assert len(fake_openai.chat_requests) == 1
    assert SENTINEL_KEY not in str(raised.value)
    assert SENTINEL_KEY not in caplog.text
    await provider.close()


@pytest.mark.asyncio
async def test_server_errors_are_retried_then_succeed(fake_openai: FakeOpenAI) -> None:
    # Given two 500s then a good answer, and max_retries=2
    fake_openai.script(
        error(500, "boom", type_="server_error"), error(502, "bad gateway"), chat("{}")
    )
    statuses: list[str] = []
    provider = ChatProvider(config_for(fake_openai), on_status=statuses.append)
    # When a request is sent, Then it succeeds on the third try and said so twice
    answer = await provider.complete(MESSAGES)
    assert answer.content == "{}"
    assert len(fake_openai.chat_requests) == 3
    assert len(statuses) == 2 and "retry 1 of 2" in statuses[0]
    await provider.close()


@pytest.mark.asyncio
async def test_server_errors_forever_give_up_after_max_retries(fake_openai: FakeOpenAI) -> None:
    # Given a server that always fails
    fake_openai.always(error(500, "still broken", type_="server_error"))
    provider = ChatProvider(config_for(fake_openai, max_retries=2))
    # When a request is sent, Then ProviderError after 1 + 2 attempts
    with pytest.raises(ProviderError, match=r"failed 3 times .*still broken"):
        await provider.complete(MESSAGES)
    assert len(fake_openai.chat_requests) == 3
    await provider.close()


@pytest.mark.asyncio
async def test_hung_provider_is_cut_by_our_deadline(fake_openai: FakeOpenAI) -> None:
    # Given a server that accepts the request and never answers, and a 0.5 s deadline
    fake_openai.always(hang(30))
    provider = ChatProvider(config_for(fake_openai, timeout_s=0.5))
    # When a request is sent
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"did not answer within 0\.5 s"):
        await provider.complete(MESSAGES)
    # Then it gave up at the deadline, not the client's default minutes, and hung up
    assert time.monotonic() - started < 2.0
    await _eventually(lambda: fake_openai.disconnects == 1)
    await provider.close()


@pytest.mark.asyncio
async def test_cancel_in_flight_frees_the_request_within_a_second(fake_openai: FakeOpenAI) -> None:
    # Given a request in flight to a server that hangs
    fake_openai.always(hang(30))
    provider = ChatProvider(config_for(fake_openai, timeout_s=60))
    task = asyncio.create_task(provider.complete(MESSAGES))
    await _eventually(lambda: len(fake_openai.chat_requests) == 1)
    # When the awaiting task is cancelled
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Then the task ended at once and the server saw the connection close within a second
    assert time.monotonic() - started < 1.0
    await _eventually(lambda: fake_openai.disconnects == 1, timeout=1.0)
    await provider.close()


@pytest.mark.asyncio
async def test_json_schema_refused_falls_back_to_json_object_and_is_remembered(
    fake_openai: FakeOpenAI,
) -> None:
    # Given a server (like llama.cpp) that refuses json_schema but accepts json_object
    def answer(body: dict[str, object]) -> Reply:
        mode = (body.get("response_format") or {}).get("type")  # type: ignore[union-attr]
        if mode == "json_schema":
            return error(400, "response_format type json_schema is not supported")
        return chat(f'{{"mode": "{mode}"}}')

    fake_openai.always(answer)
    provider = ChatProvider(config_for(fake_openai))
    # When two requests are sent
    first = await provider.complete(MESSAGES, schema=SCHEMA)
    second = await provider.complete(MESSAGES, schema=SCHEMA)
    # Then the first fell back to json_object, and the second went there directly
    assert first.mode is OutputMode.JSON_OBJECT and first.content == '{"mode": "json_object"}'
    assert second.mode is OutputMode.JSON_OBJECT
    modes = [(r.body.get("response_format") or {}).get("type") for r in fake_openai.chat_requests]
    assert modes == ["json_schema", "json_object", "json_object"]
    await provider.close()


@pytest.mark.asyncio
async def test_no_structured_output_at_all_falls_back_to_plain_text(
    fake_openai: FakeOpenAI,
) -> None:
    # Given a server that answers 500 to any response_format (llama.cpp 0.3.36 style)
    def answer(body: dict[str, object]) -> Reply:
        if "response_format" in body:
            return error(500, "Unsupported response_format", type_="server_error")
        return chat('```json\n{"a": 1}\n```')

    fake_openai.always(answer)
    provider = ChatProvider(config_for(fake_openai))
    # When a request is sent, Then the third attempt, without response_format, is the answer
    result = await provider.complete(MESSAGES, schema=SCHEMA)
    assert result.mode is OutputMode.TEXT
    assert len(fake_openai.chat_requests) == 3
    await provider.close()


@pytest.mark.asyncio
async def test_bad_request_unrelated_to_format_is_reported(fake_openai: FakeOpenAI) -> None:
    # Given a 400 about the context length
    fake_openai.always(error(400, "This model's maximum context length is 4096 tokens"))
    provider = ChatProvider(config_for(fake_openai))
    # When a request is sent, Then ProviderError with the server's reason, one request only
    with pytest.raises(ProviderError, match=r"refused the request \(400\): .*context length"):
        await provider.complete(MESSAGES, schema=SCHEMA)
    assert len(fake_openai.chat_requests) == 1
    await provider.close()


@pytest.mark.asyncio
async def test_missing_usage_is_estimated(fake_openai: FakeOpenAI) -> None:
    # Given a server that reports no usage
    fake_openai.script(Reply(content="x" * 400, usage=None))
    seen: list[Usage] = []
    provider = ChatProvider(config_for(fake_openai), usage_sink=seen.append)
    # When a request is sent, Then the usage is estimated from characters and marked so
    await provider.complete(MESSAGES)
    assert seen[0].estimated and seen[0].completion_tokens == 100
    await provider.close()


@pytest.mark.asyncio
async def test_unreachable_server_is_a_provider_error() -> None:
    # Given a base URL where nothing listens
    config = LLMConfig(model="m", base_url="http://127.0.0.1:9/v1", timeout_s=5, max_retries=1)
    provider = ChatProvider(config)
    # When a request is sent, Then ProviderError saying it could not reach the model
    with pytest.raises(ProviderError, match="Could not reach"):
        await provider.complete(MESSAGES)
    await provider.close()


async def _eventually(check: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_proposals_answer_helper_is_valid_json() -> None:
    import json

    assert json.loads(proposals_answer("x = 1"))["proposals"][0]["code"] == "x = 1"


@pytest.mark.asyncio
async def test_fake_server_streams_server_sent_events(fake_openai: FakeOpenAI) -> None:
    # Given the fake server and the openai client asking for a stream with usage
    import openai

    fake_openai.script(chat("a streamed answer that is longer than one chunk"))
    client = openai.AsyncOpenAI(api_key="x", base_url=fake_openai.url, max_retries=0)
    # When the stream is read
    stream = await client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    # Then the pieces make the answer, with its finish reason and usage
    assert text == "a streamed answer that is longer than one chunk"
    assert finish == "stop" and usage is not None and usage.prompt_tokens == 120
    await client.close()
