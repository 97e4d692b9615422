"""Hypothesis strategies for the fuzzer: attribute chains and calls over many roots.

A generated program starts from a root (a literal, a builtin, a proxy of a protected object,
an object the capsule made, a caught exception, a generator, a coroutine, an allowed module,
an open granted file, a path to the secret) and applies up to eight accessors (attribute,
``getattr``, ``str.format``/``format_map``/``string.Formatter`` fields, ``operator.attrgetter``
and ``methodcaller``, a subscript, a call, a wrapping builtin such as ``vars`` or ``open``).
Calls get arguments that aim at the secret file (its path, a symlink to it, a path-like object,
the descriptor trusted code holds open on it, code strings for ``eval``/``exec``).

The property, checked by *trusted* code after each run: no canary is reached.  A canary is
reached when the vault's token or the secret file's contents appear in the value the program
returns, in the exception it caught or the one that escaped (message, ``args``, notes, chained
exceptions, formatted traceback), in what it printed to stdout/stderr or in a warning; when the
returned value is a raw protected object, a module, a frame, a traceback, a code object, a
function's globals, the builtins, a trusted function, or a proxy of any of those; or when the
secret file was opened at all (an audit hook, added after the tripwire's, sees every open the
tripwire let through and compares it with the secret's inode).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import io
import os
import shutil
import sys
import tempfile
import traceback
import types
import warnings
from dataclasses import dataclass, field
from functools import cache

from hypothesis import strategies as st

from ipycap import Capsule
from ipycap.engine import rules, tripwire
from ipycap.engine.membrane import Proxy, target_of
from ipycap.engine.modules import ModuleView

from . import harness as _harness
from .harness import Vault


@dataclass(frozen=True)
class Canaries:
    """What a generated program must never reach (one set per process; reads never change it)."""

    token: str  # held privately by each run's Vault (``self._token``)
    contents: str  # the secret file's contents (a different token, so reports say which)
    secret: str  # the secret file, outside every grant
    granted: str  # the one readable directory: ok.txt, a symlink to the secret and its folder
    fd: int  # a descriptor trusted code holds open on the secret
    ident: tuple[int, int]  # the secret's (st_dev, st_ino), for the open watcher


@cache
def canaries() -> Canaries:
    """Create the canaries once per process in a fresh temporary folder (removed at exit)."""
    root = tempfile.mkdtemp(prefix="ipycap-fuzz-")
    outside = os.path.join(root, "outside")
    granted = os.path.join(root, "granted")
    os.mkdir(outside)
    os.mkdir(granted)
    secret = os.path.join(outside, "secret.txt")
    contents = "FILE-CANARY-" + os.urandom(8).hex()
    with open(secret, "w") as f:
        f.write(contents)
    with open(os.path.join(granted, "ok.txt"), "w") as f:
        f.write("ok\n")
    os.symlink(secret, os.path.join(granted, "link"))
    os.symlink(outside, os.path.join(granted, "dirlink"))
    fd = os.open(secret, os.O_RDONLY)
    stat = os.fstat(fd)
    atexit.register(_cleanup, root, fd)
    token = "CANARY-" + os.urandom(8).hex()
    return Canaries(token, contents, secret, granted, fd, (stat.st_dev, stat.st_ino))


def _cleanup(root: str, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    shutil.rmtree(root, ignore_errors=True)


# -- the open watcher ----------------------------------------------------------------------
_WATCH: dict = {"armed": None, "opened": []}
_hooked = False


def _watch_opens(event: str, args: tuple) -> None:
    """Record every open of the secret while armed (os.stat/fstat raise no audit events)."""
    if event != "open" or _WATCH["armed"] is None:
        return
    path = args[0] if args else None
    try:
        if type(path) is int:
            stat = os.fstat(path)
        elif type(path) in (str, bytes):
            stat = os.stat(path)
        else:
            return
    except (OSError, ValueError):
        return
    if (stat.st_dev, stat.st_ino) == _WATCH["armed"]:
        _WATCH["opened"].append(path)


@contextlib.contextmanager
def watching_opens(c: Canaries):
    """Yield a list that collects every open of the secret made inside the ``with`` block.

    The hook is added after the tripwire's: an open the tripwire refuses never reaches it."""
    global _hooked
    if not _hooked:
        tripwire.install()
        sys.addaudithook(_watch_opens)
        _hooked = True
    opened: list = []
    _WATCH["armed"], _WATCH["opened"] = c.ident, opened
    try:
        yield opened
    finally:
        _WATCH["armed"] = None


# -- the programs --------------------------------------------------------------------------
PRELUDE = """
import operator, string, json, sys, re, functools, copy, random, typing, collections, pprint
import collections.abc, datetime, heapq
SECRET = {secret!r}
LINK = {granted!r} + '/link'
DIRLINK = {granted!r} + '/dirlink'
GRANTED = {granted!r}
FD = {fd!r}
class PathLike:
    def __fspath__(self):
        return SECRET
class Own:
    def method(self):
        return 1
class OwnError(Exception):
    pass
own = Own()
def gen_fn():
    yield 1
gen = gen_fn()
genexp = (x for x in items)
async def coro_fn():
    return 1
coro = coro_fn()
async def agen_fn():
    yield 1
agen = agen_fn()
opened = open(GRANTED + '/ok.txt')
vault.remember(lambda obj: obj)
def caught(thunk):
    try:
        thunk()
    except BaseException as e:
        return e
exc = caught(lambda: vault.fail())
exc2 = caught(lambda: 1 / 0)
{refusals}
exc_attr = caught(lambda: vault._token)
def import_os():
    import os
def raise_own():
    raise OwnError(vault, SECRET)
exc_import = caught(import_os)
exc_key = caught(lambda: data['nope'])
exc_own = caught(raise_own)
exc_stop = caught(lambda: next(iter(())))
class ReduceTo:  # a trampoline: copy calls the callable back from its own frame
    def __init__(self, f):
        self.f = f
    def __reduce_ex__(self, protocol):
        return (self.f, ())
class ReprBy:  # a trampoline: trusted code's repr() calls the callable back
    def __init__(self, f):
        self.f = f
    def __repr__(self):
        return str(self.f())
captured = []
try:
    class Hooked(collections.abc.Sequence):  # trusted isinstance on an ABC calls the hook
        @classmethod
        def __subclasshook__(cls, C):
            captured.append(C)
            return NotImplemented
        def __getitem__(self, i):
            return i
        def __len__(self):
            return 0
except TypeError:  # refused in a capsule: the hook would answer trusted isinstance()
    class Hooked(collections.abc.Sequence):
        def __getitem__(self, i):
            return i
        def __len__(self):
            return 0
class Seen:
    def __lt__(self, other):
        captured.append(other)
        return True
    __gt__ = __eq__ = __lt__
    __hash__ = object.__hash__
try:
    collections.abc.Sequence.register(ReprBy)
except TypeError:
    pass  # refused in a capsule: a trusted ABC's registry is shared state
class PrettyBy:  # a display hook: the formatter calls it with its own printer
    def __init__(self, f):
        self.f = f
    def _repr_pretty_(self, p, cycle):
        captured.append(p)
        p.text(str(self.f()))
class Tz(datetime.tzinfo):  # a value type's field: trusted datetime code calls it back
    def utcoffset(self, dt):
        captured.append(dt)
        return None
    def tzname(self, dt):
        captured.append(dt)
        return 'Tz'
class Missing(dict):  # trusted lookups call __missing__ with their key
    def __missing__(self, key):
        captured.append(key)
        return key
class Hashed:  # trusted dict/set code calls __hash__ and __eq__
    def __hash__(self):
        captured.append(self)
        return 1
    def __eq__(self, other):
        captured.append(other)
        return False
def fresh_globals():  # a dict exec() filled in: its __builtins__ must carry no authority
    g = {{}}
    exec('1', g)
    return g
result = None
error = None
"""

ROOTS = [
    # literals
    "()", "[]", "{}", "''", "1", "1.5", "1j", "None", "True", "b''", "...", "range(2)",
    "frozenset()", "bytearray()", "memoryview(b'x')", "slice(1)", "'{0.__class__}'",
    # builtins
    "print", "len", "object", "type", "str", "int", "open", "getattr", "vars", "dir",
    "format", "iter", "next", "globals", "super", "property", "classmethod", "compile",
    "exec", "eval", "help", "breakpoint", "isinstance", "Exception", "BaseException",
    "StopIteration", "NotImplemented", "str.format", "''.join",
    # proxies of protected objects
    "vault", "data", "items", "helper", "vault.public", "vault.check", "vault.fail",
    "vault.describe", "vault.fire", "vault.fire()", "data['v']", "items[0]", "type(vault)",
    # own objects, generators, coroutines
    "own", "Own", "own.method", "OwnError", "PathLike", "PathLike()", "gen", "gen_fn",
    "genexp", "coro", "coro_fn", "agen", "(lambda: 0)", "caught",
    # exceptions
    "exc", "exc2", "exc_open", "exc_link", "exc_attr", "exc_import", "exc_key", "exc_own",
    "exc_stop",
    # allowed modules and capsule-safe views
    "operator", "string", "json", "sys", "re", "functools", "copy", "random", "typing",
    "collections", "pprint", "sys.stdout", "string.Formatter()",
    # files and paths
    "opened", "SECRET", "LINK", "DIRLINK", "GRANTED", "FD", "open(GRANTED + '/ok.txt')",
    # the seam: reachable dicts, frame-relative builtins behind trampolines, hooks, values
    "globals()", "globals()['__builtins__']", "locals()", "captured", "Hooked", "Seen()",
    "functools.partial(eval, 'SECRET')", "functools.partial(exec, 'x = 1')",
    "functools.partial(globals)", "functools.partial(locals)", "functools.partial(vars)",
    "functools.partial(eval, 'open(SECRET).read()', None)", "slice(Seen())",
    "slice(own, Seen())", "collections.defaultdict(functools.partial(globals))",
    "display", "(lambda: vault.kind())",
    "fresh_globals()", "fresh_globals()['__builtins__']", "Missing()", "Hashed()", "Tz()",
    "datetime.datetime(2020, 1, 1, tzinfo=Tz())", "datetime.time(1, tzinfo=Tz())",
    "functools.cmp_to_key(lambda a, b: 0)", "PrettyBy(lambda: vault)",
    "functools.partial(eval, 'globals()')", "collections.defaultdict(functools.partial(exec, 'x = 1'))",
]  # fmt: skip

# ``sorted_by`` and ``combine`` are left out on purpose: the Vault's own code hands the raw
# token to their argument (a key function, ``str + other``), so reaching it there is the
# trusted code's choice, not an escape.
NAMES = sorted(
    rules.NEVER | rules.OWN_ONLY | rules.SPECIAL | {"__class__", "__base__", "__bases__",
    "__mro__", "__dict__", "_token", "_callback", "public", "check", "fail", "describe",
    "fire", "remember", "contains", "mro", "method", "append", "keys", "values", "items",
    "get", "real", "__name__", "__doc__", "__init__", "__call__", "__module__", "obj", "name",
    "args", "filename", "__notes__", "__context__", "__cause__", "with_traceback", "v",
    "cell_contents", "__subclasses__", "__globals__", "f_back", "gi_frame", "tb_frame",
    "__traceback__", "format", "format_map", "__getitem__", "load_module", "open", "read",
    "readline", "buffer", "raw", "fileno", "stdout", "stderr", "modules", "_getframe",
    "exc_info", "exception", "os", "_os", "sys", "codecs", "inspect", "decoder", "load",
    "loads", "dumps", "copy", "deepcopy", "partial", "func", "pformat", "get_type_hints",
    "Formatter", "vformat", "get_field", "attrgetter", "methodcaller", "__fspath__", "send",
    "throw", "__next__", "__repr__", "__str__", "__format__", "__wrapped__"}
)  # fmt: skip

KEYS = ["0", "-1", "'v'", "'__builtins__'", "'_token'", "'modules'", "'os'", "'open'",
        "'__globals__'", "slice(None)", "SECRET"]  # fmt: skip

ARGS = [
    "", "0", "'x'", "object", "None", "SECRET", "LINK", "DIRLINK + '/secret.txt'", "FD",
    "PathLike()", "SECRET, 'rb'", "SECRET.encode()", "GRANTED + '/ok.txt'",
    "GRANTED + '/../outside/secret.txt'", "print", "int", "own", "vault", "'_token'", "'os'",
    "'open(SECRET).read()'", "'().__class__.__base__.__subclasses__()'", "'{0._token}'",
    "'{0.__globals__}', vault.public",
]  # fmt: skip

WRAPPERS = ["vars", "dir", "type", "iter", "next", "repr", "list", "open", "dict", "sorted",
            "str", "bytes", "copy.copy", "json.dumps", "pprint.pformat",
            # trampolines: trusted code calling the value back from its own frame
            "(lambda f: copy.copy(ReduceTo(f)))", "(lambda f: vault.describe(ReprBy(f)))",
            "(lambda f: string.Template('$x').substitute(collections.defaultdict(f)))",
            "(lambda f: json.loads('{\"a\": 1}', object_hook=f))",
            "(lambda x: vault.starts_before(x))",
            "(lambda x: vault.check(x))", "(lambda x: vault.contains([x]))",
            "(lambda x: isinstance(vault, collections.abc.Sequence) and x)",
            "display", "(lambda x: display([x, vault]))",
            # callback APIs of trusted standard-library code, display hooks, comparisons
            "(lambda f: heapq.nsmallest(1, [vault, 2], key=f))",
            "(lambda f: max([1, 2], key=f))", "(lambda f: json.dumps(own, default=f))",
            "(lambda f: re.sub('a', f, 'a'))", "(lambda f: functools.reduce(f, [vault, 1]))",
            "(lambda f: pprint.pformat(ReprBy(f)))", "(lambda f: display(PrettyBy(f)))",
            "(lambda f: string.Template('$x').substitute(Missing(x=f)))",
            "(lambda x: sorted([x, Seen(), vault], key=id))", "(lambda x: {x: 1}.get(Hashed()))",
            "(lambda x: x == vault)", "(lambda x: vault == x)", "(lambda x: [vault].index(x))",
            "(lambda x: datetime.datetime(2020, 1, 1, tzinfo=x).isoformat())",
            "(lambda x: copy.deepcopy([x, vault]))", "(lambda x: slice(x, vault))"]  # fmt: skip

_names = st.sampled_from(NAMES)
_accessors = st.one_of(
    st.tuples(st.just("attr"), _names),
    st.tuples(st.just("getattr"), _names),
    st.tuples(st.just("format"), _names),
    st.tuples(st.just("format_index"), st.sampled_from(["0", "v", "_token", "__builtins__"])),
    st.tuples(st.just("format_map"), _names),
    st.tuples(st.just("formatter"), _names),
    st.tuples(st.just("attrgetter"), _names),
    st.tuples(st.just("attrgetter"), st.builds("{}.{}".format, _names, _names)),
    st.tuples(st.just("methodcaller"), _names),
    st.tuples(st.just("index"), st.sampled_from(KEYS)),
    st.tuples(st.just("call"), st.sampled_from(ARGS)),
    st.tuples(st.just("wrap"), st.sampled_from(WRAPPERS)),
)


def render(root: str, steps) -> str:
    """The Python expression that applies ``steps`` to ``root``."""
    expr = root
    for kind, arg in steps:
        if kind == "attr":
            expr = f"({expr}).{arg}"
        elif kind == "getattr":
            expr = f"getattr({expr}, {arg!r})"
        elif kind == "format":
            expr = f"'{{0.{arg}}}'.format({expr})"
        elif kind == "format_index":
            expr = f"'{{0[{arg}]}}'.format({expr})"
        elif kind == "format_map":
            expr = f"'{{x.{arg}}}'.format_map({{'x': {expr}}})"
        elif kind == "formatter":
            expr = f"string.Formatter().format('{{0.{arg}}}', {expr})"
        elif kind == "attrgetter":
            expr = f"operator.attrgetter({arg!r})({expr})"
        elif kind == "methodcaller":
            expr = f"operator.methodcaller({arg!r})({expr})"
        elif kind == "index":
            expr = f"({expr})[{arg}]"
        elif kind == "call":
            expr = f"({expr})({arg})"
        else:
            expr = f"{arg}({expr})"
    return expr


programs = st.builds(render, st.sampled_from(ROOTS), st.lists(_accessors, min_size=1, max_size=8))


#: Refused opens in a capsule; plain Python (the control) would really open the secret here.
_REFUSALS = "exc_open = caught(lambda: open(SECRET))\nexc_link = caught(lambda: open(LINK))"


def program_source(expr: str, c: Canaries, plain: bool = False) -> str:
    """The whole capsule program: the prelude, then ``expr`` with any exception caught *in the
    capsule* (so the checker sees exactly the exception object capsule code would hold)."""
    refusals = "exc_open = exc_link = None" if plain else _REFUSALS
    prelude = PRELUDE.format(secret=c.secret, granted=c.granted, fd=c.fd, refusals=refusals)
    body = f"try:\n    result = {expr}\nexcept BaseException as _e:\n    error = _e\n"
    return prelude + body + "result"


# -- running and checking ------------------------------------------------------------------
@dataclass
class Outcome:
    """Everything a run handed to the capsule or to trusted code."""

    value: object = None  # the program's result
    caught: BaseException | None = None  # the exception capsule code caught
    error: BaseException | None = None  # an exception that escaped ``Capsule.run``
    output: str = ""  # captured stdout and stderr
    warned: list = field(default_factory=list)  # warning messages
    opened: list = field(default_factory=list)  # opens of the secret the tripwire let through
    vault: Vault | None = None
    captured: list = field(default_factory=list)  # what trusted code handed capsule hooks


def run_program(expr: str, c: Canaries | None = None) -> Outcome:
    """Run one generated program in a fresh capsule (read grant: ``c.granted`` only)."""
    c = c or canaries()
    vault = Vault(c.token)
    capsule = Capsule(protected=_protected(vault), grants=[("read", c.granted)])
    return _observe(lambda: capsule.run(program_source(expr, c)), capsule.namespace, c, vault)


def run_plain(expr: str, c: Canaries | None = None) -> Outcome:
    """The same program as plain Python (full builtins, raw objects): the checker's control."""
    c = c or canaries()
    vault = Vault(c.token)
    ns = {"__builtins__": builtins, "__name__": "__plain__", **_protected(vault)}
    code = compile(program_source(expr, c, plain=True), "<plain>", "exec")
    return _observe(lambda: exec(code, ns) or ns["result"], ns, c, vault)


def _protected(vault: Vault) -> dict:
    return {"vault": vault, "data": {"v": vault}, "items": [vault], "helper": vault.check}


def _observe(execute, ns: dict, c: Canaries, vault: Vault) -> Outcome:
    """Run ``execute`` with stdout/stderr, warnings and opens of the secret captured."""
    out = Outcome(vault=vault)
    buf = io.StringIO()
    with (
        watching_opens(c) as opened,
        warnings.catch_warnings(record=True) as warned,
        contextlib.redirect_stdout(buf),
        contextlib.redirect_stderr(buf),
    ):
        warnings.simplefilter("always")
        try:
            out.value = execute()
        except BaseException as e:  # noqa: BLE001 - refusals and ordinary errors are fine
            out.error = e
            out.value = ns.get("result")
        finally:
            out.caught = ns.get("error")
            captured = ns.get("captured")
            out.captured = list(captured) if type(captured) is list else []
            _tidy(ns)
    out.output = buf.getvalue()
    out.warned = [str(w.message) for w in warned]
    out.opened = opened
    return out


def _tidy(ns: dict) -> None:
    """Close what the prelude opened or started (no warnings about unawaited coroutines)."""
    for name in ("coro", "result", "opened"):
        value = ns.get(name)
        if type(value) is types.CoroutineType or (
            type(value) is not Proxy and isinstance(value, io.IOBase)
        ):
            with contextlib.suppress(Exception):
                value.close()


_FORBIDDEN_TYPES = (types.FrameType, types.TracebackType, types.CodeType, types.ModuleType)


def _leaks(text: str, c: Canaries) -> str | None:
    if c.token in text:
        return "the token"
    if c.contents in text:
        return "the secret file's contents"
    return None


def forbidden(value, c: Canaries, vault: Vault | None, depth: int = 0) -> str | None:
    """Why ``value`` (returned to trusted code) is a reached canary, or None."""
    if depth > 3:
        return None
    if vault is not None and (value is vault or value is vars(vault)):
        return "the raw protected object"
    if value is Vault:
        return "the raw class of the protected object (its methods can be replaced)"
    if type(value) is Proxy:  # a proxy is fine unless it stands for something never granted
        why = _never_granted(target_of(value))
        return f"a proxy of {why}" if why else None
    why = _never_granted(value)
    if why:
        return why
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return _leaks(value if isinstance(value, str) else bytes(value).decode("latin-1"), c)
    if isinstance(value, BaseException):
        return _exception_leaks(value, c, vault, depth)
    if isinstance(value, (dict, types.MappingProxyType)):
        for k, v in list(value.items())[:50]:
            why = forbidden(k, c, vault, depth + 1) or forbidden(v, c, vault, depth + 1)
            if why:
                return why
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in list(value)[:50]:
            why = forbidden(v, c, vault, depth + 1)
            if why:
                return why
    if isinstance(value, types.FunctionType) and value.__globals__ is vars(_harness):
        return "a raw function of the protected object's code (its __globals__ are one step away)"
    if isinstance(value, (types.MethodType, types.BuiltinMethodType)):
        if vault is not None and getattr(value, "__self__", None) is vault:
            return "a method bound to the raw protected object"
    if depth == 0:  # what repr() shows capsule code (a proxy shows its target's repr)
        with contextlib.suppress(Exception):
            return _leaks(repr(value), c)
    return None


def _is_process_module(module) -> bool:
    """Whether ``module`` is one of the process's real modules (imported, or the stand-ins
    ipycap keeps for sys and IPython.display), as opposed to one the program created with
    ``types.ModuleType(name)``, which holds nothing it did not put there."""
    from ipycap.engine import modules as capsule_modules

    stand_ins = list(capsule_modules._SPECIAL_CACHE.values())
    return any(m is module for m in list(sys.modules.values()) + stand_ins)


def _never_granted(value) -> str | None:
    """Objects no grant ever hands a capsule, raw or behind a proxy."""
    if isinstance(value, types.ModuleType) and not _is_process_module(value):
        return None  # a fresh, empty module the program made itself (type(math)('x'))
    if isinstance(value, _FORBIDDEN_TYPES) and not isinstance(value, ModuleView):
        return f"a {type(value).__name__}"
    if value is builtins or value is vars(builtins):
        return "the builtins"
    if isinstance(value, (dict, types.MappingProxyType)) and "__builtins__" in value:
        b = value["__builtins__"]
        if (
            b is builtins
            or b is vars(builtins)
            or any(
                type(m) is types.ModuleType and m.__dict__ is value
                for m in list(sys.modules.values())
            )
        ):
            return "a module's globals"
    return None


def _exception_leaks(exc: BaseException, c: Canaries, vault, depth: int) -> str | None:
    """An exception leaks through its message, args, notes, attributes or chained ones."""
    with contextlib.suppress(Exception):
        why = _leaks(BaseException.__str__(exc), c)
        if why:
            return f"{why} in an exception's message"
    parts = [exc.args, getattr(exc, "__notes__", None), exc.__cause__, exc.__context__]
    for name in ("obj", "name", "value", "object", "filename", "filename2"):  # C-level slots
        parts.append(getattr(exc, name, None))
    with contextlib.suppress(Exception):
        parts.append(dict(vars(exc)))
    for part in parts:
        why = forbidden(part, c, vault, depth + 1) if part is not None else None
        if why:
            return f"{why} in an exception"
    return None


def reached(out: Outcome, c: Canaries | None = None) -> str | None:
    """Why this run reached a canary (value, exceptions, tracebacks, output, opens), or None."""
    c = c or canaries()
    if out.opened:
        return f"opened the secret file ({out.opened[0]!r})"
    why = forbidden(out.value, c, out.vault)
    if why:
        return f"returned {why}"
    for label, exc in (("caught", out.caught), ("raised", out.error)):
        if exc is None:
            continue
        why = forbidden(exc, c, out.vault)
        if not why:
            with contextlib.suppress(Exception):
                why = _leaks("".join(traceback.format_exception(exc)), c)
                why = why and f"{why} in a formatted traceback"
        if why:
            return f"{label} an exception with {why}"
    for value in out.captured:
        why = forbidden(value, c, out.vault)
        if why:
            return f"handed a capsule hook {why}"
    why = _leaks(out.output, c) or _leaks("\n".join(out.warned), c)
    return f"printed {why}" if why else None
