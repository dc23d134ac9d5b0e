"""The same proposer against a real OpenAI-compatible server (llama.cpp, vLLM, Ollama).

Skipped unless RESEARCH_AGENT_LOCAL_LLM_URL points at one, e.g.
``RESEARCH_AGENT_LOCAL_LLM_URL=http://127.0.0.1:8080/v1 RESEARCH_AGENT_LOCAL_LLM_MODEL=qwen
pytest -m llm_local tests/test_llm_local.py``. Only structure is checked: small models write
odd code, but the path (modes, parsing, repair, caps) must hold.
"""

from __future__ import annotations

import os

import pytest

from jupyter_research_agent.core.config import LLMConfig
from jupyter_research_agent.core.errors import ProposalFormatError
from jupyter_research_agent.core.llm import LLMProposer, Usage
from jupyter_research_agent.core.llm.provider import remembered_mode
from jupyter_research_agent.core.models import Cell, NotebookDoc, Origin, ProposeRequest

URL = os.environ.get("RESEARCH_AGENT_LOCAL_LLM_URL", "")

pytestmark = [
    pytest.mark.llm_local,
    pytest.mark.skipif(not URL, reason="RESEARCH_AGENT_LOCAL_LLM_URL is not set"),
]


@pytest.mark.asyncio
async def test_local_model_proposes_variations() -> None:
    # Given a small notebook and a real local model
    config = LLMConfig(
        model=os.environ.get("RESEARCH_AGENT_LOCAL_LLM_MODEL", "local"),
        base_url=URL,
        timeout_s=float(os.environ.get("RESEARCH_AGENT_LOCAL_LLM_TIMEOUT", "300")),
        max_retries=1,
    )
    usage: list[Usage] = []
    proposer = LLMProposer(config, usage_sink=usage.append)
    source = (
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression(C=1.0).fit(X_train, y_train)\n"
        "acc = model.score(X_test, y_test)\n"
        'print(f"test accuracy: {acc:.4f}")'
    )
    nb = NotebookDoc(path="local.ipynb", cells=[Cell(id="fit", source=source)])
    # When proposals are asked for
    try:
        proposals = await proposer.propose(
            ProposeRequest(notebook=nb, cell_id="fit", max_proposals=2)
        )
    except ProposalFormatError:
        pytest.skip("the local model could not produce valid proposals")
    # Then whatever came back is well-formed, capped, and the usage and mode were recorded
    assert len(proposals) <= 2
    for p in proposals:
        assert p.origin is Origin.LLM and p.code.strip() and p.code != source
    assert usage and usage[0].prompt_tokens > 0
    assert remembered_mode(URL, config.model) is not None
    await proposer.aclose()
