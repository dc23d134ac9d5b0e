"""Warnings for variations that drop the metric's names, researcher expressions, and reading
bound values back from a kernel's ``user_expressions`` reply."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.binding import (
    binding_expression_code,
    binding_warnings,
    parse_metric_arg,
    parse_user_expression_results,
    read_user_expressions,
)
from jupyter_research_agent.core.errors import InvalidInput
from jupyter_research_agent.core.models import Cell, Direction, MetricBinding

ACC = MetricBinding(name="test accuracy", expression="acc", cell_id="target", names=["acc"])
SCORE = MetricBinding(
    name="score", expression="model.score(X, y)", cell_id="target", names=["model", "X", "y"]
)


def cell(source: str, cell_id: str = "later") -> Cell:
    return Cell(id=cell_id, source=source)


@pytest.mark.parametrize(
    ("code", "binding", "later", "earlier", "missing"),
    [
        # the variation keeps computing the name: no warning, whatever it prints
        ("acc = accuracy_score(y, p)", ACC, [], [], []),
        ("acc, f1 = evaluate()", ACC, [], [], []),
        ("for acc in trial():\n    pass", ACC, [], [], []),
        ("if fast:\n    acc = 0.5\nelse:\n    acc = slow()", ACC, [], [], []),
        ("def f():\n    global acc\n    acc = 1\nf()", ACC, [], [], []),
        ("from metrics import acc", ACC, [], [], []),
        ("from metrics import *", ACC, [], [], []),
        ("%time acc = fit()", ACC, [], [], []),
        # it dropped the name, but a later cell or an earlier one still defines it
        ("model = fit()", ACC, [cell("acc = model.score(X, y)")], [], []),
        ("model = fit()", SCORE, [], [cell("X, y = load()", "early")], []),
        # dropped: the name was bound in the target cell only
        ("model = fit()\nprint('done')", ACC, [], [], ["acc"]),
        ("def f():\n    acc = 1\nf()", ACC, [], [], ["acc"]),
        ("model = fit()", SCORE, [], [], ["X", "y"]),
        ("clf = fit()", SCORE, [], [cell("X, y = load()", "early")], ["model"]),
        ("clf = fit()", SCORE, [cell("# markdown acc", "md")], [], ["model", "X", "y"]),
        # code that does not parse is left to its run's syntax error
        ("acc = (", ACC, [], [], []),
    ],
)
def test_binding_warnings(
    code: str, binding: MetricBinding, later: list[Cell], earlier: list[Cell], missing: list[str]
) -> None:
    # Given a variation's code, the binding, and the cells the run executes around it
    # When the variation is checked
    warnings = binding_warnings(code, binding, later, earlier)
    # Then it is flagged exactly when a name the metric needs is no longer defined
    if not missing:
        assert warnings == []
    else:
        assert len(warnings) == 1
        shown = ", ".join(f"`{n}`" for n in missing)
        assert warnings[0].startswith(f"this variation no longer computes {shown};")
        assert binding.name in warnings[0]


def test_warning_reads_plainly() -> None:
    # Given the example; When the print and the variable are both gone
    warnings = binding_warnings("clf = RandomForest().fit(X, y)", ACC, [])
    # Then the researcher reads which name is missing and what the metric needs
    assert warnings == [
        "this variation no longer computes `acc`; the metric 'test accuracy' is read from `acc`"
    ]


@pytest.mark.parametrize(
    ("arg", "name", "expression", "names"),
    [
        ("acc", "acc", None, None),
        ("  test accuracy  ", "test accuracy", None, None),
        ("test accuracy=acc", "test accuracy", "acc", ["acc"]),
        ("Test Accuracy = float(acc)", "Test Accuracy", "float(acc)", ["acc"]),
        ("r2=model.score(X, y=y_test)", "r2", "model.score(X, y=y_test)", ["model", "X", "y_test"]),
        ('acc=results["acc"]', "acc", 'results["acc"]', ["results"]),
    ],
)
def test_parse_metric_arg(
    arg: str, name: str, expression: str | None, names: list[str] | None
) -> None:
    # Given a --metric argument; When it is parsed
    spec = parse_metric_arg(arg)
    # Then the name is kept as written and the expression becomes a researcher binding
    assert spec.name == name
    assert spec.expression == expression
    if names is None:
        assert spec.binding is None
    else:
        assert spec.binding is not None
        assert spec.binding.name == name.lower()
        assert spec.binding.names == names
        assert spec.binding.source == "researcher"
        assert spec.binding.cell_id is None


def test_parse_metric_arg_direction() -> None:
    # Given metric names with and without a known direction; Then it is inferred unless given
    assert parse_metric_arg("val loss=loss").direction == Direction.MINIMIZE
    assert parse_metric_arg("acc").direction == Direction.MAXIMIZE
    assert parse_metric_arg("acc", Direction.MINIMIZE).direction == Direction.MINIMIZE
    assert parse_metric_arg("widgets").direction is None


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("", "has no name"),
        ("=acc", "has no name"),
        ("acc=", "has no expression"),
        ("acc=acc +", "is not a Python expression"),
        ("acc=x = 1", "is not a Python expression"),
        ("acc=import os", "is not a Python expression"),
    ],
)
def test_parse_metric_arg_rejects(arg: str, message: str) -> None:
    # Given a malformed argument; When parsed; Then the researcher is told what is wrong
    with pytest.raises(InvalidInput, match=message):
        parse_metric_arg(arg)


def test_expression_code_wraps_each_binding_by_metric_name() -> None:
    # Given bindings, one with a comment in the researcher's expression
    bindings = [ACC, MetricBinding(name="loss", expression="loss  # last epoch")]
    # When the user_expressions are built
    code = binding_expression_code(bindings)
    # Then each is one expression converting the value to float, keyed by metric name
    assert set(code) == {"test accuracy", "loss"}
    assert code["test accuracy"].endswith("((acc))")
    assert code["loss"].endswith("((loss))")
    assert "float(v)" in code["loss"]


def ok(plain: str) -> dict[str, Any]:
    return {"status": "ok", "data": {"text/plain": plain}, "metadata": {}}


def test_reading_user_expression_results() -> None:
    # Given a reply with a number, a message, an exception, NaN and garbage
    reply = {
        "acc": ok("0.91"),
        "loss": ok("'not a number: str'"),
        "f1": {"status": "error", "ename": "NameError", "evalue": "name 'f1' is not defined"},
        "auc": ok("nan"),
        "mae": ok("array([1., 2.])"),
        "r2": "oops",
    }
    # When it is read
    values, errors = read_user_expressions(reply)
    # Then numbers are values and everything else is a plain reason
    assert values == {"acc": 0.91}
    assert parse_user_expression_results(reply) == {"acc": 0.91}
    assert errors == {
        "loss": "not a number: str",
        "f1": "NameError: name 'f1' is not defined",
        "auc": "not a finite number: nan",
        "mae": "not a number: array([1., 2.])",
        "r2": "no result",
    }
