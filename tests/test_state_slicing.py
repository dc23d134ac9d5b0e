"""The dependency analysis: which earlier cells a run needs, and when it must replay them all."""

from __future__ import annotations

import pytest

from jupyter_research_agent.core.models import Cell
from jupyter_research_agent.core.state import (
    analyse_cell,
    definition_statements,
    expression_names,
    plan_run,
    statement_inputs,
)


def _plan(*sources: str, target: int | None = None) -> tuple[bool, tuple[int, ...], str]:
    cells = [Cell(id=f"c{i}", source=src) for i, src in enumerate(sources)]
    plan = plan_run(cells, len(cells) - 1 if target is None else target)
    return plan.sure, plan.prefix, plan.reason


# (name, cells (the last one is the target), prefix cells kept)
SLICES = [
    ("unrelated cell skipped", ["a = 1", "b = 2", "print(a)"], (0,)),
    ("transitive through a cell", ["a = 1", "b = a + 1", "c = 3", "print(b)"], (0, 1)),
    ("rebinding kills earlier value", ["a = slow()", "a = 1", "print(a)"], (1,)),
    ("augmented assignment keeps", ["a = 1", "a += 1", "print(a)"], (0, 1)),
    ("item store mutates", ["df = {}", "df['x'] = 1", "other = 2", "print(df)"], (0, 1)),
    ("attribute store mutates", ["o = C()", "o.lr = 2", "print(o.lr)"], (0, 1)),
    ("method call mutates", ["xs = []", "xs.append(1)", "ys = []", "print(xs)"], (0, 1)),
    ("passing to a function may mutate", ["xs = [3, 1]", "shuffle(xs)", "print(xs)"], (0, 1)),
    ("print does not mutate", ["xs = [3, 1]", "print(xs)", "len(xs)"], (0,)),
    ("module call leaves module", ["import math", "r = math.sqrt(4)", "print(math.pi)"], (0,)),
    ("module seeding is kept", ["import random", "random.seed(1)", "random.random()"], (0, 1)),
    ("function globals followed", ["k = 3", "def f(x):\n    return x * k", "f(2)"], (0, 1)),
    (
        "global statement writes",
        ["n = 0", "def bump():\n    global n\n    n += 1", "bump()", "print(n)"],
        (0, 1, 2),
    ),
    ("function mutating a global", ["log = []", "def f():\n    log.append(1)", "f()"], (0, 1)),
    ("del counts as a change", ["a = 1", "b = 2", "del b", "print(a)"], (0,)),
    ("del of a used name kept", ["a = 1", "del a", "a = 2 if 0 else 3", "print(a)"], (2,)),
    ("comprehension variable is local", ["i = 9", "x = 1", "[i for i in range(x)]"], (1,)),
    ("for loop target defines", ["for i in range(3):\n    pass", "j = 1", "print(i)"], (0,)),
    ("sys.path change always kept", ["import sys", "sys.path.append('lib')", "y = 1", "2"], (0, 1)),
    ("os.chdir kept", ["import os", "os.chdir('/tmp')", "open('f')"], (0, 1)),
    ("safe magic kept as environment", ["%matplotlib inline", "a = 1", "b = 2", "a"], (0, 1)),
    ("class bases and methods", ["base = object", "class A(base):\n    pass", "A()"], (0, 1)),
    ("with-as binds", ["with open('f') as fh:\n    pass", "x = 1", "fh.closed"], (0,)),
    ("walrus binds", ["(n := 10)", "m = 1", "print(n)"], (0,)),
    (
        "earlier global draws kept",
        ["import random", "a = random.random()", "b = 2", "print(random.random())"],
        (0, 1),
    ),
    (
        "draws not needed without a draw",
        ["import random", "a = random.random()", "print(random.__name__)"],
        (0,),
    ),
    (
        "drawing helper counts",
        [
            "import numpy as np",
            "def noise():\n    return np.random.rand()",
            "x = noise()",
            "np.random.rand()",
        ],
        (0, 1, 2),
    ),
]


@pytest.mark.parametrize(("name", "sources", "kept"), SLICES, ids=[s[0] for s in SLICES])
def test_slice_keeps_exactly_the_cells_the_target_needs(
    name: str, sources: list[str], kept: tuple[int, ...]
) -> None:
    # Given a notebook whose last cell is the target
    # When the run is planned
    sure, prefix, reason = _plan(*sources)
    # Then the analysis is sure and keeps just the cells the target depends on
    assert sure, reason
    assert prefix == kept


# (name, cells (the last one is the target), words the reason contains)
UNSURE = [
    ("exec", ["exec('a = 1')", "print(a)"], "exec"),
    ("eval", ["a = eval('1')", "print(a)"], "eval"),
    ("globals()", ["globals()['a'] = 1", "print(a)"], "globals"),
    ("locals() in a function", ["def f():\n    return locals()", "f()"], "locals"),
    ("vars() without argument", ["v = vars()", "print(1)"], "vars"),
    ("star import", ["from math import *", "print(pi)"], "star import"),
    ("syntax error", ["a = = 1", "print(1)"], "parse"),
    ("line magic", ["%run other.py", "print(x)"], "%run"),
    ("shell escape", ["!pip list", "print(1)"], "!"),
    ("assigned magic", ["files = !ls", "print(files)"], "magic"),
    ("cell magic", ["%%bash\necho hi", "print(1)"], "%%bash"),
    ("IPython history", ["1 + 1", "print(_)"], "history"),
    ("Out history", ["1 + 1", "print(Out[1])"], "history"),
    ("get_ipython", ["get_ipython().run_line_magic('time', 'x=1')", "x"], "get_ipython"),
    ("unsure target", ["a = 1", "exec('print(a)')"], "exec"),
    ("unsure downstream", ["a = 1", "b = a", "eval('b')"], "eval"),
]


@pytest.mark.parametrize(("name", "sources", "why"), UNSURE, ids=[s[0] for s in UNSURE])
def test_unsure_code_falls_back_to_the_full_prefix(name: str, sources: list[str], why: str) -> None:
    # Given code the analysis cannot see through (in the prefix, the target or later)
    target = 1 if name == "unsure downstream" else None
    # When the run is planned
    sure, prefix, reason = _plan(*sources, target=target)
    # Then it replays every earlier cell and says why
    assert not sure
    assert prefix == tuple(range(len(sources) - 1 if target is None else target))
    assert why in reason


def test_downstream_cells_add_their_inputs() -> None:
    # Given a target that needs `w` and a later evaluation cell that needs `X_test`
    cells = ["w0 = 1", "X_test = load()", "unused = 3", "w = w0 * 2", "print(score(w, X_test))"]
    # When the run of cell 3 (and the cell after it) is planned
    sure, prefix, _ = _plan(*cells, target=3)
    # Then the prefix keeps both inputs' cells and drops the unused one
    assert sure
    assert prefix == (0, 1)


def test_names_read_by_metric_expressions_keep_their_cells() -> None:
    # Given a metric bound to `acc`, which only an earlier cell defines, and a target that
    # does not read it
    cells = [
        Cell(id="a", source="acc = 0.9"),
        Cell(id="b", source="x = 1"),
        Cell(id="t", source="y = 2"),
    ]
    # When the run is planned with the binding's expression read after the last cell
    plan = plan_run(cells, 2, expression_names(["float(acc)"]))
    # Then the cell defining `acc` is replayed and the unrelated one is not
    assert plan.sure
    assert plan.prefix == (0,)
    assert "acc" in plan.inputs


def test_inputs_changed_by_the_run_are_reported() -> None:
    # Given a target that appends to a list made earlier, and reads a number it leaves alone
    cells = [Cell(id="a", source="xs = []\nn = 3"), Cell(id="t", source="xs.append(n)")]
    # When planned
    plan = plan_run(cells, 1)
    # Then both are inputs, and only the list counts as changed by the run
    assert plan.inputs == ("n", "xs")
    assert plan.changed_inputs == ("xs",)


def test_functions_are_rebuilt_from_their_statement_with_their_globals() -> None:
    # Given a helper defined in a slow cell, reading a global defined elsewhere
    cells = [
        Cell(id="k", source="k = 2"),
        Cell(id="slow", source="import time\ntime.sleep(5)\ndef f(x):\n    return x * k"),
        Cell(id="t", source="print(f(3))"),
    ]
    plan = plan_run(cells, 2)
    # When the names to copy are worked out
    wanted = statement_inputs(plan, plan.inputs)
    statements = definition_statements(plan, wanted)
    # Then the function comes from its def statement alone and its global is copied
    assert statements == {"f": "def f(x):\n    return x * k"}
    assert wanted - statements.keys() == {"k"}


def test_module_setters_mark_the_kernel_as_not_reusable() -> None:
    # Given a target that changes pandas options (state that would outlive the run)
    cells = [
        Cell(id="a", source="import pandas as pd"),
        Cell(id="t", source="pd.set_option('display.width', 50)"),
    ]
    # When planned, Then a kernel that ran it must not serve another run
    assert not plan_run(cells, 1).module_clean
    # And seeding alone does not count: every run reseeds
    seeded = [cells[0], Cell(id="t", source="import numpy as np\nnp.random.seed(1)")]
    assert plan_run(seeded, 1).module_clean


def test_capture_magic_binds_its_variable() -> None:
    # Given a %%capture cell, When analysed, Then the captured name is defined
    facts = analyse_cell("%%capture out\nprint('hi')")
    assert facts.unsure is None
    assert "out" in facts.binds
