"""Scope summaries for the cell analysis (plus two small AST helpers it uses): what a def, lambda, class or comprehension reads from
outside, which names it assigns through ``global``, and which walrus targets leak out."""

from __future__ import annotations

import ast
import re
import string
import textwrap
from dataclasses import dataclass
from functools import lru_cache

FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def parse_cell(source: str) -> list[ast.stmt]:
    """Parse possibly indented source (a method cut out of a class) into statements."""
    try:
        return ast.parse(textwrap.dedent(source)).body
    except SyntaxError as exc:
        # dedent fails when a multi-line string inside an indented block starts in column 0
        if source[:1] not in (" ", "\t"):
            raise
        try:
            wrapped = ast.parse("if 1:\n" + source)
        except SyntaxError:
            raise exc from None
        return wrapped.body[0].body  # type: ignore[attr-defined]


class Collector(ast.NodeVisitor):
    """Loads and bindings of one scope; nested scopes are summarised, not entered."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "module", "function", "class" or "comprehension"
        self.loads: dict[str, None] = {}
        self.stores: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.global_writes: dict[str, None] = {}
        self.leaked: dict[str, None] = {}  # walrus targets of a comprehension
        self.through: dict[str, None] = {}  # reads of nested scopes that skip a class scope

    def load(self, name: str) -> None:
        self.loads.setdefault(name)

    def store(self, name: str) -> None:
        self.stores.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        (self.load if isinstance(node.ctx, ast.Load) else self.store)(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.nonlocals.update(node.names)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        if self.kind == "comprehension":
            self.leaked.setdefault(node.target.id)
        else:
            self.store(node.target.id)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.store(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.store(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.store(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.store(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.store(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.store(node.rest)
        self.generic_visit(node)

    def _nested(self, info: _ScopeInfo) -> None:
        for name in info.free:
            # names in a class body are invisible to the functions and comprehensions in it
            (self.through.setdefault if self.kind == "class" else self.load)(name)
        for name in info.global_writes:
            self.global_writes.setdefault(name)
        for name in info.leaked:
            if self.kind == "comprehension":
                self.leaked.setdefault(name)
            else:
                self.store(name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in definition_time_exprs(node):
            self.visit(expr)
        self.store(node.name)
        self._nested(summarize_scope(node))

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in definition_time_exprs(node):
            self.visit(expr)
        self._nested(summarize_scope(node))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in definition_time_exprs(node):
            self.visit(expr)
        self.store(node.name)
        self._nested(summarize_scope(node))

    def _visit_comp(self, node: ast.ListComp) -> None:
        self.visit(node.generators[0].iter)
        self._nested(summarize_scope(node))

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comp


@dataclass(frozen=True)
class _ScopeInfo:
    free: tuple[str, ...]  # names read from enclosing scopes, first-use order
    global_writes: tuple[str, ...]  # names assigned through `global`
    leaked: tuple[str, ...]  # walrus targets that bind in the enclosing scope


def definition_time_exprs(node: ast.AST) -> list[ast.expr]:
    """Expressions evaluated where a def/lambda/class statement runs, not inside its scope."""
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    args = node.args  # type: ignore[attr-defined]
    exprs: list[ast.expr] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    if isinstance(node, FUNCS):
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        exprs += [a.annotation for a in every if a is not None and a.annotation is not None]
        if node.returns is not None:
            exprs.append(node.returns)
        exprs = [*node.decorator_list, *exprs]
    return exprs


def summarize_scope(node: ast.AST) -> _ScopeInfo:
    """Summary of a function, lambda, class or comprehension scope."""
    if isinstance(node, (*FUNCS, ast.Lambda)):
        col = Collector("function")
        args = node.args
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                col.store(a.arg)
        for stmt in node.body if isinstance(node, FUNCS) else [node.body]:
            col.visit(stmt)
    elif isinstance(node, ast.ClassDef):
        col = Collector("class")
        for stmt in node.body:
            col.visit(stmt)
    else:  # comprehension
        col = Collector("comprehension")
        for i, gen in enumerate(node.generators):  # type: ignore[attr-defined]
            if i:
                col.visit(gen.iter)
            col.visit(gen.target)
            for cond in gen.ifs:
                col.visit(cond)
        if isinstance(node, ast.DictComp):
            col.visit(node.key)
            col.visit(node.value)
        else:
            col.visit(node.elt)  # type: ignore[attr-defined]
    local = (col.stores - col.globals) - col.nonlocals
    free = tuple(dict.fromkeys([*(n for n in col.loads if n not in local), *col.through]))
    global_writes = dict(col.global_writes)
    for name in sorted(col.globals & col.stores):
        global_writes.setdefault(name)
    return _ScopeInfo(free, tuple(global_writes), tuple(col.leaked))


@lru_cache(maxsize=4096)
def sink_names(source: str) -> frozenset[str]:
    """Names whose every load is the receiver of a method call used as a statement
    (``CALLS.append(x)``, ``log.info(...)``): the code writes to them but never uses what
    they hold, so their content is not part of what the code computes."""
    sink_ids: set[int] = set()
    loads: list[ast.Name] = []
    for node in ast.walk(ast.Module(body=parse_cell(source), type_ignores=[])):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and isinstance(node.value.func.value, ast.Name)
        ):
            sink_ids.add(id(node.value.func.value))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.append(node)
    sinks = {n.id for n in loads if id(n) in sink_ids}
    return frozenset(sinks - {n.id for n in loads if id(n) not in sink_ids})


@lru_cache(maxsize=4096)
def attribute_reads(source: str) -> dict[str, frozenset[str] | None]:
    """For each name the code loads, the attributes it reads from it (``cfg.alpha`` ->
    ``{"cfg": {"alpha"}}``), or None when the name is also used on its own (passed,
    returned, given to getattr), so that any of its attributes may be read."""
    reads: dict[str, set[str]] = {}
    bases: set[int] = set()
    loads: list[ast.Name] = []
    for node in ast.walk(ast.Module(body=parse_cell(source), type_ignores=[])):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            reads.setdefault(node.value.id, set()).add(node.attr)
            bases.add(id(node.value))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.append(node)
    result: dict[str, frozenset[str] | None] = {k: frozenset(v) for k, v in reads.items()}
    for name in loads:
        if id(name) not in bases:
            result[name.id] = None
    return result


_TIMED = {"run_line_magic": 1, "run_cell_magic": 2}  # position of the code argument


def timed_code(node: ast.AST) -> list[ast.stmt] | None:
    """The statements run by IPython's %time/%%time (they bind in the user namespace):
    ``get_ipython().run_line_magic('time', 'w = n * 2')`` after IPython's transform."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _TIMED
        and isinstance(node.func.value, ast.Call)
        and getattr(node.func.value.func, "id", None) == "get_ipython"
        and len(node.args) > _TIMED[node.func.attr]
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
        and node.args[0].value == "time"
    ):
        return None
    try:
        return ast.parse(node.args[_TIMED[node.func.attr]].value).body
    except SyntaxError:
        return None


#: IPython calls that expand ``$name`` and ``{expr}`` from the user namespace in one string
#: argument (``!cmd``, ``x = !cmd``, a magic's line), and that argument's position
_EXPANDED = {"system": 0, "getoutput": 0, "run_line_magic": 1, "run_cell_magic": 1}
_DOLLAR = re.compile(r"\$(\$?[A-Za-z_][\w.]*)")  # $name, $obj.attr; $$name is an escape


def interpolated_names(node: ast.AST) -> list[str]:
    """Names read by IPython's interpolation into a shell command or magic line, e.g.
    ``who`` and ``n`` in ``get_ipython().getoutput('echo $who {n + 1}')`` (what
    ``out = !echo $who {n + 1}`` becomes). Over-approximates (a ``$name`` in single quotes
    is not expanded by IPython): an extra input costs a miss at worst, a missing one a
    wrong hit."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _EXPANDED
        and isinstance(node.func.value, ast.Call)
        and getattr(node.func.value.func, "id", None) == "get_ipython"
        and len(node.args) > _EXPANDED[node.func.attr]
    ):
        return []
    arg = node.args[_EXPANDED[node.func.attr]]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return []
    text = arg.value
    exprs = [m.group(1) for m in _DOLLAR.finditer(text) if not m.group(1).startswith("$")]
    try:
        for _, field, spec, _ in string.Formatter().parse(text):
            if field:  # IPython evaluates "{x[1:3]}" whole: the spec is part of the expression
                exprs.append(f"{field}:{spec}" if spec else field)
    except ValueError:
        pass  # unbalanced braces: IPython leaves the string as it is
    names: dict[str, None] = {}
    for expr in exprs:
        try:
            tree = ast.parse(expr.strip().rstrip("."), mode="eval")
        except SyntaxError:
            continue
        for sub in ast.walk(tree):
            if isinstance(sub, ast.Name):
                names.setdefault(sub.id)
    return list(names)
