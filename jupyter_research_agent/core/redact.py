"""Remove strings that look like secrets before text leaves the machine.

Everything sent to a language model goes through :func:`redact` first. The patterns err on the
side of redacting: a false positive costs the model one token of context, a false negative
leaks a credential. Known secret values (the configured API key, for instance) can be added and
are replaced wherever they appear, whatever they look like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Provider key formats with a recognisable prefix.
_PREFIXED = [
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI and compatible (sk-..., sk-proj-...)
    r"sk_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{30,}",
    r"(?:AKIA|ASIA)[A-Z0-9]{16}",  # AWS access key ids
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AIza[A-Za-z0-9_\-]{35}",  # Google API keys
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWT
]
_PREFIXED_RE = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(_PREFIXED) + r")")

# ``api_key = "..."``, ``token: ...``, ``--password=...``, ``"secret": "..."``: the value after
# a secret-like name, when it is long enough to be a credential rather than a placeholder.
_ASSIGNED_RE = re.compile(
    r"(?i)(?P<name>[A-Za-z0-9_\-]*(?:api[_\-]?key|apikey|token(?!iz)|secret|passwd|password|pwd"
    r"|access[_\-]?key|auth(?!or)|credential)[A-Za-z0-9_\-]*)"
    r"(?P<sep>['\"]?\s*[:=]\s*(?:[rbuf]{0,2}['\"])?)"
    r"(?P<value>[A-Za-z0-9+/_\-\.~]{8,}={0,2})"
)

# PEM private keys, whole block.
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)

# ``Authorization: Bearer ...`` headers copied into cells.
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9+/_\-\.~]{16,}={0,2})")

# Long random-looking runs (hex of 32+ or base64 of 40+) with no secret-like name before them
# are left alone: hashes, ids and encoded data are common in notebooks and rarely credentials.


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with credential-looking strings replaced by ``[REDACTED]``."""
    if not text:
        return text
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _PEM_RE.sub(REDACTED, text)
    text = _PREFIXED_RE.sub(REDACTED, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _ASSIGNED_RE.sub(_redact_assigned, text)


def _redact_assigned(match: re.Match[str]) -> str:
    value = match.group("value")
    quoted = match.group("sep").rstrip().endswith(("'", '"'))
    # A quoted value is data (redact it); an unquoted one may be code such as a call or a name.
    if value == REDACTED.strip("[]") or (not quoted and _looks_like_plain_word(value)):
        return match.group(0)
    return match.group("name") + match.group("sep") + REDACTED


def _looks_like_plain_word(value: str) -> bool:
    """``token = tokenizer``, ``password = getpass.getpass``, ``max_tokens=40960``: code.

    A credential mixes letters and digits or is long and random; a number, or a short name
    made only of letters (dotted or not), is code.
    """
    if value.replace(".", "").isdigit():
        return True
    has_digit = any(c.isdigit() for c in value)
    return not has_digit and len(value) < 40 and _DOTTED_NAME_RE.fullmatch(value) is not None


_DOTTED_NAME_RE = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)*")
