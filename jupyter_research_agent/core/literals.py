"""Find literal values in a cell's source and replace them in place.

Edits go through the source text by the positions ``ast`` reports, never through
``ast.unparse``: the researcher's formatting and comments survive, and the diff between a
variation and the original cell is exactly the changed literal.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

# IPython line and cell magics, shell escapes and help lines are not Python; they are masked
# (first character turned into '#') so the rest of the cell still parses and positions hold.
_MAGIC_LINE = re.compile(r"^(\s*)([%!?])", re.MULTILINE)


# Calls whose keyword arguments style a plot (matplotlib's alpha is opacity, not a rate).
_PLOT_ROOTS = {"plt", "ax", "axs", "axes", "fig", "sns", "px", "go", "matplotlib"}


def is_plot_call(call: str | None) -> bool:
    return call is not None and call.split(".", 1)[0] in _PLOT_ROOTS


@dataclass(frozen=True)
class LiteralSite:
    """One literal bound to a name: ``name = <literal>`` or ``call(name=<literal>)``.

    ``start`` and ``end`` are character offsets of the literal in the source.
    """

    name: str
    value: Any
    text: str  # the literal as written, e.g. "1e-3"
    start: int
    end: int
    context: str  # "assign" | "keyword" | "call_arg"
    call: str | None = None  # dotted name of the called function, for keywords and call args


def parse_cell(source: str) -> ast.Module | None:
    """The cell's syntax tree, with IPython magics masked; None when it is not Python."""
    masked = _MAGIC_LINE.sub(lambda m: m.group(1) + "#", source)
    try:
        return ast.parse(masked)
    except (SyntaxError, ValueError):
        return None


def literal_value(node: ast.expr) -> tuple[bool, Any]:
    """``(True, value)`` when ``node`` is a literal expression (numbers, strings, tuples...)."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def dotted_name(node: ast.expr) -> str | None:
    """``np.random.seed`` for the call target ``np.random.seed``; None for other shapes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Offsets:
    """Convert ast (line, UTF-8 byte column) positions to character offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts: list[int] = []
        total = 0
        for line in self.lines:
            self.starts.append(total)
            total += len(line)
        self.starts.append(total)

    def offset(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        chars = len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))
        return self.starts[lineno - 1] + chars


def find_literal_sites(source: str, tree: ast.Module | None = None) -> list[LiteralSite]:
    """Every literal bound to a name in the cell, in source order.

    - module-level assignments of a literal to a simple name (``lr = 0.1``, ``lr: float = 0.1``,
      ``lr, epochs = 0.1, 10``);
    - keyword arguments with a literal value anywhere in the cell (``Ridge(alpha=1.0)``);
    - the first positional argument of a call, recorded as ``call_arg`` with the call's name
      (used for seed calls such as ``np.random.seed(0)``).
    """
    tree = tree if tree is not None else parse_cell(source)
    if tree is None:
        return []
    offsets = _Offsets(source)
    sites: list[LiteralSite] = []

    def add(name: str, node: ast.expr, context: str, call: str | None = None) -> None:
        ok, value = literal_value(node)
        if not ok or node.end_lineno is None or node.end_col_offset is None:
            return
        start = offsets.offset(node.lineno, node.col_offset)
        end = offsets.offset(node.end_lineno, node.end_col_offset)
        sites.append(LiteralSite(name, value, source[start:end], start, end, context, call))

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                _add_assignment(target, stmt.value, add)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            _add_assignment(stmt.target, stmt.value, add)

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        call = dotted_name(node.func)
        for keyword in node.keywords:
            if keyword.arg is not None:
                add(keyword.arg, keyword.value, "keyword", call)
        if node.args and call is not None:
            add(call, node.args[0], "call_arg", call)

    sites.sort(key=lambda s: s.start)
    return sites


def _add_assignment(target: ast.expr, value: ast.expr, add: Any) -> None:
    if isinstance(target, ast.Name):
        add(target.id, value, "assign")
    elif (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
    ):
        for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
            if isinstance(sub_target, ast.Name):
                add(sub_target.id, sub_value, "assign")


def render_value(value: Any) -> str:
    """Python source for a replacement literal."""
    if isinstance(value, float):
        text = repr(value)
        return text if text not in ("inf", "-inf", "nan") else f"float('{text}')"
    return repr(value)


def replace_spans(source: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace ``(start, end, text)`` character spans; spans must not overlap."""
    result = source
    for start, end, text in sorted(edits, key=lambda e: e[0], reverse=True):
        result = result[:start] + text + result[end:]
    return result
