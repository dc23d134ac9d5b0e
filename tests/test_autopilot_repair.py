"""A crashed variation gets one repair attempt, recorded as its child in the lineage.

The repair comes from the model (here a scripted OpenAI-compatible server). Offline there is
no repair: the offline proposer only changes literal values, and putting the crashing value
back would just re-run the parent, so the autopilot records that a repair needs a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from autopilot_support import by_id, engine_config, running_engine, write_notebook
from openai_server import FakeOpenAI, Reply, chat, fake_openai, proposals_answer
from pydantic import SecretStr

from jupyter_research_agent.core.config import LLMConfig
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.models import (
    AutopilotSettings,
    CreateExploration,
    ProposalKind,
    RunStatus,
)

__all__ = ["fake_openai"]

TARGET = "scale = 2\nscore = 0.5 * scale\nprint(f'score: {score}')"
GOOD = "scale = 3\nscore = 0.5 * scale\nprint(f'score: {score}')"
CRASHING = "scale = 5\nscore = 0.5 * scael\nprint(f'score: {score}')"
REPAIRED = "scale = 5\nscore = 0.5 * scale\nprint(f'score: {score}')"


def _is_fix_request(body: dict[str, Any]) -> bool:
    return "likely_cause" in json.dumps(body.get("messages", []))


@pytest.mark.asyncio
async def test_a_crashed_variation_gets_a_repair_as_its_child(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model whose variations include one that crashes, and that repairs when asked
    provider_module.forget_modes()

    def answer(body: dict[str, Any]) -> Reply:
        if _is_fix_request(body):
            return chat(proposals_answer(REPAIRED, kind="fix", cause="a misspelt name"))
        return chat(proposals_answer(GOOD, CRASHING))

    fake_openai.always(answer)
    root = tmp_path / "work"
    write_notebook(root, "study.ipynb", [("fit", TARGET)])
    llm = LLMConfig(model="m", base_url=fake_openai.url, api_key=SecretStr("sk-x"), timeout_s=10)
    async with running_engine(engine_config(root, llm=llm)) as engine:
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="study.ipynb", cell_id="fit", metric="score")
        )
        # When the autopilot runs one round, allowed to run parameter changes and fixes
        settings = AutopilotSettings(
            rounds=1, budget_runs=10, per_round=2, allowed_kinds=[ProposalKind.PARAMETER, "fix"]
        )
        await engine.autopilots.start(exp.id, settings)
        state = await engine.autopilots.wait(exp.id)
        done = await engine.wait_runs(exp.id)
        view = engine.autopilots.view(exp.id)

    # Then the crashing variation failed, and a repair was proposed as its child, in its round
    proposals = by_id(done)
    crashed = next(p for p in done.proposals if p.code == CRASHING)
    [repair] = [p for p in done.proposals if p.parent_id == crashed.id]
    assert [r.status for r in done.runs if r.proposal_id == crashed.id] == [RunStatus.FAILED]
    assert repair.kind == ProposalKind.FIX and repair.code == REPAIRED
    assert repair.round == crashed.round == 0
    # And the model saw the error when asked for the repair
    fix_requests = [r for r in fake_openai.chat_requests if _is_fix_request(r.body)]
    assert len(fix_requests) == 1 and "NameError" in fix_requests[0].raw
    # And the repair ran within the budget, approved by the autopilot, and is now the best
    assert repair.approved_by == "autopilot"
    [run] = [r for r in done.runs if r.proposal_id == repair.id]
    assert run.status == RunStatus.SUCCEEDED and run.metrics["score"] == 2.5
    assert state is not None and state.best_path == [crashed.id, repair.id]
    assert state.runs_used == 4  # baseline, two variations, one repair
    # And the lineage tree shows the repair under the crashed variation
    [node] = [n for n in view.lineage.children if n.proposal_id == crashed.id]
    assert [c.proposal_id for c in node.children] == [repair.id]
    assert proposals[repair.id].parent_id == crashed.id


@pytest.mark.asyncio
async def test_offline_a_crash_is_noted_not_repaired(tmp_path: Path) -> None:
    # Given a cell where halving `n` makes a later index fail, explored offline
    root = tmp_path / "work"
    source = "n = 2\nvalues = list(range(n))\nscore = values[1] * 1.0\nprint(f'score: {score}')"
    write_notebook(root, "index.ipynb", [("fit", source)])
    async with running_engine(engine_config(root)) as engine:
        exp = await engine.create_exploration(
            CreateExploration(
                notebook_path="index.ipynb", cell_id="fit", metric="score", offline=True
            )
        )
        # When the autopilot runs a round
        await engine.autopilots.start(exp.id, AutopilotSettings(rounds=1, per_round=2))
        state = await engine.autopilots.wait(exp.id)
        done = engine.get_exploration(exp.id)

    # Then the crash is recorded with its cause, and no repair was invented
    halved = next(p for p in done.proposals if "→ 1" in p.title)
    assert [r.status for r in done.runs if r.proposal_id == halved.id] == [RunStatus.FAILED]
    assert not [p for p in done.proposals if p.parent_id == halved.id]
    assert state is not None
    assert any("IndexError" in n and "needs a language model" in n for n in state.notes)
