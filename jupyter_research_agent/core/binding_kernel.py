"""Reading bound metrics in a side kernel: ``user_expressions`` code and the reply's values.

Each expression is wrapped so a non-number comes back as a message instead of a value, and
the reply is read into numbers and plain error messages, by metric name.
"""

from __future__ import annotations

import ast
import math
import queue
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .models import MetricBinding

if TYPE_CHECKING:
    from .kernels import SideKernel

_ERROR_CHARS = 200
_POLL_S = 0.2  # how long the reply may keep us waiting before the kernel process is checked


async def evaluate_in_kernel(
    kernel: SideKernel, expressions: dict[str, str]
) -> tuple[dict[str, float], dict[str, str]]:
    """Evaluate ``user_expressions`` silently (nothing shown, no history) on a kernel that has
    run a run's cells; the values and errors by name. The caller's timeout bounds the wait."""
    if not expressions:
        return {}, {}
    client = kernel.client
    msg_id = client.execute(
        "",
        silent=True,
        store_history=False,
        allow_stdin=False,
        user_expressions=expressions,
    )
    while True:
        try:
            reply = await client.get_shell_msg(timeout=_POLL_S)
        except queue.Empty:
            if not await kernel.is_alive():
                return {}, dict.fromkeys(expressions, "the kernel died while reading it")
            continue
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            content = reply.get("content") or {}
            return read_user_expressions(content.get("user_expressions") or {})


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
