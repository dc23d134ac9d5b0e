"""The offline proposer: variations read from the code itself, no language model needed.

Tunable values are numeric literals bound to names in the target cell (``lr = 0.1``,
``Ridge(alpha=1.0)``) and seed literals (``seed=0``, ``np.random.seed(0)``). Each proposal
changes exactly one of them, so its effect on the metric can be read on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .literals import (
    LiteralSite,
    find_literal_sites,
    is_plot_call,
    parse_cell,
    render_value,
    replace_spans,
)
from .models import ExplorationKind, Origin, Proposal, ProposalKind, ProposeRequest
from .notebook import find_cell

TunableKind = Literal["learning_rate", "bounded", "float", "int", "seed"]

# Scale-like hyperparameters: varied by factors, tried first.
_RATE_NAMES = {
    "lr",
    "learning_rate",
    "eta",
    "alpha",
    "c",
    "weight_decay",
    "l2",
    "l1",
    "reg",
    "reg_alpha",
    "reg_lambda",
    "lambda_",
    "lam",
    "tol",
    "epsilon",
    "eps",
}
# Fractions in [0, 1]: stepped, never scaled past 1.
_BOUNDED_NAMES = {
    "dropout",
    "dropout_rate",
    "p_drop",
    "momentum",
    "subsample",
    "colsample_bytree",
    "test_size",
    "validation_split",
    "val_size",
    "train_size",
    "keep_prob",
    "l1_ratio",
    "label_smoothing",
    "beta1",
    "beta2",
}
_SEED_NAMES = {"seed", "random_state", "random_seed", "rng_seed", "manual_seed"}
_SEED_CALLS = {
    "seed",
    "manual_seed",
    "manual_seed_all",
    "set_seed",
    "seed_everything",
    "default_rng",
    "RandomState",
    "PRNGKey",
}
# Keyword arguments that are presentation or plumbing, not experiment knobs.
_IGNORED_KEYWORDS = {
    "verbose",
    "verbosity",
    "n_jobs",
    "num_workers",
    "workers",
    "axis",
    "dpi",
    "figsize",
    "fontsize",
    "linewidth",
    "lw",
    "markersize",
    "ms",
    "s",
    "zorder",
    "indent",
    "width",
    "height",
    "nrows",
    "ncols",
    "header",
    "index_col",
    "skiprows",
    "decimals",
    "ndigits",
    "precision",
    "print_every",
    "log_every",
    "log_interval",
    "stacklevel",
    "level",
    "maxsplit",
    "base",
    "ord",
}


@dataclass(frozen=True)
class Tunable:
    """A literal in the cell that a variation may change."""

    name: str  # the name it is bound to: "lr", "alpha", or the seed call "np.random.seed"
    value: int | float
    text: str  # as written in the cell
    start: int  # character offsets of the literal in the source
    end: int
    kind: TunableKind
    context: str  # "assign" | "keyword" | "call_arg"
    call: str | None = None

    @property
    def label(self) -> str:
        """How titles name it: ``lr``, or ``Ridge(alpha)`` for a keyword argument."""
        if self.context == "keyword" and self.call:
            return f"{self.call.rsplit('.', 1)[-1]}({self.name})"
        return self.name


def find_tunables(source: str) -> list[Tunable]:
    """Numeric literals bound to names, and seed literals, in source order.

    Booleans are not tunables; keyword arguments of plotting calls and plumbing arguments
    such as ``verbose`` or ``n_jobs`` are left alone.
    """
    tunables: list[Tunable] = []
    for site in find_literal_sites(source):
        tunable = _classify(site)
        if tunable is not None:
            tunables.append(tunable)
    return tunables


def _classify(site: LiteralSite) -> Tunable | None:
    value = site.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    lowered = site.name.lower()
    kind: TunableKind
    if site.context == "call_arg":
        if not _is_seed_call(site.call) or not isinstance(value, int):
            return None
        kind = "seed"
    elif _is_seed_name(lowered):
        if not isinstance(value, int):
            return None
        kind = "seed"
    elif site.context == "keyword" and (lowered in _IGNORED_KEYWORDS or is_plot_call(site.call)):
        return None
    elif _is_bounded_name(lowered) and isinstance(value, float) and 0 <= value < 1:
        kind = "bounded"
    elif _is_rate_name(lowered):
        kind = "learning_rate"
    elif isinstance(value, float):
        kind = "float"
    else:
        kind = "int"
    return Tunable(site.name, value, site.text, site.start, site.end, kind, site.context, site.call)


def _is_seed_name(name: str) -> bool:
    return name in _SEED_NAMES or name.endswith("_seed")


def _is_seed_call(call: str | None) -> bool:
    return call is not None and call.rsplit(".", 1)[-1] in _SEED_CALLS


def _is_rate_name(name: str) -> bool:
    return (
        name in _RATE_NAMES
        or "learning_rate" in name
        or name.endswith("_lr")
        or (name.startswith("lr_"))
    )


def _is_bounded_name(name: str) -> bool:
    return name in _BOUNDED_NAMES or "dropout" in name


def apply_seed(source: str, seed: int) -> str:
    """The source with every seed literal set to ``seed``; unchanged when it has none."""
    edits = [(t.start, t.end, str(seed)) for t in find_tunables(source) if t.kind == "seed"]
    return replace_spans(source, edits)


# ---------------------------------------------------------------- proposals


@dataclass(frozen=True)
class _Candidate:
    tunable: Tunable
    value: int | float
    rationale: str
    expected: str


# Candidates are emitted in rounds, and within a round by the tunable's priority, so a small
# budget still touches several tunables before trying finer steps on one.
_PRIORITY: dict[TunableKind, int] = {
    "learning_rate": 0,
    "bounded": 0,
    "float": 1,
    "int": 2,
    "seed": 3,
}


def _rounds(tunable: Tunable) -> list[list[_Candidate]]:
    value = tunable.value
    name = tunable.label
    if tunable.kind in ("learning_rate", "float"):
        if value == 0:
            return []

        def scaled(factor: float) -> _Candidate:
            new = _clean(value * factor)
            direction = "smaller" if factor < 1 else "larger"
            return _Candidate(
                tunable,
                new,
                f"Try {name} {_factor_text(factor)} {direction} ({render_value(new)}) to see "
                f"how sensitive the result is to it.",
                _expected_scale(tunable, factor),
            )

        return [[scaled(0.1), scaled(10.0)], [scaled(0.3), scaled(3.0)]]
    if tunable.kind == "bounded":
        steps = [[_clean(value / 2), _clean(value + 0.1)], [_clean(value - 0.1)]]
        return [
            [
                _Candidate(
                    tunable,
                    new,
                    f"Try {name} = {render_value(new)}: it is a fraction, so it moves in "
                    f"small steps within 0 to 1.",
                    "More regularisation when higher, less when lower.",
                )
                for new in group
                if 0 <= new < 1 and new != value
            ]
            for group in steps
        ]
    if tunable.kind == "int":
        assert isinstance(value, int)
        if value <= 0:
            return []
        candidates = []
        for new, word in ((max(1, value // 2), "Halve"), (value * 2, "Double")):
            if new != value:
                candidates.append(
                    _Candidate(
                        tunable,
                        new,
                        f"{word} {name} ({value} → {new}) to see whether the result depends on it.",
                        "Larger counts usually cost more time; the metric shows if they pay.",
                    )
                )
        return [candidates]
    return []


def _factor_text(factor: float) -> str:
    return f"{1 / factor:g} times" if factor < 1 else f"{factor:g} times"


def _expected_scale(tunable: Tunable, factor: float) -> str:
    lowered = tunable.name.lower()
    if "lr" in lowered or "learning_rate" in lowered or lowered == "eta":
        if factor < 1:
            return "Slower, steadier training; helps when the loss oscillates or diverges."
        return "Faster training; may overshoot and diverge."
    if tunable.kind == "learning_rate":
        return "Changes the strength of regularisation or the step size."
    return "Shows how much the metric depends on this value."


def _clean(value: float) -> float | int:
    """Round away binary noise (0.30000000000000004 -> 0.3), keeping ints as ints."""
    if isinstance(value, int):
        return value
    return float(f"{value:.6g}")


class OfflineProposer:
    """Proposes variations from the target cell's code alone."""

    origin = Origin.OFFLINE

    async def propose(self, request: ProposeRequest) -> list[Proposal]:
        return propose_offline(request)


def propose_offline(request: ProposeRequest) -> list[Proposal]:
    """The synchronous body of :meth:`OfflineProposer.propose` (it does no I/O)."""
    if request.kind == ExplorationKind.FIX or request.max_proposals <= 0:
        return []
    if request.base_code is not None:
        source = request.base_code
    else:
        _, cell = find_cell(request.notebook, request.cell_id)
        source = cell.source
    if request.kind == ExplorationKind.SEEDS:
        proposals = _seed_proposals(source, request)
    else:
        proposals = _variation_proposals(source, request)
    for proposal in proposals:
        proposal.round = request.round
        proposal.parent_id = request.parent_id
    return proposals[: request.max_proposals]


def _variation_proposals(source: str, request: ProposeRequest) -> list[Proposal]:
    tunables = find_tunables(source)
    ordered = sorted(
        (t for t in tunables if t.kind != "seed"), key=lambda t: (_PRIORITY[t.kind], t.start)
    )
    groups: list[list[list[Proposal]]] = [
        [[_parameter_proposal(source, c) for c in group] for group in _rounds(t)] for t in ordered
    ]
    seeds = [t for t in tunables if t.kind == "seed"]
    if seeds:
        groups.append([[_seed_proposal(source, seeds, int(seeds[0].value) + 1)]])

    proposals: list[Proposal] = []
    seen_codes = {source}
    for round_index in range(max((len(g) for g in groups), default=0)):
        for rounds in groups:
            for proposal in rounds[round_index] if round_index < len(rounds) else []:
                if proposal.code not in seen_codes:
                    seen_codes.add(proposal.code)
                    proposals.append(proposal)
    return proposals


def _parameter_proposal(source: str, candidate: _Candidate) -> Proposal:
    tunable = candidate.tunable
    new_text = render_value(candidate.value)
    return Proposal(
        title=f"{tunable.label}: {tunable.text} → {new_text}",
        kind=ProposalKind.PARAMETER,
        origin=Origin.OFFLINE,
        rationale=candidate.rationale,
        expected_effect=candidate.expected,
        code=replace_spans(source, [(tunable.start, tunable.end, new_text)]),
        overrides={tunable.name: candidate.value},
    )


def _seed_proposals(source: str, request: ProposeRequest) -> list[Proposal]:
    seeds = [t for t in find_tunables(source) if t.kind == "seed"]
    base = int(seeds[0].value) if seeds else 0
    count = request.seeds if request.seeds > 1 else 3
    return [_seed_proposal(source, seeds, base + k) for k in range(1, count + 1)]


def _seed_proposal(source: str, seeds: list[Tunable], seed: int) -> Proposal:
    if seeds:
        code = apply_seed(source, seed)
        title = f"seed: {seeds[0].text} → {seed}"
        rationale = (
            f"Same code with the seed set to {seed} everywhere the cell sets one: if the "
            f"metric moves a lot, differences between variations may be noise."
        )
    else:
        code = source
        title = f"seed {seed}"
        rationale = (
            f"Same code, run after seeding random, numpy and torch with {seed}: if the "
            f"metric moves a lot, the baseline result is partly luck."
        )
    return Proposal(
        title=title,
        kind=ProposalKind.SEED,
        origin=Origin.OFFLINE,
        rationale=rationale,
        expected_effect="The metric should stay close to the baseline if the result is robust.",
        code=code,
        seed=seed,
    )


def has_parse_error(source: str) -> bool:
    """True when the cell is not Python the offline proposer can read."""
    return parse_cell(source) is None
