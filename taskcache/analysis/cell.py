"""Pure source analysis: which names a cell reads and binds, and normalized code.

No IPython here: ``%%task`` transforms IPython syntax to plain Python before calling in.

Two analyses live here. ``analyze_cell`` follows the top-level statements of a cell in
order, tracking the names that are *definitely* bound at each point: a load of a name that
is not is an input. Branches (if/for/while/try/match) are walked with a copy of that set and
merged by intersection. Nested scopes (def, lambda, class, comprehensions) are summarised by
``summarize_scope`` as the names they read from outside, which count as reads where the scope is
created (conservative: the function may run later, when more names are bound).
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from dataclasses import dataclass
from functools import lru_cache

from taskcache.analysis.scopes import (
    FUNCS,
    Collector,
    definition_time_exprs,
    interpolated_names,
    parse_cell,
    sink_names,
    summarize_scope,
    timed_code,
)

__all__ = ["CellAnalysis", "normalize_source", "analyze_cell", "free_names", "sink_names",
           "definition_reads"]


@dataclass(frozen=True)
class CellAnalysis:
    inputs: tuple[str, ...]  # names read before (definitely) being assigned, first-use order
    outputs: tuple[str, ...]  # names bound at top level, first-binding order
    definitions: tuple[str, ...]  # subset of outputs bound by def/class/import (replayable code)
    has_result: bool  # the last statement is an expression not silenced by a trailing ';'
    normalized: str  # normalize_source(source)
    deleted: tuple[str, ...] = ()  # names a top-level ``del`` may remove
    star_import: bool = False  # ``from m import *`` at top level (replayed on a hit)
    silenced: bool = False  # the last statement is an expression hidden by a trailing ';'
    seeds: tuple[str, ...] = ()  # global generators seeded before anything could draw


# --------------------------------------------------------------------------- normalize

_COMPS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _strip_docstrings(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:] or [ast.Pass()]
    return body


@lru_cache(maxsize=4096)
def normalize_source(source: str) -> str:
    """Canonical text of the code: ast.dump without docstrings, comments or formatting."""
    module = ast.Module(body=_strip_docstrings(parse_cell(source)), type_ignores=[])
    for node in ast.walk(module):
        if isinstance(node, (*FUNCS, ast.ClassDef)):
            node.body = _strip_docstrings(node.body)
    return ast.dump(module, annotate_fields=True, include_attributes=False)


@lru_cache(maxsize=4096)
def free_names(source: str) -> tuple[str, ...]:
    """Global names a function/class source reads (loads not bound locally), sorted."""
    col = Collector("module")
    for stmt in parse_cell(source):
        col.visit(stmt)
    return tuple(sorted(col.loads))


def definition_reads(node: ast.stmt) -> frozenset[str]:
    """Names a def/class statement reads where it runs (decorators, defaults, annotations,
    bases), not when called; empty for any other statement."""
    if not isinstance(node, (*FUNCS, ast.ClassDef)):
        return frozenset()
    return frozenset(n.id for expr in definition_time_exprs(node) for n in ast.walk(expr)
                     if isinstance(n, ast.Name))


# --------------------------------------------------------------------------- cell flow

_TERMINATORS = (ast.Raise, ast.Return, ast.Break, ast.Continue)


def _intersect(before: set[str], paths: list[set[str]]) -> set[str]:
    return set.intersection(*paths) if paths else set(before)


class _Flow:
    """Walks a cell's statements in order with the set of definitely-bound names."""

    def __init__(self) -> None:
        self.inputs: dict[str, None] = {}
        self.outputs: dict[str, None] = {}
        self.definitions: dict[str, None] = {}
        self.deleted: dict[str, None] = {}
        self.star_import = False

    # names
    def read(self, name: str, bound: set[str]) -> None:
        if name not in bound:
            self.inputs.setdefault(name)

    def bind(self, name: str, bound: set[str], maybe: bool = False, definition: bool = False):
        self.outputs.setdefault(name)
        if definition:
            self.definitions.setdefault(name)
        if not maybe:
            bound.add(name)

    # statements
    def block(self, stmts: list[ast.stmt], bound: set[str]) -> bool:
        """Walk statements; True when the block always ends in raise/return/break/continue."""
        for stmt in stmts:
            self.stmt(stmt, bound)
        return bool(stmts) and isinstance(stmts[-1], _TERMINATORS)

    def branch(self, stmts: list[ast.stmt], bound: set[str]) -> tuple[set[str], bool]:
        state = set(bound)
        return state, self.block(stmts, state)

    def stmt(self, node: ast.stmt, bound: set[str]) -> None:
        method = getattr(self, f"stmt_{type(node).__name__}", None)
        if method is not None:
            method(node, bound)
        else:  # Expr, Return, Raise, Assert, Pass, Break, Continue, Global, Nonlocal
            for child in ast.iter_child_nodes(node):
                self.expr(child, bound)

    def stmt_Assign(self, node: ast.Assign, bound: set[str]) -> None:
        self.expr(node.value, bound)
        for target in node.targets:
            self.expr(target, bound)

    def stmt_AugAssign(self, node: ast.AugAssign, bound: set[str]) -> None:
        if isinstance(node.target, ast.Name):
            self.read(node.target.id, bound)
            self.expr(node.value, bound)
            self.bind(node.target.id, bound)
        else:
            self.expr(node.target, bound)
            self.expr(node.value, bound)

    def stmt_AnnAssign(self, node: ast.AnnAssign, bound: set[str]) -> None:
        if node.value is not None:
            self.expr(node.value, bound)
        self.expr(node.annotation, bound)
        if isinstance(node.target, ast.Name):
            if node.value is not None:
                self.bind(node.target.id, bound)
        else:
            self.expr(node.target, bound)

    def stmt_Import(self, node: ast.Import, bound: set[str]) -> None:
        for alias in node.names:
            self.bind(alias.asname or alias.name.split(".")[0], bound, definition=True)

    def stmt_ImportFrom(self, node: ast.ImportFrom, bound: set[str]) -> None:
        for alias in node.names:
            if alias.name == "*":  # binds names no analysis can know; replayed on a hit
                self.star_import = True
            else:
                self.bind(alias.asname or alias.name, bound, definition=True)

    def _scoped(self, node: ast.AST, bound: set[str]) -> None:
        for expr in definition_time_exprs(node):
            self.expr(expr, bound)
        info = summarize_scope(node)
        own = getattr(node, "name", None)  # a recursive function reads itself once bound
        for name in info.free:
            if name != own:
                self.read(name, bound)
        for name in info.global_writes:  # assigned only if the function is ever called
            self.bind(name, bound, maybe=True)
        for name in info.leaked:  # comprehensions may run zero times
            self.bind(name, bound, maybe=True)

    def stmt_FunctionDef(self, node: ast.FunctionDef, bound: set[str]) -> None:
        self._scoped(node, bound)
        self.bind(node.name, bound, definition=True)

    stmt_AsyncFunctionDef = stmt_ClassDef = stmt_FunctionDef  # type: ignore[assignment]

    def stmt_If(self, node: ast.If, bound: set[str]) -> None:
        self.expr(node.test, bound)
        branches = [self.branch(node.body, bound), self.branch(node.orelse, bound)]
        live = [state for state, done in branches if not done]
        new = _intersect(bound, live or [state for state, _ in branches])
        bound.clear()
        bound.update(new)

    def _loop(self, node: ast.For | ast.While, bound: set[str], target: ast.expr | None) -> None:
        body = set(bound)
        if target is not None:
            self.expr(target, body)
        self.block(node.body, body)
        orelse, _ = self.branch(node.orelse, bound)  # the body may run zero times
        new = bound & body & orelse
        bound.clear()
        bound.update(new)

    def stmt_For(self, node: ast.For, bound: set[str]) -> None:
        self.expr(node.iter, bound)
        self._loop(node, bound, node.target)

    stmt_AsyncFor = stmt_For  # type: ignore[assignment]

    def stmt_While(self, node: ast.While, bound: set[str]) -> None:
        self.expr(node.test, bound)
        self._loop(node, bound, None)

    def stmt_Try(self, node: ast.Try, bound: set[str]) -> None:
        body = set(bound)
        done = self.block(node.body, body)
        if node.orelse:
            done = self.block(node.orelse, body)
        paths = [] if done else [body]
        for handler in node.handlers:  # an exception may come before any body binding
            state = set(bound)
            if handler.type is not None:
                self.expr(handler.type, state)
            if handler.name:
                state.add(handler.name)  # bound in the handler, deleted at its end
            done = self.block(handler.body, state)
            if handler.name:
                state.discard(handler.name)
            if not done:
                paths.append(state)
        merged = _intersect(bound, paths)
        final = set(bound)
        self.block(node.finalbody, final)  # may run after an exception anywhere
        new = (merged | (final - bound)) - (bound - final)
        bound.clear()
        bound.update(new)

    stmt_TryStar = stmt_Try  # type: ignore[assignment]

    def stmt_With(self, node: ast.With, bound: set[str]) -> None:
        suppressing = False
        for item in node.items:
            self.expr(item.context_expr, bound)
            suppressing = suppressing or _is_suppress(item.context_expr)
            if item.optional_vars is not None:
                self.expr(item.optional_vars, bound)
        if not suppressing:  # the body runs to its end or the cell fails
            self.block(node.body, bound)
            return
        state, _ = self.branch(node.body, bound)
        new = bound & state
        bound.clear()
        bound.update(new)

    stmt_AsyncWith = stmt_With  # type: ignore[assignment]

    def stmt_Match(self, node: ast.Match, bound: set[str]) -> None:
        self.expr(node.subject, bound)
        paths: list[set[str]] = []
        exhaustive = False
        for case in node.cases:
            state = set(bound)
            self.pattern(case.pattern, state)
            if case.guard is not None:
                self.expr(case.guard, state)
            if not self.block(case.body, state):
                paths.append(state)
            if case.guard is None and _irrefutable(case.pattern):
                exhaustive = True
        if not exhaustive:
            paths.append(set(bound))
        new = _intersect(bound, paths)
        bound.clear()
        bound.update(new)

    def pattern(self, node: ast.pattern, bound: set[str]) -> None:
        if isinstance(node, ast.MatchValue):
            self.expr(node.value, bound)
        elif isinstance(node, ast.MatchClass):
            self.expr(node.cls, bound)
            for sub in [*node.patterns, *node.kwd_patterns]:
                self.pattern(sub, bound)
        elif isinstance(node, ast.MatchMapping):
            for key in node.keys:
                self.expr(key, bound)
            for sub in node.patterns:
                self.pattern(sub, bound)
            if node.rest:
                self.bind(node.rest, bound)
        elif isinstance(node, (ast.MatchSequence, ast.MatchOr)):
            for sub in node.patterns:
                self.pattern(sub, bound)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)):
            if isinstance(node, ast.MatchAs) and node.pattern is not None:
                self.pattern(node.pattern, bound)
            if node.name:
                self.bind(node.name, bound)

    # expressions
    def expr(self, node: ast.AST, bound: set[str], maybe: bool = False) -> None:
        for name in interpolated_names(node):  # x = !echo $who {n + 1}, %cd $folder
            self.read(name, bound)
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.read(node.id, bound)
            elif isinstance(node.ctx, ast.Store):
                self.bind(node.id, bound, maybe)
            else:  # del x: reads x and unbinds it
                self.read(node.id, bound)
                bound.discard(node.id)
                self.deleted.setdefault(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, bound, maybe)
            self.bind(node.target.id, bound, maybe)
        elif isinstance(node, ast.IfExp):
            self.expr(node.test, bound, maybe)
            self.expr(node.body, bound, True)
            self.expr(node.orelse, bound, True)
        elif isinstance(node, ast.BoolOp):
            self.expr(node.values[0], bound, maybe)
            for value in node.values[1:]:
                self.expr(value, bound, True)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    self.expr(key, bound, maybe)
                self.expr(value, bound, maybe)
        elif isinstance(node, _COMPS):
            self.expr(node.generators[0].iter, bound, maybe)
            info = summarize_scope(node)
            for name in info.free:
                self.read(name, bound)
            for name in info.leaked:
                self.bind(name, bound, maybe=True)
        elif isinstance(node, ast.Lambda):
            self._scoped(node, bound)
        elif (code := timed_code(node)) is not None:
            for child in ast.iter_child_nodes(node):
                self.expr(child, bound, maybe)
            self.block(code, bound)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child, bound, maybe)


def _is_suppress(node: ast.expr) -> bool:
    """A context manager that may swallow exceptions (contextlib.suppress)."""
    func = node.func if isinstance(node, ast.Call) else node
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "suppress"


def _irrefutable(node: ast.pattern) -> bool:
    if isinstance(node, ast.MatchAs):
        return node.pattern is None or _irrefutable(node.pattern)
    if isinstance(node, ast.MatchOr):
        return any(_irrefutable(p) for p in node.patterns)
    return False


def _ends_with_semicolon(source: str) -> bool:
    """IPython does not display the result of a cell whose last token is ';'."""
    last = None
    skip = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in skip:
                last = tok
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _seeds_first(body: list[ast.stmt]) -> tuple[str, ...]:
    """The global random generators the cell seeds before any call that could draw from
    them: ``np.random.seed(1)`` -> "numpy", ``random.seed(1)`` -> "random". Only imports,
    definitions and call-free statements may come before."""
    seeded: dict[str, None] = {}
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            name = _dotted(stmt.value.func)
            if name == "random.seed":
                seeded.setdefault("random")
                continue
            if name.endswith(".random.seed") and not name.startswith("?"):
                seeded.setdefault("numpy")
                continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom, *FUNCS, ast.ClassDef)):
            continue
        if any(isinstance(node, ast.Call) for node in ast.walk(stmt)):
            break
    return tuple(seeded)


@lru_cache(maxsize=256)  # a sweep asks once per miss, with one source
def function_seeds(source: str) -> tuple[str, ...]:
    """The global random generators a function seeds before any call that could draw from
    them (as :func:`analyze_cell`'s ``seeds`` for a cell), from the source of its ``def``
    (decorators included, indented or not); () when it is not a function's source."""
    try:
        body = ast.parse(textwrap.dedent(source)).body
    except (SyntaxError, ValueError):
        return ()
    function = body[0] if len(body) == 1 else None
    if not isinstance(function, FUNCS):
        return ()  # a lambda, or a source that is not one def
    return _seeds_first(function.body)


def analyze_cell(source: str) -> CellAnalysis:
    """Inputs/outputs of a cell body (plain Python). Raises SyntaxError unchanged."""
    body = ast.parse(source).body
    flow = _Flow()
    bound: set[str] = set()
    flow.block(body, bound)
    ends_in_expr = bool(body) and isinstance(body[-1], ast.Expr)
    silenced = ends_in_expr and _ends_with_semicolon(source)
    has_result = ends_in_expr and not silenced
    return CellAnalysis(
        inputs=tuple(flow.inputs),
        outputs=tuple(flow.outputs),
        definitions=tuple(n for n in flow.outputs if n in flow.definitions),
        has_result=has_result,
        normalized=normalize_source(source),
        deleted=tuple(flow.deleted),
        star_import=flow.star_import,
        silenced=silenced,
        seeds=_seeds_first(body),
    )
