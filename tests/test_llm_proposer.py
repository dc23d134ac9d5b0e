"""The model proposer end to end against a real HTTP server: validation, repair, caps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from openai_server import FakeOpenAI, Reply, chat, error, fake_openai, proposals_answer
from pydantic import SecretStr

from jupyter_research_agent.core.config import EngineConfig, LLMConfig
from jupyter_research_agent.core.errors import ProposalFormatError, ProviderAuthError
from jupyter_research_agent.core.llm import LLMProposer, Usage, make_proposer
from jupyter_research_agent.core.llm import provider as provider_module
from jupyter_research_agent.core.models import (
    Cell,
    ExplorationKind,
    MetricSpec,
    NotebookDoc,
    Origin,
    ProposalKind,
    ProposeRequest,
    sha256_of,
)

__all__ = ["fake_openai"]

SENTINEL_KEY = "sk-test-SENTINEL0123456789abcdefSENTINEL"
TARGET = (
    "from sklearn.linear_model import LogisticRegression\n"
    "model = LogisticRegression(C=1.0, max_iter=200).fit(X_train, y_train)\n"
    "acc = model.score(X_test, y_test)\n"
    'print(f"test accuracy: {acc:.4f}")\n'
)
GOOD = TARGET.replace("C=1.0", "C=10.0")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(provider_module, "RETRY_BACKOFF_S", 0.01)
    provider_module.forget_modes()
    yield
    provider_module.forget_modes()


def notebook() -> NotebookDoc:
    return NotebookDoc(
        path="study.ipynb",
        cells=[
            Cell(id="load", source="from sklearn.datasets import load_iris\ndata = load_iris()"),
            Cell(
                id="split",
                source=(
                    "from sklearn.model_selection import train_test_split\n"
                    "X_train, X_test, y_train, y_test = train_test_split(data.data, data.target)"
                ),
            ),
            Cell(
                id="fit",
                source=TARGET,
                outputs=[
                    {"output_type": "stream", "name": "stdout", "text": "test accuracy: 0.9211\n"}
                ],
            ),
            Cell(id="report", source="print(model.coef_)"),
        ],
    )


def request(**overrides: object) -> ProposeRequest:
    values: dict[str, object] = {"notebook": notebook(), "cell_id": "fit", "max_proposals": 3}
    values.update(overrides)
    return ProposeRequest.model_validate(values)


def proposer_for(server: FakeOpenAI, **kwargs: object) -> LLMProposer:
    config = LLMConfig(
        model="test-model",
        base_url=server.url,
        api_key=SecretStr(SENTINEL_KEY),
        timeout_s=5,
        max_retries=1,
    )
    return LLMProposer(config, **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_good_answer_becomes_llm_proposals_with_our_hash(fake_openai: FakeOpenAI) -> None:
    # Given a model answering two valid proposals
    ablation = TARGET.replace(", max_iter=200", "")
    fake_openai.script(chat(proposals_answer(GOOD, ablation)))
    usage: list[Usage] = []
    proposer = proposer_for(fake_openai, usage_sink=usage.append)
    # When proposals are asked for
    proposals = await proposer.propose(request(round=2, parent_id="prop-parent"))
    # Then they are origin LLM, hashed by us, approvable, carry the round, and usage is recorded
    assert [p.code for p in proposals] == [GOOD, ablation]
    for p in proposals:
        assert p.origin is Origin.LLM and p.kind is ProposalKind.PARAMETER
        assert p.code_sha256 == sha256_of(p.code)
        assert p.approvable and p.warnings == []
        assert (p.round, p.parent_id) == (2, "prop-parent")
        assert p.title and p.rationale and p.expected_effect
    assert [u.purpose for u in usage] == ["propose"]
    await proposer.aclose()


@pytest.mark.asyncio
async def test_invalid_json_then_valid_is_repaired_once(fake_openai: FakeOpenAI) -> None:
    # Given a model answering prose first, then valid JSON
    fake_openai.script(chat("Sure! Here are some ideas: use C=10."), chat(proposals_answer(GOOD)))
    usage: list[Usage] = []
    proposer = proposer_for(fake_openai, usage_sink=usage.append)
    # When proposals are asked for
    proposals = await proposer.propose(request())
    # Then the second request sent back the bad answer and the problem, and a proposal came out
    assert [p.code for p in proposals] == [GOOD]
    repair = fake_openai.chat_requests[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Here are some ideas: use C=10."}
    assert "not valid JSON" in repair[-1]["content"]
    assert [u.purpose for u in usage] == ["propose", "repair"]


@pytest.mark.asyncio
async def test_schema_breaking_answer_sends_the_validation_error(fake_openai: FakeOpenAI) -> None:
    # Given a model that forgets the code field once
    broken = json.dumps({"proposals": [{"title": "More C", "kind": "parameter"}]})
    fake_openai.script(chat(broken), chat(proposals_answer(GOOD)))
    proposer = proposer_for(fake_openai)
    # When proposals are asked for, Then the repair request names the missing field
    proposals = await proposer.propose(request())
    assert len(proposals) == 1
    assert (
        "proposals.0.code: Field required"
        in fake_openai.chat_requests[1].body["messages"][-1]["content"]
    )


@pytest.mark.asyncio
async def test_invalid_three_times_is_an_error_and_nothing_is_proposed(
    fake_openai: FakeOpenAI,
) -> None:
    # Given a model that never answers valid JSON
    fake_openai.always(chat("{not json at all"))
    proposer = proposer_for(fake_openai)
    # When proposals are asked for, Then ProposalFormatError after 1 + 2 repair requests
    with pytest.raises(ProposalFormatError, match="still invalid after 2 repair requests"):
        await proposer.propose(request())
    assert len(fake_openai.chat_requests) == 3


@pytest.mark.asyncio
async def test_truncated_answer_keeps_complete_proposals_but_never_approvable(
    fake_openai: FakeOpenAI,
) -> None:
    # Given an answer cut at the length limit in the middle of the second proposal
    full = proposals_answer(GOOD, TARGET.replace("C=1.0", "C=0.1"))
    cut = full[: full.index('"code"', full.index("Variation 2"))]
    fake_openai.script(chat(cut, finish_reason="length"))
    proposer = proposer_for(fake_openai)
    # When proposals are asked for
    proposals = await proposer.propose(request())
    # Then the complete one is kept, flagged, and not approvable; no repair was attempted
    assert [p.code for p in proposals] == [GOOD]
    assert proposals[0].approvable is False
    assert "truncated model output" in proposals[0].warnings
    assert len(fake_openai.chat_requests) == 1


@pytest.mark.asyncio
async def test_truncated_valid_json_is_still_not_approvable(fake_openai: FakeOpenAI) -> None:
    # Given a complete JSON answer that the server nevertheless marks as cut
    fake_openai.script(chat(proposals_answer(GOOD), finish_reason="length"))
    proposals = await proposer_for(fake_openai).propose(request())
    # Then its proposals are not approvable
    assert len(proposals) == 1 and not proposals[0].approvable


@pytest.mark.asyncio
async def test_truncated_before_any_proposal_is_an_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(chat('{"proposals": [{"title": "More C", "co', finish_reason="length"))
    with pytest.raises(ProposalFormatError, match="length limit"):
        await proposer_for(fake_openai).propose(request())


@pytest.mark.asyncio
async def test_caps_and_filters(fake_openai: FakeOpenAI) -> None:
    # Given an answer with an oversized code, the unchanged cell, another cell's code,
    # a duplicate, and more proposals than asked for
    other = notebook().cells[0].source
    variants = [TARGET.replace("C=1.0", f"C={c}") for c in (2, 3, 4, 5)]
    answer = proposals_answer(
        "x = 1\n" * 5000, TARGET, other, variants[0], variants[0], *variants[1:]
    )
    fake_openai.script(chat(answer))
    # When 3 proposals are asked for
    proposals = await proposer_for(fake_openai).propose(request(max_proposals=3))
    # Then only three distinct, new, small variations of the target are kept
    assert [p.code for p in proposals] == variants[:3]


@pytest.mark.asyncio
async def test_tolerant_parsing_of_fenced_json_with_raw_newlines(fake_openai: FakeOpenAI) -> None:
    # Given a server without structured output whose model wraps JSON in prose and a fence,
    # with a raw newline inside a string (llama.cpp does this) and an invented kind
    def answer(body: dict[str, object]) -> Reply:
        if "response_format" in body:
            return error(400, "response_format is not supported")
        raw = '{"proposals": [{"title": "C up", "kind": "hyperparameter", "rationale": "r",'
        raw += ' "expected_effect": "e", "code": "' + GOOD.replace("\n", "\\n").replace('"', '\\"')
        raw += '"}]}'
        raw = raw.replace('"rationale": "r"', '"rationale": "line one\nline two"')
        return chat("<think>hmm</think>Here you go:\n```json\n" + raw + "\n```\nEnjoy.")

    fake_openai.always(answer)
    proposals = await proposer_for(fake_openai).propose(request())
    # Then the proposal is read, its kind mapped, its rationale kept
    assert [p.code for p in proposals] == [GOOD]
    assert proposals[0].kind is ProposalKind.PARAMETER
    assert proposals[0].rationale == "line one\nline two"


@pytest.mark.asyncio
async def test_metric_names_are_asked_for_and_checked(fake_openai: FakeOpenAI) -> None:
    # Given a metric printed from `acc`, and a model that drops `acc` in one proposal
    dropped = TARGET.replace("acc = model.score(X_test, y_test)\n", "").replace(
        'print(f"test accuracy: {acc:.4f}")\n', "print(model.score(X_test, y_test))\n"
    )
    fake_openai.script(chat(proposals_answer(GOOD, dropped)))
    proposals = await proposer_for(fake_openai).propose(
        request(metric=MetricSpec(name="test accuracy"))
    )
    # Then the prompt told the model to keep `acc` and its print line
    prompt = fake_openai.chat_requests[0].body["messages"][1]["content"]
    assert "computed from `acc`" in prompt
    assert 'print(f"test accuracy: {acc:.4f}")' in prompt
    assert "Later cells use `model` from the target: keep it." in prompt
    # And the proposal that no longer defines it is flagged
    assert proposals[0].warnings == []
    assert proposals[1].warnings == ["this variation no longer computes `acc`"]


@pytest.mark.asyncio
async def test_fix_kind_gives_fix_proposals_and_cause(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(chat(proposals_answer(GOOD, kind="other", cause="C was too small.")))
    proposer = proposer_for(fake_openai)
    cause, fixes = await proposer.propose_fixes(request(kind=ExplorationKind.FIX))
    assert cause == "C was too small."
    assert [f.kind for f in fixes] == [ProposalKind.FIX]
    schema = fake_openai.chat_requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["likely_cause", "proposals"]


@pytest.mark.asyncio
async def test_provider_error_propagates_and_no_key_in_logs(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a 401 and logging at debug level
    caplog.set_level(logging.DEBUG)
    fake_openai.always(error(401, "Invalid key"))
    with pytest.raises(ProviderAuthError):
        await proposer_for(fake_openai).propose(request())
    # Then the key never reached a log record
    assert SENTINEL_KEY not in caplog.text
    assert all(SENTINEL_KEY not in str(r.args) for r in caplog.records)


def test_make_proposer_uses_the_engine_config() -> None:
    config = EngineConfig(llm=LLMConfig(model="m", base_url="http://127.0.0.1:1/v1"))
    proposer = make_proposer(config)
    assert proposer.origin is Origin.LLM and proposer.config.model == "m"
