"""The model in the engine: usage in the ledger, provider notes as events, the reading of
the results, provider failures on the exploration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import nbformat
import pytest
from agent_wiring_support import SENTINEL_KEY, engine_config
from openai_server import FakeOpenAI, chat, error, fake_openai, proposals_answer

from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.models import (
    CreateExploration,
    EngineEvent,
    ExplorationStatus,
    Origin,
)

__all__ = ["fake_openai"]

TARGET = "scale = 2\nscore = 0.5 * scale\nprint(f'score: {score}')"
BETTER = "scale = 3\nscore = 0.5 * scale\nprint(f'score: {score}')"
READING = "Scaling by 3 wins: score 1.5 against 1.0. Repeat with seeds before trusting it."


def write_study(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(TARGET, id="fit")]
    (root / "study.ipynb").write_text(nbformat.writes(nb))


def usage_rows(root: Path, exploration_id: str) -> list[tuple[str, int, int]]:
    conn = sqlite3.connect(root / "ledger.sqlite")
    try:
        return list(
            conn.execute(
                "SELECT model, prompt_tokens, completion_tokens FROM usage"
                " WHERE exploration_id = ? ORDER BY rowid",
                (exploration_id,),
            )
        )
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def fresh_modes() -> None:
    provider_module.forget_modes()


@pytest.mark.asyncio
async def test_usage_rate_limit_note_and_the_models_reading(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model that is rate limited once, then proposes, then reads the results
    write_study(tmp_path)
    fake_openai.script(
        error(429, "slow down", type_="rate_limit_error", headers={"retry-after": "0.2"}),
        chat(proposals_answer(BETTER), usage={"prompt_tokens": 200, "completion_tokens": 40}),
        chat(READING, usage={"prompt_tokens": 90, "completion_tokens": 25}),
    )
    engine = Engine(engine_config(tmp_path, fake_openai.url))
    events: list[EngineEvent] = []
    engine.subscribe(events.append)
    try:
        # When proposals are asked for
        exp = await engine.create_exploration(
            CreateExploration(
                notebook_path="study.ipynb", cell_id="fit", metric="score", direction="maximize"
            )
        )
        exp = await engine.wait_proposals(exp.id)
        # Then the 429 was shown as an exploration event and cleared once proposing ended
        [noted] = [e for e in events if "status_message" in e.data]
        assert noted.type == "exploration" and noted.exploration_id == exp.id
        assert noted.data["status_message"].startswith("Rate limited by the model provider")
        assert exp.status is ExplorationStatus.READY and exp.status_message == ""
        [proposal] = exp.proposals
        assert proposal.origin is Origin.LLM
        # When it is approved and every run ends
        await engine.approve(proposal.id, proposal.code_sha256)
        exp = await engine.wait_runs(exp.id)
        # Then the model's reading is the interpretation and the comparison's summary
        assert exp.interpretation == READING
        assert exp.comparison.summary == READING
        reading_request = fake_openai.chat_requests[-1].body
        assert "<comparison-data>" in reading_request["messages"][1]["content"]
    finally:
        await engine.close()
    # And each model request's usage is a row of the ledger, tagged with the exploration
    assert usage_rows(tmp_path, exp.id) == [("test-model", 200, 40), ("test-model", 90, 25)]
    assert all(SENTINEL_KEY not in r.raw for r in fake_openai.requests)


@pytest.mark.asyncio
async def test_offline_reading_comes_from_the_numbers(tmp_path: Path) -> None:
    # Given an offline exploration with a sweep over `scale`
    write_study(tmp_path)
    engine = Engine(engine_config(tmp_path))
    try:
        exp = await engine.create_exploration(
            CreateExploration(
                notebook_path="study.ipynb",
                cell_id="fit",
                metric="score",
                direction="maximize",
                sweep="scale=4",
                max_proposals=1,
            )
        )
        exp = await engine.wait_proposals(exp.id)
        [proposal] = exp.proposals
        # When the sweep point runs
        await engine.approve(proposal.id, proposal.code_sha256)
        exp = await engine.wait_runs(exp.id)
        # Then the interpretation names the winner and the gap, from the numbers alone
        assert exp.interpretation.startswith(f"{proposal.title!r} is best on score: 2")
        assert "+1 (+100.0%)" in exp.interpretation
        assert exp.comparison.summary == exp.interpretation
    finally:
        await engine.close()


@pytest.mark.asyncio
async def test_rejected_key_fails_the_exploration_with_what_to_fix(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model endpoint that rejects the key
    write_study(tmp_path)
    fake_openai.always(error(401, "Incorrect API key provided", type_="invalid_request_error"))
    engine = Engine(engine_config(tmp_path, fake_openai.url))
    try:
        # When proposals are asked for
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="study.ipynb", cell_id="fit")
        )
        exp = await engine.wait_proposals(exp.id)
        # Then the exploration failed at once (no retry) with what to fix, without the key
        assert exp.status is ExplorationStatus.FAILED
        assert "rejected the API key (401)" in exp.error and "OPENAI_API_KEY" in exp.error
        assert SENTINEL_KEY not in exp.model_dump_json()
        assert len(fake_openai.chat_requests) == 1
    finally:
        await engine.close()
