"""Model options of the headless command: ``--model``, ``--base-url``, ``--dry-run``.

The API key is read from ``OPENAI_API_KEY`` only: a key given as a flag would sit in the shell
history and the process list. ``--dry-run`` prints the exact request that would be sent (the
key redacted) and calls nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .core.config import LLMConfig
from .core.errors import InvalidInput
from .core.models import ExplorationKind

REDACTED = "[REDACTED]"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("language model")
    group.add_argument(
        "--model",
        metavar="NAME",
        help="an OpenAI-compatible model (default: OPENAI_MODEL); the key is read from "
        "OPENAI_API_KEY",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (default: "
        "OPENAI_BASE_URL)",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact request the model would get, as JSON, and exit without sending it",
    )


def add_triage_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("triage")
    group.add_argument("--offline", action="store_true", help="the condensed cause only, no model")
    group.add_argument("--instructions", default="", help="a hint for the model's fixes")
    group.add_argument("--max-fixes", type=int, default=3, metavar="N")
    group.add_argument(
        "--verify",
        action="store_true",
        help="run the approved fixes in side kernels and report each as works / still fails",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def llm_config_from_args(args: argparse.Namespace) -> LLMConfig:
    """The model settings: OPENAI_* variables, then the flags; none with --offline."""
    model = getattr(args, "model", None)
    base_url = getattr(args, "base_url", None)
    if getattr(args, "offline", False):
        if model or base_url:
            raise InvalidInput("--offline contradicts --model / --base-url: choose one")
        return LLMConfig()
    llm = LLMConfig.from_env()
    updates: dict[str, Any] = {}
    if model:
        updates["model"] = model
    if base_url:
        updates["base_url"] = base_url
    llm = llm.model_copy(update=updates)
    if (model or base_url) and not llm.configured:
        if not llm.model:
            raise InvalidInput("--base-url needs a model: add --model NAME (or set OPENAI_MODEL)")
        raise InvalidInput(
            "--model needs an API key in the OPENAI_API_KEY variable, or --base-url for a "
            "server that needs none"
        )
    return llm


def request_preview(
    args: argparse.Namespace, root: Path, notebook_path: str, kind: ExplorationKind
) -> dict[str, Any]:
    """The request the proposer would send for this command line, built the engine's way."""
    from .core import binding_flow, notebook, sweep
    from .core.models import ProposeRequest
    from .core.triage import condense_error

    llm = llm_config_from_args(args)
    nb = notebook.read_notebook(
        notebook.resolve_notebook_path(root, notebook_path), display_path=notebook_path
    )
    _, cell = notebook.find_cell(nb, args.cell)
    doc: dict[str, Any] = {
        "proposer": "llm" if llm.configured else "offline",
        "model": llm.model or None,
        "base_url": llm.base_url,
        "messages": [],
        "response_format": None,
    }
    if kind is ExplorationKind.FIX:
        if not condense_error(cell.outputs).found:
            raise InvalidInput(f"cell {cell.id} has no error in its outputs")
        room, metric = args.max_fixes, None
    else:
        spec = getattr(args, "sweep", None)
        swept = len(sweep.sweep_proposals(cell.source, spec)) if spec else 0
        room = max(0, args.max_proposals - swept)
        # "name" or "name=expression", bound to the code as the engine does (metric binding).
        metric = binding_flow.metric_spec(args.metric, args.direction, nb)
    if not llm.configured:
        doc["note"] = (
            "no model configured (--model with OPENAI_API_KEY, or --base-url): the offline "
            "proposer works locally and nothing is sent"
        )
        return doc
    if room <= 0:
        doc["note"] = "the sweep fills every place: the model is not asked"
        return doc
    from .core.llm.prompts import build_messages
    from .core.llm.proposer import MAX_PROPOSALS
    from .core.llm.schema import proposals_schema

    request = ProposeRequest(
        notebook=nb,
        cell_id=cell.id,
        kind=kind,
        metric=metric,
        instructions=args.instructions,
        max_proposals=room,
        seeds=getattr(args, "seeds", 1),
    )
    limit = min(max(room, 1), MAX_PROPOSALS)
    doc["messages"] = build_messages(request, llm, max_proposals=limit)
    doc["response_format"] = {
        "type": "json_schema",
        "json_schema": proposals_schema(with_cause=kind is ExplorationKind.FIX),
    }
    return doc


def redact_key(text: str) -> str:
    """``text`` without the configured key (the prompt is redacted already; this is a guard)."""
    key = llm_key()
    return text.replace(key, REDACTED) if key else text


def llm_key() -> str:
    secret = LLMConfig.from_env().api_key
    return secret.get_secret_value() if secret is not None else ""
