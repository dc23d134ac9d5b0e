"""Researcher-defined sweeps: ``lr=0.001,0.01,0.1 epochs=3,10`` becomes a grid of proposals.

Each name must be bound to a literal in the target cell (``lr = 0.1`` or ``fit(lr=0.1)``);
every grid point is one proposal whose code is the cell with those literals replaced.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from typing import Any

from .errors import InvalidInput
from .literals import (
    LiteralSite,
    find_literal_sites,
    is_plot_call,
    parse_cell,
    render_value,
    replace_spans,
)
from .models import Origin, Proposal, ProposalKind

MAX_COMBINATIONS = 64

_NAME_AT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
_EXAMPLE = "e.g. lr=0.001,0.01,0.1 epochs=3,10"


def parse_sweep(spec: str) -> dict[str, list[Any]]:
    """Parse a sweep specification into ``{name: [values...]}`` (names in the order given).

    Assignments are separated by spaces or ``;``; values by commas. Values are Python
    literals (numbers, ``True``/``False``/``None``, quoted strings, tuples). Raises
    :class:`InvalidInput` with a message that names the faulty part.
    """
    text = spec.strip()
    if not text:
        raise InvalidInput(f"sweep: empty specification ({_EXAMPLE})")
    starts = _assignment_starts(text)
    if not starts or text[: starts[0][0]].strip(" \t\n;,"):
        head = text[: starts[0][0]].strip() if starts else text
        raise InvalidInput(f"sweep: expected name=values, got '{head}' ({_EXAMPLE})")
    result: dict[str, list[Any]] = {}
    for position, (_, value_start, name) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(text)
        raw_values = text[value_start:end].strip().strip(";").strip()
        if name in result:
            raise InvalidInput(f"sweep: '{name}' is given twice")
        if not raw_values.rstrip(","):
            raise InvalidInput(f"sweep: '{name}' has no values")
        values: list[Any] = []
        for item in _split_top_level(raw_values.rstrip(",")):
            item = item.strip()
            if not item:
                raise InvalidInput(f"sweep: '{name}' has an empty value in '{raw_values}'")
            value = _literal(name, item)
            if value not in values:
                values.append(value)
        result[name] = values
    return result


def _assignment_starts(text: str) -> list[tuple[int, int, str]]:
    """``(start, value_start, name)`` of each ``name=`` outside quotes and brackets."""
    found: list[tuple[int, int, str]] = []
    depth = 0
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and (index == 0 or text[index - 1] in " \t\n;,"):
            match = _NAME_AT.match(text, index)
            if match:
                found.append((index, match.end(), match.group(1)))
                index = match.end()
                continue
        index += 1
    return found


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside quotes and brackets."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _literal(name: str, item: str) -> Any:
    try:
        value = ast.literal_eval(item)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        hint = f"; quote strings: '{item}'" if item.isidentifier() else ""
        raise InvalidInput(
            f"sweep: value {item!r} for '{name}' is not a Python literal{hint}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"sweep: value {item!r} for '{name}' is not a finite number")
    return value


# ---------------------------------------------------------------- overrides


def overridable_sites(source: str) -> list[LiteralSite]:
    """Literals a sweep or override can replace: assignments and keyword arguments.

    Keyword arguments of plotting calls are left out: ``plt.plot(alpha=0.5)`` is opacity.
    """
    return [
        s
        for s in find_literal_sites(source)
        if s.context == "assign" or (s.context == "keyword" and not is_plot_call(s.call))
    ]


def known_names(sites: list[LiteralSite]) -> list[str]:
    names: list[str] = []
    for site in sites:
        if site.name not in names:
            names.append(site.name)
    return names


def apply_overrides(source: str, overrides: dict[str, Any]) -> str:
    """The source with every literal bound to each overridden name replaced.

    ``lr`` matches ``lr = 0.1`` at the top level of the cell and ``fit(lr=0.1)`` anywhere;
    when a name is bound in several places, all of them change, so the value the cell ends
    up using is the override whichever binding runs last.
    """
    if not overrides:
        return source
    if parse_cell(source) is None:
        raise InvalidInput("the cell is not valid Python, so its values cannot be overridden")
    sites = overridable_sites(source)
    names = known_names(sites)
    for name in overrides:
        if name not in names:
            raise InvalidInput(_unknown_name_message(name, names))
    edits = [
        (site.start, site.end, render_value(overrides[site.name]))
        for site in sites
        if site.name in overrides
    ]
    return replace_spans(source, edits)


def _unknown_name_message(name: str, names: list[str]) -> str:
    if not names:
        return f"unknown variable '{name}' in the cell: the cell assigns no literal values"
    return f"unknown variable '{name}' in the cell: known are {', '.join(names)}"


def sweep_proposals(source: str, spec: str) -> list[Proposal]:
    """One proposal per point of the grid the spec describes (first name varies slowest)."""
    grid = parse_sweep(spec)
    if parse_cell(source) is None:
        raise InvalidInput("the cell is not valid Python, so it cannot be swept")
    names = known_names(overridable_sites(source))
    for name in grid:
        if name not in names:
            raise InvalidInput(_unknown_name_message(name, names))
    total = math.prod(len(values) for values in grid.values())
    if total > MAX_COMBINATIONS:
        sizes = " × ".join(str(len(values)) for values in grid.values())
        raise InvalidInput(
            f"sweep: {sizes} = {total} combinations; the limit is {MAX_COMBINATIONS}"
        )
    proposals: list[Proposal] = []
    for combination in itertools.product(*grid.values()):
        overrides = dict(zip(grid.keys(), combination, strict=True))
        title = ", ".join(f"{name}={render_value(value)}" for name, value in overrides.items())
        code = apply_overrides(source, overrides)
        warnings = ["This combination leaves the cell unchanged."] if code == source else []
        proposals.append(
            Proposal(
                title=title,
                kind=ProposalKind.PARAMETER,
                origin=Origin.RESEARCHER,
                rationale=f"Sweep point requested by the researcher: {title}.",
                code=code,
                overrides=overrides,
                warnings=warnings,
            )
        )
    return proposals
