"""Where the money code can be mutated: every mutation site of a module, found by walking its
AST in a fixed order, and the mutated module compiled in memory (`scripts/mutants.py` runs them).
"""

from __future__ import annotations

import ast
import copy
import re
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Module-level names that are data for humans, not rules (the docs' message table, SQL schema).
SKIP_NAMES = {"__all__", "ERROR_CODES", "_SCHEMA", "_COLUMNS", "log", "SCHEMA_VERSION"}
#: A ledger state / outcome / failure action -> the state a plausible slip would write instead.
STATE_SWAPS = {"pending": "uncertain", "intent": "pending", "uncertain": "pending", "submitted": "pending",
               "timed_out": "completed", "completed": "failed", "failed": "completed", "cancelled": "failed",
               "rejected": "failed", "retry": "give_up", "give_up": "retry", "final": "retry",
               "stop_auth": "stop_quota", "stop_quota": "stop_auth"}
_QUOTED_STATE = re.compile(r"'(%s)'" % "|".join(STATE_SWAPS))
_CMP = {ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Lt: [ast.GtE, ast.LtE], ast.LtE: [ast.Gt, ast.Lt],
        ast.Gt: [ast.LtE, ast.GtE], ast.GtE: [ast.Lt, ast.Gt], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
        ast.Is: [ast.IsNot], ast.IsNot: [ast.Is]}
_REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Continue, ast.Break, ast.Delete)


@dataclass
class Mutant:
    id: str
    path: str
    index: int
    line: int
    op: str
    before: str
    after: str
    #: "func" (patch the function ``qualname``), "class" / "module" (rebind ``names`` there).
    scope: str = "module"
    qualname: str = ""
    names: list[str] = field(default_factory=list)
    #: For module/class constants: the functions that read them (None: any test of the module).
    users: list[str] | None = None
    status: str = ""
    seconds: float = 0.0
    killed_by: str = ""


# --- finding mutation sites -------------------------------------------------------------------

class _Sites:
    """Walks a module in a fixed order and numbers every mutation site; with ``apply`` set,
    performs that one mutation on the tree it walks (so generating and applying never drift)."""

    def __init__(self, apply: int | None = None) -> None:
        self.apply, self.count, self.found = apply, 0, []
        self.applied: tuple[ast.AST, ast.AST] | None = None

    def site(self, op: str, node: ast.AST, scope: tuple, names: list[str], mutate) -> None:
        if self.apply == self.count:
            self.applied = (copy.deepcopy(node), mutate())
        self.found.append((op, node.lineno, scope, names))
        self.count += 1

    def module(self, tree: ast.Module) -> None:
        self.body(tree.body, (), in_def=False)

    def body(self, stmts: list[ast.stmt], scope: tuple, in_def: bool) -> None:
        for k, stmt in enumerate(stmts):
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                continue  # docstring
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = (*scope, ("def", stmt.name))
                for default in [*stmt.args.defaults, *filter(None, stmt.args.kw_defaults)]:
                    self.expr(default, inner, [])
                self.body(stmt.body, inner, in_def=True)
            elif isinstance(stmt, ast.ClassDef):
                self.body(stmt.body, (*scope, ("class", stmt.name)), in_def=in_def)
            elif in_def:
                self.statement(stmts, k, scope)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names and not SKIP_NAMES.intersection(names):
                    self.expr(stmt.value, scope, names)

    def statement(self, stmts: list[ast.stmt], k: int, scope: tuple) -> None:
        stmt = stmts[k]
        if _is_log(stmt):
            return
        if isinstance(stmt, _REMOVABLE):
            self.site("remove statement", stmt, scope, [], lambda: _replace(stmts, k, ast.Pass()))
        if isinstance(stmt, ast.Return) and stmt.value is not None and not _is_none(stmt.value):
            self.site("return None", stmt, scope, [], lambda: _replace(stmts, k, ast.Return(ast.Constant(None))))
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add | ast.Sub):
            self.site("+= <-> -=", stmt, scope, [], lambda: _set(stmt, "op", ast.Sub() if isinstance(stmt.op, ast.Add)
                                                                   else ast.Add()))
        for name, value in ast.iter_fields(stmt):
            if name in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self.body(value, scope, in_def=True)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.ExceptHandler):
                        self.body(v.body, scope, in_def=True)
                    elif isinstance(v, ast.withitem):
                        self.expr(v.context_expr, scope, [])
                    elif isinstance(v, ast.match_case):
                        self.body(v.body, scope, in_def=True)
                    elif isinstance(v, ast.expr):
                        self.expr(v, scope, [])
            elif isinstance(value, ast.expr):
                self.expr(value, scope, [])

    def expr(self, node: ast.expr, scope: tuple, names: list[str]) -> None:
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Call) and _is_log_call(node)):
            return  # messages
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                for alt in _CMP.get(type(op), []):
                    self.site(f"{type(op).__name__} -> {alt.__name__}", node, scope, names,
                              lambda j=j, alt=alt: _set_item(node, node.ops, j, alt()))
        elif isinstance(node, ast.BoolOp):
            self.site("and <-> or", node, scope, names,
                      lambda: _set(node, "op", ast.Or() if isinstance(node.op, ast.And) else ast.And()))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.site("drop not", node, scope, names, lambda: _morph(node, node.operand))
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub)
              and not any(isinstance(s, ast.JoinedStr) or (isinstance(s, ast.Constant) and isinstance(s.value, str))
                          for s in (node.left, node.right))):
            self.site("+ <-> -", node, scope, names,
                      lambda: _set(node, "op", ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()))
        elif isinstance(node, ast.Constant):
            self.constant(node, scope, names)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, scope, names)
            elif isinstance(child, ast.comprehension):
                for part in (child.iter, *child.ifs):
                    self.expr(part, scope, names)
            elif isinstance(child, ast.keyword):
                self.expr(child.value, scope, names)

    def constant(self, node: ast.Constant, scope: tuple, names: list[str]) -> None:
        v = node.value
        if isinstance(v, bool):
            self.site(f"{v} -> {not v}", node, scope, names, lambda: _set(node, "value", not v))
        elif isinstance(v, int | float):
            for new in ([v + 1, 0] if v else [1]):
                self.site(f"{v} -> {new}", node, scope, names, lambda new=new: _set(node, "value", type(v)(new)))
        elif isinstance(v, str) and v in STATE_SWAPS:
            self.site(f"'{v}' -> '{STATE_SWAPS[v]}'", node, scope, names,
                      lambda: _set(node, "value", STATE_SWAPS[v]))
        elif isinstance(v, str):
            for m in _QUOTED_STATE.finditer(v):
                new = f"{v[:m.start(1)]}{STATE_SWAPS[m.group(1)]}{v[m.end(1):]}"
                self.site(f"SQL '{m.group(1)}' -> '{STATE_SWAPS[m.group(1)]}'", node, scope, names,
                          lambda new=new: _set(node, "value", new))


def _replace(stmts, k, new):
    new = ast.copy_location(new, stmts[k])
    stmts[k] = new
    return new


def _set(node, attr, value):
    setattr(node, attr, value)
    return node


def _set_item(node, items, j, value):
    items[j] = value
    return node


def _morph(node, into):
    """Turn ``node`` into a copy of ``into`` in place (parents keep pointing at ``node``)."""
    node.__class__ = into.__class__
    for name in into._fields:
        setattr(node, name, getattr(into, name))
    return node


def _is_none(node):
    return isinstance(node, ast.Constant) and node.value is None


def _is_log_call(node: ast.Call) -> bool:
    f = node.func
    return isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("log", "logging")


def _is_log(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _is_log_call(stmt.value)


def _scope_of(scope: tuple, names: list[str]) -> tuple[str, str, list[str]]:
    parts, kind = [], "module"
    for what, name in scope:
        parts.append(name)
        if what == "def":
            return "func", ".".join(parts), []
        kind = "class"
    return kind, ".".join(parts), names


def mutated_code(path: str, index: int) -> tuple[types.CodeType, str, str]:
    src = (ROOT / path).read_text()
    tree = ast.parse(src)
    sites = _Sites(apply=index)
    sites.module(tree)
    assert sites.applied is not None, f"{path} has no mutation site {index}"
    before, after = sites.applied
    return compile(ast.fix_missing_locations(tree), str(ROOT / path), "exec"), _text(before), _text(after)


def _text(node: ast.AST) -> str:
    return " ".join(ast.unparse(node).split())[:160]


def generate(path: str) -> list[Mutant]:
    tree = ast.parse((ROOT / path).read_text())
    sites = _Sites()
    sites.module(tree)
    original = compile(tree, str(ROOT / path), "exec")
    readers = _readers(tree)
    out = []
    for index, (op, line, scope, names) in enumerate(sites.found):
        code, before, after = mutated_code(path, index)
        kind, qualname, names = _scope_of(scope, names)
        if kind == "func" and _find_code(code, qualname) == _find_code(original, qualname):
            continue  # compiles to the same bytecode: not a mutant
        m = Mutant(f"{Path(path).stem}:{index}", path, index, line, op, before, after, kind, qualname, names)
        if kind == "module" and names and not any(n in _EXPORTED for n in names):
            m.users = sorted({f for n in names for f in readers.get(n, ())})
        out.append(m)
    return out


#: Module constants other modules import (a mutant there reaches code outside its module).
_EXPORTED = {"MAX_REFUSALS", "MAX_MISSES", "ERROR_CODES"}


def _readers(tree: ast.Module) -> dict[str, set[str]]:
    """Module-level name -> qualnames of the functions (methods) of this module that read it."""
    out: dict[str, set[str]] = {}

    def visit(body, prefix):
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                visit(stmt.body, f"{prefix}{stmt.name}.")
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Name):
                        out.setdefault(node.id, set()).add(prefix + stmt.name)

    visit(tree.body, "")
    return out


def _find_code(code: types.CodeType, qualname: str) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_qualname == qualname:
                return const
            found = _find_code(const, qualname)
            if found is not None:
                return found
    return None
