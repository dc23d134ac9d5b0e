"""Domain models shared by the engine, the server API, the magics and the panel.

Field names here are the wire format: the REST API serialises these models with
``model_dump(mode="json")`` and the TypeScript types in ``src/tokens.ts`` mirror them.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_id(prefix: str) -> str:
    """A short, URL-safe, unique id such as ``run-1f3a9c0b2d4e``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def sha256_of(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProposalKind(StrEnum):
    PARAMETER = "parameter"
    ABLATION = "ablation"
    SEED = "seed"
    FIX = "fix"
    OTHER = "other"


class Origin(StrEnum):
    OFFLINE = "offline"
    LLM = "llm"
    RESEARCHER = "researcher"


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class RunStatus(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_RUN_STATES


TERMINAL_RUN_STATES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.CANCELLED,
        RunStatus.INTERRUPTED,
    }
)


class StateStrategy(StrEnum):
    FULL_REPLAY = "full_replay"
    SLICED_REPLAY = "sliced_replay"
    SNAPSHOT_PREPARED = "snapshot_prepared"
    SNAPSHOT_LIVE = "snapshot_live"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class ExplorationKind(StrEnum):
    """What the researcher asked for; it steers the proposer."""

    VARIATIONS = "variations"
    FIX = "fix"
    SEEDS = "seeds"


class ExplorationStatus(StrEnum):
    PROPOSING = "proposing"  # the proposer is working
    READY = "ready"  # proposals wait for the researcher
    RUNNING = "running"  # at least one run is queued or running
    DONE = "done"  # every approved run has ended
    FAILED = "failed"  # proposing failed; ``error`` says why


class _Model(BaseModel):
    model_config = ConfigDict(use_enum_values=False, validate_assignment=True)


# ---------------------------------------------------------------- notebooks


class Cell(_Model):
    """One notebook cell as the engine sees it (nbformat v4 shape)."""

    id: str
    cell_type: str = "code"
    source: str = ""
    outputs: list[dict[str, Any]] = Field(default_factory=list)
    execution_count: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class NotebookDoc(_Model):
    """A notebook read from disk or sent by the frontend (unsaved edits count)."""

    path: str
    kernel_name: str = "python3"
    language: str = "python"
    cells: list[Cell] = Field(default_factory=list)


# ---------------------------------------------------------------- proposals


class Proposal(_Model):
    """One atomic, explained change of the target cell.

    ``code`` is the full source the changed cell will run with; approval binds to
    ``code_sha256``: editing the code clears the approval.
    """

    id: str = Field(default_factory=lambda: new_id("prop"))
    exploration_id: str = ""
    title: str
    kind: ProposalKind = ProposalKind.OTHER
    origin: Origin = Origin.OFFLINE
    rationale: str = ""
    expected_effect: str = ""
    code: str
    code_sha256: str = ""
    status: ProposalStatus = ProposalStatus.PROPOSED
    approved_sha256: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    warnings: list[str] = Field(default_factory=list)
    approvable: bool = True
    round: int = 0
    parent_id: str | None = None
    # Fixes only: "unverified" until a side run of the fix ends, then "verified: ..." or
    # "still fails: <the new condensed error>".
    verification: str | None = None
    # Who approved it: None or "researcher" for a click, "autopilot" within its budget.
    approved_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    def model_post_init(self, __context: Any) -> None:
        if not self.code_sha256:
            self.code_sha256 = sha256_of(self.code)


# ---------------------------------------------------------------- runs


class RunProgress(_Model):
    done: int = 0
    total: int = 0
    current_cell_id: str | None = None


class Run(_Model):
    """One execution of the notebook with one variation applied (or none: the baseline)."""

    id: str = Field(default_factory=lambda: new_id("run"))
    exploration_id: str
    proposal_id: str | None = None  # None for the baseline
    is_baseline: bool = False
    seed: int | None = None
    code_sha256: str = ""
    status: RunStatus = RunStatus.QUEUED
    reason: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    metric_sources: dict[str, str] = Field(default_factory=dict)
    state_strategy: StateStrategy | None = None
    rebuild_s: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    progress: RunProgress = Field(default_factory=RunProgress)
    tail: list[str] = Field(default_factory=list)  # last lines of output, for live views
    error: dict[str, Any] | None = None  # ename, evalue, traceback of the failing cell
    kernel_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class CellOutputs(_Model):
    """What one cell of a run produced (nbformat output dicts, capped)."""

    cell_id: str
    outputs: list[dict[str, Any]] = Field(default_factory=list)
    truncated: bool = False


class RunDetail(Run):
    """A run with its captured outputs (the single-run resource)."""

    cells: list[CellOutputs] = Field(default_factory=list)


# ---------------------------------------------------------------- explorations


class MetricBinding(_Model):
    """Where a metric's value comes from in the code, so a run can read it without the print.

    ``expression`` is evaluated in the side kernel after a run's cells; ``names`` are the
    variables it needs. ``source`` says whether it was found in the baseline's code or given
    by the researcher (``--metric "test accuracy=acc"``).
    """

    name: str  # normalised metric name, as in Run.metrics
    expression: str
    cell_id: str | None = None  # the cell it was found in; None for a researcher's expression
    names: list[str] = Field(default_factory=list)
    source: Literal["binding", "researcher"] = "binding"


class MetricSpec(_Model):
    name: str
    direction: Direction | None = None
    expression: str | None = None  # e.g. "acc" for --metric "test accuracy=acc"
    binding: MetricBinding | None = None


class ComparisonRow(_Model):
    """One row of the comparison: the baseline or a variation (seeds aggregated)."""

    label: str
    proposal_id: str | None = None
    is_baseline: bool = False
    status: str
    metrics: dict[str, float] = Field(default_factory=dict)
    std: dict[str, float] = Field(default_factory=dict)
    n: int = 0
    delta: float | None = None
    pct_change: float | None = None
    duration_s: float | None = None
    best: bool = False


class Comparison(_Model):
    metric: str | None = None
    direction: Direction | None = None
    rows: list[ComparisonRow] = Field(default_factory=list)
    best_proposal_id: str | None = None
    summary: str = ""


class Exploration(_Model):
    id: str = Field(default_factory=lambda: new_id("exp"))
    notebook_path: str
    cell_id: str
    kind: ExplorationKind = ExplorationKind.VARIATIONS
    status: ExplorationStatus = ExplorationStatus.PROPOSING
    error: str = ""
    metric: MetricSpec | None = None
    sweep: str | None = None
    instructions: str = ""
    seeds: int = 1
    proposer: Origin = Origin.OFFLINE
    cell_source: str = ""  # the target cell's source when the exploration was created
    proposals: list[Proposal] = Field(default_factory=list)
    baseline: Run | None = None
    runs: list[Run] = Field(default_factory=list)
    comparison: Comparison = Field(default_factory=Comparison)
    # Fix explorations: the condensed error of the target cell and its likely cause
    # (ename, evalue, category, likely_cause, cause_source, condensed, provider_error).
    triage: dict[str, Any] | None = None
    # The written reading of the results once every run has ended (model or numbers).
    interpretation: str = ""
    # A passing note from the model provider, such as "rate limited; retrying in 2 s".
    status_message: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    autopilot: AutopilotState | None = None  # None: never put on autopilot


# ---------------------------------------------------------------- autopilot


class AutopilotSettings(_Model):
    """The researcher's consent to iterate without a click per run, and its budget.

    Only the researcher's own calls (REST, the headless command) create these; the engine
    copies them when the autopilot starts and never reads them back from anywhere else.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(default=3, ge=1, le=50)
    budget_runs: int = Field(default=20, ge=1, le=10_000)
    budget_minutes: float = Field(default=60.0, gt=0, le=7 * 24 * 60)
    budget_tokens: int | None = Field(default=None, ge=1)  # only counted when a model is used
    allowed_kinds: list[ProposalKind] = Field(
        default_factory=lambda: [ProposalKind.PARAMETER, ProposalKind.SEED]
    )
    per_round: int = Field(default=3, ge=1, le=20)
    seeds_for_promising: int = Field(default=1, ge=1, le=20)


class AutopilotState(_Model):
    """Where an exploration's autopilot stands; ``stop_reason`` is set exactly once."""

    enabled: bool = True
    settings: AutopilotSettings = Field(default_factory=AutopilotSettings)
    round: int = 0  # the round being proposed or run
    rounds_done: int = 0
    runs_used: int = 0  # runs the autopilot started (baseline, variations, repeats)
    tokens_used: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    stopped: bool = False
    stop_reason: str = ""
    best_path: list[str] = Field(default_factory=list)  # proposal ids, root first
    notes: list[str] = Field(default_factory=list)  # noise verdicts, repairs not possible


# ---------------------------------------------------------------- requests


class CreateExploration(_Model):
    """Ask for proposals on one cell. ``cells`` carries unsaved edits from the frontend."""

    model_config = ConfigDict(extra="forbid")

    notebook_path: str
    cell_id: str
    kind: ExplorationKind = ExplorationKind.VARIATIONS
    cells: list[Cell] | None = None
    kernel_name: str | None = None
    metric: str | None = None
    direction: Direction | None = None
    sweep: str | None = None
    instructions: str = ""
    max_proposals: int = Field(default=6, ge=0, le=50)
    seeds: int = Field(default=1, ge=1, le=20)
    offline: bool = False


class ApproveProposal(_Model):
    model_config = ConfigDict(extra="forbid")

    code_sha256: str = Field(min_length=64, max_length=64)


class EditProposal(_Model):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=200_000)
    title: str | None = None


class AddProposal(_Model):
    """A researcher's own variation of the target cell."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=200_000)
    title: str = "Researcher's variation"
    rationale: str = ""


# ---------------------------------------------------------------- events


class EngineEvent(_Model):
    """A state change pushed to live views. The REST resources stay the source of truth."""

    type: str  # "exploration" | "proposal" | "run" | "run_output"
    exploration_id: str
    notebook_path: str
    id: str  # id of the changed object
    status: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- proposer input


class ProposeRequest(_Model):
    """Everything a proposer (offline or model) gets to work from."""

    notebook: NotebookDoc
    cell_id: str
    kind: ExplorationKind = ExplorationKind.VARIATIONS
    metric: MetricSpec | None = None
    instructions: str = ""
    max_proposals: int = 6
    seeds: int = 1
    # When set, proposals are built on this code instead of the cell's source (next rounds).
    base_code: str | None = None
    round: int = 0
    parent_id: str | None = None
