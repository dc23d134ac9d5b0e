"""The whole path with a model: notebook -> model proposals -> approval -> side-kernel runs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from openai_server import FakeOpenAI, chat, fake_openai, proposals_answer
from pydantic import SecretStr

from jupyter_research_agent.core.config import EngineConfig, LLMConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.llm.proposer import LLMProposer
from jupyter_research_agent.core.models import CreateExploration, ExplorationStatus, Origin

__all__ = ["fake_openai"]

SENTINEL_KEY = "sk-test-ENGINESENTINEL0123456789abcdef"
TARGET = "scale = 2\nscore = 0.5 * scale\nprint(f'score: {score}')"
BETTER = "scale = 3\nscore = 0.5 * scale\nprint(f'score: {score}')"


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.asyncio
async def test_model_proposals_run_in_side_kernels(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    # Given a notebook on disk and an engine whose configured model is the fake server
    provider_module.forget_modes()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(TARGET, id="fit")]
    (tmp_path / "study.ipynb").write_text(nbformat.writes(nb))
    fake_openai.script(chat(proposals_answer(BETTER)))
    config = EngineConfig(
        root_dir=tmp_path,
        ledger_path=tmp_path / "ledger.sqlite",
        pool_size=2,
        run_timeout_s=60,
        llm=LLMConfig(
            model="test-model",
            base_url=fake_openai.url,
            api_key=SecretStr(SENTINEL_KEY),
            timeout_s=10,
        ),
    )
    engine = Engine(config)
    try:
        # When proposals are asked for on the cell, with the metric named
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="study.ipynb", cell_id="fit", metric="score")
        )
        exp = await engine.wait_proposals(exp.id)
        # Then the model's proposal is there, marked as the model's
        assert exp.status is ExplorationStatus.READY, exp.error
        assert exp.proposer is Origin.LLM
        [proposal] = exp.proposals
        assert proposal.origin is Origin.LLM and proposal.code == BETTER
        # When it is approved and the runs finish
        await engine.approve(proposal.id, proposal.code_sha256)
        exp = await engine.wait_runs(exp.id)
        # Then the baseline and the variation ran in side kernels and compare on the metric
        values = {row.label: row.metrics.get("score") for row in exp.comparison.rows}
        assert values["baseline"] == 1.0
        assert values[proposal.title] == 1.5
    finally:
        await engine.close()
    # And closing the engine closed the model's HTTP client while the event loop still ran
    proposer = engine._proposer
    assert isinstance(proposer, LLMProposer)
    assert proposer.provider._client.is_closed()
    # And the key never reached the ledger
    assert not files_holding(tmp_path, SENTINEL_KEY)
    assert json.dumps(fake_openai.chat_requests[0].body).count(SENTINEL_KEY) == 0
