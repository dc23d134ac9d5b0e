"""Metric bindings: the expression in the code behind a metric the output shows.

A variation may drop the line that printed the metric (``print(f"test accuracy: {acc:.4f}")``)
while still computing it. The binding records where the value comes from (``acc``), so every
run can evaluate it silently in its side kernel after its cells and still report the metric.

Sources, as the output parser reads them: print and logging calls (see binding_templates), a
dict, DataFrame or Series a cell shows (literal, or held by a variable), a function's returned
dict, and a bare value shown as the cell's result. Only the notebook's own scope counts: names
printed inside a function body are that function's locals.
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .binding_kernel import (
    binding_expression_code,
    parse_user_expression_results,
    read_user_expressions,
)
from .binding_templates import call_pieces, constant_str, template_match
from .errors import InvalidInput
from .literals import dotted_name, parse_cell
from .metrics import infer_direction, metrics_with_sources, normalize_name
from .models import Cell, Direction, MetricBinding, MetricSpec

__all__ = [
    "WARNING_PREFIX",
    "MetricBinding",
    "binding_expression_code",
    "binding_warnings",
    "defined_names",
    "find_binding",
    "free_names",
    "parse_metric_arg",
    "parse_user_expression_results",
    "read_user_expressions",
]

Kind = Literal["stdout", "result"]

# Every binding warning starts so; the model proposer's own check uses the same words.
WARNING_PREFIX = "this variation no longer computes"

_BUILTINS = frozenset(dir(builtins))
_FRAMES = {"DataFrame", "Series"}
# Nodes with a scope of their own: names bound or printed inside are not the notebook's.
_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
# `%time x = f()` runs its statement in the notebook's namespace: keep it visible.
_TIME_MAGIC = re.compile(r"^(\s*)%time\s+", re.MULTILINE)
_QUOTED_KEY = re.compile(r"""(['"])((?:(?!\1).){1,80})\1\s*:""")


# ---------------------------------------------------------------- the notebook's code


def _parse(source: str) -> ast.Module | None:
    return parse_cell(_TIME_MAGIC.sub(r"\1", source))


@dataclass
class _Source:
    cell: Cell
    text: str
    tree: ast.Module


@dataclass
class _Assigned:
    value: ast.expr
    source: str
    keys: dict[str, ast.expr] = field(default_factory=dict)  # name["key"] = value


@dataclass
class _Candidate:
    kind: Kind
    expression: str


def _expr_text(node: ast.expr, source: str) -> str:
    """The expression as written when that parses back to it, else its normalised form."""
    segment = ast.get_source_segment(source, node)
    if segment:
        try:
            parsed = ast.parse(segment.strip(), mode="eval").body
            if ast.dump(parsed) == ast.dump(node):
                return segment.strip()
        except SyntaxError:
            pass
    return ast.unparse(node)


def _paren(text: str) -> str:
    node = ast.parse(text, mode="eval").body
    simple = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)
    return text if isinstance(node, simple) else f"({text})"


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes of the notebook's own scope in source order, not entering functions or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _SCOPES):
            continue
        yield child
        yield from _walk_scope(child)


def _dict_value(node: ast.Dict | None, target: str) -> ast.expr | None:
    if node is None:
        return None
    for key, value in zip(node.keys, node.values, strict=True):
        text = constant_str(key)
        if text is not None and normalize_name(text) == normalize_name(target):
            return value
    return None


def _dict_key(node: ast.Dict, target: str) -> str | None:
    for key in node.keys:
        text = constant_str(key)
        if text is not None and normalize_name(text) == target:
            return text
    return None


def _subscript(base: str, key: str) -> str:
    return f"{_paren(base)}[{json.dumps(key)}]"


class _Code:
    """The notebook's code cells, parsed, with what the display analysis needs to look up."""

    def __init__(self, cells: Sequence[Cell]) -> None:
        self.sources: list[_Source] = []
        for cell in cells:
            if cell.cell_type != "code":
                continue
            text = _TIME_MAGIC.sub(r"\1", cell.source)
            tree = parse_cell(text)
            if tree is not None:
                self.sources.append(_Source(cell, text, tree))
        self.functions: dict[str, list[ast.Dict]] = {}  # dicts a top-level function returns
        self.assigned: set[str] = set()
        for src in self.sources:
            self.assigned |= defined_names(src.tree)[0]
            for stmt in src.tree.body:
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions[stmt.name] = [
                        n.value
                        for n in ast.walk(stmt)
                        if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)
                    ]

    def assignments(self, upto: _Source) -> dict[str, _Assigned]:
        """Top-level values of names as they stand before ``upto``'s last statement."""
        found: dict[str, _Assigned] = {}
        for src in self.sources:
            stmts = src.tree.body[:-1] if src is upto else src.tree.body
            for stmt in stmts:
                for node in [stmt, *_walk_scope(stmt)]:
                    if isinstance(node, ast.Assign):
                        self._note(found, node.targets, node.value, src.text)
                    elif isinstance(node, ast.AnnAssign) and node.value is not None:
                        self._note(found, [node.target], node.value, src.text)
            if src is upto:
                break
        return found

    @staticmethod
    def _note(
        found: dict[str, _Assigned], targets: list[ast.expr], value: ast.expr, text: str
    ) -> None:
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = _Assigned(value, text)
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                key = constant_str(target.slice)
                holder = found.get(target.value.id)
                if key is not None and holder is not None:
                    holder.keys[key] = value

    def free_names(self, expression: str) -> list[str]:
        return free_names(expression, keep=self.assigned)


# ---------------------------------------------------------------- displayed values


def _displayed(
    node: ast.expr, target: str, src: _Source, code: _Code, outputs: list[dict[str, Any]]
) -> str | None:
    """The expression behind ``target`` in a value a cell shows (its result or a display)."""
    if isinstance(node, ast.Dict):
        value = _dict_value(node, target)
        return _expr_text(value, src.text) if value is not None else None
    if isinstance(node, ast.Call):
        if _is_frame(node):
            return _frame_value(node, target, src, code, outputs)
        key = _returned_key(node, target, code)
        if key is not None:
            return _subscript(_expr_text(node, src.text), key)
    if isinstance(node, ast.Name):
        found = _named_value(node.id, target, src, code, outputs)
        if found is not None:
            return found
    key = _output_key(outputs, target)
    if key is not None and isinstance(node, ast.Name | ast.Call | ast.Attribute | ast.Subscript):
        return _subscript(_expr_text(node, src.text), key)
    if target == "result":
        return _expr_text(node, src.text)
    return None


def _is_frame(node: ast.Call) -> bool:
    return (dotted_name(node.func) or "").rsplit(".", 1)[-1] in _FRAMES


def _returned_key(call: ast.Call, target: str, code: _Code) -> str | None:
    """The key of ``target`` in the dict literal a notebook function returns."""
    for returned in code.functions.get(dotted_name(call.func) or "", []):
        key = _dict_key(returned, target)
        if key is not None:
            return key
    return None


def _named_value(
    name: str, target: str, src: _Source, code: _Code, outputs: list[dict[str, Any]]
) -> str | None:
    """A shown variable: the dict it holds (``results["acc"]``), the frame it was built as, or
    the variable itself when it carries the metric's name."""
    assigned = code.assignments(src).get(name)
    if assigned is not None:
        for stored in assigned.keys:
            if normalize_name(stored) == target:
                return _subscript(name, stored)
        value = assigned.value
        key: str | None = None
        if isinstance(value, ast.Dict):
            key = _dict_key(value, target)
        elif isinstance(value, ast.Call) and _is_frame(value):
            where = _Source(src.cell, assigned.source, src.tree)
            return _frame_value(value, target, where, code, outputs)
        elif isinstance(value, ast.Call):
            key = _returned_key(value, target, code)
        if key is not None:
            return _subscript(name, key)
    if normalize_name(name.replace("_", " ")) == normalize_name(target.replace("_", " ")):
        return name
    return None


def _frame_value(
    call: ast.Call, target: str, src: _Source, code: _Code, outputs: list[dict[str, Any]]
) -> str | None:
    """``pd.DataFrame({"acc": [acc]})`` -> ``acc``: the one row's value in the named column."""
    if not call.args:
        return None
    data = call.args[0]
    if isinstance(data, ast.List | ast.Tuple) and len(data.elts) == 1:
        row = data.elts[0]
        if isinstance(row, ast.Dict):
            data = row
        elif isinstance(row, ast.List | ast.Tuple):
            columns = next((k.value for k in call.keywords if k.arg in ("columns", "index")), None)
            if isinstance(columns, ast.List | ast.Tuple):
                for column, item in zip(columns.elts, row.elts, strict=False):
                    label = constant_str(column)
                    if label is not None and normalize_name(label) == target:
                        return _expr_text(item, src.text)
            return None
    if isinstance(data, ast.Name):
        return _named_value(data.id, target, src, code, outputs)
    if not isinstance(data, ast.Dict):
        return None
    value: ast.expr | None = _dict_value(data, target)
    if isinstance(value, ast.List | ast.Tuple):
        value = value.elts[0] if len(value.elts) == 1 else None
    return _expr_text(value, src.text) if value is not None else None


def _output_key(outputs: list[dict[str, Any]], target: str) -> str | None:
    """The key as spelled in a shown dict (``{'Test Acc': 0.9}``), to subscript the value by."""
    for output in reversed(outputs):
        data = output.get("data")
        plain = data.get("text/plain") if isinstance(data, dict) else None
        if isinstance(plain, list):
            plain = "".join(str(p) for p in plain)
        if isinstance(plain, str):
            for match in _QUOTED_KEY.finditer(plain):
                if normalize_name(match.group(2)) == target:
                    return match.group(2)
    return None


# ---------------------------------------------------------------- finding the binding


def _candidates(
    src: _Source, target: str, code: _Code, outputs: list[dict[str, Any]]
) -> list[_Candidate]:
    """Every place in the cell that would show ``target``, in the order the outputs come."""
    found: list[_Candidate] = []
    for node in _walk_scope(src.tree):
        if not isinstance(node, ast.Call):
            continue
        if dotted_name(node.func) == "display" and node.args:
            for arg in node.args:
                text = _displayed(arg, target, src, code, outputs)
                if text is not None:
                    found.append(_Candidate("result", text))
            continue
        pieces = call_pieces(node)
        slot = template_match(pieces, target) if pieces is not None else None
        if slot is not None:
            text = _expr_text(slot.node, src.text)
            found.append(_Candidate("stdout", f"{_paren(text)} * 100" if slot.percent else text))
    last = src.tree.body[-1] if src.tree.body else None
    shows_result = not src.text.rstrip().endswith(";")
    if isinstance(last, ast.Expr) and shows_result:
        value = last.value
        is_output_call = isinstance(value, ast.Call) and (
            call_pieces(value) is not None or dotted_name(value.func) == "display"
        )
        if not is_output_call:
            text = _displayed(value, target, src, code, outputs)
            if text is not None:
                found.append(_Candidate("result", text))
    return found


def _shown_kind(outputs: list[dict[str, Any]], target: str) -> Kind | None:
    """Whether the cell's outputs show ``target`` on stdout or as a result; None if not at all."""
    _, sources = metrics_with_sources(outputs)
    where = sources.get(target)
    if where is None:
        return None
    return "stdout" if where.startswith("stdout") else "result"


def find_binding(
    metric_name: str,
    cells: list[Cell],
    outputs_by_cell: dict[str, list[dict[str, Any]]] | None = None,
) -> MetricBinding | None:
    """Where ``metric_name`` comes from in ``cells``; None when no code shows it.

    Cells whose outputs (``outputs_by_cell``, else the cells' own outputs) show the metric are
    searched first, latest first, preferring the kind of output that showed it; then the other
    cells. Within a cell the last place that shows the metric wins, as it does in the output.
    """
    target = normalize_name(metric_name)
    if not target:
        return None
    code = _Code(cells)

    def outputs_of(src: _Source) -> list[dict[str, Any]]:
        if outputs_by_cell is not None:
            return outputs_by_cell.get(src.cell.id, [])
        return src.cell.outputs

    shown = [(src, _shown_kind(outputs_of(src), target)) for src in code.sources]
    ordered = [p for p in reversed(shown) if p[1] is not None]
    ordered += [p for p in reversed(shown) if p[1] is None]
    for src, kind in ordered:
        found = _candidates(src, target, code, outputs_of(src))
        preferred = [c for c in found if c.kind == kind] or found
        if preferred:
            expression = preferred[-1].expression
            return MetricBinding(
                name=target,
                expression=expression,
                cell_id=src.cell.id,
                names=code.free_names(expression),
                source="binding",
            )
    return None


# ---------------------------------------------------------------- names


def free_names(expression: str, keep: Iterable[str] = ()) -> list[str]:
    """Variables ``expression`` reads from the notebook, in order; builtins left out unless
    the notebook assigns them (``keep``)."""
    tree = ast.parse(expression, mode="eval")
    kept = set(keep)
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.comprehension):
            bound |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.NamedExpr):
            bound.add(node.target.id)
    names: list[str] = []
    loads = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
    for node in sorted(loads, key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node.ctx, ast.Load):
            name = node.id
            if name in bound or name in names or (name in _BUILTINS and name not in kept):
                continue
            names.append(name)
    return names


def defined_names(tree: ast.Module) -> tuple[set[str], bool]:
    """Names a cell binds at the notebook's level, and whether a ``*`` import may bind more."""
    names: set[str] = set()
    star = False
    for node in [tree, *_walk_scope(tree)]:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                else:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar | ast.MatchMapping):
            bound = node.rest if isinstance(node, ast.MatchMapping) else node.name
            if bound:
                names.add(bound)
    for node in ast.walk(tree):
        # `global x` inside a function makes its assignments the notebook's.
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            declared = {n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names}
            names |= {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id in declared
            }
    return names, star


def binding_warnings(
    code: str,
    binding: MetricBinding,
    later_cells: list[Cell],
    earlier_cells: Sequence[Cell] = (),
) -> list[str]:
    """Warnings for a variation (``code``) that no longer defines what the binding reads.

    A name still counts as defined when the variation, a cell the run executes after it, or a
    cell before it binds it. A variation that does not parse gets no warning here: its run
    fails with the syntax error, which says more.
    """
    if not binding.names:
        return []
    parsed = _source_names(code)
    if parsed is None:
        return []
    defined, star = set(parsed[0]), parsed[1]
    for cell in [*later_cells, *earlier_cells]:
        other = _source_names(cell.source) if cell.cell_type == "code" else None
        if other is not None:
            defined |= other[0]
            star = star or other[1]
    missing = [n for n in binding.names if n not in defined]
    if not missing or star:
        return []
    shown = ", ".join(f"`{n}`" for n in missing)
    return [
        f"{WARNING_PREFIX} {shown}; the metric '{binding.name}' is read from `{binding.expression}`"
    ]


@functools.lru_cache(maxsize=2048)
def _source_names(source: str) -> tuple[frozenset[str], bool] | None:
    """:func:`defined_names` of a cell's source; None when it does not parse. Cached: the
    engine re-checks every proposal against the same cells whenever an exploration changes."""
    tree = _parse(source)
    if tree is None:
        return None
    names, star = defined_names(tree)
    return frozenset(names), star


# ---------------------------------------------------------------- researcher's expressions


def parse_metric_arg(arg: str, direction: Direction | None = None) -> MetricSpec:
    """``"test accuracy=acc"`` -> the metric ``test accuracy`` read from ``acc``; ``"acc"`` ->
    the metric ``acc`` read from the output only. InvalidInput for a malformed argument."""
    name, sep, expression = arg.partition("=")
    name, expression = name.strip(), expression.strip()
    if not name:
        raise InvalidInput(f"the metric {arg!r} has no name (expected NAME or NAME=EXPRESSION)")
    spec = MetricSpec(name=name, direction=direction or infer_direction(name))
    if not sep:
        return spec
    if not expression:
        raise InvalidInput(f"the metric {arg!r} has no expression after '='")
    try:
        names = free_names(expression)
    except SyntaxError as err:
        raise InvalidInput(
            f"the metric expression `{expression}` is not a Python expression: {err.msg}"
        ) from err
    spec.expression = expression
    spec.binding = MetricBinding(
        name=normalize_name(name), expression=expression, names=names, source="researcher"
    )
    return spec
