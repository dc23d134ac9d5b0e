"""Output capture for one run: nbformat output dicts, a byte cap, and a live tail.

Memory stays bounded whatever a cell prints: retained output never exceeds the run's cap,
consecutive stream chunks are merged (kept as a list of parts until read), and text past the cap
is only counted. The tail keeps the last lines of stdout/stderr for live views.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from .models import CellOutputs

TAIL_LINES = 20
TAIL_LINE_CHARS = 300


class _Stream:
    """A run of consecutive chunks of one stream, joined only when read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.size = 0

    def to_output(self) -> dict[str, Any]:
        return {"output_type": "stream", "name": self.name, "text": "".join(self.parts)}


class _CellBuffer:
    def __init__(self, cell_id: str) -> None:
        self.cell_id = cell_id
        self.items: list[_Stream | dict[str, Any]] = []
        self.sizes: list[int] = []
        self.dropped = 0
        self.pending_clear = False

    def to_cell_outputs(self) -> CellOutputs:
        outputs = [i.to_output() if isinstance(i, _Stream) else i for i in self.items]
        if self.dropped:
            marker = f"[output truncated: {self.dropped} bytes dropped]"
            outputs.append({"output_type": "stream", "name": "stderr", "text": marker})
        return CellOutputs(cell_id=self.cell_id, outputs=outputs, truncated=self.dropped > 0)


def _clip(line: str) -> str:
    # A progress bar redraws its line with carriage returns: show the last drawing.
    line = line.rsplit("\r", 1)[-1] if "\r" in line else line
    return line[:TAIL_LINE_CHARS]


class OutputCapture:
    """Collects the outputs of a run's cells in order, within ``cap_bytes`` in total."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = cap_bytes
        self.used = 0
        self.dropped = 0
        self._cells: list[_CellBuffer] = []
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._partial = ""
        self.version = 0  # bumps on every change, so watchers can tell when to publish

    # ---------------------------------------------------------------- input

    def begin_cell(self, cell_id: str) -> None:
        self._cells.append(_CellBuffer(cell_id))

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        """Take one iopub message of the current cell (other message types are ignored)."""
        if not self._cells:
            return
        cell = self._cells[-1]
        if msg_type == "clear_output":
            if content.get("wait"):
                cell.pending_clear = True
            else:
                self._clear(cell)
            return
        if msg_type not in ("stream", "execute_result", "display_data", "error"):
            return
        if cell.pending_clear:
            self._clear(cell)
        self.version += 1
        if msg_type == "stream":
            self._add_stream(cell, str(content.get("name", "stdout")), str(content.get("text", "")))
        else:
            self._add_rich(cell, msg_type, content)

    def _clear(self, cell: _CellBuffer) -> None:
        cell.pending_clear = False
        self.used -= sum(cell.sizes)
        cell.items.clear()
        cell.sizes.clear()
        self.version += 1

    def _add_stream(self, cell: _CellBuffer, name: str, text: str) -> None:
        self._feed_tail(text)
        data = text.encode("utf-8", errors="replace")
        room = self.cap_bytes - self.used
        if len(data) > room:
            kept = data[: max(room, 0)].decode("utf-8", errors="ignore")
            lost = len(data) - len(kept.encode("utf-8"))
            cell.dropped += lost
            self.dropped += lost
            text, data = kept, kept.encode("utf-8")
        if not text:
            return
        last = cell.items[-1] if cell.items else None
        if isinstance(last, _Stream) and last.name == name:
            last.parts.append(text)
            last.size += len(data)
            cell.sizes[-1] += len(data)
        else:
            stream = _Stream(name)
            stream.parts.append(text)
            stream.size = len(data)
            cell.items.append(stream)
            cell.sizes.append(len(data))
        self.used += len(data)

    def _add_rich(self, cell: _CellBuffer, msg_type: str, content: dict[str, Any]) -> None:
        output: dict[str, Any] = {"output_type": msg_type}
        if msg_type == "error":
            output.update(
                ename=content.get("ename", ""),
                evalue=content.get("evalue", ""),
                traceback=list(content.get("traceback", [])),
            )
        else:
            output["data"] = content.get("data", {})
            output["metadata"] = content.get("metadata", {})
            if msg_type == "execute_result":
                output["execution_count"] = content.get("execution_count")
        size = len(json.dumps(output, default=str))
        # Errors are always kept: they say why the run stopped.
        if msg_type != "error" and self.used + size > self.cap_bytes:
            cell.dropped += size
            self.dropped += size
            return
        cell.items.append(output)
        cell.sizes.append(size)
        self.used += size

    def _feed_tail(self, text: str) -> None:
        if "\n" not in text:
            self._partial = (self._partial + text)[-4 * TAIL_LINE_CHARS :]
            return
        # Only the last lines of a chunk can reach the tail: split no further than that.
        pieces = text.rsplit("\n", TAIL_LINES)
        first = pieces[0]
        if "\n" in first:
            self._lines.append(_clip(first.rsplit("\n", 1)[-1]))
        else:
            self._lines.append(_clip(self._partial + first))
        self._lines.extend(_clip(p) for p in pieces[1:-1])
        self._partial = pieces[-1][-4 * TAIL_LINE_CHARS :]

    # ---------------------------------------------------------------- output

    def tail(self) -> list[str]:
        lines = list(self._lines)
        if self._partial:
            lines.append(_clip(self._partial))
        return lines[-TAIL_LINES:]

    def cells(self) -> list[CellOutputs]:
        return [c.to_cell_outputs() for c in self._cells]
