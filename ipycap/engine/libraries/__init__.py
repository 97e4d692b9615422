"""Library profiles: what a grant of a third-party library covers, refuses and checks.

Granting a library trusts its code, not the capsule's use of it (DESIGN.md, "Granted
libraries: profiles").  One small module per library holds its :class:`Profile` (data);
this module holds the table and the two decisions the tripwire asks about events a capsule
did not make itself:

- *Is this import the library's own?*  ``pd.read_csv`` importing ``pyarrow.pandas_compat``
  lazily, ``load_iris`` importing ``importlib.readers``.
- *Is this read the library's own package data?*  matplotlib's fonts, sklearn's datasets,
  ``importlib.metadata`` reading a distribution's metadata.

Both are decided by *who is asking*: the nearest frame on the stack that is neither the
standard library, the import system nor ipycap must belong to a granted package (or to a
package a granted profile loads on its own behalf).  What the capsule names never decides:
a capsule asking a library to import ``os`` for it meets the profile's list, and a capsule
frame nearer the event makes the event the capsule's.  The checks that need wrappers (native
I/O, refused attributes, option setters) are in :mod:`.wrappers`.
"""

from __future__ import annotations

import os
import sys
import weakref

from .. import guard
from . import matplotlib, numpy, pandas, pil, polars, pyarrow, sklearn, tqdm
from .profile import PathArg, Profile

PROFILES: dict[str, Profile] = {
    p.package: p
    for p in (
        numpy.PROFILE,
        pandas.PROFILE,
        pyarrow.PROFILE,
        polars.PROFILE,
        matplotlib.PROFILE,
        sklearn.PROFILE,
        pil.PROFILE,
        tqdm.PROFILE,
    )
}

_STDLIB = frozenset(sys.stdlib_module_names)
#: Frames of these run on behalf of whoever called them.
_TRANSPARENT = _STDLIB | {"ipycap", "_frozen_importlib", "_frozen_importlib_external"}


def asking_package(frame) -> str | None:
    """The top-level package of the nearest frame outside the standard library, the import
    system and ipycap; None when that frame is capsule code (or there is none)."""
    f = frame
    while f is not None:
        if guard.context_of(f.f_builtins) is not None:
            return None
        name = f.f_globals.get("__name__")
        if type(name) is not str:
            return None
        top = name.partition(".")[0]
        if top not in _TRANSPARENT:
            return top
        f = f.f_back
    return None


def granted_packages(ctx) -> set[str]:
    """Top-level packages this capsule was granted to import."""
    return {
        c.target.partition(".")[0]
        for c in ctx.grants
        if c.kind == "import" and not c.revoked and ctx.may_import(c.target.partition(".")[0])
    }


def covered_packages(ctx) -> dict[str, str]:
    """Packages whose code runs for this capsule: granted ones and, transitively, what their
    profiles load on their own behalf.  Maps each to the granted package that covers it."""
    covered: dict[str, str] = {}
    todo = [(p, p) for p in sorted(granted_packages(ctx))]
    while todo:
        package, root = todo.pop()
        if package in covered:
            continue
        covered[package] = root
        profile = PROFILES.get(package)
        if profile is not None:
            todo.extend((p, root) for p in profile.loads)
    return covered


def _denied(ctx, name: str) -> bool:
    parts = name.split(".")
    return any(
        ctx.policy.import_tier(".".join(parts[:i])) == "denied" for i in range(1, len(parts) + 1)
    )


#: Standard-library modules every covered library may import lazily: finding its own
#: package data and metadata (the capsule still cannot import them itself).
LIBRARY_STDLIB = (
    "importlib.metadata",
    "importlib.resources",
    "importlib.readers",
    "importlib.abc",
    "importlib.machinery",
    "importlib.util",
)


def _stdlib_allowed(covered, name: str) -> bool:
    if any(
        name == a or a.startswith(name + ".") or name.startswith(a + ".") for a in LIBRARY_STDLIB
    ):
        return True
    for package in covered:
        profile = PROFILES.get(package)
        if profile is None:
            continue
        for allowed in profile.stdlib:
            if name == allowed or name.startswith(allowed + ".") or allowed.startswith(name + "."):
                return True  # allowed.startswith(name): importing 'importlib' for 'importlib.x'
    return False


#: Uses already recorded, per capsule context: (package, module) pairs.
_RECORDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def library_import(ctx, name: str, frame) -> str | None:
    """The granted package whose code imports ``name`` on its own behalf, or None.

    Covered: a module of a covered package (not in the policy's denied imports), or a
    standard-library module a covered profile lists.  Recorded as a use of the grant."""
    asker = asking_package(frame)
    if asker is None:
        return None
    covered = covered_packages(ctx)
    root = covered.get(asker)
    if root is None:
        return None
    top = name.partition(".")[0]
    if top in covered:
        if _denied(ctx, name):
            return None
    elif not (top in _STDLIB and _stdlib_allowed(covered, name)):
        return None
    seen = _RECORDED.setdefault(ctx, set())
    if (root, name) not in seen:
        seen.add((root, name))
        for cap in ctx.grants:
            if cap.kind == "import" and not cap.revoked and cap.target.partition(".")[0] == root:
                ctx.registry.use(cap, f"{name} (loaded by {asker} on its own behalf)")
                break
    return root


_DIRS: dict[str, tuple[str, ...]] = {}


def _package_dirs(package: str) -> tuple[str, ...]:
    """The folders holding ``package``'s code, data and distribution metadata."""
    dirs = _DIRS.get(package)
    if dirs is not None:
        return dirs
    module = sys.modules.get(package)
    if module is None:
        return ()
    found = [os.path.realpath(p) for p in getattr(module, "__path__", ()) if type(p) is str]
    parents = {os.path.dirname(d) for d in found}
    for parent in parents:
        try:
            entries = os.listdir(parent)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info") and _distribution_has(parent, entry, package):
                found.append(os.path.realpath(os.path.join(parent, entry)))
    if package == "matplotlib":
        get = getattr(module, "get_cachedir", None)
        if get is not None:
            found.append(os.path.realpath(get()))
    _DIRS[package] = dirs = tuple(found)
    return dirs


def _distribution_has(parent: str, entry: str, package: str) -> bool:
    """Whether the distribution in ``entry`` installs ``package`` (its top_level.txt or
    RECORD names it)."""
    for name in ("top_level.txt", "RECORD"):
        try:
            with open(os.path.join(parent, entry, name), encoding="utf-8") as f:
                text = f.read()
        except OSError:
            continue
        if name == "top_level.txt":
            return package in text.split()
        return f"\n{package}/__init__.py," in "\n" + text
    return False


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def library_reads_own_data(contexts, path: str, frame, *, listing: bool = False) -> bool:
    """Whether a read of the resolved ``path`` is a covered library reading package data
    (its own or that of a package it loads): for every capsule on the stack.

    ``listing``: a folder listing, where the ``sys.path`` folders themselves count too
    (``importlib.metadata`` lists them to find a distribution)."""
    asker = asking_package(frame)
    if asker is None:
        return False
    for ctx in contexts:
        covered = covered_packages(ctx)
        if asker not in covered:
            return False
        roots = [d for p in covered for d in _package_dirs(p)]
        if listing:
            roots_exact = {os.path.realpath(p) for p in sys.path if type(p) is str and p}
            if path in roots_exact:
                continue
        if not _under(path, roots):
            return False
    return True


def library_sets_env(contexts, key, frame) -> bool:
    """Whether a covered library sets (or unsets) one of the environment variables its
    profile lists, on its own behalf (polars' ``with pl.Config(...)``)."""
    asker = asking_package(frame)
    profile = PROFILES.get(asker) if asker else None
    if profile is None or not profile.environ:
        return False
    if isinstance(key, bytes):
        key = os.fsdecode(key)
    if type(key) is not str or not key.startswith(profile.environ):
        return False
    return all(asker in covered_packages(ctx) for ctx in contexts)


def library_reads_frames(contexts, frame) -> bool:
    """Whether the code reading a frame attribute is a covered library's own (pandas'
    find_stack_level, which walks frames to aim a warning at the caller)."""
    name = frame.f_globals.get("__name__") if frame is not None else None
    if type(name) is not str or guard.context_of(frame.f_builtins) is not None:
        return False
    top = name.partition(".")[0]
    return top not in _TRANSPARENT and all(top in covered_packages(ctx) for ctx in contexts)


def grant_target(ctx, name: str) -> str:
    """What a refusal of importing ``name`` tells the user to grant: the package (its
    submodules come with it), unless only the submodule is grantable."""
    top = name.partition(".")[0]
    return top if ctx.policy.import_tier(top) == "grantable" else name


__all__ = ["PROFILES", "PathArg", "Profile", "library_import", "library_reads_own_data"]


def readonly_target_function(tp):
    """The function making the read-only target of a ``tp`` (a profile's ``readonly``
    class or a subclass of one, of a library already imported), or None."""
    from . import readonly

    for profile in PROFILES.values():
        for where, fn in profile.readonly.items():
            module, _, name = where.partition(":")
            cls = getattr(sys.modules.get(module), name, None)
            if isinstance(cls, type) and issubclass(tp, cls):
                return getattr(readonly, fn)
    return None


def derived_rule(tp):
    """The rule judging results derived from a ``tp`` (a profile's ``derived`` class, of a
    library already imported), or None.  numpy's and pandas' frames and arrays by their exact
    class (a subclass may keep state of its own, such as a user's frame it hands out); the
    objects working on a frame by any subclass the library itself defines."""
    from . import readonly

    module = type.__dict__["__module__"].__get__(tp)
    for profile in PROFILES.values():
        for where, fn in profile.derived.items():
            mod, _, name = where.partition(":")
            cls = getattr(sys.modules.get(mod), name, None)
            if not isinstance(cls, type):
                continue
            if tp is cls or (
                issubclass(tp, cls)
                and type(module) is str
                and module.partition(".")[0] == profile.package
                and not _exact_only(cls)
            ):
                return getattr(readonly, fn)
    return None


def _exact_only(cls) -> bool:
    """Containers are sources by their exact class only."""
    return cls.__name__ in ("ndarray", "DataFrame", "Series", "LazyFrame", "flatiter")
