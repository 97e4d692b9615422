"""String engines granted libraries carry: capsule text never runs in a library's frames.

A template engine compiles text into Python and runs it in its own frames and globals, with
the real builtins and no guard: pandas' Styler keeps a jinja2 ``Environment``
(``Styler.env``, ``template_html.environment``, ``from_custom_template``), whose attribute
lookup walks ``cycler.__init__.__globals__`` to the raw ``os``/``sys``.  So, while capsule code
is on the stack:

- ``Environment.from_string`` (``Template(...)``, ``compile_expression``) of an environment
  that is not ipycap's sandbox compiles and renders in ``CapsuleSandbox`` (jinja's
  ``ImmutableSandboxedEnvironment`` whose attribute reads the guard decides too)
  with the same loader and syntax options (one per capsule and environment): jinja's sandbox
  refuses underscore attributes, unsafe callables and mutation of the values it is given.
- ``Environment.compile`` of such an environment (templates a loader found) is refused unless
  the source is, byte for byte, a template file inside a package this capsule covers (pandas'
  own ``html.tpl``): a capsule's loader, search path or ``from_custom_template`` folder never
  has its text compiled unsandboxed.
- jinja2's classes are frozen like a profiled library's (``Environment.compile = ...`` by a
  capsule would run in every later trusted render).

Exec/eval wrappers of granted libraries (``numpy.testing.runstring``, ``PIL.ImageMath``'s
``unsafe_eval``) are refused by their profiles (``refused``); every function of a profiled
package whose code calls ``exec``/``eval``/``compile`` is classified in ``Profile.evaluators``
(tests/test_library_boundary.py scans for them).
"""

from __future__ import annotations

import os
import sys
import types
import weakref

from .. import guard, rules, tripwire
from ..errors import CapabilityError, CapsulePermissionError

#: Packages a profile loads whose classes are frozen like a profiled library's.
FROZEN_DEPENDENCIES = ("jinja2",)

_SANDBOXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # ctx -> {id(env): sandbox}
_FRESH_KEYS: set = set()
_DONE: list = []


def _refusal(what, hint=None):
    err = CapsulePermissionError(what, "pandas profile (jinja2)", None, hint=hint)
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="library", target="jinja2")
    return err


def _trusted_type(tp, base) -> bool:
    return issubclass(tp, base) and not any(
        guard.is_own(c) for c in type.__dict__["__mro__"].__get__(tp)
    )


def _plain_instance(env) -> bool:
    """No instance attribute beyond what ``Environment.__init__`` sets (a capsule's
    ``env.code_generator_class = ...`` or ``env.getattr = ...`` shadows the class's)."""
    return set(vars(env)) <= _FRESH_KEYS


def install() -> None:
    """Guard jinja2's Environment (once, when jinja2 is imported)."""
    jinja2 = sys.modules.get("jinja2")
    if _DONE or jinja2 is None:
        return
    sandbox = sys.modules.get("jinja2.sandbox")
    if sandbox is None:
        tripwire.trusted_import("jinja2.sandbox")  # install runs while a capsule imports
        sandbox = sys.modules["jinja2.sandbox"]
    ImmutableSandboxedEnvironment = sandbox.ImmutableSandboxedEnvironment  # noqa: N806
    _DONE.append(True)
    env_class = jinja2.Environment

    class CapsuleSandbox(ImmutableSandboxedEnvironment):
        """jinja's immutable sandbox, whose attribute reads the guard decides too: jinja
        reads ``{{ a.ctypes }}`` with its own getattr, and knows only underscore names and
        unsafe callables (``arr.ctypes._ctypes._os`` was the raw os, red team 10)."""

        def is_safe_attribute(self, obj, attr, value):
            if not super().is_safe_attribute(obj, attr, value):
                return False
            if type(value) is types.ModuleType:
                return False  # a loaded module is never a value a capsule holds raw (I2)
            if type(attr) is str and rules.is_risky(attr):
                try:
                    guard.decide(obj, attr)
                except (CapabilityError, AttributeError):
                    return False
            return True

    _FRESH_KEYS.update(vars(env_class()))
    _FRESH_KEYS.update(vars(CapsuleSandbox()))
    original_from_string = env_class.from_string
    original_compile = env_class.compile

    def sandboxed(env) -> bool:
        # only ipycap's own sandbox: jinja's own sandboxes decide attributes without the guard
        return type(env) is CapsuleSandbox and _plain_instance(env)

    def sandbox_for(env):
        ctx = tripwire.current_context()
        per_ctx = _SANDBOXES.setdefault(ctx, {}) if ctx is not None else {}
        found = per_ctx.get(id(env))
        if found is not None and found[0]() is env:
            return found[1]
        options = {
            name: getattr(env, name)
            for name in (
                "block_start_string",
                "block_end_string",
                "variable_start_string",
                "variable_end_string",
                "comment_start_string",
                "comment_end_string",
                "line_statement_prefix",
                "line_comment_prefix",
                "trim_blocks",
                "lstrip_blocks",
                "newline_sequence",
                "keep_trailing_newline",
                "autoescape",
            )
        }
        sandbox = CapsuleSandbox(loader=env.loader, **options)
        try:
            per_ctx[id(env)] = (weakref.ref(env), sandbox)
        except TypeError:
            pass
        return sandbox

    def from_string(self, source, globals=None, template_class=None):
        if tripwire.capsule_on_stack() and not sandboxed(self):
            self = sandbox_for(self)  # noqa: PLW0642 - the template is the sandbox's
        return original_from_string(self, source, globals, template_class)

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: A001
        on_stack = tripwire.capsule_on_stack()
        if on_stack and sandboxed(self) and not raw and isinstance(source, str):
            # jinja's code generator turned the capsule's template text into Python; the
            # tripwire's screen for generated code (no imports) would refuse jinja's module
            # prologue, so the sandbox's own output compiles through the tripwire's helper.
            # Only text jinja parsed here: a raw Python source or a prebuilt node tree never.
            try:
                tree = self._parse(source, name, filename)
                python = self._generate(tree, name, filename, defer_init=defer_init)
                return tripwire.compile_generated_template(python, filename or "<template>")
            except jinja2.TemplateSyntaxError:
                self.handle_exception(source=source)
        if on_stack and not sandboxed(self):
            if not _library_file(self, source, filename, env_class):
                raise _refusal(
                    f"jinja2 compiling the template {name or filename or '<string>'!r} "
                    "outside jinja's sandbox (its code would run with the real builtins)",
                    hint="render ad-hoc templates with env.from_string(...) (sandboxed in "
                    "a capsule); templates come from the library's own files only",
                )
        return original_compile(self, source, name, filename, raw, defer_init)

    for fn, old in ((from_string, original_from_string), (compile, original_compile)):
        fn.__name__, fn.__qualname__, fn.__doc__ = old.__name__, old.__qualname__, old.__doc__
        fn.__module__ = old.__module__
    type.__setattr__(env_class, "from_string", from_string)
    type.__setattr__(env_class, "compile", compile)
    guard.LIBRARY_PACKAGES.update(FROZEN_DEPENDENCIES)


def _library_file(env, source, filename, env_class) -> bool:
    """Whether ``source`` is exactly the text of ``filename``, a file inside a package the
    capsule on the stack covers, compiled by a plain jinja2 Environment."""
    if type(env) is not env_class or not _plain_instance(env):
        return False
    if type(source) is not str or type(filename) is not str:
        return False
    from . import _package_dirs, covered_packages

    ctx = tripwire.current_context()
    if ctx is None:
        return False
    path = os.path.realpath(filename)
    roots = [d for p in covered_packages(ctx) for d in _package_dirs(p)]
    if not any(path.startswith(r + os.sep) for r in roots):
        return False
    state = tripwire._state  # ipycap's own read of a file it checked is the library's
    was_busy = getattr(state, "busy", False)
    state.busy = True
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    finally:
        state.busy = was_busy
    try:
        return data.decode(getattr(env.loader, "encoding", "utf-8") or "utf-8") == source
    except (UnicodeDecodeError, LookupError, TypeError):
        return False


__all__ = ["FROZEN_DEPENDENCIES", "install"]
