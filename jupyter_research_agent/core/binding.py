"""Metric bindings: the expression in the code behind a metric the output shows.

A variation may drop the line that printed the metric (``print(f"test accuracy: {acc:.4f}")``)
while still computing it. The binding records where the value comes from (``acc``), so every
run can evaluate it silently in its side kernel after its cells and still report the metric.

Print templates are matched with the output parser itself: each expression of the call is
replaced by a unique number, the line is read by :func:`metrics.metrics_from_text`, and the
number found under the metric's name points back to its expression. A binding is therefore found
exactly where the output parser would read the metric from that line.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import re
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidInput
from .literals import dotted_name, parse_cell
from .metrics import infer_direction, metrics_from_text, metrics_with_sources, normalize_name
from .models import Cell, Direction, MetricBinding, MetricSpec

Kind = Literal["stdout", "result"]

_BUILTINS = frozenset(dir(builtins))
_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "critical", "exception", "log"}
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
_SLOT_BASE = 987_654_321_000  # numbers no real template holds
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)
_QUOTED_KEY = re.compile(r"""(['"])((?:(?!\1).){1,80})\1\s*:""")
_ERROR_CHARS = 200


# ---------------------------------------------------------------- templates


@dataclass
class _Slot:
    node: ast.expr
    percent: bool = False  # formatted with a "%" spec: the printed number is 100 x the value


_Piece = str | _Slot


def _slot(node: ast.expr, spec: str = "") -> list[_Piece]:
    return [_Slot(node, percent=spec.endswith("%"))]


def _constant_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _pieces(node: ast.expr) -> list[_Piece] | None:
    """The text ``node`` renders to, with expressions as slots; None when it is not text."""
    text = _constant_str(node)
    if text is not None:
        return [text]
    if isinstance(node, ast.JoinedStr):
        out: list[_Piece] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec
                spec_text = "".join(
                    v.value
                    for v in (spec.values if isinstance(spec, ast.JoinedStr) else [])
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )
                out += _slot(value.value, spec_text)
            elif (piece := _constant_str(value)) is not None:
                out.append(piece)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left), _pieces(node.right)
        if left is None and right is None:
            return None
        return (left or _slot(node.left)) + (right or _slot(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        template = _constant_str(node.left)
        if template is None:
            return None
        right = node.right
        if isinstance(right, ast.Dict):
            return _percent(template, [], right)
        args = list(right.elts) if isinstance(right, ast.Tuple) else [right]
        return _percent(template, args, None)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            template = _constant_str(func.value)
            return None if template is None else _str_format(template, node)
        if isinstance(func, ast.Name) and func.id in ("str", "repr") and len(node.args) == 1:
            return _slot(node.args[0])
        if isinstance(func, ast.Name) and func.id == "format" and node.args:
            spec = _constant_str(node.args[1]) if len(node.args) > 1 else ""
            return _slot(node.args[0], spec or "")
    return None


def _percent(template: str, args: list[ast.expr], mapping: ast.Dict | None) -> list[_Piece]:
    """``"loss=%.3f" % loss`` as pieces."""
    out: list[_Piece] = []
    queue = list(args)
    last = 0
    for match in _PERCENT.finditer(template):
        out.append(template[last : match.start()])
        last = match.end()
        if match.group("conv") == "%":
            out.append("%")
            continue
        for star in (match.group("width"), match.group("prec")):
            if star == "*" and queue:
                queue.pop(0)
        key = match.group("key")
        if key is not None:
            value = _dict_value(mapping, key) if mapping is not None else None
            out += _slot(value) if value is not None else ["x"]
        elif queue:
            out += _slot(queue.pop(0))
        else:
            out.append("x")
    out.append(template[last:])
    return out


def _str_format(template: str, call: ast.Call) -> list[_Piece] | None:
    """``"loss={}".format(loss)`` as pieces."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    out: list[_Piece] = []
    auto = 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    for literal, field_name, spec, _ in parsed:
        out.append(literal)
        if field_name is None:
            continue
        node: ast.expr | None = None
        if field_name == "":
            node = call.args[auto] if auto < len(call.args) else None
            auto += 1
        elif field_name.isdigit():
            index = int(field_name)
            node = call.args[index] if index < len(call.args) else None
        elif field_name.isidentifier():
            node = keywords.get(field_name)
        out += _slot(node, spec or "") if node is not None else ["x"]
    return out


def _call_pieces(call: ast.Call) -> list[_Piece] | None:
    """What a print or logging call writes, as pieces; None for other calls."""
    name = dotted_name(call.func) or ""
    if any(isinstance(a, ast.Starred) for a in call.args):
        return None
    writes = name.endswith(".write") and name.split(".")[-2] in ("tqdm", "stdout")
    if name == "print" or writes:
        for keyword in call.keywords:
            if keyword.arg == "file" and dotted_name(keyword.value) == "sys.stderr":
                return None
        sep = next((k.value for k in call.keywords if k.arg == "sep"), None)
        sep_text = _constant_str(sep) if sep is not None else " "
        out: list[_Piece] = []
        for index, arg in enumerate(call.args):
            if index:
                out.append(sep_text if sep_text is not None else " ")
            out += _pieces(arg) or _slot(arg)
        return out
    method = name.rsplit(".", 1)[-1]
    if "." in name and method in _LOG_METHODS and not name.startswith("warnings."):
        args = call.args[1:] if method == "log" else call.args
        if not args:
            return None
        template = _constant_str(args[0])
        if template is not None and len(args) > 1:
            return _percent(template, list(args[1:]), None)
        return _pieces(args[0]) or _slot(args[0])
    return None


def _template_match(pieces: list[_Piece], target: str) -> _Slot | None:
    """The slot whose number the output parser reads under ``target``."""
    slots: list[_Slot] = []
    text: list[str] = []
    for piece in pieces:
        if isinstance(piece, _Slot):
            text.append(str(_SLOT_BASE + len(slots)))
            slots.append(piece)
        else:
            text.append(piece)
    value = metrics_from_text("".join(text)).get(target)
    if value is None:
        return None
    index = int(value) - _SLOT_BASE
    return slots[index] if 0 <= index < len(slots) and value == int(value) else None


# ---------------------------------------------------------------- the notebook's code


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
        text = _constant_str(key)
        if text is not None and normalize_name(text) == normalize_name(target):
            return value
    return None


def _dict_key(node: ast.Dict, target: str) -> str | None:
    for key in node.keys:
        text = _constant_str(key)
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
            tree = parse_cell(cell.source)
            if tree is not None:
                self.sources.append(_Source(cell, cell.source, tree))
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
                key = _constant_str(target.slice)
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
        for key in assigned.keys:
            if normalize_name(key) == target:
                return _subscript(name, key)
        value = assigned.value
        key = None
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
                for column, value in zip(columns.elts, row.elts, strict=False):
                    label = _constant_str(column)
                    if label is not None and normalize_name(label) == target:
                        return _expr_text(value, src.text)
            return None
    if isinstance(data, ast.Name):
        return _named_value(data.id, target, src, code, outputs)
    if not isinstance(data, ast.Dict):
        return None
    value = _dict_value(data, target)
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
        pieces = _call_pieces(node)
        slot = _template_match(pieces, target) if pieces is not None else None
        if slot is not None:
            text = _expr_text(slot.node, src.text)
            found.append(_Candidate("stdout", f"{_paren(text)} * 100" if slot.percent else text))
    last = src.tree.body[-1] if src.tree.body else None
    shows_result = not src.text.rstrip().endswith(";")
    if isinstance(last, ast.Expr) and shows_result:
        value = last.value
        is_output_call = isinstance(value, ast.Call) and (
            _call_pieces(value) is not None or dotted_name(value.func) == "display"
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
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
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
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
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
    tree = parse_cell(code)
    if tree is None or not binding.names:
        return []
    defined, star = defined_names(tree)
    for cell in [*later_cells, *earlier_cells]:
        other = parse_cell(cell.source) if cell.cell_type == "code" else None
        if other is not None:
            names, other_star = defined_names(other)
            defined |= names
            star = star or other_star
    missing = [n for n in binding.names if n not in defined]
    if not missing or star:
        return []
    shown = ", ".join(f"`{n}`" for n in missing)
    return [
        f"this variation no longer computes {shown}; "
        f"the metric '{binding.name}' is read from `{binding.expression}`"
    ]


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


# ---------------------------------------------------------------- evaluation in the kernel


def _wrapped(expression: str) -> str:
    try:
        canonical = ast.unparse(ast.parse(expression, mode="eval"))
    except SyntaxError:
        return repr(f"not a Python expression: {expression[:_ERROR_CHARS]}")
    # Non-numbers come back as a message string; float() errors come back as kernel errors.
    return (
        "(lambda v: float(v) if hasattr(v, '__float__') and not isinstance(v, (str, bytes, bool))"
        f" else 'not a number: ' + type(v).__name__)(({canonical}))"
    )


def binding_expression_code(bindings: Iterable[MetricBinding]) -> dict[str, str]:
    """Jupyter ``user_expressions`` that read each bound metric as a float, by metric name."""
    return {b.name: _wrapped(b.expression) for b in bindings}


def read_user_expressions(
    reply: dict[str, Any],
) -> tuple[dict[str, float], dict[str, str]]:
    """The values and the errors in an execute reply's ``user_expressions``."""
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, item in reply.items():
        if not isinstance(item, dict):
            errors[name] = "no result"
            continue
        status = item.get("status")
        if status == "error":
            ename, evalue = str(item.get("ename", "Error")), str(item.get("evalue", ""))
            errors[name] = f"{ename}: {evalue}"[:_ERROR_CHARS] if evalue else ename
            continue
        data = item.get("data")
        plain = data.get("text/plain") if isinstance(data, dict) else None
        if status != "ok" or not isinstance(plain, str):
            errors[name] = f"no value ({status or 'no status'})"
            continue
        value, error = _number(plain)
        if value is not None:
            values[name] = value
        else:
            errors[name] = error
    return values, errors


def parse_user_expression_results(reply: dict[str, Any]) -> dict[str, float]:
    """The numbers in an execute reply's ``user_expressions`` (errors left out)."""
    return read_user_expressions(reply)[0]


def _number(plain: str) -> tuple[float | None, str]:
    text = plain.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return (value, "") if math.isfinite(value) else (None, f"not a finite number: {text}")
    try:
        said = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        said = None
    if isinstance(said, str):
        return None, said[:_ERROR_CHARS]
    return None, f"not a number: {text[:_ERROR_CHARS]}"
