"""``%debug`` / ``%pdb`` on a capsule's frames: the post-mortem debugger calls no capsule code.

IPython's debugger is trusted code on the main thread.  On a capsule's frame it truth-tested
``__tracebackhide__`` (``_hidden_predicate``), ``repr()``'d ``__return__``/``__args__`` for
every stack entry, and evaluated whatever was typed (``p obj``, ``obj.x``, ``!obj``,
``whatis``, ``interact``) in the capsule's namespace -- the capsule's ``__bool__``,
``__repr__`` and ``__getattr__`` ran as trusted code, outside every limit.

:func:`capsule_pdb_class` derives from the shell's debugger class (IPython's ``Pdb``, the
terminal's ``TerminalPdb``) a class that, in a capsule frame (its code's filename is a whole
``<capsule-...>`` name), shows only the frame's *plain* variables (immutable builtin data,
``membrane.is_plain``) and evaluates nothing: ``p NAME``/``pp NAME``/``NAME`` show a plain
variable, ``args``/``retval`` the plain ones, navigation and source listing work, and every
other command is refused with a note.  Trusted frames are debugged as before.
"""

from __future__ import annotations

from ..engine.membrane import is_plain
from ..engine.stubframes import ARGUMENTS
from .tracebacks import is_capsule_filename

#: Commands that only move, list source or end the session (they evaluate nothing).
NAVIGATION = frozenset(
    """u up d down w where bt l list ll longlist q quit exit h help c cont continue
    s step n next r return unt until j jump EOF""".split()
)
_SHOW = frozenset({"p", "pp"})
_ARGS = frozenset({"a", "args"})
_RETVAL = frozenset({"retval", "rv"})
REFUSED = (
    "[ipycap: this is a capsule frame; the debugger evaluates nothing here and shows only "
    "its plain variables: p NAME, args, retval, and moving/listing commands]"
)


def _shown(value, limit: int = 2000) -> str:
    text = repr(value)  # plain builtin data: no capsule code
    return text if len(text) <= limit else text[:limit] + "..."


def is_capsule_frame(frame) -> bool:
    try:
        return frame is not None and is_capsule_filename(frame.f_code.co_filename)
    except Exception:  # noqa: BLE001 - not a frame
        return False


def plain_variables(frame) -> dict:
    """The frame's local variables whose values are plain data (nothing else is read)."""
    try:
        names = frame.f_locals
    except Exception:  # noqa: BLE001
        return {}
    if type(names) is not dict:
        return {}
    return {k: v for k, v in dict.items(names) if type(k) is str and is_plain(v)}


def _plain_global(frame, name: str):
    try:
        ns = frame.f_globals
    except Exception:  # noqa: BLE001
        return False, None
    if type(ns) is not dict or name not in ns:
        return False, None
    value = dict.__getitem__(ns, name)
    return is_plain(value), value


class CapsuleFrameMixin:
    """Mixed in before the shell's debugger class (see the module docstring)."""

    def _get_frame_locals(self, frame):
        if is_capsule_frame(frame):
            return plain_variables(frame)
        return super()._get_frame_locals(frame)

    def _hidden_predicate(self, frame):
        if is_capsule_frame(frame):
            value = plain_variables(frame).get("__tracebackhide__", False)
            return bool(value) and frame is not getattr(self, "curframe", None)
        return super()._hidden_predicate(frame)

    def onecmd(self, line):
        frame = getattr(self, "curframe", None)
        if not is_capsule_frame(frame):
            return super().onecmd(line)
        if not line.strip():
            return super().onecmd(line)  # repeats the last command, itself checked here
        command, arg, _ = self.parseline(line)
        if command in NAVIGATION and not line.lstrip().startswith("!"):
            return super().onecmd(line)
        if command in _SHOW:
            self._show_plain(arg or "")
        elif command in _ARGS:
            self._show_args(frame)
        elif command in _RETVAL:
            self._show_name(frame, "__return__")
        elif command is not None and command.isidentifier() and not arg and line.strip() == command:
            self._show_plain(command)  # a bare name: pdb would evaluate it
        else:
            self.message(REFUSED)
        self.lastcmd = line
        return False

    def _show_plain(self, arg: str) -> None:
        name = arg.strip()
        if not name.isidentifier():
            self.message(REFUSED)
            return
        self._show_name(self.curframe, name)

    def _show_name(self, frame, name: str) -> None:
        local = plain_variables(frame)
        if name in local:
            self.message(_shown(local[name]))
            return
        try:
            in_locals = name in frame.f_locals
        except Exception:  # noqa: BLE001
            in_locals = False
        if not in_locals:
            plain, value = _plain_global(frame, name)
            if plain:
                self.message(_shown(value))
                return
        self.message(f"[ipycap: {name!r} is not a plain variable of this capsule frame]")

    def _show_args(self, frame) -> None:
        code = frame.f_code
        names = ARGUMENTS.get(code)  # a stand-in frame: the capsule frame's argument names
        if names is None:
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        local = plain_variables(frame)
        for name in names:
            shown = _shown(local[name]) if name in local else "<not plain: not shown>"
            self.message(f"{name} = {shown}")


_CLASSES: dict[type, type] = {}


def capsule_pdb_class(base: type) -> type:
    """``base`` with :class:`CapsuleFrameMixin` in front (one class per base)."""
    if issubclass(base, CapsuleFrameMixin):
        return base
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = type(f"Capsule{base.__name__}", (CapsuleFrameMixin, base), {})
    return cls


def install(shell, owner) -> None:
    """Every debugger the shell starts for a traceback (``%debug``, ``%pdb``) is guarded."""
    itb = getattr(shell, "InteractiveTB", None)
    if itb is None:
        return
    previous = itb._debugger_cls
    base = previous if previous is not None else shell.debugger_cls
    itb.debugger_cls = capsule_pdb_class(base)
    itb.pdb = None  # the next session makes one of the guarded class
    owner._debugger_saved = (itb, previous)


def uninstall(shell, owner) -> None:
    saved = getattr(owner, "_debugger_saved", None)
    if saved is None:
        return
    itb, previous = saved
    if isinstance(itb._debugger_cls, type) and issubclass(itb._debugger_cls, CapsuleFrameMixin):
        itb.debugger_cls = previous
        itb.pdb = None
    owner._debugger_saved = None


__all__ = ["CapsuleFrameMixin", "capsule_pdb_class", "install", "uninstall"]
