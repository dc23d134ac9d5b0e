"""Print and logging calls as text templates, matched against the output parser.

Each expression of the call becomes a slot; rendering puts a unique number in each slot, and
the number :func:`metrics.metrics_from_text` reads under a metric's name points back to the
expression that printed it.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass

from .literals import dotted_name
from .metrics import metrics_from_text

_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "critical", "exception", "log"}
_SLOT_BASE = 987_654_321_000  # numbers no real template holds
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)


@dataclass
class Slot:
    node: ast.expr
    percent: bool = False  # formatted with a "%" spec: the printed number is 100 x the value


Piece = str | Slot


def slot(node: ast.expr, spec: str = "") -> list[Piece]:
    return [Slot(node, percent=spec.endswith("%"))]


def constant_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _pieces(node: ast.expr) -> list[Piece] | None:
    """The text ``node`` renders to, with expressions as slots; None when it is not text."""
    text = constant_str(node)
    if text is not None:
        return [text]
    if isinstance(node, ast.JoinedStr):
        out: list[Piece] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec
                spec_text = "".join(
                    v.value
                    for v in (spec.values if isinstance(spec, ast.JoinedStr) else [])
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )
                out += slot(value.value, spec_text)
            elif (piece := constant_str(value)) is not None:
                out.append(piece)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left), _pieces(node.right)
        if left is None and right is None:
            return None
        return (left or slot(node.left)) + (right or slot(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        template = constant_str(node.left)
        if template is None:
            return None
        operand = node.right
        if isinstance(operand, ast.Dict):
            return _percent(template, [], operand)
        args = list(operand.elts) if isinstance(operand, ast.Tuple) else [operand]
        return _percent(template, args, None)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            pattern = constant_str(func.value)
            return None if pattern is None else _str_format(pattern, node)
        if isinstance(func, ast.Name) and func.id in ("str", "repr") and len(node.args) == 1:
            return slot(node.args[0])
        if isinstance(func, ast.Name) and func.id == "format" and node.args:
            given = constant_str(node.args[1]) if len(node.args) > 1 else ""
            return slot(node.args[0], given or "")
    return None


def _percent(template: str, args: list[ast.expr], mapping: ast.Dict | None) -> list[Piece]:
    """``"loss=%.3f" % loss`` as pieces."""
    out: list[Piece] = []
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
            value = _keyed(mapping, key) if mapping is not None else None
            out += slot(value) if value is not None else ["x"]
        elif queue:
            out += slot(queue.pop(0))
        else:
            out.append("x")
    out.append(template[last:])
    return out


def _keyed(mapping: ast.Dict, key: str) -> ast.expr | None:
    """The value of ``key`` in a dict literal: ``"%(acc).3f" % {"acc": acc}``."""
    for name, value in zip(mapping.keys, mapping.values, strict=True):
        if constant_str(name) == key:
            return value
    return None


def _str_format(template: str, call: ast.Call) -> list[Piece] | None:
    """``"loss={}".format(loss)`` as pieces."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    out: list[Piece] = []
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
        out += slot(node, spec or "") if node is not None else ["x"]
    return out


def call_pieces(call: ast.Call) -> list[Piece] | None:
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
        sep_text = constant_str(sep) if sep is not None else " "
        out: list[Piece] = []
        for index, arg in enumerate(call.args):
            if index:
                out.append(sep_text if sep_text is not None else " ")
            out += _pieces(arg) or slot(arg)
        return out
    method = name.rsplit(".", 1)[-1]
    if "." in name and method in _LOG_METHODS and not name.startswith("warnings."):
        args = call.args[1:] if method == "log" else call.args
        if not args:
            return None
        template = constant_str(args[0])
        if template is not None and len(args) > 1:
            return _percent(template, list(args[1:]), None)
        return _pieces(args[0]) or slot(args[0])
    return None


def template_match(pieces: list[Piece], target: str) -> Slot | None:
    """The slot whose number the output parser reads under ``target``."""
    slots: list[Slot] = []
    text: list[str] = []
    for piece in pieces:
        if isinstance(piece, Slot):
            text.append(str(_SLOT_BASE + len(slots)))
            slots.append(piece)
        else:
            text.append(piece)
    value = metrics_from_text("".join(text)).get(target)
    if value is None:
        return None
    index = int(value) - _SLOT_BASE
    return slots[index] if 0 <= index < len(slots) and value == int(value) else None
