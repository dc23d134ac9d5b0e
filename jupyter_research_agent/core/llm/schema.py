"""The shape of a model's answer, and tolerant parsing for servers without structured output.

The JSON schemas are written by hand in the subset that OpenAI's strict mode accepts (every
property required, no additional properties, no length keywords); pydantic then checks the
parsed answer, and caps (code size, count) are enforced by the proposer, not the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models import ProposalKind

MAX_CODE_CHARS = 20_000
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 2_000

_KIND_ALIASES = {
    "hyperparameter": ProposalKind.PARAMETER,
    "parameters": ProposalKind.PARAMETER,
    "param": ProposalKind.PARAMETER,
    "tuning": ProposalKind.PARAMETER,
    "remove": ProposalKind.ABLATION,
    "robustness": ProposalKind.SEED,
    "bugfix": ProposalKind.FIX,
    "bug": ProposalKind.FIX,
}


class ProposalDraft(BaseModel):
    """One proposal as the model writes it; ids, hashes and origin are ours."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1)
    kind: ProposalKind = ProposalKind.OTHER
    rationale: str = ""
    expected_effect: str = ""
    code: str = Field(min_length=1)

    @field_validator("kind", mode="before")
    @classmethod
    def _lenient_kind(cls, value: Any) -> Any:
        # Small models invent kinds ("hyperparameter"); a wrong label is not worth a repair.
        if isinstance(value, str):
            word = value.strip().lower()
            if word in {k.value for k in ProposalKind}:
                return word
            return _KIND_ALIASES.get(word, ProposalKind.OTHER)
        return ProposalKind.OTHER

    @field_validator("title", "rationale", "expected_effect", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, list):  # some models answer with a list of sentences
            return " ".join(str(v) for v in value)
        return value


class ProposalBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    proposals: list[ProposalDraft]


class FixBatch(ProposalBatch):
    likely_cause: str = ""


def _draft_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "a few words naming the one change"},
            "kind": {"type": "string", "enum": [k.value for k in ProposalKind]},
            "rationale": {"type": "string", "description": "why this is worth trying"},
            "expected_effect": {"type": "string", "description": "expected effect on the metric"},
            "code": {"type": "string", "description": "the full source of the changed cell"},
        },
        "required": ["title", "kind", "rationale", "expected_effect", "code"],
        "additionalProperties": False,
    }


def proposals_schema(with_cause: bool = False) -> dict[str, Any]:
    """``json_schema`` payload for ``response_format`` (strict)."""
    properties: dict[str, Any] = {"proposals": {"type": "array", "items": _draft_schema()}}
    if with_cause:
        properties = {"likely_cause": {"type": "string"}, **properties}
    return {
        "name": "fixes" if with_cause else "proposals",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }


# ---------------------------------------------------------------- tolerant parsing

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
_DECODER = json.JSONDecoder(strict=False)  # llama.cpp strings may hold raw newlines


class NoJSON(ValueError):
    pass


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: whole text, then ```json fences, then any ``{``."""
    text = _THINK_RE.sub("", text).strip()
    candidates = [text, *(m.group(1).strip() for m in _FENCE_RE.finditer(text))]
    for candidate in candidates:
        try:
            return _DECODER.decode(candidate)
        except ValueError:
            pass
    for match in re.finditer(r"[{\[]", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) or (isinstance(value, list) and value):
            return value
    raise NoJSON("the answer holds no JSON object")


def normalise(value: Any) -> Any:
    """Accept the near-misses small models write: a bare list, or a single proposal."""
    if isinstance(value, list):
        return {"proposals": value}
    if isinstance(value, dict) and "proposals" not in value:
        if "code" in value:
            return {"proposals": [value]}
        for key in ("variations", "fixes", "items", "results"):
            if isinstance(value.get(key), list):
                return {**value, "proposals": value[key]}
    return value


def salvage_truncated(text: str) -> list[dict[str, Any]]:
    """Complete proposal objects from an answer cut at the length limit."""
    start = text.find("[", text.find('"proposals"') if '"proposals"' in text else 0)
    if start < 0:
        return []
    items: list[dict[str, Any]] = []
    pos = start + 1
    while True:
        brace = text.find("{", pos)
        if brace < 0:
            return items
        try:
            value, end = _DECODER.raw_decode(text, brace)
        except ValueError:
            return items
        if isinstance(value, dict):
            items.append(value)
        pos = end
