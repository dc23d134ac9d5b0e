"""A sentinel API key never leaves the server: not in responses, events, logs or side kernels."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from server_support import (
    Fetch,
    all_runs_ended,
    approve,
    call,
    poll,
    training_notebook,
)

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.errors import ProviderAuthError
from jupyter_research_agent.core.models import Origin, Proposal, ProposeRequest

SENTINEL = "sk-sentinel-never-leak-5f0e1d2c3b4a"
ENV_PROBE = (
    "import os\n"
    "print('leaked:', sorted(k for k, v in os.environ.items() if 'sk-sentinel' in v))\n"
    "print('score=1')\n"
)


class KeyHoldingProposer:
    """Stands in for the model proposer: it holds the key, as the real one does."""

    origin = Origin.LLM

    def __init__(self, config: EngineConfig) -> None:
        assert config.llm.api_key is not None
        self._key = config.llm.api_key.get_secret_value()

    async def propose(self, request: ProposeRequest) -> list[Proposal]:
        if request.instructions == "fail":
            # A provider error whose text carries the key, as careless SDK messages do.
            raise ProviderAuthError(f"the provider refused the key {self._key}")
        return [Proposal(title="Show the environment", origin=Origin.LLM, code=ENV_PROBE)]


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    jp_server_config["ResearchAgent"].update(
        model="test-model",
        base_url="http://127.0.0.1:9/v1",
        api_key=SENTINEL,
        proposer_class=KeyHoldingProposer,
        ledger_path=str(tmp_path / "ledger.sqlite"),
        pool_size=2,
    )
    return jp_server_config


async def test_sentinel_key_never_leaves_the_server(
    jp_fetch: Fetch,
    jp_ws_fetch: Any,
    jp_root_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a server configured with a sentinel key (also in its environment), a listener on
    # the event bus, and a captured server log
    caplog.set_level(logging.DEBUG)
    training_notebook(jp_root_dir)
    ws = await jp_ws_fetch("api", "events", "subscribe")
    texts: list[str] = []

    # When the whole API is exercised: status, a run, a failing proposer, errors
    status = await call(jp_fetch, "GET", "status")
    texts.append(status.text)
    created = await call(
        jp_fetch, "POST", "explorations", body={"notebook_path": "exp.ipynb", "cell_id": "train"}
    )
    texts.append(created.text)
    exp = await poll(jp_fetch, ("explorations", created.body["id"]), lambda e: e["proposals"])
    reply = await approve(jp_fetch, exp["proposals"][0])
    texts.append(reply.text)
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=90)
    texts.append(json.dumps(done))
    run = await call(jp_fetch, "GET", "runs", done["runs"][0]["id"])
    texts.append(run.text)
    failing = await call(
        jp_fetch,
        "POST",
        "explorations",
        body={"notebook_path": "exp.ipynb", "cell_id": "train", "instructions": "fail"},
    )
    failed = await poll(
        jp_fetch, ("explorations", failing.body["id"]), lambda e: e["status"] == "failed"
    )
    texts.append(json.dumps(failed))
    for parts in (("explorations",), ("explorations", "exp-unknown"), ("runs", "run-x")):
        texts.append((await call(jp_fetch, "GET", *parts)).text)
    texts.append((await call(jp_fetch, "POST", "explorations", raw="{bad")).text)

    events: list[str] = []
    while True:
        try:
            message = await asyncio.wait_for(ws.read_message(), 0.5)
        except TimeoutError:
            break
        if message is None:
            break
        events.append(message)
    ws.close()

    # Then the API worked: a model is configured, the run printed, the failure was reported
    assert status.body["model"]["configured"] is True
    assert run.code == 200
    assert "leaked: []" in run.text  # the side kernel's environment held no key
    assert failed["error"]
    assert "[redacted]" in json.dumps(failed)
    assert any('"type": "run"' in e for e in events)
    # And the key appears in no response, no event and no log line
    for text in texts:
        assert SENTINEL not in text
    for event in events:
        assert SENTINEL not in event
    assert SENTINEL not in caplog.text
