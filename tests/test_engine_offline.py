"""The offline proposer: tunables found in the code, atomic proposals, seeds."""

from __future__ import annotations

import ast

import pytest

from jupyter_research_agent.core.errors import CellError
from jupyter_research_agent.core.models import (
    Cell,
    ExplorationKind,
    NotebookDoc,
    Origin,
    ProposalKind,
    ProposeRequest,
    sha256_of,
)
from jupyter_research_agent.core.offline import (
    OfflineProposer,
    apply_seed,
    find_tunables,
    propose_offline,
)

TRAIN = """\
import numpy as np
np.random.seed(0)

lr = 0.5  # deliberately high
epochs = 10
model = Ridge(alpha=1.0, fit_intercept=True)
history = train(model, lr=lr, epochs=epochs)
print(f"accuracy: {evaluate(model):.3f}")
"""


def request(
    source: str,
    kind: ExplorationKind = ExplorationKind.VARIATIONS,
    max_proposals: int = 50,
    **extra: object,
) -> ProposeRequest:
    notebook = NotebookDoc(
        path="t.ipynb",
        cells=[Cell(id="prep", source="import math"), Cell(id="target", source=source)],
    )
    return ProposeRequest(
        notebook=notebook, cell_id="target", kind=kind, max_proposals=max_proposals, **extra
    )


# ---------------------------------------------------------------- tunables


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lr = 0.1", [("lr", 0.1, "learning_rate")]),
        ("epochs = 10", [("epochs", 10, "int")]),
        ("lr: float = 3e-4", [("lr", 3e-4, "learning_rate")]),
        ("x = -0.5", [("x", -0.5, "float")]),
        ("lr, epochs = 0.01, 5", [("lr", 0.01, "learning_rate"), ("epochs", 5, "int")]),
        ("m = Ridge(alpha=1.0)", [("alpha", 1.0, "learning_rate")]),
        ("train(lr=0.01, epochs=5)", [("lr", 0.01, "learning_rate"), ("epochs", 5, "int")]),
        ("clf = LogisticRegression(C=2)", [("C", 2, "learning_rate")]),
        ("opt = Adam(weight_decay=1e-4)", [("weight_decay", 1e-4, "learning_rate")]),
        ("net = Net(dropout=0.2)", [("dropout", 0.2, "bounded")]),
        ("base_lr = 0.1", [("base_lr", 0.1, "learning_rate")]),
        ("n_estimators = 100", [("n_estimators", 100, "int")]),
        ("seed = 42", [("seed", 42, "seed")]),
        ("SEED = 7", [("SEED", 7, "seed")]),
        ("m = Forest(random_state=0)", [("random_state", 0, "seed")]),
        ("np.random.seed(0)", [("np.random.seed", 0, "seed")]),
        ("torch.manual_seed(1)", [("torch.manual_seed", 1, "seed")]),
        ("random.seed(3)", [("random.seed", 3, "seed")]),
        ("rng = np.random.default_rng(12)", [("np.random.default_rng", 12, "seed")]),
        ("key = jax.random.PRNGKey(0)", [("jax.random.PRNGKey", 0, "seed")]),
        # not tunables
        ("flag = True", []),
        ("m = Model(shuffle=False)", []),
        ("name = 'adam'", []),
        ("y = x * 0.5", []),
        ("m.fit(X, y, verbose=1, n_jobs=-1)", []),
        ("plt.plot(x, y, alpha=0.5, linewidth=2)", []),
        ("ax.scatter(x, y, alpha=0.3)", []),
        ("print(round(3.14159, 2))", []),
        ("def f():\n    inner = 0.5\n    return inner", []),
        ("this is not python (", []),
        ("rng = np.random.default_rng(0.5)", []),
    ],
)
def test_find_tunables(source: str, expected: list[tuple[str, object, str]]) -> None:
    # Given a cell, When its tunables are found, Then names, values and kinds match
    found = [(t.name, t.value, t.kind) for t in find_tunables(source)]
    assert found == expected


def test_tunable_offsets_point_at_the_literal_even_after_unicode() -> None:
    # Given a cell with non-ASCII text before the literal on the same line
    source = 'label = "précision é"; lr = 1e-3\n'

    # When tunables are found, Then the offsets cut out exactly the literal as written
    (tunable,) = find_tunables(source)
    assert source[tunable.start : tunable.end] == "1e-3" == tunable.text


def test_magics_do_not_hide_the_rest_of_the_cell() -> None:
    # Given a cell starting with IPython magics and shell escapes
    source = "%matplotlib inline\n!echo hi\nlr = 0.1\n"

    # When tunables are found, Then the Python lines are still read
    assert [t.name for t in find_tunables(source)] == ["lr"]


# ---------------------------------------------------------------- proposals


def test_proposals_for_a_training_cell_are_atomic_and_prioritised() -> None:
    # Given a training cell with a learning rate, an int, a regularisation keyword and a seed
    # When the offline proposer runs without a limit
    proposals = propose_offline(request(TRAIN))

    # Then the first round covers every tunable, rates first, then ints, then the seed
    titles = [p.title for p in proposals]
    assert titles[:7] == [
        "lr: 0.5 → 0.05",
        "lr: 0.5 → 5.0",
        "Ridge(alpha): 1.0 → 0.1",
        "Ridge(alpha): 1.0 → 10.0",
        "epochs: 10 → 5",
        "epochs: 10 → 20",
        "seed: 0 → 1",
    ]
    # and finer factors follow
    assert titles[7:] == [
        "lr: 0.5 → 0.15",
        "lr: 0.5 → 1.5",
        "Ridge(alpha): 1.0 → 0.3",
        "Ridge(alpha): 1.0 → 3.0",
    ]


def test_each_proposal_changes_exactly_one_literal_and_keeps_comments() -> None:
    # Given the proposals for the training cell
    proposals = propose_offline(request(TRAIN))
    original_lines = TRAIN.splitlines()

    for proposal in proposals:
        changed = [
            (old, new)
            for old, new in zip(original_lines, proposal.code.splitlines(), strict=True)
            if old != new
        ]
        # Then exactly one line differs, the code still parses, comments survive
        assert len(changed) == 1, proposal.title
        assert "# deliberately high" in proposal.code
        ast.parse(proposal.code)
        # And hash, origin and round are filled in
        assert proposal.code_sha256 == sha256_of(proposal.code)
        assert proposal.origin == Origin.OFFLINE
        assert proposal.rationale
        assert proposal.round == 0
        assert proposal.parent_id is None


def test_parameter_proposal_carries_override_and_exact_code() -> None:
    # Given the proposals for the training cell
    first = propose_offline(request(TRAIN))[0]

    # Then the first one sets lr to 0.05 and nothing else
    assert first.kind == ProposalKind.PARAMETER
    assert first.overrides == {"lr": 0.05}
    assert first.code == TRAIN.replace("lr = 0.5", "lr = 0.05")
    assert first.seed is None


def test_seed_proposal_sets_every_seed_literal() -> None:
    # Given a cell with two seed literals
    source = "np.random.seed(0)\nm = Forest(n_estimators=50, random_state=0)\n"

    # When proposals are made
    proposals = propose_offline(request(source))
    seed = [p for p in proposals if p.kind == ProposalKind.SEED]

    # Then one seed proposal sets both seeds to 1
    assert len(seed) == 1
    assert seed[0].seed == 1
    assert seed[0].code == "np.random.seed(1)\nm = Forest(n_estimators=50, random_state=1)\n"
    assert seed[0].title == "seed: 0 → 1"


@pytest.mark.parametrize(
    ("source", "expected_titles"),
    [
        ("lr = 0.1", ["lr: 0.1 → 0.01", "lr: 0.1 → 1.0", "lr: 0.1 → 0.03", "lr: 0.1 → 0.3"]),
        (
            "threshold = 0.25",
            [
                "threshold: 0.25 → 0.025",
                "threshold: 0.25 → 2.5",
                "threshold: 0.25 → 0.075",
                "threshold: 0.25 → 0.75",
            ],
        ),
        ("batch = 1", ["batch: 1 → 2"]),
        ("epochs = 3", ["epochs: 3 → 1", "epochs: 3 → 6"]),
        ("n = 0", []),
        ("n_jobs_total = -1", []),
        ("x = 0.0", []),
        ("dropout = 0.5", ["dropout: 0.5 → 0.25", "dropout: 0.5 → 0.6", "dropout: 0.5 → 0.4"]),
        ("dropout = 0.0", ["dropout: 0.0 → 0.1"]),
        ("dropout = 0.95", ["dropout: 0.95 → 0.475", "dropout: 0.95 → 0.85"]),
        ("flag = False", []),
        ("seed = 5", ["seed: 5 → 6"]),
    ],
)
def test_proposal_values_per_kind(source: str, expected_titles: list[str]) -> None:
    # Given a one-line cell, When proposals are made, Then the steps follow the value's kind
    assert [p.title for p in propose_offline(request(source))] == expected_titles


def test_max_proposals_keeps_the_first_by_priority() -> None:
    # Given the training cell and a budget of three
    proposals = propose_offline(request(TRAIN, max_proposals=3))

    # Then the three highest-priority proposals come back
    assert [p.title for p in proposals] == [
        "lr: 0.5 → 0.05",
        "lr: 0.5 → 5.0",
        "Ridge(alpha): 1.0 → 0.1",
    ]


def test_zero_budget_gives_no_proposals() -> None:
    assert propose_offline(request(TRAIN, max_proposals=0)) == []


def test_order_is_deterministic() -> None:
    # Given the same request twice, Then titles and codes come in the same order
    first = [(p.title, p.code) for p in propose_offline(request(TRAIN))]
    second = [(p.title, p.code) for p in propose_offline(request(TRAIN))]
    assert first == second


def test_fix_requests_get_no_offline_proposals() -> None:
    # Given a fix request, Then the offline proposer leaves it to triage
    assert propose_offline(request(TRAIN, kind=ExplorationKind.FIX)) == []


def test_cell_without_tunables_gets_no_proposals() -> None:
    assert propose_offline(request("print('hello')\ndf.head()")) == []


def test_unknown_or_markdown_target_is_a_cell_error() -> None:
    req = request(TRAIN)
    req.cell_id = "missing"
    with pytest.raises(CellError):
        propose_offline(req)


def test_base_code_is_used_for_the_next_round() -> None:
    # Given a request for round 2 built on a previous winner's code
    base = TRAIN.replace("lr = 0.5", "lr = 0.05")
    req = request(TRAIN, max_proposals=1, base_code=base, round=2, parent_id="prop-abc")

    # When proposals are made
    (proposal,) = propose_offline(req)

    # Then they start from the base code and carry the round and parent
    assert proposal.title == "lr: 0.05 → 0.005"
    assert proposal.code == TRAIN.replace("lr = 0.5", "lr = 0.005")
    assert (proposal.round, proposal.parent_id) == (2, "prop-abc")


# ---------------------------------------------------------------- seeds


def test_seed_exploration_varies_the_seed_literal() -> None:
    # Given a cell with a seed and a request for four seeds
    req = request(TRAIN, kind=ExplorationKind.SEEDS, seeds=4)

    # When proposals are made
    proposals = propose_offline(req)

    # Then there are four seed proposals with seeds 1..4 in the code and in the field
    assert [p.seed for p in proposals] == [1, 2, 3, 4]
    assert all(p.kind == ProposalKind.SEED for p in proposals)
    assert proposals[2].code == TRAIN.replace("np.random.seed(0)", "np.random.seed(3)")
    assert len({p.code_sha256 for p in proposals}) == 4


def test_seed_exploration_without_seed_literal_keeps_code_and_sets_seed() -> None:
    # Given a cell that never seeds its randomness
    source = "import random\nprint('acc:', random.random())\n"

    # When a seeds exploration asks for proposals (default count)
    proposals = propose_offline(request(source, kind=ExplorationKind.SEEDS))

    # Then the code is unchanged and the seed field tells the runner which seed to set
    assert [p.seed for p in proposals] == [1, 2, 3]
    assert all(p.code == source for p in proposals)
    assert proposals[0].title == "seed 1"


def test_seed_exploration_respects_the_budget() -> None:
    proposals = propose_offline(
        request(TRAIN, kind=ExplorationKind.SEEDS, seeds=10, max_proposals=2)
    )
    assert [p.seed for p in proposals] == [1, 2]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("np.random.seed(0)\n", "np.random.seed(9)\n"),
        ("torch.manual_seed(1)  # fixed\n", "torch.manual_seed(9)  # fixed\n"),
        ("random.seed(3)\n", "random.seed(9)\n"),
        ("SEED = 42\nm = F(random_state=SEED)\n", "SEED = 9\nm = F(random_state=SEED)\n"),
        ("m = F(random_state=0, n_estimators=10)\n", "m = F(random_state=9, n_estimators=10)\n"),
        ("print('no seed here')\n", "print('no seed here')\n"),
        ("lr = 0.1\n", "lr = 0.1\n"),
    ],
)
def test_apply_seed(source: str, expected: str) -> None:
    # Given a cell, When seed 9 is applied, Then every seed literal (and nothing else) changes
    assert apply_seed(source, 9) == expected


@pytest.mark.asyncio
async def test_offline_proposer_is_an_async_proposer() -> None:
    # Given the proposer object the engine uses
    proposer = OfflineProposer()

    # When it is awaited, Then it returns the same proposals as the pure function
    proposals = await proposer.propose(request(TRAIN, max_proposals=2))
    assert proposer.origin == Origin.OFFLINE
    assert [p.title for p in proposals] == ["lr: 0.5 → 0.05", "lr: 0.5 → 5.0"]
