"""Which names a cell defines and uses, and which names compute the metric.

Used to pick the cells a model needs to see (the target's dependencies and dependents) and to
tell it which names must survive a variation. Cells with IPython syntax (``%magic``, ``!cmd``)
are parsed with those lines blanked; a cell that still does not parse falls back to a regex.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..models import Cell, MetricSpec

BUILTINS = frozenset(dir(builtins)) | {"display", "get_ipython"}
MAX_RELATED = 200
_IDENT_RE = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_ASSIGN_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=[^=]")


@dataclass(frozen=True)
class CellNames:
    defined: frozenset[str] = field(default_factory=frozenset)
    used: frozenset[str] = field(default_factory=frozenset)


def parse_cell(source: str) -> ast.Module | None:
    lines = [
        "" if line.lstrip().startswith(("%", "!")) or line.rstrip().endswith("?") else line
        for line in source.splitlines()
    ]
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


@lru_cache(maxsize=8192)
def cell_names(source: str) -> CellNames:
    tree = parse_cell(source)
    if tree is None:
        guessed = {
            name.strip()
            for line in source.splitlines()
            if (m := _ASSIGN_RE.match(line))
            for name in m.group(1).split(",")
        }
        return CellNames(frozenset(guessed), frozenset(set(_IDENT_RE.findall(source)) - BUILTINS))
    defined: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store | ast.Del) else used).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    defined.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.ctx, ast.Store):
            # ``df["x"] = ...`` / ``model.coef_ = ...`` change an existing object: the cell both
            # needs it and redefines it for later cells.
            base = node.value
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name):
                defined.add(base.id)
                used.add(base.id)
    return CellNames(frozenset(defined), frozenset(used - BUILTINS))


@lru_cache(maxsize=8192)
def identifiers(source: str) -> frozenset[str]:
    """Every identifier-like word in the source: a cheap superset of what ``ast`` would find."""
    return frozenset(_IDENT_RE.findall(source))


def related_cells(
    cells: list[Cell], target: int, limit: int = MAX_RELATED
) -> tuple[list[int], list[int]]:
    """Indexes of the code cells the target depends on and of those that depend on it.

    Both lists are nearest first (the order of importance when the budget is short) and hold at
    most ``limit`` cells: no budget fits more. Cells are parsed only when a word of theirs
    matches a name of interest, so thousands of cells cost little.
    """
    target_names = cell_names(cells[target].source)
    needed = set(target_names.used)
    upstream: list[int] = []
    for i in range(target - 1, -1, -1):
        cell = cells[i]
        if len(upstream) >= limit or not needed:
            break
        if cell.cell_type != "code" or needed.isdisjoint(identifiers(cell.source)):
            continue
        names = cell_names(cell.source)
        if not names.defined.isdisjoint(needed):
            upstream.append(i)
            needed |= names.used
    produced = set(target_names.defined)
    downstream: list[int] = []
    for j in range(target + 1, len(cells)):
        cell = cells[j]
        if len(downstream) >= limit or not produced:
            break
        if cell.cell_type != "code" or produced.isdisjoint(identifiers(cell.source)):
            continue
        names = cell_names(cell.source)
        if not names.used.isdisjoint(produced):
            downstream.append(j)
            produced |= names.defined
    return upstream, downstream


# ---------------------------------------------------------------- metric binding


def _variants(metric: str) -> set[str]:
    low = metric.strip().lower()
    return {low, low.replace(" ", "_"), low.replace("_", " ")}


def _strings_in(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def metric_names(metric: MetricSpec | None, sources: list[str]) -> tuple[list[str], list[str]]:
    """The names the metric is computed from, and the statements that report it.

    ``sources`` are the target cell first, then the cells that depend on it. With an explicit
    expression (``test accuracy=acc``) its names are the answer; otherwise the statements whose
    string literals mention the metric (a print, a dict key) give the names they use, and an
    assignment to a variable named like the metric gives that variable.
    """
    if metric is None:
        return [], []
    if metric.expression:
        try:
            expr = ast.parse(metric.expression, mode="eval")
        except SyntaxError:
            return [], []
        found = [n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and n.id not in BUILTINS]
        return list(dict.fromkeys(found)), []
    wanted = _variants(metric.name)
    names: list[str] = []
    statements: list[str] = []
    for source in sources:
        tree = parse_cell(source)
        if tree is None:
            continue
        for stmt in ast.walk(tree):
            # Compound statements (def, for, with, ...) are visited through their bodies.
            if not isinstance(stmt, ast.stmt) or hasattr(stmt, "body"):
                continue
            if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id.lower() in wanted:
                        names.append(t.id)
            if any(w in s.lower() for s in _strings_in(stmt) for w in wanted):
                names += [
                    n.id
                    for n in ast.walk(stmt)
                    if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Load)
                    and n.id not in BUILTINS
                ]
                segment = ast.get_source_segment(source, stmt)
                if segment:
                    statements.append(segment.strip()[:300])
        if names:
            break
    if metric.binding is not None:
        # Metric binding: the names its expression reads that these cells define come first.
        bound = [n for n in metric.binding.names if any(defines(s, n) for s in sources)]
        names = [*bound, *names]
    return list(dict.fromkeys(names)), list(dict.fromkeys(statements))


def defines(source: str, name: str) -> bool:
    return name in cell_names(source).defined
