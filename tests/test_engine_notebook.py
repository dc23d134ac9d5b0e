"""Reading notebooks, confining paths, finding cells and building a run's cell list."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_research_agent.core.errors import CellError, InvalidInput, NotebookError
from jupyter_research_agent.core.models import Cell
from jupyter_research_agent.core.notebook import (
    cells_for_run,
    find_cell,
    notebook_from_cells,
    read_notebook,
    resolve_notebook_path,
    to_nbformat,
)


def write_notebook(path: Path, cells: list[dict[str, Any]], **extra: Any) -> Path:
    document: dict[str, Any] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }
    document.update(extra)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def code(cell_id: str | None, source: str, outputs: list[dict[str, Any]] | None = None) -> dict:
    cell: dict[str, Any] = {
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "outputs": outputs or [],
        "execution_count": 1 if outputs else None,
    }
    if cell_id is not None:
        cell["id"] = cell_id
    return cell


def markdown(cell_id: str | None, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "markdown", "source": source, "metadata": {}}
    if cell_id is not None:
        cell["id"] = cell_id
    return cell


STDOUT = {"output_type": "stream", "name": "stdout", "text": "acc: 0.9\n"}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "sample.ipynb",
        [
            markdown("intro", "# Title"),
            code("load", "import math\nx = 1"),
            code("train", "lr = 0.5\nprint('acc:', 0.9)", [STDOUT]),
            markdown("notes", "Some notes"),
            code("report", "print('done')"),
        ],
    )


# ---------------------------------------------------------------- reading


def test_read_notebook_gives_cells_ids_sources_and_outputs(sample: Path) -> None:
    # Given a v4.5 notebook with markdown and code cells
    # When it is read with a display path
    nb = read_notebook(sample, "work/sample.ipynb")

    # Then the cells keep their ids, types, sources and outputs, and the kernel is known
    assert nb.path == "work/sample.ipynb"
    assert nb.kernel_name == "python3"
    assert nb.language == "python"
    assert [c.id for c in nb.cells] == ["intro", "load", "train", "notes", "report"]
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "markdown", "code"]
    assert nb.cells[2].source == "lr = 0.5\nprint('acc:', 0.9)"
    assert nb.cells[2].outputs == [STDOUT]
    assert nb.cells[2].execution_count == 1


def test_source_given_as_list_of_lines_is_joined(tmp_path: Path) -> None:
    # Given a cell whose source is stored as a list of lines (the usual on-disk form)
    path = write_notebook(tmp_path / "lines.ipynb", [code("a", ["x = 1\n", "y = 2"])])  # type: ignore[arg-type]

    # When it is read
    nb = read_notebook(path)

    # Then the source is one string
    assert nb.cells[0].source == "x = 1\ny = 2"


def test_kernel_name_comes_from_the_kernelspec(tmp_path: Path) -> None:
    # Given a notebook whose kernelspec names another kernel and language
    path = tmp_path / "r.ipynb"
    write_notebook(path, [code("a", "x <- 1")])
    raw = json.loads(path.read_text())
    raw["metadata"] = {"kernelspec": {"name": "ir", "language": "R"}}
    path.write_text(json.dumps(raw))

    # When it is read
    nb = read_notebook(path)

    # Then kernel and language follow the metadata
    assert (nb.kernel_name, nb.language) == ("ir", "R")


def test_missing_kernelspec_defaults_to_python3(tmp_path: Path) -> None:
    # Given a notebook without any metadata
    path = write_notebook(tmp_path / "bare.ipynb", [code("a", "x = 1")], metadata={})

    # When it is read
    nb = read_notebook(path)

    # Then the default kernel is python3
    assert (nb.kernel_name, nb.language) == ("python3", "python")


def test_missing_ids_get_stable_ids_on_every_read(tmp_path: Path) -> None:
    # Given an nbformat 4.4 notebook whose cells have no ids
    path = write_notebook(
        tmp_path / "old.ipynb",
        [markdown(None, "# T"), code(None, "x = 1"), code(None, "y = 2")],
        nbformat_minor=4,
    )

    # When it is read twice
    first = read_notebook(path)
    second = read_notebook(path)

    # Then every cell has an id, unique, and the same on both reads
    ids = [c.id for c in first.cells]
    assert ids == ["cell-0", "cell-1", "cell-2"]
    assert ids == [c.id for c in second.cells]


def test_duplicate_and_partial_ids_are_made_unique(tmp_path: Path) -> None:
    # Given a notebook with a duplicated id and a cell without id whose fallback is taken
    path = write_notebook(
        tmp_path / "dup.ipynb",
        [code("cell-2", "a = 1"), code("cell-2", "b = 2"), code(None, "c = 3")],
    )

    # When it is read
    nb = read_notebook(path)

    # Then ids are unique and the first holder of an id keeps it
    ids = [c.id for c in nb.cells]
    assert ids[0] == "cell-2"
    assert len(set(ids)) == 3


def test_nbformat_v3_notebook_is_upgraded_with_stable_ids(tmp_path: Path) -> None:
    # Given an nbformat v3 notebook (worksheets, "input" instead of "source")
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "code", "input": "x = 1", "outputs": [], "language": "python"}
                ]
            }
        ],
    }
    path = tmp_path / "v3.ipynb"
    path.write_text(json.dumps(v3))

    # When it is read
    nb = read_notebook(path)

    # Then it is a v4 notebook with the code and a stable id
    assert [(c.id, c.source) for c in nb.cells] == [("cell-0", "x = 1")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "not a notebook"),
        ('{"cells": []}', "not a notebook"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "no list of cells"),
        ('{"nbformat": 2, "cells": []}', "unsupported notebook format version 2"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1]}', "cell 0"),
    ],
)
def test_bad_files_raise_a_clear_notebook_error(tmp_path: Path, content: str, message: str) -> None:
    # Given a file that is not a readable notebook
    path = tmp_path / "bad.ipynb"
    path.write_text(content)

    # When it is read, Then a NotebookError names the problem and the path shown
    with pytest.raises(NotebookError, match=message) as caught:
        read_notebook(path, "shown/bad.ipynb")
    assert "shown/bad.ipynb" in str(caught.value)


def test_missing_file_raises_notebook_error(tmp_path: Path) -> None:
    # Given a path to nothing, When it is read, Then the error says "not found"
    with pytest.raises(NotebookError, match=r"notebook not found: nope\.ipynb"):
        read_notebook(tmp_path / "nope.ipynb", "nope.ipynb")


def test_directory_raises_notebook_error(tmp_path: Path) -> None:
    # Given a directory named like a notebook, When it is read, Then a NotebookError follows
    (tmp_path / "dir.ipynb").mkdir()
    with pytest.raises(NotebookError, match="directory"):
        read_notebook(tmp_path / "dir.ipynb")


def test_notebook_errors_are_invalid_input() -> None:
    # Given the error tree, Then notebook and cell errors map to bad input (400 / exit 2)
    assert issubclass(NotebookError, InvalidInput)
    assert issubclass(CellError, InvalidInput)


# ---------------------------------------------------------------- paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "a"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "x.ipynb").write_text("{}")
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "x.ipynb").write_text("{}")
    (tmp_path / "outside.ipynb").write_text("{}")
    return base


def test_relative_path_inside_root_resolves(root: Path) -> None:
    # Given a notebook under the root, When resolved, Then the real path comes back
    assert resolve_notebook_path(root, "sub/x.ipynb") == (root / "sub" / "x.ipynb").resolve()


def test_dotdot_that_stays_inside_is_allowed(root: Path) -> None:
    # Given a path that leaves and re-enters a subfolder, Then it resolves inside the root
    assert resolve_notebook_path(root, "sub/../sub/x.ipynb") == (root / "sub/x.ipynb").resolve()


def test_absolute_path_inside_root_is_allowed(root: Path) -> None:
    # Given an absolute path within the root, Then it is accepted
    inside = str(root / "sub" / "x.ipynb")
    assert resolve_notebook_path(root, inside) == Path(inside).resolve()


@pytest.mark.parametrize(
    ("notebook_path", "message"),
    [
        ("../outside.ipynb", "outside the root"),
        ("sub/../../outside.ipynb", "outside the root"),
        ("/etc/passwd", "not a notebook"),
        ("/etc/passwd.ipynb", "outside the root"),
        ("../ab/x.ipynb", "outside the root"),
        ("notes.txt", "not a notebook"),
        ("", "empty"),
        ("x\x00.ipynb", "NUL"),
    ],
)
def test_paths_escaping_the_root_are_refused(root: Path, notebook_path: str, message: str) -> None:
    # Given a path that leaves the root or is not a notebook
    # When it is resolved, Then a NotebookError refuses it
    with pytest.raises(NotebookError, match=message):
        resolve_notebook_path(root, notebook_path)


def test_sibling_directory_with_common_prefix_is_refused(root: Path, tmp_path: Path) -> None:
    # Given root /tmp/.../a and a notebook in the sibling /tmp/.../ab (a string-prefix match)
    sibling = str(tmp_path / "ab" / "x.ipynb")
    assert sibling.startswith(str(root))

    # When the absolute sibling path is resolved, Then it is refused
    with pytest.raises(NotebookError, match="outside the root"):
        resolve_notebook_path(root, sibling)


def test_symlink_pointing_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    # Given a link inside the root to a notebook outside it
    os.symlink(tmp_path / "outside.ipynb", root / "link.ipynb")
    os.symlink(tmp_path / "ab", root / "linkdir")

    # When either is resolved, Then it is refused
    with pytest.raises(NotebookError, match="outside the root"):
        resolve_notebook_path(root, "link.ipynb")
    with pytest.raises(NotebookError, match="outside the root"):
        resolve_notebook_path(root, "linkdir/x.ipynb")


def test_symlink_staying_inside_the_root_is_allowed(root: Path) -> None:
    # Given a link inside the root to another notebook inside it
    os.symlink(root / "sub" / "x.ipynb", root / "alias.ipynb")

    # When resolved, Then the real target comes back
    assert resolve_notebook_path(root, "alias.ipynb") == (root / "sub" / "x.ipynb").resolve()


# ---------------------------------------------------------------- cells


def test_find_cell_by_id_and_by_position(sample: Path) -> None:
    nb = read_notebook(sample)

    # When a cell is named by id, or by @N (counting every cell from 0)
    by_id = find_cell(nb, "train")
    by_position = find_cell(nb, "@2")

    # Then both give the position and the cell
    assert by_id[0] == 2
    assert by_id[1].id == "train"
    assert by_position == by_id


def test_unknown_cell_lists_valid_code_cell_ids(sample: Path) -> None:
    nb = read_notebook(sample)

    # When an unknown id is asked for, Then the error lists code cell ids to choose from
    with pytest.raises(CellError, match="unknown cell 'nope'") as caught:
        find_cell(nb, "nope")
    assert "load, train, report" in str(caught.value)
    assert "intro" not in str(caught.value)


def test_position_past_the_end_is_a_cell_error(sample: Path) -> None:
    nb = read_notebook(sample)
    with pytest.raises(CellError, match="has 5 cells"):
        find_cell(nb, "@9")


@pytest.mark.parametrize("ref", ["intro", "@0", "notes"])
def test_markdown_target_is_refused(sample: Path, ref: str) -> None:
    nb = read_notebook(sample)

    # When the target is a markdown cell, Then a CellError says a code cell is needed
    with pytest.raises(CellError, match="markdown cell; variations need a code cell"):
        find_cell(nb, ref)


def test_cells_for_run_replaces_the_target_and_clears_outputs(sample: Path) -> None:
    nb = read_notebook(sample)

    # When the run's cells are built with new code for the target
    cells = cells_for_run(nb, "train", "lr = 0.05\nprint('acc:', 0.9)")

    # Then they are the code cells in order, the target changed but keeping its id
    assert [c.id for c in cells] == ["load", "train", "report"]
    assert cells[1].source == "lr = 0.05\nprint('acc:', 0.9)"
    assert all(c.outputs == [] and c.execution_count is None for c in cells)
    # And the notebook itself is untouched
    assert nb.cells[2].source == "lr = 0.5\nprint('acc:', 0.9)"
    assert nb.cells[2].outputs == [STDOUT]


def test_cells_for_run_without_code_is_the_baseline(sample: Path) -> None:
    nb = read_notebook(sample)

    # When no code is given, Then the target keeps its source (the baseline run)
    cells = cells_for_run(nb, "train", None)
    assert cells[1].source == nb.cells[2].source


def test_cells_for_run_refuses_unknown_target(sample: Path) -> None:
    with pytest.raises(CellError):
        cells_for_run(read_notebook(sample), "missing", "x = 1")


def test_notebook_from_cells_copies_and_fixes_ids() -> None:
    # Given cells sent by a frontend, two sharing an id and one with an invalid id
    cells = [
        Cell(id="a", source="x = 1"),
        Cell(id="a", source="y = 2"),
        Cell(id="bad id!", source="z = 3"),
    ]

    # When a notebook is made from them
    nb = notebook_from_cells("n.ipynb", cells, "python3")

    # Then ids are valid and unique, and the input cells were not modified
    ids = [c.id for c in nb.cells]
    assert ids[0] == "a"
    assert len(set(ids)) == 3
    assert cells[1].id == "a"
    assert nb.kernel_name == "python3"


def test_to_nbformat_round_trips_through_nbformat(sample: Path, tmp_path: Path) -> None:
    nb = read_notebook(sample)

    # When converted to nbformat and written, then read again
    node = to_nbformat(nb)
    nbformat.validate(node)
    out = tmp_path / "copy.ipynb"
    nbformat.write(node, str(out))
    again = read_notebook(out)

    # Then cells, ids, sources and outputs are the same
    assert [(c.id, c.cell_type, c.source) for c in again.cells] == [
        (c.id, c.cell_type, c.source) for c in nb.cells
    ]
    assert again.cells[2].outputs == [STDOUT]
