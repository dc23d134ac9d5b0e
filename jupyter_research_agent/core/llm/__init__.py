"""The model-backed agent: context building, the provider, proposals, interpretation.

``make_proposer(config)`` is what the engine uses when a model is configured.
"""

from __future__ import annotations

from .context import build_context
from .interpret import interpret, interpret_numbers
from .prompts import build_messages
from .proposer import LLMProposer, make_proposer
from .provider import ChatProvider, OutputMode, Usage, label_usage

__all__ = [
    "ChatProvider",
    "LLMProposer",
    "OutputMode",
    "Usage",
    "build_context",
    "build_messages",
    "interpret",
    "interpret_numbers",
    "label_usage",
    "make_proposer",
]
