"""The model-backed proposer: one request, validated, repaired at most twice, capped.

Decisions worth knowing:

- Invalid or schema-breaking output is sent back with the validation error, at most
  ``MAX_REPAIRS`` times; then :class:`ProposalFormatError` and no proposals at all.
- An answer cut at the length limit (``finish_reason == "length"``) is not repaired: the
  complete proposals that can be salvaged from it are kept with ``approvable=False`` and the
  warning "truncated model output"; if none is complete, ProposalFormatError.
- Proposals are dropped when their code is over ``MAX_CODE_CHARS``, identical to the cell, a
  copy of another cell, or a duplicate; at most ``max_proposals`` are kept.
- A proposal whose code no longer defines a name the metric is computed from carries a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..config import EngineConfig, LLMConfig
from ..errors import ProposalFormatError
from ..models import ExplorationKind, Origin, Proposal, ProposalKind, ProposeRequest
from .names import cell_names, metric_names, parse_cell, related_cells
from .prompts import build_messages, repair_messages
from .provider import ChatProvider, Usage
from .schema import (
    MAX_CODE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    FixBatch,
    NoJSON,
    ProposalBatch,
    ProposalDraft,
    extract_json,
    normalise,
    proposals_schema,
    salvage_truncated,
)

log = logging.getLogger(__name__)

MAX_REPAIRS = 2
MAX_PROPOSALS = 50
TRUNCATED = "truncated model output"


def parse_batch(text: str, model: type[ProposalBatch]) -> ProposalBatch:
    """Parse an answer tolerantly (fences, prose around the JSON) and validate it."""
    return model.model_validate(normalise(extract_json(text)))


def describe_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in exc.errors()[:8]
        ]
        return "it does not match the format: " + "; ".join(problems)
    return f"it is not valid JSON ({exc})"


class LLMProposer:
    """Proposals from an OpenAI-compatible model; plugs into the engine as its Proposer."""

    origin = Origin.LLM

    def __init__(
        self,
        config: LLMConfig,
        *,
        http_client: Any | None = None,
        usage_sink: Callable[[Usage], None] | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.provider = ChatProvider(
            config, http_client=http_client, usage_sink=usage_sink, on_status=on_status
        )

    async def aclose(self) -> None:
        await self.provider.close()

    async def propose(self, request: ProposeRequest) -> list[Proposal]:
        if request.kind is ExplorationKind.FIX:
            _, fixes = await self.propose_fixes(request)
            return fixes
        batch, truncated = await self._ask(request, ProposalBatch)
        return self._to_proposals(request, batch.proposals, truncated)

    async def propose_fixes(self, request: ProposeRequest) -> tuple[str, list[Proposal]]:
        """The model's likely cause of the cell's error and its fixes (kind FIX, unverified)."""
        request = request.model_copy(update={"kind": ExplorationKind.FIX})
        batch, truncated = await self._ask(request, FixBatch)
        cause = batch.likely_cause if isinstance(batch, FixBatch) else ""
        fixes = self._to_proposals(request, batch.proposals, truncated)
        return cause[:MAX_TEXT_CHARS].strip(), fixes

    async def _ask(
        self, request: ProposeRequest, model: type[ProposalBatch]
    ) -> tuple[ProposalBatch, bool]:
        limit = min(max(request.max_proposals, 1), MAX_PROPOSALS)
        messages = build_messages(request, self.config, max_proposals=limit)
        schema = proposals_schema(with_cause=model is FixBatch)
        problem = ""
        for attempt in range(MAX_REPAIRS + 1):
            answer = await self.provider.complete(
                messages, schema=schema, purpose="repair" if attempt else "propose"
            )
            truncated = answer.finish_reason == "length"
            try:
                return parse_batch(answer.content, model), truncated
            except (NoJSON, ValidationError) as exc:
                if truncated:
                    return self._salvage(answer.content, model), True
                problem = describe_problem(exc)
                log.info("Model answer rejected (attempt %d): %s", attempt + 1, problem)
                messages = repair_messages(messages, answer.content, problem)
        raise ProposalFormatError(
            f"The model's answer was still invalid after {MAX_REPAIRS} repair requests "
            f"({self.provider.scrub(problem)}). Nothing was proposed; try again, or use a "
            "stronger model."
        )

    def _salvage(self, text: str, model: type[ProposalBatch]) -> ProposalBatch:
        drafts: list[ProposalDraft] = []
        for item in salvage_truncated(text):
            try:
                drafts.append(ProposalDraft.model_validate(item))
            except ValidationError:
                continue
        if not drafts:
            raise ProposalFormatError(
                "The model's answer was cut at its length limit before a single complete "
                "proposal. Nothing was proposed; ask for fewer proposals or raise the model's "
                "output limit."
            )
        return model(proposals=drafts)

    def _to_proposals(
        self, request: ProposeRequest, drafts: list[ProposalDraft], truncated: bool
    ) -> list[Proposal]:
        cells = request.notebook.cells
        index = next((i for i, c in enumerate(cells) if c.id == request.cell_id), None)
        base = request.base_code
        if base is None:
            base = cells[index].source if index is not None else ""
        others = {c.source.strip() for c in cells if c.id != request.cell_id and c.source.strip()}
        metric_vars: list[str] = []
        if index is not None and request.metric is not None:
            _, downstream = related_cells(cells, index)
            names, _ = metric_names(request.metric, [base] + [cells[j].source for j in downstream])
            metric_vars = [n for n in names if n in cell_names(base).defined]
        limit = min(max(request.max_proposals, 0), MAX_PROPOSALS)
        seen: set[str] = set()
        proposals: list[Proposal] = []
        for draft in drafts:
            code = draft.code
            stripped = code.strip()
            reason = ""
            if len(code) > MAX_CODE_CHARS:
                reason = f"code over {MAX_CODE_CHARS:,} characters"
            elif stripped == base.strip():
                reason = "code identical to the cell"
            elif stripped in others:
                reason = "code of another cell"
            elif stripped in seen:
                reason = "duplicate"
            if reason:
                log.info("Dropped a model proposal (%s): %.80s", reason, draft.title)
                continue
            seen.add(stripped)
            proposals.append(self._proposal(request, draft, truncated, metric_vars))
            if len(proposals) >= limit:
                break
        return proposals

    @staticmethod
    def _proposal(
        request: ProposeRequest, draft: ProposalDraft, truncated: bool, metric_vars: list[str]
    ) -> Proposal:
        warnings: list[str] = []
        if truncated:
            warnings.append(TRUNCATED)
        if parse_cell(draft.code) is None:
            warnings.append("the proposed code does not parse as Python")
        else:
            defined = cell_names(draft.code).defined
            warnings += [
                f"this variation no longer computes `{n}`" for n in metric_vars if n not in defined
            ]
        if "[REDACTED]" in draft.code:
            warnings.append("the code holds [REDACTED] where the notebook had a secret: edit it")
        kind = ProposalKind.FIX if request.kind is ExplorationKind.FIX else draft.kind
        return Proposal(
            title=draft.title.strip()[:MAX_TITLE_CHARS],
            kind=kind,
            origin=Origin.LLM,
            rationale=draft.rationale.strip()[:MAX_TEXT_CHARS],
            expected_effect=draft.expected_effect.strip()[:MAX_TEXT_CHARS],
            code=draft.code,
            warnings=warnings,
            approvable=not truncated,
            round=request.round,
            parent_id=request.parent_id,
        )


def make_proposer(
    config: EngineConfig,
    *,
    usage_sink: Callable[[Usage], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> LLMProposer:
    """What the engine calls when a model is configured."""
    return LLMProposer(config.llm, usage_sink=usage_sink, on_status=on_status)
