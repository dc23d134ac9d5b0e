"""Which earlier cells a run needs: names defined and used per cell, and a backward slice.

The analysis reads code only (``ast``). A cell *defines* a name when it binds, deletes or
changes it: ``df["x"] = ...``, ``obj.attr = ...``, ``obj.append(...)`` and passing ``obj`` to a
function all count as changing ``obj``. A cell *uses* the names it reads, including the globals
read inside the functions and classes it defines. Whatever the analysis cannot see through
(most IPython magics, ``exec``/``eval``, ``globals()``, star imports, syntax errors, IPython's
history variables) makes it *unsure*, and an unsure run replays the whole prefix.

Cells that change the process (``sys.path``, ``os.chdir``, ``os.environ``, harmless magics such
as ``%matplotlib``) define the pseudo-name ``ENV`` that every slice needs, so they are always kept.
Draws from the global generators of ``random``, NumPy and PyTorch read and change the pseudo-name
``RNG``, so the numbers a run draws are those a full replay would draw.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .cellfacts import ENV, MODULE_SETTERS, PROCESS_MODULES, RNG, CellFacts, analyse_cell
from .models import Cell

__all__ = [
    "ENV",
    "RNG",
    "CellFacts",
    "Resolved",
    "StatePlan",
    "analyse_cell",
    "backward_slice",
    "definition_statements",
    "import_statements",
    "plan_run",
    "resolve",
    "statement_inputs",
]


@dataclass(frozen=True)
class Resolved:
    """A cell's facts once earlier cells are known (which names are modules, which
    functions write globals)."""

    defines: frozenset[str]  # binds, changes, passes, and what called functions write
    changes_inputs: frozenset[str]  # names rebound or changed in place (not merely passed)
    uses: frozenset[str]
    kills: frozenset[str]
    touches_modules: bool  # changes a module's state: a kernel after it is not like new


@dataclass(frozen=True)
class StatePlan:
    """How a run's state can be rebuilt: which prefix cells matter and what the run reads."""

    sure: bool
    reason: str  # why the analysis gave up (empty when sure)
    target_index: int
    prefix: tuple[int, ...]  # indices of the prefix cells to replay, in order
    inputs: tuple[str, ...]  # names the run's cells read that prefix cells define
    changed_inputs: tuple[str, ...]  # inputs the run's cells rebind or change in place
    module_clean: bool  # no executed cell changes module state
    facts: tuple[CellFacts, ...] = ()
    resolved: tuple[Resolved, ...] = ()

    @property
    def skipped(self) -> int:
        return self.target_index - len(self.prefix)


def resolve(facts: Sequence[CellFacts]) -> list[Resolved]:
    """Resolve module calls and function writes in notebook order."""
    modules: set[str] = set()
    writers: dict[str, frozenset[str]] = {}
    out: list[Resolved] = []
    for fact in facts:
        changes = set(fact.changes)
        touches = bool((fact.changes | fact.passes) & modules)
        for root, method in fact.module_calls:
            if root not in modules:
                changes.add(root)
            elif MODULE_SETTERS.search(method):
                changes.add(root)
                # Seeding is undone before every run (seed prelude, restored generators).
                touches = touches or "seed" not in method
        written: set[str] = set()
        for name in fact.uses:
            written |= writers.get(name, frozenset())
        defines = set(fact.binds) | changes | set(fact.passes) | written
        env = fact.env or bool(changes & modules & PROCESS_MODULES)
        if env:
            defines.add(ENV)
        uses = set(fact.uses) | changes
        if fact.random_roots & modules or RNG in written:
            defines.add(RNG)
            uses.add(RNG)
        out.append(
            Resolved(
                defines=frozenset(defines),
                changes_inputs=frozenset((changes | written | set(fact.binds)) - fact.kills),
                uses=frozenset(uses),
                kills=frozenset(fact.kills),
                touches_modules=touches or fact.env,
            )
        )
        # Later cells see this cell's imports as modules, unless they were rebound here.
        modules = (modules - (fact.binds - fact.imported)) | fact.imported
        for name in fact.binds:
            writers.pop(name, None)
        writers.update(fact.function_writes)
    return out


def backward_slice(
    resolved: Sequence[Resolved], candidates: Iterable[int], needed: Iterable[str]
) -> list[int]:
    """The candidate cells (walked last to first) that define a needed name, transitively."""
    want = set(needed)
    kept: list[int] = []
    for index in sorted(candidates, reverse=True):
        cell = resolved[index]
        if cell.defines & want or ENV in cell.defines:
            kept.append(index)
            want = (want - (cell.kills - {ENV})) | cell.uses
    return sorted(kept)


def expression_names(expressions: Iterable[str]) -> set[str]:
    """Every name the given expressions (or statements) read; unparsable ones read nothing."""
    names: set[str] = set()
    for text in expressions:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def plan_run(cells: Sequence[Cell], target_index: int, extra_uses: Iterable[str] = ()) -> StatePlan:
    """Analyse the code cells of a run (prefix, target, downstream) for a sliced rebuild.

    ``extra_uses`` are names read after the last cell (the metric bindings' expressions): the
    cells that define them must be kept too."""
    code = [c for c in cells if c.cell_type == "code"]
    facts = [analyse_cell(c.source) for c in code]
    full = tuple(range(target_index))
    for index, fact in enumerate(facts):
        if fact.unsure is not None:
            reason = f"cell {code[index].id}: {fact.unsure}"
            return StatePlan(False, reason, target_index, full, (), (), False, tuple(facts))
    resolved = resolve(facts)
    prefix_defines: set[str] = set()
    for cell in resolved[:target_index]:
        prefix_defines |= cell.defines
    run_uses: set[str] = set(extra_uses)
    run_changes: set[str] = set()
    for cell in resolved[target_index:]:
        run_uses |= cell.uses
        run_changes |= cell.changes_inputs - {RNG}
    wanted = run_uses & prefix_defines
    inputs = sorted(n for n in wanted if not n.startswith("@"))
    kept = backward_slice(resolved, range(target_index), wanted)
    clean = not any(resolved[i].touches_modules for i in [*kept, *range(target_index, len(code))])
    return StatePlan(
        sure=True,
        reason="",
        target_index=target_index,
        prefix=tuple(kept),
        inputs=tuple(inputs),
        changed_inputs=tuple(sorted(run_changes & set(inputs))),
        module_clean=clean,
        facts=tuple(facts),
        resolved=tuple(resolved),
    )


def definition_statements(plan: StatePlan, names: Iterable[str]) -> dict[str, str]:
    """Names whose value comes from a top-level def/class statement that nothing after it in
    the slice changes: rebuilt by running that one statement (name -> source)."""
    found: dict[str, str] = {}
    for name in names:
        for index in reversed(plan.prefix):
            fact = plan.facts[index]
            if name in plan.resolved[index].defines:
                if name in fact.statements and name not in fact.changes | fact.passes:
                    found[name] = fact.statements[name][0]
                break
    return found


def statement_inputs(plan: StatePlan, names: Iterable[str]) -> set[str]:
    """The names that the def/class statements of ``names`` read, transitively."""
    want = set(names)
    todo = list(want)
    while todo:
        name = todo.pop()
        for index in reversed(plan.prefix):
            fact = plan.facts[index]
            if name in plan.resolved[index].defines:
                if name in fact.statements:
                    for used in fact.statements[name][1]:
                        if used not in want and any(
                            used in plan.resolved[i].defines for i in plan.prefix
                        ):
                            want.add(used)
                            todo.append(used)
                break
    return want


def import_statements(plan: StatePlan) -> list[str]:
    """The top-level imports of the sliced prefix, in order (cheap, and they make submodules
    that pickled objects refer to importable as the notebook had them)."""
    return [source for index in plan.prefix for source in plan.facts[index].imports]
