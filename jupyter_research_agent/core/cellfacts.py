"""What one notebook cell binds, changes and reads, read from its code with ``ast``.

Used by ``state.py`` to slice a notebook; see there for what the facts mean for a run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

ENV = "@env"
# Draws from a global random generator: the numbers a cell draws depend on every earlier draw,
# so a cell drawing after the target keeps the earlier drawing cells in the slice.
RNG = "@rng"
_TORCH_DRAWS = ("rand", "normal", "bernoulli", "multinomial", "manual_seed", "seed")

# Calls whose arguments are only read: passing a name to them does not change it.
_PURE = """print len repr str int float bool complex bytes list tuple set frozenset dict sorted
reversed enumerate zip range type isinstance issubclass hasattr getattr id hash abs round
min max sum any all format divmod pow ord chr hex oct bin display callable iter"""
PURE_CALLS = frozenset(_PURE.split())
# Reading these means the code depends on the interpreter's own namespace or history.
UNSURE_CALLS = frozenset({"exec", "eval", "globals", "locals", "vars", "get_ipython", "execfile"})
_HISTORY = re.compile(r"^(In|Out|_|__|___|_i|_ii|_iii|_ih|_oh|_dh|_i?\d+)$")
# A call through a module that changes the module's own state (seeding, options, paths).
MODULE_SETTERS = re.compile(
    r"(seed|^set|^use$|filterwarnings|simplefilter|chdir|putenv|^append$|^insert$|^extend$"
    r"|^update$|^register|^enable|^disable|^config|^reload$|^rc$)"
)
PROCESS_MODULES = frozenset({"os", "sys", "importlib", "warnings", "builtins", "site"})
# Line magics that change nothing the slice needs but the process: kept, never unsure.
_SAFE_LINE_MAGICS = frozenset(
    {"matplotlib", "config", "load_ext", "reload_ext", "autoreload", "aimport", "precision"}
)
_SAFE_CELL_MAGICS = frozenset({"time", "capture"})
_MAGIC_LINE = re.compile(r"^(\s*)(%{1,2}|!)(\w*)(.*)$")
_ASSIGNED_MAGIC = re.compile(r"=\s*[%!]")


@dataclass(frozen=True)
class CellFacts:
    """What one cell binds, changes and reads, as far as the code says."""

    binds: frozenset[str] = frozenset()  # names bound by assignment, import, def, class, del
    changes: frozenset[str] = frozenset()  # names changed in place (item/attr store, methods)
    passes: frozenset[str] = frozenset()  # names passed to calls that might change them
    kills: frozenset[str] = frozenset()  # names rebound unconditionally at the top level
    uses: frozenset[str] = frozenset()  # names read, including free names of its functions
    module_calls: frozenset[tuple[str, str]] = frozenset()  # (root, method) of x.y.m(...)
    random_roots: frozenset[str] = frozenset()  # roots of calls that may draw random numbers
    imports: tuple[str, ...] = ()  # source of the top-level import statements
    imported: frozenset[str] = frozenset()  # names bound by those imports
    # name -> (source, names it reads) of the top-level def/class statement binding it last
    statements: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    # function name -> module-level names its body rebinds (``global``) or changes
    function_writes: dict[str, frozenset[str]] = field(default_factory=dict)
    env: bool = False
    unsure: str | None = None


# ---------------------------------------------------------------- one cell


def analyse_cell(source: str) -> CellFacts:
    """The facts of one cell's source (IPython syntax included)."""
    code, env, unsure, captured = _strip_magics(source)
    if unsure:
        return CellFacts(unsure=unsure)
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        return CellFacts(unsure=f"the code does not parse ({err.msg}, line {err.lineno})")
    walker = _Walker(code)
    for stmt in tree.body:
        walker.top_level(stmt)
    if walker.unsure:
        return CellFacts(unsure=walker.unsure)
    binds = walker.binds | captured
    return CellFacts(
        binds=frozenset(binds),
        changes=frozenset(walker.changes),
        passes=frozenset(walker.passes),
        kills=frozenset(walker.kills | captured),
        uses=frozenset(walker.uses),
        module_calls=frozenset(walker.module_calls),
        random_roots=frozenset(walker.random_roots),
        imports=tuple(walker.imports),
        imported=frozenset(walker.imported),
        statements=walker.statements,
        function_writes=walker.function_writes,
        env=env or walker.env,
    )


def _strip_magics(source: str) -> tuple[str, bool, str | None, set[str]]:
    """Replace harmless magics by ``pass``; any other magic makes the cell unsure."""
    lines = source.splitlines()
    env = False
    captured: set[str] = set()
    out: list[str] = []
    for number, line in enumerate(lines):
        match = _MAGIC_LINE.match(line)
        if match is None:
            if _ASSIGNED_MAGIC.search(line) and not _parses(line.strip()):
                return "", False, "a magic's value is assigned", set()
            out.append(line)
            continue
        indent, kind, name, rest = match.groups()
        if kind == "%%" and number == 0 and name in _SAFE_CELL_MAGICS:
            # %%capture out: the captured output becomes a variable of the notebook.
            words = rest.split()
            captured.update(w for w in words if w.isidentifier())
            env = True
            out.append("")
            continue
        if kind == "%" and name in _SAFE_LINE_MAGICS:
            env = True
            out.append(f"{indent}pass")
            continue
        shown = f"{kind}{name}".strip()
        return "", False, f"the IPython magic {shown} cannot be analysed", set()
    return "\n".join(out), env, None, captured


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _root(node: ast.expr) -> str | None:
    """``a`` for ``a``, ``a.b.c``, ``a[0].b``, ``a.b(...)[1]``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return None


def _random_root(func: ast.expr) -> str | None:
    """The root name of ``random.x()``, ``np.random.x()``, ``torch.rand*()`` and the like."""
    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not parts:
        return None
    if node.id == "random" or "random" in parts:
        return node.id
    if node.id == "torch" and parts[0].startswith(_TORCH_DRAWS):
        return node.id
    return None


def _target_names(target: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


class _Scope:
    """Names seen in one function, lambda, comprehension or class body."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.declared_global: set[str] = set()
        self.changed: set[str] = set()  # roots changed in place inside the body


class _Walker:
    """Collects the facts of a cell, statement by statement."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.binds: set[str] = set()
        self.changes: set[str] = set()
        self.passes: set[str] = set()
        self.kills: set[str] = set()
        self.uses: set[str] = set()
        self.module_calls: set[tuple[str, str]] = set()
        self.random_roots: set[str] = set()
        self.imports: list[str] = []
        self.imported: set[str] = set()
        self.statements: dict[str, tuple[str, frozenset[str]]] = {}
        self.function_writes: dict[str, frozenset[str]] = {}
        self.env = False
        self.unsure: str | None = None

    # ------------------------------------------------------------ statements

    def top_level(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            free, writes = self._definition(stmt)
            self.binds.add(stmt.name)
            self.kills.add(stmt.name)
            self.uses.update(free)
            self.statements[stmt.name] = (ast.get_source_segment(self.code, stmt) or "", free)
            if writes:
                self.function_writes[stmt.name] = frozenset(writes)
            return
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            self._import(stmt)
            return
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    self.kills.add(target.id)
                elif isinstance(target, ast.Tuple | ast.List):
                    self.kills.update(e.id for e in target.elts if isinstance(e, ast.Name))
        self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        """Any statement outside function bodies (nested in if/for/with/try included)."""
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            free, writes = self._definition(stmt)
            self.binds.add(stmt.name)
            self.uses.update(free)
            self.changes.update(writes)
            return
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            self._import(stmt, top=False)
            return
        if isinstance(stmt, ast.Global | ast.Nonlocal):
            return
        for node in _own_nodes(stmt):
            self._node(node)

    def _import(self, stmt: ast.Import | ast.ImportFrom, top: bool = True) -> None:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            return
        for alias in stmt.names:
            if alias.name == "*":
                self.unsure = f"star import from {getattr(stmt, 'module', '')}"
                return
            bound = alias.asname or alias.name.split(".")[0]
            self.binds.add(bound)
            self.imported.add(bound)
            if top:
                self.kills.add(bound)
        if top:
            self.imports.append(ast.get_source_segment(self.code, stmt) or "")

    # ------------------------------------------------------------ expressions

    def _node(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            root = _root(node.value)
            if root is not None:
                self.changes.add(root)
                self.uses.add(root)
        elif isinstance(node, ast.AugAssign):
            root = _root(node.target)
            if root is not None:
                self.changes.add(root)
                self.uses.add(root)
        elif isinstance(node, _EXPR_SCOPES):
            free, writes = self._scoped(node)
            self.uses.update(free)
            self.changes.update(writes)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            self.binds.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.binds.add(node.rest)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self.binds.add(node.name)

    def _name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if _HISTORY.match(node.id):
                self.unsure = f"reads IPython's history variable {node.id}"
            elif node.id in UNSURE_CALLS - {"vars"}:
                self.unsure = f"uses {node.id}()"
            self.uses.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.binds.add(node.id)
        else:  # del x: the name goes away, which later cells may notice
            self.binds.add(node.id)
            self.uses.add(node.id)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "vars" and not node.args:
            self.unsure = "uses vars()"
        if isinstance(func, ast.Attribute):
            root = _root(func.value)
            if root is not None:
                # Resolved per notebook: a method call changes its object, a setter its module.
                self.module_calls.add((root, func.attr))
        drawn = _random_root(func)
        if drawn is not None:
            self.random_roots.add(drawn)
        pure = isinstance(func, ast.Name) and func.id in PURE_CALLS
        if not pure:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                root = _root(arg)
                if root is not None and isinstance(arg, ast.Name | ast.Starred | ast.Attribute):
                    self.passes.add(root)

    # ------------------------------------------------------------ scopes

    def _definition(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> tuple[frozenset[str], set[str]]:
        """Free names of a def/class (decorators, defaults, bases, body) and its writes."""
        outer: set[str] = set()
        for deco in node.decorator_list:
            outer |= self._expr_uses(deco)
        if isinstance(node, ast.ClassDef):
            for base in [*node.bases, *(k.value for k in node.keywords)]:
                outer |= self._expr_uses(base)
        else:
            args = node.args
            for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
                outer |= self._expr_uses(default)
        free, writes = self._scoped(node)
        return frozenset((free | outer) - {node.name}), writes

    def _expr_uses(self, expr: ast.expr) -> set[str]:
        found = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
        if found & UNSURE_CALLS - {"vars"}:
            self.unsure = "uses " + ", ".join(sorted(found & UNSURE_CALLS)) + "()"
        return found

    def _scoped(self, node: ast.AST) -> tuple[set[str], set[str]]:
        """Free names read in a nested scope and module-level names it changes."""
        scope = _Scope()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                scope.stores.add(arg.arg)
            for extra in (args.vararg, args.kwarg):
                if extra is not None:
                    scope.stores.add(extra.arg)
        body: list[ast.AST]
        if isinstance(node, ast.Lambda):
            body = [node.body]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = list(node.body)
        elif isinstance(node, ast.DictComp):
            body = [node.key, node.value, *node.generators]
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            body = [node.elt, *node.generators]
        else:
            body = []
        nested_free: set[str] = set()
        nested_writes: set[str] = set()
        for part in body:
            for child in _scope_nodes(part):
                if isinstance(child, _SCOPES):
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        scope.stores.add(child.name)
                        inner, writes = self._definition(child)
                        free = set(inner)
                    else:
                        free, writes = self._scoped(child)
                    nested_free |= free
                    nested_writes |= writes
                    continue
                self._scope_node(child, scope)
        local = scope.stores - scope.declared_global
        free = (scope.loads | nested_free) - local
        writes = (scope.stores & scope.declared_global) | (scope.changed - local)
        writes |= nested_writes - local
        return free, writes

    def _scope_node(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Global):
            scope.declared_global.update(node.names)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                if node.id in UNSURE_CALLS - {"vars"}:
                    self.unsure = f"uses {node.id}()"
                scope.loads.add(node.id)
            else:
                scope.stores.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    self.unsure = "star import inside a function"
                scope.stores.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            root = _root(node.value)
            if root is not None:
                scope.changed.add(root)
                scope.loads.add(root)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = _root(node.func.value)
            if root is not None:
                scope.changed.add(root)
            if _random_root(node.func) is not None:
                scope.changed.add(RNG)  # a function drawing numbers: calling it draws
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.stores.add(node.name)


_EXPR_SCOPES = (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp)
_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.GeneratorExp,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
)


def _own_nodes(stmt: ast.AST) -> Iterable[ast.AST]:
    """Nodes of a statement, not descending into nested scopes (those are yielded once)."""
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        yield node
        if node is not stmt and isinstance(node, _SCOPES):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _scope_nodes(part: ast.AST) -> Iterable[ast.AST]:
    """Nodes of one scope's body; nested scopes are yielded but not entered."""
    stack: list[ast.AST] = [part]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue  # the caller analyses it as a scope of its own
        stack.extend(ast.iter_child_nodes(node))
