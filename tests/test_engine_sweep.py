"""Researcher sweeps: the grammar, overrides of literals, and the grid of proposals."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.errors import InvalidInput
from jupyter_research_agent.core.models import Origin, ProposalKind, sha256_of
from jupyter_research_agent.core.sweep import (
    MAX_COMBINATIONS,
    apply_overrides,
    parse_sweep,
    sweep_proposals,
)

CELL = """\
lr = 0.1  # step size
epochs = 3
solver = "lbfgs"
model = Ridge(alpha=1.0, fit_intercept=True)
plt.plot(xs, ys, alpha=0.5)
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lr=0.001,0.01,0.1 epochs=3,10", {"lr": [0.001, 0.01, 0.1], "epochs": [3, 10]}),
        ("lr=0.1;epochs=3", {"lr": [0.1], "epochs": [3]}),
        ("lr=0.1; epochs=3;", {"lr": [0.1], "epochs": [3]}),
        ("  lr = 0.1, 0.2   epochs = 3 ", {"lr": [0.1, 0.2], "epochs": [3]}),
        ("lr=1e-3,5e-4", {"lr": [1e-3, 5e-4]}),
        ("lr=-1,+2", {"lr": [-1, 2]}),
        ("flag=True,False x=None", {"flag": [True, False], "x": [None]}),
        ("solver='lbfgs',\"saga\"", {"solver": ["lbfgs", "saga"]}),
        ("name='a b','c,d'", {"name": ["a b", "c,d"]}),
        ("name='x=1'", {"name": ["x=1"]}),
        ("shape=(1, 2),(3, 4)", {"shape": [(1, 2), (3, 4)]}),
        ("lr=0.1,0.1,0.2", {"lr": [0.1, 0.2]}),
        ("lr=0.1,", {"lr": [0.1]}),
        ("a=1,b=2", {"a": [1], "b": [2]}),
    ],
)
def test_parse_sweep(spec: str, expected: dict[str, list[Any]]) -> None:
    # Given a sweep spec, When parsed, Then names map to their literal values in order
    parsed = parse_sweep(spec)
    assert parsed == expected
    assert list(parsed) == list(expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty specification"),
        ("   ", "empty specification"),
        ("lr=", "'lr' has no values"),
        ("lr= epochs=3", "'lr' has no values"),
        ("lr=0.1,,0.2", "'lr' has an empty value"),
        ("lr=0.1 lr=0.2", "'lr' is given twice"),
        ("lr=adam", "value 'adam' for 'lr' is not a Python literal; quote strings"),
        ("lr=0.1.2", "is not a Python literal"),
        ("lr=float('inf')", "is not a Python literal"),
        ("lr=1e999", "not a finite number"),
        ("0.1,0.2", "expected name=values"),
        ("hello lr=0.1", "expected name=values, got 'hello'"),
        ("lr==0.1", "expected name=values"),
    ],
)
def test_parse_sweep_errors(spec: str, message: str) -> None:
    # Given a malformed spec, When parsed, Then InvalidInput says what is wrong
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_sweep(spec)
    assert str(caught.value).startswith("sweep:")


# ---------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("overrides", "expected_line", "line_index"),
    [
        ({"lr": 0.01}, "lr = 0.01  # step size", 0),
        ({"epochs": 10}, "epochs = 10", 1),
        ({"solver": "saga"}, "solver = 'saga'", 2),
        ({"alpha": 3}, "model = Ridge(alpha=3, fit_intercept=True)", 3),
        ({"fit_intercept": False}, "model = Ridge(alpha=1.0, fit_intercept=False)", 3),
        ({"lr": -0.5}, "lr = -0.5  # step size", 0),
    ],
)
def test_apply_overrides_replaces_the_literal_only(
    overrides: dict[str, Any], expected_line: str, line_index: int
) -> None:
    # Given the cell, When one name is overridden
    result = apply_overrides(CELL, overrides)

    # Then that line changes, every other line is identical
    new_lines, old_lines = result.splitlines(), CELL.splitlines()
    assert new_lines[line_index] == expected_line
    assert [line for i, line in enumerate(new_lines) if i != line_index] == [
        line for i, line in enumerate(old_lines) if i != line_index
    ]


def test_apply_overrides_leaves_plot_opacity_alone() -> None:
    # Given a cell where "alpha" is both a model parameter and a plot's opacity
    # When alpha is overridden, Then only the model's alpha changes
    result = apply_overrides(CELL, {"alpha": 10.0})
    assert "Ridge(alpha=10.0," in result
    assert "plt.plot(xs, ys, alpha=0.5)" in result


def test_apply_overrides_changes_every_binding_of_the_name() -> None:
    # Given a name bound twice, When overridden, Then both bindings take the new value
    source = "lr = 0.1\nfit(lr=0.1)\n"
    assert apply_overrides(source, {"lr": 0.2}) == "lr = 0.2\nfit(lr=0.2)\n"


def test_apply_overrides_with_nothing_returns_the_source() -> None:
    assert apply_overrides(CELL, {}) == CELL


def test_apply_overrides_unknown_name_lists_known_ones() -> None:
    with pytest.raises(
        InvalidInput,
        match="unknown variable 'foo' in the cell: known are lr, epochs, solver, alpha, "
        "fit_intercept",
    ):
        apply_overrides(CELL, {"foo": 1})


def test_apply_overrides_on_a_cell_without_literals() -> None:
    with pytest.raises(InvalidInput, match="the cell assigns no literal values"):
        apply_overrides("print(x)", {"lr": 1})


def test_apply_overrides_on_invalid_python() -> None:
    with pytest.raises(InvalidInput, match="not valid Python"):
        apply_overrides("lr = (", {"lr": 1})


def test_a_computed_value_is_not_overridable() -> None:
    # Given lr computed from another value, Then only the literal base is known
    with pytest.raises(InvalidInput, match="known are base"):
        apply_overrides("base = 0.1\nlr = base * 2\n", {"lr": 1})


# ---------------------------------------------------------------- proposals


def test_sweep_proposals_form_the_grid() -> None:
    # Given a sweep over two names
    proposals = sweep_proposals(CELL, "lr=0.01,0.1 epochs=3,10")

    # Then there is one proposal per combination, the first name varying slowest
    assert [p.title for p in proposals] == [
        "lr=0.01, epochs=3",
        "lr=0.01, epochs=10",
        "lr=0.1, epochs=3",
        "lr=0.1, epochs=10",
    ]
    assert [p.overrides for p in proposals][1] == {"lr": 0.01, "epochs": 10}
    for proposal in proposals:
        assert proposal.kind == ProposalKind.PARAMETER
        assert proposal.origin == Origin.RESEARCHER
        assert proposal.code_sha256 == sha256_of(proposal.code)
        assert proposal.code == apply_overrides(CELL, proposal.overrides)
    assert "lr = 0.01  # step size\nepochs = 10\n" in proposals[1].code


def test_sweep_point_equal_to_the_cell_is_flagged() -> None:
    # Given a sweep that includes the cell's own value, Then that point carries a warning
    proposals = sweep_proposals(CELL, "lr=0.1,0.2")
    assert proposals[0].warnings == ["This combination leaves the cell unchanged."]
    assert proposals[1].warnings == []


def test_sweep_with_string_values_quotes_them() -> None:
    proposals = sweep_proposals(CELL, "solver='saga','newton-cg'")
    assert [p.title for p in proposals] == ["solver='saga'", "solver='newton-cg'"]
    assert "solver = 'newton-cg'" in proposals[1].code


def test_sweep_unknown_variable() -> None:
    with pytest.raises(InvalidInput, match="unknown variable 'momentum' in the cell: known are lr"):
        sweep_proposals(CELL, "lr=0.1 momentum=0.9")


def test_sweep_too_many_combinations() -> None:
    # Given a grid of 5 × 5 × 3 = 75 points, beyond the limit of 64
    spec = "lr=1,2,3,4,5 epochs=1,2,3,4,5 alpha=1,2,3"

    # Then the error gives the arithmetic and the limit
    with pytest.raises(InvalidInput, match=r"5 × 5 × 3 = 75 combinations; the limit is 64"):
        sweep_proposals(CELL, spec)
    assert MAX_COMBINATIONS == 64


def test_sweep_of_exactly_the_limit_is_allowed() -> None:
    spec = (
        "lr="
        + ",".join(str(i) for i in range(1, 9))
        + " epochs="
        + ",".join(str(i) for i in range(1, 9))
    )
    assert len(sweep_proposals(CELL, spec)) == 64
