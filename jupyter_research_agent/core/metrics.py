"""Metrics read from cell outputs, and whether a metric should go up or down.

Sources, in the order the cells produced them (later values win, so the last epoch counts):

- printed text on stdout: ``test accuracy: 0.91``, ``val_loss=0.3``, ``loss=0.1, acc=0.9``;
- a cell's result or display: a dict (``{'acc': 0.9}``), a single number (named ``result``),
  a Series, or a one-row DataFrame (HTML or text), one metric per column.

stderr is never read: warnings there often carry ``name=value`` text that is not a result.
Lines that are warnings or tracebacks are skipped on stdout too, and counters such as
``epoch`` or ``step`` are not metrics.
"""

from __future__ import annotations

import ast
import math
import re
from html.parser import HTMLParser
from typing import Any

from .models import CellOutputs, Direction

_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b"
_WORD = r"[A-Za-z][A-Za-z0-9_\-]*"
_PAIR = re.compile(
    r"(?<![\w\-./?&=@])"  # not inside a URL query, a path or another token
    rf"(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,2}})"
    r"(?P<sep>\s*[:=]\s*)"
    rf"(?P<value>{_NUMBER})"
    r"(?P<unit>\s*%|\s?(?:ms|sec|s)\b)?"
    r"(?![\w.:/\-]|,\d)",  # not a time, date, ratio, version or 1,000
    re.IGNORECASE,
)
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NOISE = re.compile(r"warning|deprecat|traceback", re.IGNORECASE)
# Log levels and exception lines ("ValueError: x=1"); case matters so "Error: 0.05" still counts.
_NOISE_CASED = re.compile(
    r"^\s*(?:ERROR|DEBUG|CRITICAL)\b|^\s*[A-Z]\w*(?:Error|Exception|Warning):"
)
_NUMPY_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint)\d*\(([^()]*)\)")
# Counters and bookkeeping printed next to metrics; they rise with time, not with quality.
_COUNTERS = {
    "epoch",
    "epochs",
    "step",
    "steps",
    "iter",
    "iters",
    "iteration",
    "iterations",
    "batch",
    "fold",
    "round",
    "trial",
    "seed",
    "random_state",
    "it",
    "n",
    "i",
}
_TRAILING_VERB = re.compile(r"\s+(?:is|was|are|were|of|=)$")


def normalize_name(name: str) -> str:
    """``"  Test   Accuracy "`` -> ``"test accuracy"``."""
    return " ".join(name.split()).lower()


# ---------------------------------------------------------------- text


def metrics_from_text(text: str) -> dict[str, float]:
    """Metrics printed in ``text`` (later lines win). NaN or inf removes an earlier value."""
    found: dict[str, float] = {}
    for line in _lines(text):
        _merge(found, _metrics_from_line(line))
    return _finite(found)


def _lines(text: str) -> list[str]:
    # Progress bars redraw with carriage returns; each redraw is a line of its own.
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _metrics_from_line(line: str) -> dict[str, float]:
    if not line.strip() or _NOISE.search(line) or _NOISE_CASED.search(line):
        return {}
    cleaned = _TIMESTAMP.sub(" ", line)
    found: dict[str, float] = {}
    for match in _PAIR.finditer(cleaned):
        name = match.group("name")
        sep = match.group("sep")
        if sep.strip() == "=" and not sep.startswith((" ", "\t")):
            # "with lr=0.1": a tight '=' binds only the word before it.
            name = name.split()[-1]
        name = normalize_name(_TRAILING_VERB.sub("", name))
        if not name or name in _COUNTERS:
            continue
        found[name] = float(match.group("value"))
    return found


def _merge(into: dict[str, float], new: dict[str, float]) -> None:
    for name, value in new.items():
        into.pop(name, None)  # keep the order of the latest report
        into[name] = value


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if math.isfinite(v)}


# ---------------------------------------------------------------- results and displays


def metrics_from_data(data: dict[str, Any]) -> dict[str, float]:
    """Metrics in an execute_result or display_data ``data`` bundle."""
    html = _text(data.get("text/html"))
    if html and "<table" in html.lower():
        table = _one_row_html_table(html)
        if table:
            return table
    plain = _text(data.get("text/plain"))
    if not plain:
        return {}
    return _metrics_from_plain(plain)


def _metrics_from_plain(plain: str) -> dict[str, float]:
    text = _NUMPY_SCALAR.sub(r"\1", plain.strip())
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return _finite({"result": float(value)})
    if isinstance(value, dict):
        found = {
            normalize_name(str(k)): float(v)
            for k, v in value.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return _finite({k: v for k, v in found.items() if k and k not in _COUNTERS})
    if isinstance(value, str):
        return metrics_from_text(value)
    return _plain_table(text)


def _plain_table(text: str) -> dict[str, float]:
    """A pandas Series repr or a one-row DataFrame repr, as metrics by label."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) >= 2 and lines[-1].startswith(("dtype:", "Name:")):
        found: dict[str, float] = {}
        for line in lines[:-1]:
            parts = line.rsplit(None, 1)
            number = _number(parts[-1]) if len(parts) == 2 else None
            if number is None:
                return {}
            found[normalize_name(parts[0])] = number
        return _finite(found)
    if len(lines) == 2:
        header, row = lines[0].split(), lines[1].split()
        if len(row) == len(header) + 1:  # the row starts with its index label
            values = [_number(cell) for cell in row[1:]]
            if all(v is not None for v in values):
                return _finite(
                    {
                        normalize_name(h): float(v)
                        for h, v in zip(header, values, strict=True)
                        if v is not None
                    }
                )
    return {}


def _number(text: str) -> float | None:
    cleaned = text.strip().rstrip("%").replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


class _TableReader(HTMLParser):
    """Collects the header and body rows of the first HTML table."""

    def __init__(self) -> None:
        super().__init__()
        self.header_rows: list[list[str]] = []
        self.body_rows: list[list[tuple[str, str]]] = []  # (tag, text) per cell
        self._section = "tbody"
        self._row: list[tuple[str, str]] | None = None
        self._cell: list[str] | None = None
        self._cell_tag = ""
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
        if self._tables != 1:
            return
        if tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell, self._cell_tag = [], tag

    def handle_endtag(self, tag: str) -> None:
        if self._tables != 1:
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append((self._cell_tag, " ".join("".join(self._cell).split())))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._section == "thead" or all(t == "th" for t, _ in self._row):
                self.header_rows.append([text for _, text in self._row])
            else:
                self.body_rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._tables += 1  # ignore later tables

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _one_row_html_table(html: str) -> dict[str, float]:
    reader = _TableReader()
    try:
        reader.feed(html)
        reader.close()
    except Exception:  # malformed markup is not a metric source
        return {}
    if len(reader.body_rows) != 1 or not reader.header_rows:
        return {}
    values = [text for tag, text in reader.body_rows[0] if tag == "td"]
    header = reader.header_rows[0]
    if not values or len(header) < len(values):
        return {}
    found: dict[str, float] = {}
    for name, text in zip(header[-len(values) :], values, strict=True):
        number = _number(text)
        key = normalize_name(name)
        if number is not None and key and key not in _COUNTERS:
            found[key] = number
    return _finite(found)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- outputs


def metrics_with_sources(
    outputs: list[dict[str, Any]], source_prefix: str = ""
) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics of nbformat output dicts, and where each came from (``stdout``, ``result``...)."""
    metrics: dict[str, float] = {}
    sources: dict[str, str] = {}
    for output in outputs:
        output_type = output.get("output_type")
        if output_type == "stream":
            if output.get("name") != "stdout":
                continue
            kind = "stdout"
            # Evaluate line by line so a NaN late in the stream removes an earlier value.
            found: dict[str, float] = {}
            for line in _lines(_text(output.get("text"))):
                _merge(found, _metrics_from_line(line))
        elif output_type in ("execute_result", "display_data"):
            kind = "result" if output_type == "execute_result" else "display"
            data = output.get("data")
            found = metrics_from_data(data) if isinstance(data, dict) else {}
        else:
            continue
        for name, value in found.items():
            metrics.pop(name, None)
            sources.pop(name, None)
            if math.isfinite(value):
                metrics[name] = value
                sources[name] = f"{kind}{source_prefix}"
    return metrics, sources


def extract_metrics(outputs: list[dict[str, Any]]) -> dict[str, float]:
    """Metrics of nbformat output dicts of one or more cells in order; later values win."""
    return metrics_with_sources(outputs)[0]


def extract_run_metrics_with_sources(
    cells: list[CellOutputs],
) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics of a run's cells and their sources, e.g. ``{"acc": "stdout of cell abc"}``."""
    metrics: dict[str, float] = {}
    sources: dict[str, str] = {}
    for cell in cells:
        found, where = metrics_with_sources(cell.outputs, f" of cell {cell.cell_id}")
        for name, value in found.items():
            metrics.pop(name, None)
            metrics[name] = value
            sources[name] = where[name]
    return metrics, sources


def extract_run_metrics(cells: list[CellOutputs]) -> dict[str, float]:
    """Metrics of a run's cells in execution order; later values win."""
    return extract_run_metrics_with_sources(cells)[0]


# ---------------------------------------------------------------- direction

_MINIMIZE = {
    "loss",
    "error",
    "errors",
    "err",
    "mae",
    "mse",
    "rmse",
    "mape",
    "smape",
    "nll",
    "time",
    "latency",
    "duration",
    "runtime",
    "elapsed",
    "seconds",
    "perplexity",
    "ppl",
    "wer",
    "cer",
    "cost",
    "regret",
}
_MAXIMIZE = {
    "accuracy",
    "acc",
    "f1",
    "auc",
    "roc",
    "r2",
    "score",
    "precision",
    "recall",
    "bleu",
    "rouge",
    "map",
    "iou",
    "miou",
    "dice",
    "ndcg",
    "mrr",
    "reward",
    "return",
    "top1",
    "top5",
    "throughput",
}


def infer_direction(name: str) -> Direction | None:
    """Whether ``name`` is a metric to maximize or minimize, judged from its words.

    The last decisive word wins (``accuracy_loss`` is a loss); a ``neg`` word flips the
    answer, as in scikit-learn's ``neg_mean_squared_error``.
    """
    words = [w for w in re.split(r"[^a-z0-9]+", normalize_name(name)) if w]
    negated = "neg" in words or "negative" in words
    for word in reversed(words):
        stem = re.sub(r"\d+$", "", word) if word not in _MAXIMIZE else word
        if word in _MINIMIZE or stem in _MINIMIZE:
            found = Direction.MINIMIZE
        elif word in _MAXIMIZE or stem in _MAXIMIZE:
            found = Direction.MAXIMIZE
        else:
            continue
        if negated:
            return Direction.MAXIMIZE if found == Direction.MINIMIZE else Direction.MINIMIZE
        return found
    return None
