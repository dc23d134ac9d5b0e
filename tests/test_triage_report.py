"""Triage of a failed cell: offline cause, model fixes, and how the engine verifies them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from openai_server import FakeOpenAI, chat, error, fake_openai, proposals_answer
from pydantic import SecretStr

from jupyter_research_agent.core.config import LLMConfig
from jupyter_research_agent.core.errors import CellError
from jupyter_research_agent.core.llm import LLMProposer
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.models import Cell, NotebookDoc, ProposalKind
from jupyter_research_agent.core.triage import condense_error, triage

__all__ = ["fake_openai"]

SETUP = "import pandas as pd\ndf = pd.DataFrame({'cost': [1.0, 2.0, 3.0]})"
FAILING = (
    "for step in range(3000):\n    print('warming up')\ntotal = df['price'].sum()\nprint(total)"
)
FIXED = "total = df['cost'].sum()\nprint(total)"
STILL_BROKEN = "total = df['Price'].sum()\nprint(total)"


def run_cells(sources: list[str]) -> list[list[dict[str, Any]]]:
    """Execute sources in a real kernel; the outputs of each cell, as nbformat dicts."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    return [json.loads(json.dumps(c.outputs)) for c in nb.cells]


@pytest.fixture(scope="module")
def failed_notebook() -> NotebookDoc:
    setup_out, failing_out = run_cells([SETUP, FAILING])
    return NotebookDoc(
        path="analysis.ipynb",
        cells=[
            Cell(id="setup", source=SETUP, outputs=setup_out),
            Cell(id="sum", source=FAILING, outputs=failing_out),
        ],
    )


@pytest.fixture(autouse=True)
def fresh_modes() -> Iterator[None]:
    provider_module.forget_modes()
    yield
    provider_module.forget_modes()


def proposer_for(server: FakeOpenAI) -> LLMProposer:
    return LLMProposer(
        LLMConfig(model="m", base_url=server.url, api_key=SecretStr("sk-x" * 8), timeout_s=5)
    )


@pytest.mark.asyncio
async def test_offline_triage_of_a_real_kernel_error(failed_notebook: NotebookDoc) -> None:
    # Given a cell that failed in a real kernel with a KeyError on a column after 3,000 lines
    # When it is triaged without a model
    report = await triage(failed_notebook, "sum")
    # Then the condensed error names the column, keeps the cell frame, folds the log
    assert report.error.ename == "KeyError" and report.error.evalue == "'price'"
    assert report.error.category == "key_error"
    assert "`price` is not a DataFrame column" in report.likely_cause
    assert report.cause_source == "offline" and report.fixes == []
    assert any(f.startswith("Cell In[2], line 3") for f in report.error.frames)
    assert any("library frame" in f and "pandas" in f for f in report.error.frames)
    assert "… repeated 2,999 more times" in report.error.lines_before
    # And the report is JSON-ready for `triage --format json`
    assert json.loads(report.model_dump_json())["error"]["category"] == "key_error"


@pytest.mark.asyncio
async def test_triage_with_a_model_returns_fix_proposals_for_the_engine_to_verify(
    failed_notebook: NotebookDoc, fake_openai: FakeOpenAI
) -> None:
    # Given a model proposing two fixes: one right, one still wrong
    fake_openai.script(
        chat(
            proposals_answer(
                FIXED, STILL_BROKEN, kind="other", cause="The column is called 'cost', not 'price'."
            )
        )
    )
    proposer = proposer_for(fake_openai)
    # When the cell is triaged
    report = await triage(failed_notebook, "sum", proposer)
    # Then the model's cause and both fixes (kind FIX) come back, unverified
    assert report.cause_source == "llm"
    assert report.likely_cause == "The column is called 'cost', not 'price'."
    assert [f.kind for f in report.fixes] == [ProposalKind.FIX, ProposalKind.FIX]
    # And the model saw the condensed error, not 3,000 lines of warm-up
    prompt = fake_openai.chat_requests[0].body["messages"][1]["content"]
    assert "KeyError: 'price'" in prompt and prompt.count("warming up") < 5
    # When the engine verifies each fix like a variation (setup cells, then the fix; one
    # kernel for both here to keep the test short)
    _, fixed_out, broken_out = run_cells([SETUP, report.fixes[0].code, report.fixes[1].code])
    # Then the right one runs clean and the wrong one shows its new, condensed error
    assert not condense_error(fixed_out).found
    still = condense_error(broken_out)
    assert still.found and still.evalue == "'Price'"
    await proposer.aclose()


@pytest.mark.asyncio
async def test_provider_failure_keeps_the_offline_report(
    failed_notebook: NotebookDoc, fake_openai: FakeOpenAI
) -> None:
    fake_openai.always(error(401, "bad key"))
    report = await triage(failed_notebook, "sum", proposer_for(fake_openai))
    assert report.provider_error is not None and "401" in report.provider_error
    assert report.cause_source == "offline" and "price" in report.likely_cause


@pytest.mark.asyncio
async def test_cell_without_error_and_unknown_cell(failed_notebook: NotebookDoc) -> None:
    report = await triage(failed_notebook, "setup")
    assert not report.error.found and report.likely_cause == "No error in this cell's outputs."
    with pytest.raises(CellError):
        await triage(failed_notebook, "nope")
