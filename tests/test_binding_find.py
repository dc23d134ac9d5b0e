"""Finding where a metric comes from in the code: prints, logging, dicts, frames, results."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.binding import find_binding, free_names
from jupyter_research_agent.core.models import Cell


def cells(*sources: str) -> list[Cell]:
    return [Cell(id=f"c{i}", source=source) for i, source in enumerate(sources)]


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(plain: str) -> dict[str, Any]:
    return {"output_type": "execute_result", "data": {"text/plain": plain}, "metadata": {}}


@pytest.mark.parametrize(
    ("metric", "sources", "expected"),
    [
        # print calls, in every formatting style
        ("test accuracy", ['acc = 0.9\nprint(f"test accuracy: {acc:.4f}")'], "acc"),
        ("Test  Accuracy", ['print(f"test accuracy: {acc:.4f}")'], "acc"),
        ("acc", ['print("acc:", acc)'], "acc"),
        ("loss", ['print("epoch", 3, "loss:", loss)'], "loss"),
        ("loss", ['print("loss=%.3f" % loss)'], "loss"),
        ("acc", ['print("loss=%.3f acc=%.3f" % (loss, acc))'], "acc"),
        ("acc", ['print("%(acc).2f" % {"acc": acc} + " is acc")'], None),
        ("loss", ['print("loss={}".format(loss))'], "loss"),
        ("acc", ['print("loss={0} acc={1:.2f}".format(loss, acc))'], "acc"),
        ("acc", ['print("acc={a}".format(a=float(acc)))'], "float(acc)"),
        ("acc", ['print("acc: " + str(round(acc, 3)))'], "round(acc, 3)"),
        ("acc", ['print(f"{acc=}")'], "acc"),
        ("acc", ['print(f"acc: {acc:.1%}")'], "acc * 100"),
        ("acc", ['print(f"acc: {a + b:.1%}")'], "(a + b) * 100"),
        ("acc", ["print(f'loss={loss:.3f}', f'acc={acc:.3f}', sep=' | ')"], "acc"),
        # a call on an object is the expression as written
        (
            "score",
            ['print(f"score: {model.score(X_test, y_test):.3f}")'],
            "model.score(X_test, y_test)",
        ),
        # logging calls, with %-style arguments or an f-string
        ("acc", ['logger.info("acc=%.3f loss=%s", acc, loss)'], "acc"),
        ("acc", ['logging.log(20, "acc=%s", acc)'], "acc"),
        ("val loss", ['log.info(f"val loss: {history[-1]}")'], "history[-1]"),
        # inside a loop the last value printed is the last value bound
        ("loss", ["for epoch in range(3):\n    loss = step()\n    print(f'loss={loss}')"], "loss"),
        # a dict shown as the cell's result, literal or held by a variable
        ("acc", ['{"acc": acc, "loss": loss}'], "acc"),
        ("test acc", ['{"Test Acc": float(acc)}'], "float(acc)"),
        ("acc", ['results = {"acc": acc}\nresults'], 'results["acc"]'),
        ("acc", ['results = {}\nresults["acc"] = float(acc)\nresults'], 'results["acc"]'),
        ("acc", ['results = {"acc": acc}', "results"], 'results["acc"]'),
        ("acc", ['def evaluate():\n    return {"acc": 0.9}\nevaluate()'], 'evaluate()["acc"]'),
        ("acc", ['def evaluate():\n    return {"acc": 0.9}\nres = evaluate()\nres'], 'res["acc"]'),
        ("acc", ["display({'acc': acc})"], "acc"),
        # DataFrames and Series
        ("acc", ['pd.DataFrame({"acc": [acc], "loss": [loss]})'], "acc"),
        ("acc", ['pd.DataFrame([{"acc": acc}])'], "acc"),
        ("acc", ["pd.DataFrame([[loss, acc]], columns=['loss', 'acc'])"], "acc"),
        ("acc", ['df = pd.DataFrame({"acc": [acc]})', "df"], "acc"),
        ("acc", ['pd.Series({"acc": acc})'], "acc"),
        # a bare value shown as the result
        ("result", ["model.score(X, y)"], "model.score(X, y)"),
        ("accuracy", ["accuracy = evaluate()\naccuracy"], "accuracy"),
        # IPython magics do not hide the rest of the cell
        ("acc", ['%time fit()\nprint(f"acc={acc}")'], "acc"),
        # negatives: no code shows the metric in the notebook's own scope
        ("acc", ['print(f"loss: {loss}")'], None),
        ("acc", ['def report(a):\n    print(f"acc: {a}")\nreport(acc)'], None),
        ("acc", ['x = [print(f"acc: {a}") for a in accs]'], None),
        ("acc", ['print(f"acc: {acc}", file=sys.stderr)'], None),
        ("acc", ['warnings.warn(f"acc={acc}")'], None),
        ("acc", ['print(f"warning: acc={acc}")'], None),
        ("acc", ['{"acc": acc};'], None),
        ("acc", ['{"loss": loss}'], None),
        ("acc", ["acc_history"], None),
        ("acc", ["print(f'acc: {acc'"], None),
        ("", ['print(f"acc: {acc}")'], None),
    ],
)
def test_find_binding(metric: str, sources: list[str], expected: str | None) -> None:
    # Given cells whose code shows (or does not show) the metric
    # When the binding is looked for
    binding = find_binding(metric, cells(*sources))
    # Then it names the expression behind the shown value, or nothing
    assert (binding.expression if binding else None) == expected


def test_binding_records_cell_names_and_source() -> None:
    # Given a metric printed in the last cell from names bound in earlier ones
    nb = cells("X, y = load()", "model = fit(X, y)", 'print(f"r2: {model.score(X, y):.3f}")')
    # When the binding is found
    binding = find_binding("R2", nb)
    # Then it records the normalised name, the cell and the variables it reads, in order
    assert binding is not None
    assert binding.name == "r2"
    assert binding.cell_id == "c2"
    assert binding.names == ["model", "X", "y"]
    assert binding.source == "binding"


def test_cells_whose_output_shows_the_metric_come_first() -> None:
    # Given two cells that could print "acc", and outputs saying the first one did
    nb = cells('print(f"acc: {acc}")', 'print(f"acc: {other}")')
    outputs = {"c0": [stdout("acc: 0.9\n")], "c1": []}
    # When the binding is found with those outputs
    binding = find_binding("acc", nb, outputs)
    # Then it comes from the cell that printed it; without outputs the latest cell wins
    assert binding is not None and (binding.cell_id, binding.expression) == ("c0", "acc")
    latest = find_binding("acc", nb)
    assert latest is not None and latest.expression == "other"


def test_kind_of_output_picks_between_print_and_result() -> None:
    # Given a cell that prints acc and also shows a dict with acc, and a result output
    nb = cells('print(f"acc: {printed}")\n{"acc": shown}')
    # When the outputs say the metric came from the stdout line only
    from_stdout = find_binding("acc", nb, {"c0": [stdout("acc: 0.5\n")]})
    # Then the print is the binding; a result output points at the dict instead
    assert from_stdout is not None and from_stdout.expression == "printed"
    from_result = find_binding("acc", nb, {"c0": [result("{'acc': 0.5}")]})
    assert from_result is not None and from_result.expression == "shown"


def test_key_spelling_comes_from_a_shown_dict() -> None:
    # Given a variable holding a dict of unknown shape, shown with its result
    nb = cells("res = evaluate(model)\nres")
    outputs = {"c0": [result("{'Test Acc': 0.91, 'loss': 0.2}")]}
    # When the binding for "test acc" is found
    binding = find_binding("test acc", nb, outputs)
    # Then it subscripts the variable with the key as the output spells it
    assert binding is not None and binding.expression == 'res["Test Acc"]'


def test_saved_outputs_of_the_cells_are_used_by_default() -> None:
    # Given cells read from a notebook file with their outputs
    nb = cells('print(f"acc: {a}")', 'print(f"acc: {b}")')
    nb[0].outputs = [stdout("acc: 0.7\n")]
    # When no outputs are passed
    binding = find_binding("acc", nb)
    # Then the cell whose saved output shows the metric wins
    assert binding is not None and binding.expression == "a"


@pytest.mark.parametrize(
    ("expression", "keep", "expected"),
    [
        ("acc", (), ["acc"]),
        ("float(acc)", (), ["acc"]),
        ("float(acc)", ("float",), ["float", "acc"]),
        ('results["acc"]', (), ["results"]),
        ("model.score(X, y)", (), ["model", "X", "y"]),
        ("sum(x for x in accs) / len(accs)", (), ["accs"]),
        ("(lambda v: v * k)(acc)", (), ["k", "acc"]),
    ],
)
def test_free_names(expression: str, keep: tuple[str, ...], expected: list[str]) -> None:
    # Given an expression; When its free names are read; Then builtins and bound names drop out
    assert free_names(expression, keep) == expected
