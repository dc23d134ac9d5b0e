"""The written interpretation of a comparison, from the numbers and from a model."""

from __future__ import annotations

import pytest
from openai_server import FakeOpenAI, chat, error, fake_openai
from pydantic import SecretStr

from jupyter_research_agent.core.config import LLMConfig
from jupyter_research_agent.core.llm import LLMProposer, interpret, interpret_numbers
from jupyter_research_agent.core.models import Comparison, ComparisonRow, Direction

__all__ = ["fake_openai"]


def comparison(
    base: float,
    best: float,
    *,
    base_std: float | None = None,
    best_std: float | None = None,
    n: int = 1,
) -> Comparison:
    def row(label: str, value: float, std: float | None, is_baseline: bool) -> ComparisonRow:
        return ComparisonRow(
            label=label,
            proposal_id=None if is_baseline else f"prop-{label}",
            is_baseline=is_baseline,
            status="succeeded",
            metrics={"accuracy": value},
            std={"accuracy": std} if std is not None else {},
            n=n,
        )

    return Comparison(
        metric="accuracy",
        direction=Direction.MAXIMIZE,
        rows=[
            row("baseline", base, base_std, True),
            row("C=10", best, best_std, False),
            row("no scaler", base - 0.05, best_std, False),
            ComparisonRow(label="broken", proposal_id="prop-b", status="failed", n=0),
        ],
    )


@pytest.mark.parametrize(
    ("comp", "phrases"),
    [
        (
            comparison(0.90, 0.93),
            [
                "'C=10' is best on accuracy: 0.93 against 0.9",
                "+0.03",
                "(+3.3%)",
                "noise is unknown",
            ],
        ),
        (
            comparison(0.90, 0.905, base_std=0.01, best_std=0.01, n=3),
            ["within the noise", "run more seeds"],
        ),
        (
            comparison(0.90, 0.95, base_std=0.005, best_std=0.005, n=5),
            ["larger than the noise", "next round on this variation"],
        ),
        (comparison(0.90, 0.88), ["No variation beat the baseline", "closest, 'C=10'"]),
        (Comparison(), ["No runs yet"]),
    ],
)
def test_interpretation_from_the_numbers(comp: Comparison, phrases: list[str]) -> None:
    # Given a comparison, When interpreted without a model, Then the text says what matters
    text = interpret_numbers(comp)
    for phrase in phrases:
        assert phrase in text, text
    if comp.rows:
        assert "1 of 3 variations produced no result (broken)" in text


@pytest.mark.asyncio
async def test_interpretation_by_the_model_and_fallback(fake_openai: FakeOpenAI) -> None:
    # Given a model that answers once, then fails
    fake_openai.script(chat("C=10 wins by 3 points; repeat with seeds."), error(401, "no"))
    proposer = LLMProposer(
        LLMConfig(model="m", base_url=fake_openai.url, api_key=SecretStr("k" * 20), timeout_s=5)
    )
    comp = comparison(0.90, 0.93)
    # When interpreted twice
    first = await interpret(comp, proposer)
    second = await interpret(comp, proposer)
    # Then the model's text first (it was given the numbers and the offline reading, as data)
    assert first == "C=10 wins by 3 points; repeat with seeds."
    sent = fake_openai.chat_requests[0].body
    assert "response_format" not in sent
    assert "<comparison-data>" in sent["messages"][1]["content"]
    assert "'C=10' is best" in sent["messages"][1]["content"]
    # And the numbers' reading when the model fails
    assert second == interpret_numbers(comp)
    await proposer.aclose()


@pytest.mark.asyncio
async def test_an_answer_that_is_not_prose_falls_back_to_the_numbers(
    fake_openai: FakeOpenAI,
) -> None:
    # Given a model that answers the reading request with a JSON dump, then with a code block
    fake_openai.script(chat('{"proposals": [{"title": "x"}]}'), chat("```python\nlr = 0.1\n```"))
    proposer = LLMProposer(
        LLMConfig(model="m", base_url=fake_openai.url, api_key=SecretStr("k" * 20), timeout_s=5)
    )
    comp = comparison(0.90, 0.93)
    # When interpreted twice
    answers = [await interpret(comp, proposer), await interpret(comp, proposer)]
    # Then neither is shown: the reading comes from the numbers
    assert answers == [interpret_numbers(comp)] * 2
    await proposer.aclose()


@pytest.mark.parametrize(
    ("text", "usable"),
    [
        ("C=10 wins by 3 points; repeat with seeds.", True),
        ("", False),
        ('{"a": 1}', False),
        ("[1, 2, 3]", False),
        ("```\ncode\n```", False),
        ("0.91 0.93 0.95 -0.02 +0.01", False),
    ],
)
def test_usable_prose(text: str, usable: bool) -> None:
    from jupyter_research_agent.core.llm.interpret import usable_prose

    assert usable_prose(text) is usable
