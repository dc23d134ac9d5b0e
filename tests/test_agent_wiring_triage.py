"""Error triage in the engine: the condensed cause, model fixes, verification in side kernels."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from agent_wiring_support import (
    FIXED,
    STILL_BROKEN,
    engine_config,
    executed_notebook,
    failed_notebook,
)
from openai_server import FakeOpenAI, chat, fake_openai, proposals_answer

from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.errors import InvalidInput
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.models import (
    CreateExploration,
    EditProposal,
    ExplorationKind,
    ExplorationStatus,
    Origin,
    ProposalKind,
    RunStatus,
)

__all__ = ["fake_openai"]

FIX = ExplorationKind.FIX


@pytest.mark.asyncio
async def test_offline_fix_exploration_carries_the_condensed_cause(tmp_path: Path) -> None:
    # Given a notebook whose `sum` cell failed in a real kernel on a missing column
    failed_notebook(tmp_path)
    engine = Engine(engine_config(tmp_path))
    try:
        # When a fix is asked for without a model
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="analysis.ipynb", cell_id="sum", kind=FIX)
        )
        exp = await engine.wait_proposals(exp.id)
        # Then the exploration is ready with the triage report and no proposals (no fixes)
        assert exp.status is ExplorationStatus.READY, exp.error
        assert exp.proposer is Origin.OFFLINE and exp.proposals == []
        assert exp.triage is not None
        assert exp.triage["ename"] == "KeyError" and exp.triage["evalue"] == "'price'"
        assert exp.triage["category"] == "key_error"
        assert "`price` is not a DataFrame column" in exp.triage["likely_cause"]
        assert exp.triage["cause_source"] == "offline" and exp.triage["provider_error"] is None
        assert "Cell In[2], line 2" in exp.triage["condensed"]
        # And the summary repeats the cause and says no fix was proposed
        assert "Likely cause: `price`" in exp.comparison.summary
        assert "No fix was proposed" in exp.comparison.summary
    finally:
        await engine.close()
    # And the report survives in the ledger
    reloaded = Engine(engine_config(tmp_path))
    try:
        assert reloaded.get_exploration(exp.id).triage == exp.triage
    finally:
        await reloaded.close()


@pytest.mark.asyncio
async def test_fix_of_a_cell_without_error_is_invalid_input(tmp_path: Path) -> None:
    # Given a notebook whose cells all ran clean
    executed_notebook(tmp_path / "clean.ipynb", [("ok", "x = 1\nprint(x)")])
    engine = Engine(engine_config(tmp_path))
    try:
        # When a fix is asked for
        with pytest.raises(InvalidInput, match="no error in its outputs"):
            await engine.create_exploration(
                CreateExploration(notebook_path="clean.ipynb", cell_id="ok", kind=FIX)
            )
        # Then nothing was recorded
        assert engine.list_explorations() == []
    finally:
        await engine.close()


@pytest.mark.asyncio
async def test_model_fixes_are_unverified_until_approved_then_verified_in_side_kernels(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Given the failed notebook and a model proposing one right and one wrong fix
    provider_module.forget_modes()
    failed_notebook(tmp_path)
    cause = "The frame has a 'cost' column, not 'price'."
    fake_openai.script(chat(proposals_answer(FIXED, STILL_BROKEN, kind="other", cause=cause)))
    engine = Engine(engine_config(tmp_path, fake_openai.url))
    try:
        # When a fix exploration is created
        exp = await engine.create_exploration(
            CreateExploration(notebook_path="analysis.ipynb", cell_id="sum", kind=FIX)
        )
        exp = await engine.wait_proposals(exp.id)
        # Then both fixes are proposals of kind FIX from the model, shown as unverified,
        # and nothing ran: model code waits for approval
        assert exp.status is ExplorationStatus.READY, exp.error
        assert exp.proposer is Origin.LLM
        assert exp.triage is not None and exp.triage["likely_cause"] == cause
        assert exp.triage["cause_source"] == "llm"
        assert [p.kind for p in exp.proposals] == [ProposalKind.FIX, ProposalKind.FIX]
        assert [p.verification for p in exp.proposals] == ["unverified", "unverified"]
        assert exp.runs == [] and exp.baseline is None
        assert "2 unverified" in exp.comparison.summary
        # When the researcher approves both and their side runs end
        right, wrong = exp.proposals
        for fix in (right, wrong):
            await engine.approve(fix.id, fix.code_sha256)
        exp = await engine.wait_runs(exp.id)
        # Then the right fix is verified and the wrong one still fails with its new error
        by_id = {p.id: p for p in exp.proposals}
        assert by_id[right.id].verification == "verified: the cell now runs"
        wrong_text = by_id[wrong.id].verification or ""
        assert wrong_text.startswith("still fails: KeyError: 'Price'"), wrong_text
        assert "`Price` is not a DataFrame column" in wrong_text
        runs = {r.proposal_id: r for r in exp.runs}
        assert runs[right.id].status is RunStatus.SUCCEEDED
        assert runs[wrong.id].status is RunStatus.FAILED
        # And the summary says which fix works and how the other fails
        assert "1 of 2 fixes verified in a side kernel: 'Variation 1'" in exp.comparison.summary
        assert "'Variation 2' still fails: KeyError: 'Price'" in exp.comparison.summary
        assert exp.interpretation == exp.comparison.summary
        # When the wrong fix is edited, its verification starts over
        edited = await engine.edit_proposal(wrong.id, EditProposal(code=FIXED + "\n# checked"))
        assert edited.verification == "unverified"
    finally:
        await engine.close()
    # And the model's usage was recorded for the exploration
    rows = sqlite3.connect(tmp_path / "ledger.sqlite").execute(
        "SELECT model, prompt_tokens, completion_tokens FROM usage WHERE exploration_id = ?",
        (exp.id,),
    )
    assert list(rows) == [("test-model", 120, 30)]
