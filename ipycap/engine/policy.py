"""CapsulePolicy: the ceiling of what any capsule may be granted, configured with traitlets.

Set it with ``c.CapsulePolicy.x = ...`` in ``ipython_config.py`` or
``ipython_kernel_config.py``, ``--CapsulePolicy.x=...`` on a kernel's argv, or ``%config``
from a trusted cell.  Notebooks can ask for less than the ceiling, never more.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig

try:  # imported here, not lazily: a lazy import inside a capsule would meet the tripwire
    from jupyter_core import paths as _jupyter_paths
except ImportError:  # pragma: no cover - jupyter_core comes with ipykernel
    _jupyter_paths = None
from traitlets import All, Bool, Enum, Float, Int, List, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from . import epoch

DEFAULT_IMPORTS = [
    "math",
    "cmath",
    "decimal",
    "fractions",
    "random",
    "statistics",
    "itertools",
    "functools",
    "collections",
    "collections.abc",
    "heapq",
    "bisect",
    "re",
    "json",
    "datetime",
    "string",
    "textwrap",
    "enum",
    "operator",
    "dataclasses",
    "typing",
    "numbers",
    "copy",
    "pprint",
    "unicodedata",
    "difflib",
    "calendar",
    "time",
    "sys",
    "IPython.display",
    # Capsule-safe stand-ins (ipycap.engine.stdviews): the raw modules stay denied.
    "io",
    "pathlib",
    "glob",
    "os.path",
    # Private helpers the modules above import lazily through the calling frame's
    # __import__ (datetime.strptime imports _strptime from C, and so on).
    "_strptime",
    "_datetime",
    "_json",
    "_decimal",
    "_pydecimal",
    "_random",
    "_bisect",
    "_heapq",
    "_collections_abc",
    "_functools",
    "_operator",
    "_statistics",
    "_string",
    "keyword",
    "reprlib",
]

DENIED_IMPORTS = [
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "_posixsubprocess",
    "subprocess",
    "ctypes",
    "_ctypes",
    "gc",
    "inspect",
    "importlib",
    "_imp",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "zipimport",
    "pkgutil",
    "runpy",
    "builtins",
    "marshal",
    "pickle",
    "_pickle",
    "copyreg",
    "shelve",
    "dbm",
    "socket",
    "_socket",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "types",
    "code",
    "codeop",
    "pdb",
    "bdb",
    "trace",
    "traceback",
    "tracemalloc",
    "faulthandler",
    "signal",
    "threading",
    "_thread",
    "multiprocessing",
    "concurrent",
    "sysconfig",
    "site",
    "shutil",
    "tempfile",
    "glob",
    "pathlib",
    "io",
    "_io",
    "fcntl",
    "pty",
    "tty",
    "termios",
    "resource",
    "mmap",
    "sqlite3",
    "urllib",
    "http",
    "ftplib",
    "smtplib",
    "telnetlib",
    "webbrowser",
    "platform",
    "pydoc",
    "linecache",
    "tokenize",
    "ast",
    "dis",
    "weakref",
    "_weakref",
    "atexit",
    "ipycap",
    "IPython",
    "ipykernel",
    "jupyter_client",
    "jupyter_core",
    "traitlets",
    "zmq",
    # Jupyter's comms and widgets hold the kernel (its session key, its shell) one attribute
    # away, and publish to the frontend unfiltered.
    "comm",
    "ipywidgets",
    "widgetsnbextension",
    "jupyter_server",
    "debugpy",
    # Process-wide callback registries trusted code calls later with its own data (I3).
    "logging",
    "codecs",
    "tornado",
    "_xxsubinterpreters",
    "_testcapi",
    "_testinternalcapi",
    "sys._raw",
]

#: Standard-library modules a capsule may be granted (``--allow-import``) besides the
#: defaults.  Any other standard-library module is "internal": stdlib and granted library
#: code may import it on a capsule's behalf, but no capsule may import or be granted it.
#: Class of what is left out: trusted "deputies" that resolve a dotted name and set
#: attributes on what they find (unittest.mock.patch, pkgutil.resolve_name), or that write
#: process-wide state trusted code then uses (gettext.install writes builtins._, warnings
#: filters make trusted code raise, locale.setlocale, argparse/sys.exit, email.charset and
#: mimetypes registries, contextlib.redirect_* -- here overridden, see modules.py).  On
#: Python 3.11 setting an arbitrary attribute on a class raises no audit event, so the
#: tripwire cannot refuse what such a deputy does: the deputy itself must stay out of reach.
#: Each entry: computes on values it is given, keeps no process-wide table a capsule could
#: write (the ones that do are overridden in modules.MODULE_OVERRIDES), reaches files only
#: through open/os events the tripwire checks.
GRANTABLE_STDLIB = [
    "abc",  # ABC classes; register() on shared ABCs is reachable through collections.abc
    "array",  # typed arrays of numbers
    "base64",  # encodings of bytes
    "binascii",
    "bz2",  # compression (files through open: tripwire)
    "colorsys",
    "contextlib",  # contextmanager/suppress/ExitStack; redirect_* and chdir overridden
    "csv",  # dialect registry and field_size_limit overridden (process-wide tables)
    "configparser",
    "fnmatch",
    "graphlib",
    "gzip",
    "hashlib",
    "hmac",
    "html",
    "ipaddress",
    "lzma",
    "queue",
    "quopri",
    "secrets",  # its own SystemRandom (os.urandom), no shared seed
    "shlex",
    "struct",
    "tarfile",  # extraction writes through the tripwire's path checks
    "tomllib",
    "uuid",  # getnode() helpers meet the tripwire (subprocess, sockets)
    "xml",  # ElementTree.register_namespace overridden (process-wide prefix table)
    "zipfile",
    "zlib",
]

#: Denied modules whose name gives a capsule-safe stand-in instead of the raw module.
STAND_IN_MODULES = ("sys", "IPython.display", "io", "pathlib", "glob", "os.path")

#: Credential folders that no grant may cover (relative to the home directory).
CREDENTIAL_PATHS = [
    "~/.ssh",
    "~/.gnupg",
    "~/.aws",
    "~/.azure",
    "~/.config/gcloud",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.pgpass",
    "~/.git-credentials",
    "~/.config/gh",
    "~/.pypirc",
    "~/.local/share/keyrings",
    "~/.password-store",
]


class CapsulePolicy(Configurable):
    """The ceiling and defaults of every capsule in this process.

    Paths are lists of directories; a path grant must fall under one of
    ``readable_paths`` / ``writable_paths`` and never under ``denied_paths``.
    """

    default_imports = List(
        Unicode(),
        default_value=list(DEFAULT_IMPORTS),
        config=True,
        help="Modules every capsule may import without a grant (each import is logged). "
        "A name covers its submodules only when listed with them, e.g. 'collections.abc'.",
    )
    denied_imports = List(
        Unicode(),
        default_value=list(DENIED_IMPORTS),
        config=True,
        help="Modules (and their submodules) no capsule can ever import, whatever it is "
        "granted. 'sys' and 'IPython.display' here mean the raw modules: capsules get "
        "capsule-safe views of them.",
    )
    readable_paths = List(
        Unicode(),
        default_value=["/"],
        config=True,
        help="Ceiling for read grants: a --allow-read path must lie under one of these. "
        "An empty list means no read grant is possible.",
    )
    writable_paths = List(
        Unicode(),
        default_value=["/"],
        config=True,
        help="Ceiling for write grants: a --allow-write path must lie under one of these. "
        "An empty list means no write grant is possible.",
    )
    denied_paths = List(
        Unicode(),
        default_value=list(CREDENTIAL_PATHS),
        config=True,
        help="Paths no grant may ever cover (credentials by default). Jupyter/IPython "
        "config and runtime folders are always denied too, and for writing every sys.path "
        "entry, site-packages and kernelspec folder.",
    )
    expose_user_namespace = Bool(
        True,
        config=True,
        help="Whether capsules see the user namespace (through read-only proxies).",
    )
    output_mime_types = List(
        Unicode(),
        default_value=["text/plain", "text/html", "image/png", "image/jpeg", "image/gif"],
        config=True,
        help="MIME types capsule output may publish. 'text/html' and 'text/markdown' are "
        "sanitised; JavaScript and SVG are never published.",
    )
    prompt = Bool(
        True,
        config=True,
        help="Whether the human may be asked for a grant within the ceiling: at the moment "
        "capsule code needs it ('Allow read access to data/x.csv?', extension and kernel) and "
        "by '%capsule request' (capsule kernel). Off: such accesses are refused.",
    )
    allow_input = Bool(
        False,
        config=True,
        help="Whether capsule code may call input() (it can be used to phish the user).",
    )
    audit_log = Unicode(
        "",
        config=True,
        help="Path of a JSON-lines file to append every grant, use and refusal to ('' = off).",
    )
    mode = Enum(
        ["proxy", "rexec"],
        default_value="proxy",
        config=True,
        help="Default capsule mode: 'proxy' (own objects are introspectable) or 'rexec' "
        "(underscore introspection denied everywhere).",
    )
    memory_limit = Int(
        0, config=True, help="Address-space limit in bytes for a confined kernel (0 = none)."
    )
    file_size_limit = Int(
        0, config=True, help="Largest file a confined kernel may write, in bytes (0 = none)."
    )
    # Per-cell limits (ipycap/engine/limits.py): every cell's default and its ceiling.
    timeout = Float(
        0.0,
        config=True,
        help="Seconds a capsule cell may run before it is stopped (0 = no limit); "
        "%%capsule --timeout may ask for less.",
    )
    max_memory = Unicode(
        "0",
        config=True,
        help="Memory a capsule cell's Python allocations may add, e.g. '300M', '2G' "
        "(0 = no limit); over it an allocation raises MemoryError in the capsule. "
        "%%capsule --max-memory may ask for less.",
    )
    max_output = Unicode(
        "10M",
        config=True,
        help="Characters of stdout, stderr and display output one capsule cell may show, "
        "e.g. '64K' (0 = no limit); the rest is dropped with a note. "
        "%%capsule --max-output may ask for less.",
    )

    grantable_stdlib = List(
        Unicode(),
        default_value=list(GRANTABLE_STDLIB),
        config=True,
        help="Standard-library modules (and their submodules) a capsule may be granted "
        "besides default_imports. Any other standard-library module is never grantable "
        "(several change process-wide state for trusted code: unittest.mock, gettext, "
        "warnings, locale); stdlib and granted libraries may still import it themselves.",
    )

    @validate("default_imports", "denied_imports", "grantable_stdlib")
    def _check_module_names(self, proposal):
        names = proposal["value"]
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise TraitError(f"{name!r} is not a module name (expected e.g. 'math')")
        return _WatchedList(names)

    @validate("readable_paths", "writable_paths", "denied_paths")
    def _check_paths(self, proposal):
        paths = proposal["value"]
        for p in paths:
            if not p or "\0" in p:
                raise TraitError(f"{p!r} is not a usable path")
        return _WatchedList(paths)

    @validate("output_mime_types")
    def _check_mimes(self, proposal):
        for m in proposal["value"]:
            if "/" not in m:
                raise TraitError(f"{m!r} is not a MIME type (expected e.g. 'image/png')")
        return list(proposal["value"])

    @validate("memory_limit", "file_size_limit")
    def _check_limit(self, proposal):
        if proposal["value"] < 0:
            raise TraitError("limits are byte counts >= 0 (0 means no limit)")
        return proposal["value"]

    @validate("timeout")
    def _check_timeout(self, proposal):
        if not 0 <= proposal["value"] < float("inf"):
            raise TraitError("timeout is a number of seconds >= 0 (0 means no limit)")
        return proposal["value"]

    @validate("max_memory", "max_output")
    def _check_size(self, proposal):
        from .limits import parse_size

        try:
            parse_size(proposal["value"])
        except ValueError as e:
            raise TraitError(str(e)) from None
        return proposal["value"]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in _WATCHED:  # defaults are plain lists: make them watched too
            if type(getattr(self, name)) is not _WatchedList:
                self.set_trait(name, _WatchedList(getattr(self, name)))

    @observe(All)
    def _changed(self, change):
        epoch.bump()  # every cached decision is made again against the new value

    # -- decisions -------------------------------------------------------------------
    def import_tier(self, name: str) -> str:
        """Return 'default', 'denied', 'grantable' or 'internal' for a module name.

        'internal': a standard-library module outside ``grantable_stdlib`` -- no capsule
        may import it or be granted it; stdlib and granted library code may import it."""
        if _matches(name, self.denied_imports) and name not in STAND_IN_MODULES:
            return "denied"
        if name in self.default_imports:
            return "default"
        if _matches(name, ["IPython"]):
            return "denied"
        if name.partition(".")[0] in _STDLIB_TOPS and not (
            _matches(name, self.grantable_stdlib)
            or _matches(name, self.default_imports)
            or _matches(name, DEFAULT_IMPORTS)  # reviewed defaults a config left out
        ):
            return "internal"
        return "grantable"

    def denied_path_roots(self, mode: str) -> list[str]:
        """Resolved roots no grant of ``mode`` ('read' or 'write') may fall under."""
        return _cached(self, "denied", mode, self._denied_path_roots)

    def is_denied_path(self, mode: str, path: str) -> bool:
        """Whether the resolved ``path`` is (under) one of ``denied_path_roots(mode)``."""
        roots, prefixes = _cached_tuple(
            self, "denied-prefixes", mode, lambda m: _prefixes(self._denied_path_roots(m))
        )
        return path in roots or path.startswith(prefixes)

    def _denied_path_roots(self, mode: str) -> list[str]:
        roots = [os.path.expanduser(p) for p in self.denied_paths]
        roots += _jupyter_private_dirs()
        if mode == "write":
            roots += _code_dirs()
        return sorted({os.path.realpath(r) for r in roots if r})

    def import_roots(self) -> list[str]:
        """Resolved ``sys.path`` folders: a module written directly into one of them would be
        imported later by trusted code (write-then-import), so no write may land there."""
        return _cached(self, "import_roots", None, self._import_roots)

    def _import_roots(self, _=None) -> list[str]:
        roots = {os.path.realpath(p or os.getcwd()) for p in sys.path if isinstance(p, str)}
        # Entries that are no folder (an editable install's path-hook marker, a zip file)
        # hold no place a written module would be found.
        return sorted(r for r in roots if os.path.isdir(r))

    def write_plants_code(self, path: str) -> bool:
        """Whether writing the resolved ``path`` could plant code a later import runs (or a
        git hook / git config, which git runs later with the user's full authority)."""
        if "/.git/" in path + "/":
            return True
        roots = _cached_tuple(
            self, "import-root-set", None, lambda _: frozenset(self._import_roots())
        )
        parent = os.path.dirname(path)
        # Any folder under a sys.path entry is importable too (a namespace package), so a
        # module written anywhere below one is as good as one written into it.
        while parent not in roots:
            up = os.path.dirname(parent)
            if up == parent:
                return False
            parent = up
        name = os.path.basename(path)
        return name.endswith(IMPORTABLE_SUFFIXES) or "." not in name or name == "__pycache__"

    def ceiling(self, mode: str) -> list[str]:
        """Resolved roots that a grant of ``mode`` must fall under."""
        return _cached(self, "ceiling", mode, self._ceiling)

    def _ceiling(self, mode: str) -> list[str]:
        paths = self.readable_paths if mode == "read" else self.writable_paths
        return [os.path.realpath(os.path.expanduser(p)) for p in paths]


_WATCHED = ("default_imports", "denied_imports", "readable_paths", "writable_paths", "denied_paths")


class _WatchedList(list):
    """A policy list (module names, paths): changing it in place, like assigning it, makes
    every cached decision be made again (``epoch.bump``)."""

    def _mutator(name):
        method = getattr(list, name)

        def changed(self, *args):
            try:
                return method(self, *args)
            finally:
                epoch.bump()

        changed.__name__ = name
        return changed

    for _name in (
        "append extend insert remove pop clear sort reverse __setitem__ __delitem__ "
        "__iadd__ __imul__"
    ).split():
        locals()[_name] = _mutator(_name)
    del _name, _mutator


#: The inputs of the resolved roots besides the policy's own values (those bump the epoch):
#: where Jupyter and IPython keep their files, and the home folder.
_ROOT_ENV = (
    "HOME",
    "IPYTHONDIR",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_RUNTIME_DIR",
    "JUPYTER_DATA_DIR",
    "JUPYTER_PATH",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
)


_ENV_KEYS = tuple(os.fsencode(v) for v in _ROOT_ENV)


def _env_key() -> tuple:
    data = getattr(os.environ, "_data", None)  # os._Environ's own dict: no decoding
    if type(data) is dict:
        return tuple(map(data.get, _ENV_KEYS))
    return tuple(os.environ.get(v) for v in _ROOT_ENV)  # pragma: no cover


def _cached_tuple(policy, what: str, mode, compute) -> tuple:
    """``compute(mode)`` as a tuple, cached while its inputs are unchanged: the epoch (the
    policy's values), ``sys.path`` (and the working folder when it holds a relative entry)
    and the environment variables the roots derive from."""
    path = tuple(sys.path)
    key = (
        epoch.STATE[0],
        path,
        os.getcwd() if any(type(p) is not str or p[:1] != "/" for p in path) else None,
        _env_key(),
    )
    cache = policy.__dict__.get("_root_cache")
    if cache is None:
        cache = policy.__dict__["_root_cache"] = {}
    hit = cache.get((what, mode))
    if hit is not None and hit[0] == key:
        return hit[1]
    value = compute(mode)
    cache[(what, mode)] = (key, value)
    return value


def _cached(policy, what: str, mode, compute) -> list[str]:
    """A fresh list of the cached ``compute(mode)`` (callers may change it)."""
    return list(_cached_tuple(policy, what, mode, lambda m: tuple(compute(m))))


def _prefixes(roots) -> tuple[frozenset, tuple]:
    """``(roots, their folder prefixes)``: a path is under one of ``roots`` when it is in
    the first or starts with one of the second (``path.startswith(prefixes)``)."""
    return frozenset(roots), tuple({r.rstrip("/") + "/" for r in roots})


def internal_module_refusal(name: str) -> str:
    """Why a standard-library module outside CapsulePolicy.grantable_stdlib is refused."""
    return (
        f"import of {name!r}: a standard-library module outside "
        "c.CapsulePolicy.grantable_stdlib (it acts on process-wide state for its caller, "
        "or is not reviewed)"
    )


_STDLIB_TOPS = frozenset(sys.stdlib_module_names)


def _matches(name: str, modules) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _jupyter_private_dirs() -> list[str]:
    home = os.path.expanduser("~")
    dirs = [
        os.environ.get("IPYTHONDIR") or os.path.join(home, ".ipython"),
        os.path.join(home, ".jupyter"),
        os.path.join(home, ".local", "share", "jupyter", "runtime"),
    ]
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"):
        if os.environ.get(var):
            dirs.append(os.environ[var])
    if _jupyter_paths is not None:
        dirs += [_jupyter_paths.jupyter_config_dir(), _jupyter_paths.jupyter_runtime_dir()]
    return dirs


IMPORTABLE_SUFFIXES = (".py", ".pyc", ".pyw", ".pth", ".so", ".pyd", ".zip", ".egg")


def _code_dirs() -> list[str]:
    """Folders whose contents run later with full authority: never writable, recursively."""
    dirs = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)]
    dirs += [sysconfig.get_paths().get(k, "") for k in ("purelib", "platlib", "stdlib")]
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except Exception:
        pass
    # ipycap's own source (an editable install lives outside site-packages) and the shell
    # and scheduler files that run later with the user's full authority.
    dirs.append(os.path.dirname(os.path.abspath(__file__)))
    home = os.path.expanduser("~")
    dirs += [
        os.path.join(home, f)
        for f in (".bashrc", ".bash_profile", ".profile", ".zshrc", ".bash_login", ".pythonrc.py")
    ]
    dirs += ["/etc/profile.d", "/etc/cron.d", "/etc/crontab", "/var/spool/cron"]
    dirs += [os.path.join(sys.prefix, "share", "jupyter"), os.path.join(sys.prefix, "etc")]
    home = os.path.expanduser("~")
    dirs += [os.path.join(home, ".local", "share", "jupyter"), os.path.join(home, ".config")]
    if os.environ.get("JUPYTER_DATA_DIR"):
        dirs.append(os.environ["JUPYTER_DATA_DIR"])
    return [d for d in dirs if d]
