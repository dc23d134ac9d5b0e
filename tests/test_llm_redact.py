"""Secrets are removed from anything sent to a model; code that merely mentions them is kept."""

from __future__ import annotations

import pytest

from jupyter_research_agent.core.redact import REDACTED, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('OPENAI_API_KEY = "sk-proj-abcdefghijklmnop1234"', "sk-proj-abcdefghijklmnop1234"),
        ("key sk-abcdefghijklmnopqrstuvwx in a log", "sk-abcdefghijklmnopqrstuvwx"),
        ("ghp_" + "a1" * 18, "ghp_" + "a1" * 18),
        ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
        ("hf_" + "A" * 34, "hf_" + "A" * 34),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ('db_password = "correcthorsebatterystaple"', "correcthorsebatterystaple"),
        (
            '{"client_secret": "9f86d081884c7d659a2feaa0c55ad015"}',
            "9f86d081884c7d659a2feaa0c55ad015",
        ),
        ("HF_TOKEN=abcdef0123456789abcdef", "abcdef0123456789abcdef"),
        ("Authorization: Bearer abcdefabcdef1234567890", "abcdefabcdef1234567890"),
        ("--api-key=abc123def456ghi", "abc123def456ghi"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    # Given text holding a credential, When redacted, Then the credential is gone
    out = redact(text)
    assert secret not in out and REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        'token = os.environ["OPENAI_API_KEY"]',
        'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")',
        'tokenizer_name = "bert-base-uncased"',
        "max_tokens=40960",
        "password = getpass.getpass()",
        'author = "Jane Doe"',
        "sha = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ],
)
def test_code_that_only_mentions_secrets_is_kept(text: str) -> None:
    assert redact(text) == text


def test_known_secret_is_redacted_whatever_it_looks_like() -> None:
    assert (
        redact("connect with plainvalue please", ["plainvalue"])
        == f"connect with {REDACTED} please"
    )
