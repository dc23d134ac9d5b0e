"""What the model sees: the target cell and its neighbourhood, condensed to a token budget.

A researcher reading a cell looks at it, at the cells it depends on and those that use it, and
at their outputs in summary. The context is built the same way, nearest cells first, each
piece clipped (head and tail with a marker) so that any notebook, however large, fits the
budget (tokens are counted as characters / 4). Everything is redacted and wrapped in
``<notebook-data>`` so the model treats it as data.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import CellError
from ..models import Cell, ProposeRequest
from ..redact import redact
from ..triage import condense_error, fold_lines, strip_ansi
from .names import related_cells

CHARS_PER_TOKEN = 4
MIN_BLOCK_CHARS = 200
_TAG_RE = re.compile(r"<(/?)(notebook-data|cell|outputs)\b", re.IGNORECASE)
_TABLE_FOOTER_RE = re.compile(r"\[(\d[\d,]*) rows x (\d[\d,]*) columns\]")


def clip(text: str, limit: int, what: str = "characters") -> str:
    """Head and tail of ``text`` within ``limit`` characters, cut at line ends if possible."""
    if len(text) <= limit:
        return text
    marker_room = 48 + len(what)
    if limit < marker_room * 2:
        return text[: max(0, limit - 1)] + "…"
    half = (limit - marker_room) // 2
    head = text[:half]
    newline = head.rfind("\n")
    if newline > half // 2:
        head = head[: newline + 1]
    tail = text[len(text) - half :]
    newline = tail.find("\n")
    if 0 <= newline < half // 2:
        tail = tail[newline + 1 :]
    omitted = len(text) - len(head) - len(tail)
    return f"{head}\n… [{omitted:,} {what} omitted] …\n{tail}"


def neutralise(text: str) -> str:
    """Notebook text cannot close or open our delimiters."""
    return _TAG_RE.sub(lambda m: "‹" + m.group(1) + m.group(2), text)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _table_summary(plain: str, limit: int) -> str:
    lines = plain.splitlines()
    footer = _TABLE_FOOTER_RE.search(plain[-200:])
    shape = f"{footer.group(1)} rows x {footer.group(2)} columns" if footer else ""
    if not shape:
        shape = f"{max(0, len(lines) - 1)} rows shown"
    rows = [line for line in lines if not _TABLE_FOOTER_RE.search(line)]
    preview = rows[:4] + (["…"] if len(rows) > 6 else []) + (rows[-1:] if len(rows) > 4 else [])
    return clip(f"[table, {shape}]\n" + "\n".join(preview), limit)


def _data_summary(data: dict[str, Any], limit: int) -> str:
    plain = _text(data.get("text/plain"))
    if "application/vnd.jupyter.widget-view+json" in data:
        return "[interactive widget]"
    html = _text(data.get("text/html"))[:5000]
    if "<table" in html and plain:
        return _table_summary(plain, limit)
    images = [k for k in data if k.startswith("image/")]
    if images:
        size = len(_text(data[images[0]]))
        return f"[image {images[0]}, {size * 3 // 4 // 1024} KB]"
    if plain:
        if _TABLE_FOOTER_RE.search(plain[-200:]):
            return _table_summary(plain, limit)
        return clip(plain, limit)
    if "application/json" in data:
        return clip(json.dumps(data["application/json"])[: limit * 2], limit)
    kinds = ", ".join(sorted(data)) or "empty"
    return f"[output of type {kinds}]"


def _found_metrics(outputs: list[dict[str, Any]]) -> dict[str, float]:
    try:
        from ..metrics import extract_metrics
    except ImportError:
        return {}
    try:
        return extract_metrics(outputs)
    except Exception:  # a hint only; never fail the context on it
        return {}


def condense_outputs(outputs: list[dict[str, Any]], limit: int) -> str:
    """Outputs of one cell in at most ``limit`` characters."""
    if not outputs or limit <= 0:
        return ""
    parts: list[str] = []
    clipped_for_metrics: list[dict[str, Any]] = []
    streams: dict[str, list[str]] = {}
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            name = str(output.get("name", "stdout"))
            text = _text(output.get("text"))
            # Clip huge streams before anything else touches them (50 MB outputs exist).
            streams.setdefault(name, []).append(clip(text, limit * 4))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") or {}
            parts.append(_data_summary(data, max(limit // 3, MIN_BLOCK_CHARS)))
            clipped_for_metrics.append(
                {
                    "output_type": kind,
                    "data": {"text/plain": clip(_text(data.get("text/plain")), 4000)},
                }
            )
    for name, chunks in streams.items():
        # Fold repeated lines (progress bars, warnings) before clipping to what is left.
        text = strip_ansi(clip("".join(chunks), limit * 4))
        text = "\n".join(fold_lines(text.splitlines())[0])
        parts.insert(0, f"[{name}]\n" + clip(text, max(limit // 2, MIN_BLOCK_CHARS)))
        clipped_for_metrics.insert(0, {"output_type": "stream", "name": name, "text": text})
    if any(o.get("output_type") == "error" for o in outputs):
        error = condense_error(outputs)
        parts.append("[error]\n" + clip(error.text, max(limit // 2, MIN_BLOCK_CHARS)))
    metrics = _found_metrics(clipped_for_metrics)
    if metrics:
        shown = ", ".join(f"{k}={v:g}" for k, v in list(metrics.items())[:20])
        parts.append(f"[metrics found] {shown}")
    return clip("\n".join(parts), limit)


def _cell_block(
    cell: Cell,
    index: int,
    role: str,
    source: str,
    src_limit: int,
    out_limit: int,
    secrets: list[str],
) -> str:
    body = neutralise(redact(clip(source, src_limit), secrets))
    outputs = neutralise(redact(condense_outputs(cell.outputs, out_limit), secrets))
    block = f'<cell index="{index}" id="{neutralise(cell.id)}" role="{role}">\n{body}\n'
    if outputs:
        block += f"<outputs>\n{outputs}\n</outputs>\n"
    return block + "</cell>\n"


def build_context(
    request: ProposeRequest, budget_tokens: int, secrets: list[str] | None = None
) -> str:
    """The notebook part of the prompt, at most ``budget_tokens`` * 4 characters."""
    secrets = secrets or []
    budget = max(budget_tokens * CHARS_PER_TOKEN, 1000)
    cells = request.notebook.cells
    target = next((i for i, c in enumerate(cells) if c.id == request.cell_id), None)
    if target is None:
        raise CellError(f"No cell {request.cell_id!r} in {request.notebook.path}.")
    opening = f'<notebook-data path="{neutralise(redact(request.notebook.path))}">\n'
    closing = "</notebook-data>"
    remaining = budget - len(opening) - len(closing) - 200  # room for the omission note
    source = request.base_code if request.base_code is not None else cells[target].source
    target_block = _cell_block(
        cells[target], target, "target", source, int(budget * 0.4), int(budget * 0.2), secrets
    )
    target_block = clip(target_block, remaining)
    remaining -= len(target_block)
    upstream, downstream = related_cells(cells, target)
    blocks: dict[int, str] = {target: target_block}
    # Interleave the nearest dependencies and dependents: both matter to a variation.
    order: list[tuple[int, str]] = []
    for k in range(max(len(upstream), len(downstream))):
        if k < len(upstream):
            order.append((upstream[k], "dependency"))
        if k < len(downstream):
            order.append((downstream[k], "uses the target"))
    omitted = 0
    for index, role in order:
        if remaining < MIN_BLOCK_CHARS * 2:
            omitted += 1
            continue
        share = min(remaining, int(budget * 0.15))
        block = _cell_block(
            cells[index],
            index,
            role,
            cells[index].source,
            int(share * 0.7),
            int(share * 0.3),
            secrets,
        )
        if len(block) > remaining:
            omitted += 1
            continue
        blocks[index] = block
        remaining -= len(block)
    note = ""
    if omitted:
        note = f"[{omitted} related cells omitted to fit the context budget]\n"
    others = sum(1 for c in cells if c.cell_type == "code") - len(blocks) - omitted
    if others > 0:
        note += f"[{others} unrelated code cells not shown]\n"
    inner = "".join(blocks[i] for i in sorted(blocks)) + note
    return opening + clip(inner, budget - len(opening) - len(closing)) + closing
