"""Read notebooks, find cells and build the cell list a run executes.

Everything here is pure: no kernels, no server. Notebooks are read with nbformat and turned
into the engine's own :class:`NotebookDoc`, whose cells always carry stable, unique ids, so a
cell named on the command line or by the panel can be found again on the next read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import nbformat.v4.rwbase

from .errors import CellError, NotebookError
from .models import Cell, NotebookDoc

# nbformat's functions carry no annotations; going through Any keeps strict mypy quiet
# without scattering ignores.
_nbf: Any = nbformat

_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INDEX_REF = re.compile(r"^@(\d+)$")
# A saved output's text is kept up to this many characters, head and tail around a marker:
# prompts, metrics and triage use far less, and every exploration keeps (and records) its
# notebook, so a 50 MB log must not be held once per exploration.
MAX_SAVED_OUTPUT_CHARS = 200_000


# ---------------------------------------------------------------- paths


def resolve_notebook_path(root: Path, notebook_path: str) -> Path:
    """The real path of ``notebook_path`` (relative to ``root``), confined to ``root``.

    Symlinks are resolved before the check, so a link inside the root that points outside
    is refused like ``../x.ipynb`` is. The comparison is by path components, so a root of
    ``/a/b`` does not admit ``/a/bc/x.ipynb``.
    """
    if not notebook_path or not notebook_path.strip():
        raise NotebookError("notebook path is empty")
    if "\x00" in notebook_path:
        raise NotebookError("notebook path contains a NUL character")
    if not notebook_path.lower().endswith(".ipynb"):
        raise NotebookError(f"not a notebook (expected a .ipynb file): {notebook_path}")
    real_root = root.resolve()
    candidate = Path(notebook_path)
    if not candidate.is_absolute():
        candidate = real_root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as err:  # symlink loops, unreadable parents
        raise NotebookError(f"cannot resolve notebook path {notebook_path}: {err}") from err
    if not resolved.is_relative_to(real_root):
        raise NotebookError(f"notebook path is outside the root directory: {notebook_path}")
    return resolved


# ---------------------------------------------------------------- reading


def read_notebook(path: Path, display_path: str | None = None) -> NotebookDoc:
    """Read a notebook file into a :class:`NotebookDoc`.

    ``display_path`` is the path the researcher knows (relative to the server root); it
    becomes ``NotebookDoc.path``. Raises :class:`NotebookError` with a plain message when
    the file is missing, is not JSON or is not a notebook.
    """
    shown = display_path or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise NotebookError(f"notebook not found: {shown}") from err
    except IsADirectoryError as err:
        raise NotebookError(f"notebook path is a directory: {shown}") from err
    except UnicodeDecodeError as err:
        raise NotebookError(f"notebook is not UTF-8 text: {shown}") from err
    except OSError as err:
        raise NotebookError(f"cannot read notebook {shown}: {err.strerror or err}") from err
    return parse_notebook(text, shown)


def parse_notebook(text: str, display_path: str) -> NotebookDoc:
    """Parse notebook JSON text (see :func:`read_notebook`)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(
            f"notebook is not valid JSON: {display_path} (line {err.lineno}: {err.msg})"
        ) from err
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise NotebookError(f"not a notebook (no nbformat version): {display_path}")
    major = raw["nbformat"]
    if major not in (3, 4):
        raise NotebookError(f"unsupported notebook format version {major}: {display_path}")
    if major == 4 and not isinstance(raw.get("cells"), list):
        raise NotebookError(f"not a notebook (no list of cells): {display_path}")
    for index, cell in enumerate(raw.get("cells") or []):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(f"not a valid notebook: cell {index} has no type: {display_path}")
    original_ids = _original_ids(raw)
    if major == 4:
        # Mark the notebook as 4.5 so nbformat's upgrade does not invent random ids:
        # missing ids get stable ones below instead.
        raw["nbformat_minor"] = max(int(raw.get("nbformat_minor") or 0), 5)
    try:
        node = _nbf.convert(_nbf.from_dict(raw), 4)
        # Files store multi-line text as lists of lines; the engine wants plain strings.
        _nbf.v4.rwbase.rejoin_lines(node)
    except Exception as err:  # nbformat raises several unrelated types on malformed input
        raise NotebookError(f"not a valid notebook: {display_path} ({err})") from err

    metadata = node.get("metadata") or {}
    kernelspec = metadata.get("kernelspec") or {}
    language_info = metadata.get("language_info") or {}
    kernel_name = str(kernelspec.get("name") or "python3")
    language = str(language_info.get("name") or kernelspec.get("language") or "python")

    cells: list[Cell] = []
    for index, cell in enumerate(node.get("cells") or []):
        kept_id = original_ids[index] if index < len(original_ids) else None
        cells.append(
            Cell(
                id=kept_id or "",
                cell_type=cell["cell_type"],
                source=_join(cell.get("source", "")),
                outputs=[_bounded(_plain(o)) for o in cell.get("outputs") or []],
                execution_count=cell.get("execution_count"),
                metadata=_plain(cell.get("metadata") or {}),
            )
        )
    _assign_missing_ids(cells)
    return NotebookDoc(path=display_path, kernel_name=kernel_name, language=language, cells=cells)


def notebook_from_cells(
    path: str, cells: list[Cell], kernel_name: str | None = None
) -> NotebookDoc:
    """A notebook made from cells the frontend sent (unsaved edits count).

    Cells are copied; missing or duplicate ids get stable replacements.
    """
    copies = [cell.model_copy(deep=True) for cell in cells]
    seen: set[str] = set()
    for cell in copies:
        if cell.id in seen or not _ID_PATTERN.match(cell.id):
            cell.id = ""
        else:
            seen.add(cell.id)
    _assign_missing_ids(copies)
    return NotebookDoc(path=path, kernel_name=kernel_name or "python3", cells=copies)


def _original_ids(raw: dict[str, Any]) -> list[str | None]:
    """The valid, unique ids the file itself holds, by cell position (None when absent)."""
    if raw.get("nbformat") == 4:
        cells = raw.get("cells") or []
    else:  # v3: cells live in worksheets and never have ids
        cells = [c for ws in raw.get("worksheets") or [] for c in ws.get("cells") or []]
    ids: list[str | None] = []
    seen: set[str] = set()
    for cell in cells:
        cid = cell.get("id") if isinstance(cell, dict) else None
        if isinstance(cid, str) and _ID_PATTERN.match(cid) and cid not in seen:
            seen.add(cid)
            ids.append(cid)
        else:
            ids.append(None)
    return ids


def _assign_missing_ids(cells: list[Cell]) -> None:
    """Give every cell without an id the stable id ``cell-<index>`` (unique in the notebook)."""
    taken = {cell.id for cell in cells if cell.id}
    for index, cell in enumerate(cells):
        if cell.id:
            continue
        candidate = f"cell-{index}"
        suffix = 1
        while candidate in taken:
            candidate = f"cell-{index}-{suffix}"
            suffix += 1
        cell.id = candidate
        taken.add(candidate)


def _join(source: Any) -> str:
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    return str(source or "")


def _plain(value: Any) -> Any:
    """NotebookNode trees as plain dicts and lists (pydantic and JSON friendly)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _clip_text(text: str) -> str:
    if len(text) <= MAX_SAVED_OUTPUT_CHARS:
        return text
    half = MAX_SAVED_OUTPUT_CHARS // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n… [{omitted:,} characters omitted] …\n{text[-half:]}"


def _bounded(output: Any) -> Any:
    """A saved output with its stream text and text data clipped (images and JSON kept)."""
    if not isinstance(output, dict):
        return output
    if isinstance(output.get("text"), str):
        output["text"] = _clip_text(output["text"])
    data = output.get("data")
    if isinstance(data, dict):
        for mime, value in data.items():
            if mime.startswith("text/") and isinstance(value, str):
                data[mime] = _clip_text(value)
    return output


# ---------------------------------------------------------------- cells


def find_cell(nb: NotebookDoc, cell_ref: str) -> tuple[int, Cell]:
    """The position and cell named by ``cell_ref``: a cell id, or ``@N`` for the Nth cell.

    ``N`` counts every cell from 0, markdown included, as the notebook shows them. The
    target must be a code cell: it is the one a variation changes.
    """
    ref = cell_ref.strip()
    for index, cell in enumerate(nb.cells):
        if cell.id == ref:
            return index, _require_code(cell, ref)
    match = _INDEX_REF.match(ref)
    if match:
        index = int(match.group(1))
        if index >= len(nb.cells):
            raise CellError(
                f"cell {ref} does not exist: the notebook {nb.path} has {len(nb.cells)} cells"
            )
        return index, _require_code(nb.cells[index], ref)
    code_ids = [cell.id for cell in nb.cells if cell.cell_type == "code"]
    if code_ids:
        shown = ", ".join(code_ids[:5]) + (", ..." if len(code_ids) > 5 else "")
        hint = f"code cells are: {shown} (or use @N for the Nth cell)"
    else:
        hint = "the notebook has no code cells"
    raise CellError(f"unknown cell '{ref}' in {nb.path}: {hint}")


def _require_code(cell: Cell, ref: str) -> Cell:
    if cell.cell_type != "code":
        raise CellError(f"cell '{ref}' is a {cell.cell_type} cell; variations need a code cell")
    return cell


RESEARCH_MAGICS = ("%research", "%%research")


def cells_for_run(nb: NotebookDoc, cell_id: str, code: str | None) -> list[Cell]:
    """The code cells a run executes: those before the target, the target, those after.

    The target runs with ``code`` when given (the variation); it keeps the target's id so
    outputs map back to it. All cells are copies with outputs and counts cleared. Cells that
    call this product's magics (``%research``, ``%%research``) are left out: a side run must
    not start explorations of its own.
    """
    target_index, _ = find_cell(nb, cell_id)
    cells: list[Cell] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index != target_index and cell.source.lstrip().startswith(RESEARCH_MAGICS):
            continue
        copy = cell.model_copy(deep=True)
        copy.outputs = []
        copy.execution_count = None
        if index == target_index and code is not None:
            copy.source = code
        cells.append(copy)
    return cells


# ---------------------------------------------------------------- writing


def to_nbformat(nb: NotebookDoc) -> nbformat.NotebookNode:
    """The notebook as an nbformat v4 node (for export and for writing to disk)."""
    node = _nbf.v4.new_notebook()
    node.metadata["kernelspec"] = {
        "name": nb.kernel_name,
        "display_name": nb.kernel_name,
        "language": nb.language,
    }
    node.metadata["language_info"] = {"name": nb.language}
    for cell in nb.cells:
        if cell.cell_type == "code":
            new = _nbf.v4.new_code_cell(
                source=cell.source,
                id=cell.id,
                execution_count=cell.execution_count,
                outputs=[_nbf.from_dict(o) for o in cell.outputs],
            )
        elif cell.cell_type == "markdown":
            new = _nbf.v4.new_markdown_cell(source=cell.source, id=cell.id)
        else:
            new = _nbf.v4.new_raw_cell(source=cell.source, id=cell.id)
        new.metadata.update(_nbf.from_dict(cell.metadata))
        node.cells.append(new)
    result: nbformat.NotebookNode = node
    return result
