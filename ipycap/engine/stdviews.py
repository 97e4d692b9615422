"""Capsule-safe stand-ins for ``io``, ``pathlib``, ``glob`` and ``os.path``.

The raw modules stay denied (``io.open``/``FileIO`` open any file descriptor, ``pathlib`` and
``os.path`` reach the raw ``os``); a capsule gets these instead:

- ``io``: in-memory streams (``StringIO``, ``BytesIO``) and ``TextIOWrapper`` over a buffer the
  capsule already has; the base classes for ``isinstance``;
- ``pathlib``: the pure path classes, and a ``Path`` whose I/O (``read_text``, ``open``,
  ``iterdir``, ``glob``, ``exists``, ``stat``...) obeys the capsule's read/write grants;
- ``glob``: ``glob``/``iglob`` of granted folders only;
- ``os.path``: the pure functions; ``exists``/``isfile``/``getsize``... obey the read grants
  (a refused path is refused, not reported missing: existence outside the grants is not the
  capsule's to learn).

Every check goes to the innermost capsule context on the stack (``tripwire``), and the
opens go through that capsule's own ``open`` builtin.
"""

from __future__ import annotations

import glob as _glob
import io as _io
import os
import pathlib as _pathlib
import posixpath
import types

from . import guard, tripwire
from .errors import CapsulePermissionError


def _context():
    ctx = tripwire.current_context()
    if ctx is None:
        raise CapsulePermissionError(
            "file access through the capsule's pathlib/os.path outside capsule code",
            "builtins",
            None,
        )
    return ctx


def _checked(path, kind: str = "read") -> str:
    """The real path of ``path`` after checking it against the capsule's grants."""
    resolved = os.path.realpath(os.path.expanduser(os.fspath(_text(path))))
    _context().check_path(kind, resolved)
    return resolved


def _text(path) -> str:
    if isinstance(path, Path):
        return str(path._ipycap_pure)
    if isinstance(path, _pathlib.PurePath):
        return str(path)
    if isinstance(path, str):
        return "".join([path])
    if isinstance(path, bytes):
        return os.fsdecode(bytes(memoryview(path)))
    raise TypeError(f"expected a str or path, not {type(path).__name__}")


# -- io ----------------------------------------------------------------------------------------
def _io_view():
    mod = types.ModuleType("io", "Capsule-safe io: in-memory streams, no file opening.")
    names = [
        "StringIO",
        "BytesIO",
        "TextIOWrapper",
        "IOBase",
        "RawIOBase",
        "BufferedIOBase",
        "TextIOBase",
        "UnsupportedOperation",
        "SEEK_SET",
        "SEEK_CUR",
        "SEEK_END",
        "DEFAULT_BUFFER_SIZE",
    ]
    for n in names:
        setattr(mod, n, getattr(_io, n))
    mod.__all__ = names
    guard.share_class(tuple(v for v in vars(mod).values() if isinstance(v, type)))
    return mod


# -- pathlib -------------------------------------------------------------------------------
class Path:
    """A path whose I/O obeys the capsule's grants (``pathlib.Path`` in a capsule)."""

    __slots__ = ("_ipycap_pure",)
    __ipycap_path__ = True

    def __new__(cls, *parts):
        # state set once, here: immutable means ``p.__init__('/elsewhere')`` (object's
        # __init__) leaves ``p`` where it was for whoever holds it
        self = object.__new__(cls)
        pure = _pathlib.PurePosixPath(*[_text(p) for p in parts])
        object.__setattr__(self, "_ipycap_pure", pure)
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"Path objects are immutable (cannot set {name!r})")

    # immutable, like str: a copy is the object itself (copy's generic reconstruction would
    # set the slot on a new object, which __setattr__ refuses; dataclasses.asdict deep-copies)
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # pure operations
    def __fspath__(self):
        return str(self._ipycap_pure)

    def __str__(self):
        return str(self._ipycap_pure)

    def __repr__(self):
        return f"Path({str(self._ipycap_pure)!r})"

    def __eq__(self, other):
        return isinstance(other, Path) and self._ipycap_pure == other._ipycap_pure

    def __lt__(self, other):
        return self._ipycap_pure < Path(other)._ipycap_pure

    def __hash__(self):
        return hash(self._ipycap_pure)

    def __truediv__(self, other):
        return Path(self._ipycap_pure / _text(other))

    def __rtruediv__(self, other):
        return Path(_text(other), self._ipycap_pure)

    def joinpath(self, *parts):
        return Path(self._ipycap_pure, *parts)

    name = property(lambda self: self._ipycap_pure.name)
    stem = property(lambda self: self._ipycap_pure.stem)
    suffix = property(lambda self: self._ipycap_pure.suffix)
    suffixes = property(lambda self: self._ipycap_pure.suffixes)
    parts = property(lambda self: self._ipycap_pure.parts)
    anchor = property(lambda self: self._ipycap_pure.anchor)
    parent = property(lambda self: Path(self._ipycap_pure.parent))
    parents = property(lambda self: tuple(Path(p) for p in self._ipycap_pure.parents))

    def with_name(self, name):
        return Path(self._ipycap_pure.with_name(name))

    def with_suffix(self, suffix):
        return Path(self._ipycap_pure.with_suffix(suffix))

    def with_stem(self, stem):
        return Path(self._ipycap_pure.with_stem(stem))

    def relative_to(self, other):
        return Path(self._ipycap_pure.relative_to(_text(other)))

    def is_absolute(self):
        return self._ipycap_pure.is_absolute()

    def match(self, pattern):
        return self._ipycap_pure.match(pattern)

    def as_posix(self):
        return self._ipycap_pure.as_posix()

    @classmethod
    def cwd(cls):
        return cls(os.getcwd())

    def absolute(self):
        return Path(os.path.abspath(str(self)))

    def resolve(self, strict=False):
        return Path(_checked(self))

    def expanduser(self):
        return Path(os.path.expanduser(str(self)))

    # I/O, checked
    def exists(self):
        return os.path.exists(_checked(self))

    def is_file(self):
        return os.path.isfile(_checked(self))

    def is_dir(self):
        return os.path.isdir(_checked(self))

    def stat(self):
        return os.stat(_checked(self))

    def open(self, mode="r", buffering=-1, encoding=None, errors=None, newline=None):
        return _context().builtins["open"](str(self), mode, buffering, encoding, errors, newline)

    def read_text(self, encoding=None, errors=None):
        with self.open("r", encoding=encoding, errors=errors) as f:
            return f.read()

    def read_bytes(self):
        with self.open("rb") as f:
            return f.read()

    def write_text(self, data, encoding=None, errors=None, newline=None):
        with self.open("w", encoding=encoding, errors=errors, newline=newline) as f:
            return f.write(data)

    def write_bytes(self, data):
        with self.open("wb") as f:
            return f.write(data)

    def iterdir(self):
        real = _checked(self)
        return iter([self / n for n in sorted(os.listdir(real))])

    def glob(self, pattern):
        return iter(_granted_glob(str(self), pattern, recursive="**" in pattern))

    def rglob(self, pattern):
        return iter(_granted_glob(str(self), "**/" + pattern, recursive=True))

    def mkdir(self, mode=0o777, parents=False, exist_ok=False):
        real = _checked(self, "write")
        (os.makedirs(real, exist_ok=exist_ok) if parents else _mkdir(real, exist_ok))

    def unlink(self, missing_ok=False):
        real = _checked(self, "write")
        if missing_ok and not os.path.lexists(real):
            return
        os.remove(real)


def _mkdir(real, exist_ok):
    try:
        os.mkdir(real)
    except FileExistsError:
        if not exist_ok:
            raise


def _granted_glob(folder: str, pattern: str, recursive: bool) -> list:
    _checked(folder)
    found = _glob.glob(os.path.join(folder, pattern), recursive=recursive)
    ctx = _context()
    return [Path(p) for p in sorted(found) if ctx.allows_path("read", os.path.realpath(p))]


def _pathlib_view():
    mod = types.ModuleType("pathlib", "Capsule-safe pathlib: Path's I/O obeys the grants.")
    mod.Path = mod.PosixPath = Path
    for n in ("PurePath", "PurePosixPath", "PureWindowsPath"):
        setattr(mod, n, getattr(_pathlib, n))
    mod.__all__ = ["Path", "PosixPath", "PurePath", "PurePosixPath", "PureWindowsPath"]
    guard.share_class((Path, _pathlib.PurePosixPath, _pathlib.PureWindowsPath))
    return mod


# -- glob ----------------------------------------------------------------------------------
def _literal_folder(pattern: str) -> str:
    head = []
    for part in pattern.split(os.sep):
        if _glob.has_magic(part):
            break
        head.append(part)
    folder = os.sep.join(head)
    if folder == pattern:  # no magic: the folder holding the named file
        folder = os.path.dirname(pattern)
    return folder or "."


def glob(pathname, *, recursive=False):
    """glob.glob of a granted folder: results whose real path is readable."""
    pathname = _text(pathname)
    _checked(_literal_folder(pathname))
    ctx = _context()
    found = _glob.glob(pathname, recursive=recursive)
    return [p for p in found if ctx.allows_path("read", os.path.realpath(p))]


def iglob(pathname, *, recursive=False):
    return iter(glob(pathname, recursive=recursive))


def _glob_view():
    mod = types.ModuleType("glob", "Capsule-safe glob: granted folders only.")
    mod.glob, mod.iglob = glob, iglob
    mod.escape, mod.has_magic = _glob.escape, _glob.has_magic
    mod.__all__ = ["glob", "iglob", "escape", "has_magic"]
    return mod


# -- os.path -------------------------------------------------------------------------------
_PURE = """join split splitext basename dirname normpath normcase isabs commonpath commonprefix
    relpath abspath splitdrive expanduser sep altsep extsep pardir curdir defpath""".split()


def _probe(test):
    def probe(path):
        return test(_checked(path))

    probe.__name__ = test.__name__
    probe.__doc__ = f"os.path.{test.__name__} of a path the capsule may read."
    return probe


def _os_path_view():
    mod = types.ModuleType("os.path", "Capsule-safe os.path: pure functions; probes obey grants.")
    for n in _PURE:
        setattr(mod, n, getattr(posixpath, n))
    for test in (
        os.path.exists,
        os.path.isfile,
        os.path.isdir,
        os.path.getsize,
        os.path.getmtime,
        os.path.getctime,
        os.path.getatime,
    ):
        setattr(mod, test.__name__, _probe(test))
    mod.lexists = mod.exists
    mod.realpath = lambda path: _checked(path)
    mod.__all__ = [n for n in vars(mod) if n[:1] != "_"]
    return mod


_OS_PATH: list = []


def _os_path():
    if not _OS_PATH:
        _OS_PATH.append(_os_path_view())
    return _OS_PATH[0]


def os_view():
    """What ``import os.path`` binds as ``os``: only its path module, nothing of os itself."""
    mod = types.ModuleType("os", "Not the os module: a capsule only gets os.path.")
    mod.path = _os_path()
    mod.sep, mod.curdir, mod.pardir, mod.extsep = os.sep, os.curdir, os.pardir, os.extsep
    mod.__all__ = ["path", "sep", "curdir", "pardir", "extsep"]
    return mod


guard.share_class(Path)

STAND_INS = {
    "io": _io_view,
    "pathlib": _pathlib_view,
    "glob": _glob_view,
    "os.path": _os_path,
}
