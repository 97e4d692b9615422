"""Stand-ins for the parts of grantable standard-library modules that act on process-wide state.

A grantable module's function that writes a table every caller shares (``csv``'s dialect
registry, ``xml.etree``'s namespace prefixes) or the interpreter's streams
(``contextlib.redirect_stdout``) would let a capsule change what trusted code does later (I3).
The capsule's view of the module (modules.MODULE_OVERRIDES) shows these stand-ins instead:
they refuse, with what to do instead, or answer reads only.  Modules whose deputies cannot be
cut out this way (unittest.mock, gettext, warnings, locale) are not grantable at all
(policy.GRANTABLE_STDLIB).
"""

from __future__ import annotations

from .errors import CapsulePermissionError


def _refuser(qualname: str, why: str, hint: str | None):
    def refused(*args, **kwargs):
        raise CapsulePermissionError(f"{qualname} ({why})", "builtins", None, hint=hint)

    refused.__name__ = refused.__qualname__ = qualname.rpartition(".")[2]
    refused.__doc__ = f"Refused in capsules: {why}."
    return refused


_STREAMS = "sys.stdout and sys.stderr are the whole process's streams, not the capsule's"


def field_size_limit(*args, **kwargs):
    """csv.field_size_limit(): the limit is process-wide, so capsules may only read it."""
    if args or kwargs:
        raise CapsulePermissionError(
            "csv.field_size_limit(new_limit) (the limit is process-wide: it would change "
            "how trusted code parses CSV)",
            "builtins",
            None,
        )
    import csv  # only when asked: importing ipycap loads no extension module it need not

    return csv.field_size_limit()


OVERRIDES = {
    ("contextlib", "redirect_stdout"): _refuser(
        "contextlib.redirect_stdout", _STREAMS, "write to it with print(..., file=obj)"
    ),
    ("contextlib", "redirect_stderr"): _refuser(
        "contextlib.redirect_stderr", _STREAMS, "write to it with print(..., file=obj)"
    ),
    ("contextlib", "chdir"): _refuser(
        "contextlib.chdir", "the working directory is the whole process's", None
    ),
    ("csv", "register_dialect"): _refuser(
        "csv.register_dialect",
        "the dialect registry is process-wide: trusted csv code would use the capsule's",
        "pass the options to csv.reader/csv.writer, or a csv.Dialect subclass as dialect=",
    ),
    ("csv", "unregister_dialect"): _refuser(
        "csv.unregister_dialect", "the dialect registry is process-wide", None
    ),
    ("csv", "field_size_limit"): field_size_limit,
    ("xml.etree.ElementTree", "register_namespace"): _refuser(
        "xml.etree.ElementTree.register_namespace",
        "the prefix table is process-wide: trusted XML output would use the capsule's",
        None,
    ),
}
