"""Pure helpers of the engine: building runs and their specs, folding results and statuses.

Nothing here awaits or touches a kernel; the engine calls these while it holds the state of
one exploration, so each change is applied as one step between two awaits.
"""

from __future__ import annotations

from pathlib import Path

from . import agent_notes, binding_flow, compare, metrics, notebook, offline
from .errors import NotebookError
from .models import (
    Cell,
    Comparison,
    Exploration,
    ExplorationStatus,
    MetricSpec,
    NotebookDoc,
    Proposal,
    ProposalStatus,
    Run,
    RunStatus,
    sha256_of,
    utcnow,
)
from .runner import RunResult, RunSpec

# Seeds of repeated runs are BASE_SEED, BASE_SEED + 1, ... for the baseline and every variation
# alike, so the k-th repeat of each is comparable.
BASE_SEED = 0


def all_runs(exp: Exploration) -> list[Run]:
    return [exp.baseline, *exp.runs] if exp.baseline is not None else list(exp.runs)


def find_run(exp: Exploration, run_id: str) -> Run | None:
    return next((r for r in all_runs(exp) if r.id == run_id), None)


def find_proposal(exp: Exploration, proposal_id: str) -> Proposal | None:
    return next((p for p in exp.proposals if p.id == proposal_id), None)


def active_runs(exp: Exploration, proposal_id: str | None = None) -> list[Run]:
    return [
        r
        for r in all_runs(exp)
        if not r.status.terminal and (proposal_id is None or r.proposal_id == proposal_id)
    ]


def seeds_for(exp: Exploration, first: int | None = None) -> list[int]:
    base = BASE_SEED if first is None else first
    return [base + i for i in range(exp.seeds)]


def seeded_code(code: str, seed: int, repeats: int) -> str:
    """Repeats change the cell's own seed literal too; a single run keeps the cell as written."""
    return offline.apply_seed(code, seed) if repeats > 1 else code


def baseline_runs(exp: Exploration, cell: Cell) -> list[tuple[Run, str | None]]:
    """The unchanged cell once per seed; the code is None when the cell runs as written."""
    planned: list[tuple[Run, str | None]] = []
    for seed in seeds_for(exp):
        code = seeded_code(cell.source, seed, exp.seeds)
        run = Run(
            exploration_id=exp.id,
            is_baseline=True,
            seed=seed,
            code_sha256=sha256_of(cell.source),
        )
        planned.append((run, None if code == cell.source else code))
    return planned


def variation_runs(exp: Exploration, proposal: Proposal) -> list[tuple[Run, str]]:
    """One run per seed. The run keeps the approved hash: the seed swap is a mechanical repeat."""
    planned: list[tuple[Run, str]] = []
    for seed in seeds_for(exp, proposal.seed):
        run = Run(
            exploration_id=exp.id,
            proposal_id=proposal.id,
            seed=seed,
            code_sha256=proposal.code_sha256,
        )
        planned.append((run, seeded_code(proposal.code, seed, exp.seeds)))
    return planned


def notebook_dir(root: Path, nb: NotebookDoc) -> Path:
    """Where side kernels start: the notebook's directory (inside the root, checked)."""
    try:
        return notebook.resolve_notebook_path(root, nb.path).parent
    except NotebookError:
        # Unsaved notebooks may not exist on disk yet; their directory still does, or the root.
        candidate = (root / nb.path).parent
        return candidate if candidate.is_dir() else root


def run_spec(
    nb: NotebookDoc,
    exp: Exploration,
    run: Run,
    code: str | None,
    *,
    cwd: Path,
    timeout_s: float,
    output_cap_bytes: int,
) -> RunSpec:
    cells = notebook.cells_for_run(nb, exp.cell_id, code)
    return RunSpec(
        run_id=run.id,
        kernel_name=nb.kernel_name,
        cwd=cwd,
        cells=cells,
        seed=run.seed,
        timeout_s=timeout_s,
        output_cap_bytes=output_cap_bytes,
        target_index=next((i for i, c in enumerate(cells) if c.id == exp.cell_id), None),
        notebook_path=nb.path,
        user_expressions=binding_flow.run_expressions(exp.metric),  # metric binding
    )


def apply_result(run: Run, result: RunResult, metric: MetricSpec | None = None) -> None:
    run.status = result.status
    run.reason = result.reason
    run.error = result.error
    run.duration_s = result.duration_s
    run.state_strategy = result.state_strategy
    run.rebuild_s = result.rebuild_s
    run.attempts = result.attempts
    run.kernel_id = result.kernel_id or run.kernel_id
    found, sources = metrics.extract_run_metrics_with_sources(result.cells)
    run.metrics = found
    run.metric_sources = sources
    # Metric binding: the bound value when the output lacks it, else "no metric: <why>".
    binding_flow.apply_bound_metric(run, metric, result.expression_values, result.expression_errors)
    run.ended_at = utcnow()


def interrupt(run: Run, reason: str) -> None:
    run.status = RunStatus.INTERRUPTED
    run.reason = reason
    run.ended_at = run.ended_at or utcnow()


def settle_status(exp: Exploration) -> None:
    """RUNNING while any run is unfinished, DONE once runs exist and all ended."""
    if exp.status in (ExplorationStatus.PROPOSING, ExplorationStatus.FAILED):
        return
    runs = all_runs(exp)
    if any(not r.status.terminal for r in runs):
        exp.status = ExplorationStatus.RUNNING
    elif runs:
        exp.status = ExplorationStatus.DONE
    else:
        exp.status = ExplorationStatus.READY


def compared(exp: Exploration) -> Exploration:
    """The exploration with only runs of the code each proposal holds now: edits and
    rejections drop the runs of code that is no longer on the table (a shallow copy)."""
    current = {p.id: p.code_sha256 for p in exp.proposals if p.status != ProposalStatus.REJECTED}
    runs = [
        r for r in exp.runs if r.proposal_id is None or current.get(r.proposal_id) == r.code_sha256
    ]
    return exp.model_copy(update={"runs": runs})


def comparison_of(exp: Exploration) -> Comparison:
    """The comparison of the runs of current code, with the agent's notes."""
    comparison = compare.build_comparison(compared(exp))
    return agent_notes.with_agent_notes(exp, comparison)


def accept_proposals(
    exp: Exploration, found: list[Proposal], cell_source: str, limit: int | None = None
) -> list[Proposal]:
    """Bind proposals to the exploration, drop no-ops and duplicates, keep at most ``limit``."""
    seen = {(p.code, p.seed) for p in exp.proposals}
    kept: list[Proposal] = []
    for proposal in found:
        key = (proposal.code, proposal.seed)
        if key in seen or (proposal.code == cell_source and proposal.seed is None):
            continue
        seen.add(key)
        proposal.exploration_id = exp.id
        # The hash is ours to compute: approval binds to exactly this code.
        proposal.code_sha256 = sha256_of(proposal.code)
        kept.append(proposal)
        if limit is not None and len(kept) >= limit:
            break
    return kept
