"""Map a CELL argument to a cell id of the saved notebook (see ``args`` for the syntax).

The kernel cannot see the frontend's unsaved edits. It finds the magic's own cell through the
``cellId`` JupyterLab puts in the execute request's metadata, or failing that, as the last code
cell whose source contains the magic line.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.models import Cell


class CellRefError(Exception):
    """The reference matches no usable cell; ``str(err)`` is one line."""


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def magic_cell_index(cells: list[dict[str, Any]], cell_id: str | None, line: str) -> int | None:
    if cell_id:
        for index, cell in enumerate(cells):
            if cell.get("id") == cell_id:
                return index
    needle = line.strip()
    if needle:
        for index in range(len(cells) - 1, -1, -1):
            cell = cells[index]
            if cell.get("cell_type") == "code" and needle in _source(cell):
                return index
    return None


def resolve(
    cells: list[dict[str, Any]],
    ref: str | None,
    *,
    magic_cell_id: str | None,
    magic_line: str,
) -> str:
    """The id of the code cell ``ref`` points at."""
    ref = (ref or "-1").strip()
    if re.fullmatch(r"-\d+", ref):
        steps = int(ref[1:])
        if steps == 0:
            raise CellRefError("CELL -0 is not a cell; use -1 for the code cell above")
        here = magic_cell_index(cells, magic_cell_id, magic_line)
        if here is None:
            raise CellRefError(
                "cannot find this magic's cell in the saved notebook: save it, or name the cell"
            )
        above = [i for i in range(here) if cells[i].get("cell_type") == "code"]
        if steps > len(above):
            raise CellRefError(f"there are only {len(above)} code cells above this one")
        return _id_of(cells[above[-steps]], above[-steps])
    match = re.fullmatch(r"@?(\d+)", ref)
    if match:
        index = int(match.group(1))
        if index >= len(cells):
            raise CellRefError(f"the notebook has {len(cells)} cells; positions start at 0")
        cell = cells[index]
        if cell.get("cell_type") != "code":
            raise CellRefError(f"cell {index} is a {cell.get('cell_type')} cell, not code")
        return _id_of(cell, index)
    for cell in cells:
        if cell.get("id") == ref:
            if cell.get("cell_type") != "code":
                raise CellRefError(f"cell {ref} is a {cell.get('cell_type')} cell, not code")
            return ref
    raise CellRefError(f"no cell with id {ref!r} in the saved notebook")


def _id_of(cell: dict[str, Any], index: int) -> str:
    cell_id = cell.get("id")
    if not cell_id:
        raise CellRefError(f"cell {index} has no id (nbformat < 4.5): save it in JupyterLab 4")
    return str(cell_id)


def cells_with_body(
    cells: list[dict[str, Any]], magic_cell_id: str | None, magic_index: int | None, body: str
) -> tuple[str, list[Cell]]:
    """The notebook's cells with the magic cell's source replaced by ``body``.

    Returns the target id and the cells to send as unsaved cells. An unsaved magic cell is
    appended at the end, so every saved cell runs before it.
    """
    converted = [
        Cell(
            id=str(cell.get("id") or f"cell-{index}"),
            cell_type=str(cell.get("cell_type", "code")),
            source=_source(cell),
            metadata=dict(cell.get("metadata") or {}),
        )
        for index, cell in enumerate(cells)
    ]
    if magic_index is not None:
        target = converted[magic_index]
        converted[magic_index] = target.model_copy(update={"source": body})
        return target.id, converted
    target_id = magic_cell_id or "research-magic-cell"
    converted.append(Cell(id=target_id, source=body))
    return target_id, converted
