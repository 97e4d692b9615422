"""The gate: parse capsule source, refuse what can never be allowed, rewrite risky accesses.

Only the *rare* risky attribute accesses (dunder names, frame/generator/traceback attributes,
``.format``/``.format_map``) become calls to the guard; ordinary ``obj.name`` stays a native
attribute load, so capsule code runs at full speed.  Every ``ast`` node type of the running
Python is classified below; a node type not in the table is refused (fail closed), so syntax
a new Python adds is refused until someone reviews it.
"""

from __future__ import annotations

import ast
import hashlib
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field

from . import rules
from .errors import CapsuleSyntaxError

GETATTR_HOOK = "_ipycap_getattr"
SETATTR_HOOK = "_ipycap_setattr"
DELATTR_HOOK = "_ipycap_delattr"
#: Big-int operators, pre-checked (ipycap/engine/intlimits.py): op -> (hook, in-place hook,
#: the largest constant right operand left native).
INT_HOOKS = {
    ast.Pow: ("_ipycap_pow", "_ipycap_ipow", 16),
    ast.LShift: ("_ipycap_lshift", "_ipycap_ilshift", 64),
}


def _unchecked_right(op, right) -> bool:
    """Whether ``left <op> right`` needs no int pre-check: a float or a small int constant."""
    if type(right) is ast.UnaryOp and type(right.op) is ast.USub:
        right = right.operand  # x ** -2
    if type(right) is not ast.Constant:
        return False
    v = right.value
    return type(v) in (float, complex) or (type(v) is int and v <= INT_HOOKS[op][2])


#: Node types that need nothing from the gate.
PLAIN = frozenset(
    """Module Interactive Expression Expr Assign AnnAssign For AsyncFor While If With AsyncWith
    Raise Try Assert Import ImportFrom Global Nonlocal Pass Break Continue FunctionDef
    AsyncFunctionDef ClassDef Return Delete Lambda BoolOp BinOp UnaryOp IfExp Dict Set
    ListComp SetComp DictComp GeneratorExp Await Yield YieldFrom Compare Call FormattedValue
    JoinedStr Constant Subscript Starred List Tuple Slice NamedExpr Match match_case
    MatchValue MatchSingleton MatchSequence MatchMapping MatchStar MatchAs MatchOr
    ExceptHandler arguments arg keyword alias withitem comprehension Load Store Del And Or
    Add Sub Mult MatMult Div Mod Pow LShift RShift BitOr BitXor BitAnd FloorDiv Invert Not
    UAdd USub Eq NotEq Lt LtE Gt GtE Is IsNot In NotIn TypeIgnore AugAssign""".split()
)
#: Node types the gate inspects or rewrites.
CHECKED = frozenset({"Attribute", "Name", "MatchClass"})
#: Node types refused outright, with the reason.
REFUSED = {
    "TryStar": "'except*' is not available in a capsule (its type handling has broken "
    "sandboxes before, gh-128049)",
    "FunctionType": "function type comments are not capsule code",
    # Abstract bases and deprecated aliases the parser never produces.
    "AST": "",
    "mod": "",
    "stmt": "",
    "expr": "",
    "expr_context": "",
    "boolop": "",
    "operator": "",
    "unaryop": "",
    "cmpop": "",
    "excepthandler": "",
    "pattern": "",
    "type_ignore": "",
    "slice": "",
    "AugLoad": "",
    "AugStore": "",
    "Param": "",
    "Suite": "",
    "Index": "",
    "ExtSlice": "",
    "Num": "",
    "Str": "",
    "Bytes": "",
    "NameConstant": "",
    "Ellipsis": "",
}


def classified_node_types() -> dict[str, str]:
    """Every node type name the gate knows, with its class ('plain', 'checked', 'refused')."""
    table = {n: "plain" for n in PLAIN}
    table.update({n: "checked" for n in CHECKED})
    table.update({n: "refused" for n in REFUSED})
    return table


_KNOWN = classified_node_types()
#: Plain nodes that carry no name and need no check at all (the scan skips them).
_BARE = frozenset(
    getattr(ast, n)
    for n in PLAIN
    if n
    not in (
        "FunctionDef",
        "AsyncFunctionDef",
        "ClassDef",
        "ExceptHandler",
        "alias",
        "arg",
        "Global",
        "Nonlocal",
        "ImportFrom",
        "MatchAs",
        "MatchStar",
        "MatchMapping",
    )
)


@dataclass
class GatedSource:
    """The result of the gate: a rewritten tree and the free names it reads."""

    tree: ast.AST
    names: set[str] = field(default_factory=set)
    rewrites: int = 0


def _nfkc(name: str) -> str:
    """Identifiers as the parser sees them (it NFKC-normalises; strings are not)."""
    return name if name.isascii() else unicodedata.normalize("NFKC", name)


class _Gate(ast.NodeTransformer):
    def __init__(self, source: str, filename: str, rexec: bool):
        self.lines = source.splitlines()
        self.filename = filename
        self.risky = rules.is_risky_rexec if rexec else rules.is_risky
        # stores and deletes: the same names, and every dunder hooks.py guards on a class
        self.risky_store = rules.is_risky_store_rexec if rexec else rules.is_risky_store
        self.names: set[str] = set()
        self.rewrites = 0

    # -- refusals ------------------------------------------------------------------------
    def refuse(self, node, what, how=None, hint=None):
        lineno = getattr(node, "lineno", None)
        text = self.lines[lineno - 1] if lineno and lineno <= len(self.lines) else None
        raise CapsuleSyntaxError(
            what,
            how,
            filename=self.filename,
            lineno=lineno,
            col_offset=getattr(node, "col_offset", None),
            text=text,
            hint=hint,
        )

    def check_name(self, node, name: str):
        name = _nfkc(name)
        if name in rules.RESERVED_NAMES or name.startswith(rules.RESERVED_PREFIX):
            self.refuse(node, f"the name {name!r} is reserved and cannot be used in a capsule")
        return name

    # -- the checks, shared by the fast scan and the rewriting walk -----------------------
    def check_node(self, node) -> None:
        kind = _KNOWN.get(type(node).__name__)
        if kind is None or kind == "refused":
            reason = REFUSED.get(type(node).__name__) or (
                f"syntax {type(node).__name__!r} has not been reviewed for capsules"
            )
            self.refuse(node, reason)
        for attr in ("name", "asname"):  # def/class names, import aliases, handler names
            value = getattr(node, attr, None)
            if isinstance(value, str):
                self.check_name(node, value)
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            for n in node.names:
                self.check_name(node, n)
        elif isinstance(node, ast.arg):
            self.check_name(node, node.arg)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                self.check_name(node, alias.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            self.check_name(node, node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.check_name(node, node.rest)
        elif isinstance(node, ast.MatchClass):
            self.check_match_class(node)

    def scan(self, tree) -> bool:
        """Check every node without rewriting; True when some access must be rewritten.

        Most cells have no risky access at all, and a plain walk is several times cheaper
        than a NodeTransformer, so the rewriting walk runs only when it has work to do."""
        risky = self.risky
        names = self.names
        needs_rewrite = False
        # An explicit stack over each node's _fields: ast.walk's generators cost more than
        # all the checks together.  Non-node field values (str, int, None) are skipped.
        stack = [tree]
        pop, push, extend = stack.pop, stack.append, stack.extend
        node_type = ast.AST
        while stack:
            node = pop()
            tp = type(node)
            if tp is list:
                extend(node)
                continue
            if not isinstance(node, node_type):
                continue
            for name in tp._fields:
                push(getattr(node, name, None))
            if tp is ast.Name:
                node.id = self.check_name(node, node.id)
                if type(node.ctx) is ast.Load:
                    names.add(node.id)
            elif tp is ast.Attribute:
                attr = _nfkc(node.attr)
                if risky(attr) or (type(node.ctx) is not ast.Load and self.risky_store(attr)):
                    needs_rewrite = True
            elif tp is ast.AugAssign:
                if type(node.target) is ast.Name:
                    names.add(_nfkc(node.target.id))  # read too
                    op = type(node.op)
                    if op in INT_HOOKS and not _unchecked_right(op, node.value):
                        needs_rewrite = True
            elif tp is ast.BinOp:
                op = type(node.op)
                if op in INT_HOOKS and not _unchecked_right(op, node.right):
                    needs_rewrite = True
                self.check_node(node)
            elif tp in _BARE:
                continue
            else:
                self.check_node(node)
        return needs_rewrite

    # -- the rewriting walk --------------------------------------------------------------
    def generic_visit(self, node):
        self.check_node(node)
        return super().generic_visit(node)

    def visit_Name(self, node: ast.Name):
        node.id = self.check_name(node, node.id)
        if isinstance(node.ctx, ast.Load):
            self.names.add(node.id)
        return node

    def visit_AugAssign(self, node: ast.AugAssign):
        if isinstance(node.target, ast.Name):
            self.names.add(_nfkc(node.target.id))  # it reads it too
            op = type(node.op)
            if op in INT_HOOKS and not _unchecked_right(op, node.value):
                self.generic_visit(node)
                self.rewrites += 1
                name = node.target.id
                call = ast.Call(
                    func=ast.Name(INT_HOOKS[op][1], ast.Load()),
                    args=[ast.Name(name, ast.Load()), node.value],
                    keywords=[],
                )
                assign = ast.Assign(targets=[ast.Name(name, ast.Store())], value=call)
                return ast.fix_missing_locations(ast.copy_location(assign, node))
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp):
        self.generic_visit(node)
        op = type(node.op)
        if op not in INT_HOOKS or _unchecked_right(op, node.right):
            return node
        self.rewrites += 1
        call = ast.Call(
            func=ast.Name(INT_HOOKS[op][0], ast.Load()), args=[node.left, node.right], keywords=[]
        )
        return ast.copy_location(call, node)

    def check_match_class(self, node: ast.MatchClass) -> None:
        if node.patterns:
            # Positional class patterns read the attributes named by __match_args__ in C,
            # and a metaclass __instancecheck__ can make any object match.
            self.refuse(
                node,
                "positional class patterns ('case C(x)') are not available in a capsule",
                hint="use keyword patterns, e.g. 'case C(x=x)'",
            )
        for attr in node.kwd_attrs:
            if self.risky(attr):
                self.refuse(node, f"the class pattern reads the risky attribute {attr!r}")

    def visit_Attribute(self, node: ast.Attribute):
        attr = _nfkc(node.attr)
        self.generic_visit(node)
        if not self.risky(attr) and (isinstance(node.ctx, ast.Load) or not self.risky_store(attr)):
            return node
        self.rewrites += 1
        if isinstance(node.ctx, ast.Load):
            call = ast.Call(
                func=ast.Name(GETATTR_HOOK, ast.Load()),
                args=[node.value, ast.Constant(attr)],
                keywords=[],
            )
            return ast.copy_location(call, node)
        # Stores and deletes are handled by their statements; anywhere else is refused.
        self.refuse(
            node,
            f"assigning to the attribute {attr!r} this way is not available in a capsule",
            f"write setattr(obj, {attr!r}, value)",
        )

    def _store_target(self, target, value_node, stmt):
        if isinstance(target, ast.Attribute) and self.risky_store(_nfkc(target.attr)):
            self.rewrites += 1
            call = ast.Call(
                func=ast.Name(SETATTR_HOOK, ast.Load()),
                args=[
                    self.visit(target.value),
                    ast.Constant(_nfkc(target.attr)),
                    value_node,
                ],
                keywords=[],
            )
            return ast.copy_location(ast.Expr(call), stmt)
        return None

    def visit_Assign(self, node: ast.Assign):
        if len(node.targets) == 1:
            node.value = self.visit(node.value)
            rewritten = self._store_target(node.targets[0], node.value, node)
            if rewritten is not None:
                return rewritten
            node.targets = [self.visit(t) for t in node.targets]
            return node
        return self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete):
        out = []
        plain = []
        for target in node.targets:
            attr = getattr(target, "attr", None)
            if isinstance(target, ast.Attribute) and self.risky_store(_nfkc(attr)):
                self.rewrites += 1
                call = ast.Call(
                    func=ast.Name(DELATTR_HOOK, ast.Load()),
                    args=[
                        self.visit(target.value),
                        ast.Constant(_nfkc(attr)),
                    ],
                    keywords=[],
                )
                out.append(ast.copy_location(ast.Expr(call), node))
            else:
                plain.append(self.visit(target))
        if plain:
            out.insert(0, ast.copy_location(ast.Delete(targets=plain), node))
        return out


def gate(
    source: str, filename: str = "<capsule>", *, mode: str = "exec", rexec: bool = False
) -> GatedSource:
    """Parse ``source`` and return the gated tree, or raise ``CapsuleSyntaxError``."""
    if not isinstance(source, str):
        raise TypeError("capsule source must be str")
    source = "".join([source])  # an exact str, whatever subclass we were given
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if stripped[:1] in ("!", "%") and not _continues_statement(source, lineno):
            raise CapsuleSyntaxError(
                "shell escapes ('!') and magics ('%') are not available in a capsule",
                hint="run them in an ordinary cell, outside the capsule; inside a capsule kernel "
                "only '%capsule list|explain|log|policy|request|revoke' (and '%capsule?') "
                "are understood",
                filename=filename,
                lineno=lineno,
                text=line,
            )
    tree = ast.parse(source, filename, mode)
    g = _Gate(source, filename, rexec)
    if g.scan(tree):
        g.names.clear()
        tree = g.visit(tree)
        ast.fix_missing_locations(tree)
    return GatedSource(tree, g.names, g.rewrites)


def _continues_statement(source: str, lineno: int) -> bool:
    """Whether line ``lineno`` continues a statement (inside brackets, a string or after a
    backslash) rather than starting one, so a leading '%' there is the modulo operator."""
    import io
    import tokenize

    depth = 0
    last = tokenize.NEWLINE
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.start[0] >= lineno:
                return depth > 0 or last not in (tokenize.NEWLINE, tokenize.NL, None)
            if tok.type == tokenize.STRING and tok.end[0] >= lineno:
                return True
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth = max(0, depth - 1)
            if tok.type not in (tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                last = tok.type
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return False


class CompileCache:
    """Gated code keyed by (source, filename, mode, rexec): re-running a cell skips the gate."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self.hits = 0

    def get(self, key):
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return item

    def put(self, key, value):
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)


def source_filename(source: str, label: str | None = None) -> str:
    """A recognisable, stable filename: the same cell gets the same name (and cache entry)."""
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    label = "".join(ch for ch in (label or "") if ch.isalnum() or ch in "-_.")[:40]
    return f"<capsule-{label + '-' if label else ''}{digest}>"


#: Public name for the kernel shell, which finds '%capsule' command lines the same way.
continues_statement = _continues_statement
_inside_string = _continues_statement  # the name the kernel shell used first
