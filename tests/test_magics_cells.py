"""Resolving CELL references against the saved notebook, and the `%%research` cell body."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.magics.cells import (
    CellRefError,
    cells_with_body,
    magic_cell_index,
    resolve,
)


def cell(cell_id: str, source: str, cell_type: str = "code") -> dict[str, Any]:
    return {"id": cell_id, "cell_type": cell_type, "source": source, "metadata": {}}


CELLS = [
    cell("imports", "import math"),
    cell("notes", "# Training", "markdown"),
    cell("train", "lr = 0.1\nprint(lr)"),
    cell("ext", "%load_ext jupyter_research_agent"),
    cell("magic", "%research propose --offline"),
    cell("after", "print('done')"),
]


@pytest.mark.parametrize(
    ("ref", "magic_id", "expected"),
    [
        (None, "magic", "ext"),  # default: the code cell just above the magic cell
        ("-1", "magic", "ext"),
        ("-2", "magic", "train"),
        ("-3", "magic", "imports"),  # markdown cells are skipped when counting back
        ("0", None, "imports"),
        ("2", None, "train"),
        ("@5", None, "after"),
        ("train", None, "train"),
        ("-1", "train", "imports"),
        ("-1", None, "ext"),  # no cellId: the magic cell is found by its source
    ],
)
def test_references_resolve_to_cell_ids(
    ref: str | None, magic_id: str | None, expected: str
) -> None:
    # Given a saved notebook and the magic's own cell id (or none)
    # When a CELL reference is resolved
    # Then it names the expected code cell
    found = resolve(CELLS, ref, magic_cell_id=magic_id, magic_line="%research propose --offline")
    assert found == expected


@pytest.mark.parametrize(
    ("ref", "magic_id", "line", "message"),
    [
        ("-0", "magic", "", "use -1"),
        ("-4", "magic", "", "only 3 code cells above"),
        ("1", None, "", "cell 1 is a markdown cell"),
        ("notes", None, "", "cell notes is a markdown cell"),
        ("9", None, "", "the notebook has 6 cells"),
        ("nope", None, "", "no cell with id 'nope'"),
        ("-1", "unsaved", "%research never-saved", "save it, or name the cell"),
    ],
)
def test_bad_references_say_why(ref: str, magic_id: str | None, line: str, message: str) -> None:
    # Given a reference that points at no usable code cell / When resolved
    # Then a one-line error says why
    with pytest.raises(CellRefError, match=message):
        resolve(CELLS, ref, magic_cell_id=magic_id, magic_line=line)


def test_cells_without_ids_are_refused_with_a_hint() -> None:
    # Given an old notebook whose cells have no ids / When a position is resolved
    old = [{"cell_type": "code", "source": "x = 1"}]
    # Then the researcher is told to save it in a recent frontend
    with pytest.raises(CellRefError, match="has no id"):
        resolve(old, "0", magic_cell_id=None, magic_line="")


def test_magic_cell_is_found_by_id_before_source() -> None:
    # Given two cells with the same magic line, and the executing cell's id
    cells = [cell("a", "%research propose"), cell("b", "%research propose")]
    # When the magic's cell is looked up / Then the id wins; without it, the last match wins
    assert magic_cell_index(cells, "a", "%research propose") == 0
    assert magic_cell_index(cells, None, "%research propose") == 1


def test_cell_body_replaces_the_saved_magic_cell() -> None:
    # Given the `%%research propose` cell saved in the notebook
    cells = [cell("setup", "x = 1"), cell("magic", "%%research propose\nlr = 0.1"), cell("z", "")]
    # When the body is applied
    target, unsaved = cells_with_body(cells, "magic", 1, "lr = 0.2\n")
    # Then the magic cell is the target and holds only the body; the others are unchanged
    assert target == "magic"
    assert [c.id for c in unsaved] == ["setup", "magic", "z"]
    assert unsaved[1].source == "lr = 0.2\n"
    assert unsaved[0].source == "x = 1"


def test_cell_body_of_an_unsaved_cell_is_appended() -> None:
    # Given a magic cell not yet saved (its id is unknown to the file)
    cells = [cell("setup", "x = 1")]
    # When the body is applied / Then it becomes a new last cell, after everything saved
    target, unsaved = cells_with_body(cells, "new-cell", None, "y = x + 1")
    assert target == "new-cell"
    assert [(c.id, c.source) for c in unsaved] == [("setup", "x = 1"), ("new-cell", "y = x + 1")]
