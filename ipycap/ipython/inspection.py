"""Object inspection of capsule objects in the user namespace (``obj?``, ``%pinfo``, ``%pdef``,
``%pdoc``, ``%psource``, ``%pfile``, a frontend's ``inspect_request``).

A capsule object that left a ``%%capsule`` cell is a :class:`ReverseProxy` in the user
namespace; every attribute read on it is forwarded to the capsule object, so IPython's
inspector -- trusted code, on the main thread, outside every limit, run by merely hovering in
a notebook -- ran the capsule class's ``__getattr__``, properties and ``__repr__`` (it reads
``__signature__``, ``__wrapped__``, ``getdoc``, ``__custom_documentations__``...).

The shell's ``_object_find`` is wrapped: the dotted name is walked as IPython walks it, and
the moment the walk meets a capsule object (``type(x) is ReverseProxy``, an exact-type check)
it stops and the inspector gets a :class:`CapsuleObjectInfo` instead, built only from C
descriptors of the capsule object's class (``type.__name__``, the class ``__dict__``'s own
``__doc__`` string): no Python code of the capsule runs.
"""

from __future__ import annotations

import builtins

from ..engine.membrane import ReverseProxy

_rp_target = ReverseProxy.__dict__["__ipycap_target__"].__get__
_type_name = vars(type)["__name__"].__get__
_type_module = vars(type)["__module__"].__get__
_type_dict = vars(type)["__dict__"].__get__


class CapsuleObjectInfo:
    # No class docstring: the instance's own __doc__ is what the inspector shows.
    __slots__ = ("__dict__",)

    def __init__(self, name: str, class_name: str, doc: str | None):
        self.name = name
        self.class_name = class_name
        self.__doc__ = (
            (doc + "\n\n" if doc else "")
            + "[ipycap: a capsule object; it is not inspected, since reading its attributes "
            "runs capsule code]"
        )

    def __repr__(self) -> str:
        return f"<capsule object of class {self.class_name}>"

    def __dir__(self):
        return []  # a completer finds nothing to offer (its names are the capsule's to tell)


def describe(name: str, rp) -> CapsuleObjectInfo:
    """The stand-in for ``rp``: its class's name and own docstring, read through C
    descriptors only (a capsule metaclass's ``__name__`` property is never asked)."""
    cls = type(_rp_target(rp))
    try:
        class_name = _type_name(cls)
        module = _type_module(cls) if type(cls) is type else None
        doc = _type_dict(cls).get("__doc__")  # a mappingproxy of a real dict: C only
    except Exception:  # noqa: BLE001 - an odd class: its name is all we need
        class_name, module, doc = "?", None, None
    if type(class_name) is not str:
        class_name = "?"
    if type(module) is str and module not in ("builtins", "__main__"):
        class_name = f"{module}.{class_name}"
    return CapsuleObjectInfo(name, class_name, doc if type(doc) is str else None)


def _walk(shell, oname: str, namespaces):
    """IPython's ``_ofind`` walk of a dotted name, stopping at a capsule object: returns
    (found, obj, namespace, parent, met_capsule); None when IPython should look itself
    (magics, aliases, names not in the namespaces)."""
    from IPython.core.interactiveshell import is_integer_string

    oname = oname.strip()
    parts_ok, parts = shell._find_parts(oname)
    if not parts_ok:
        return None
    if namespaces is None:
        namespaces = [
            ("Interactive", shell.user_ns),
            ("Interactive (global)", shell.user_global_ns),
            ("Python builtin", builtins.__dict__),
        ]
    head, rest = parts[0], parts[1:]
    for nsname, ns in namespaces:
        try:
            obj = ns[head]
        except KeyError:
            continue
        parent = None
        for idx, part in enumerate(rest):
            if type(obj) is ReverseProxy:
                return True, describe(".".join(parts[: idx + 1]), obj), nsname, None, True
            try:
                parent = obj
                if idx == len(rest) - 1:
                    obj = shell._getattr_property(obj, part)
                elif is_integer_string(part):
                    obj = obj[int(part)]
                else:
                    obj = getattr(obj, part)
            except Exception:  # noqa: BLE001 - as IPython: a broken attribute ends the walk
                break
        else:
            if type(obj) is ReverseProxy:
                return True, describe(oname, obj), nsname, None, True
            if type(parent) is ReverseProxy:  # pragma: no cover - stopped above
                parent = None
            return True, obj, nsname, parent, False
        return None
    return None


def make_object_find(shell, original):
    """The wrapper installed as ``shell._object_find``."""
    from IPython.core.oinspect import OInfo

    def _object_find(oname, namespaces=None):
        walked = _walk(shell, oname, namespaces) if isinstance(oname, str) else None
        if walked is None:
            return original(oname, namespaces)
        found, obj, nsname, parent, _ = walked
        return OInfo(
            ismagic=False,
            isalias=False,
            found=found,
            obj=obj,
            namespace=nsname,
            parent=parent,
        )

    _object_find.__ipycap_inspection__ = True
    return _object_find


# -- completion --------------------------------------------------------------------------------
def _without_capsule_objects(ns):
    """A copy of a namespace with every capsule object replaced by its stand-in (a dict
    copy: the completers and Jedi read namespaces with dict operations)."""
    if type(ns) is not dict:
        return ns
    if not any(type(v) is ReverseProxy for v in dict.values(ns)):
        return ns
    return {k: describe(k, v) if type(v) is ReverseProxy else v for k, v in dict.items(ns)}


def make_completer_call(completer, original):
    """``completions``/``complete`` of the shell's completer, run with namespaces in which no
    capsule object is reachable at top level, and ``_evaluate_expr`` (IPython's matchers'
    evaluator) answering a stand-in for a capsule object it reaches."""

    def call(*args, **kwargs):
        saved = completer.namespace, completer.global_namespace
        completer.namespace = _without_capsule_objects(saved[0])
        completer.global_namespace = _without_capsule_objects(saved[1])
        access = _guard_jedi_access()
        try:
            result = original(*args, **kwargs)
            if not isinstance(result, (str, tuple, list, type(None))):
                result = iter(list(result))  # a generator: consumed while the copies hold
            return result
        finally:
            completer.namespace, completer.global_namespace = saved
            _restore_jedi_access(access)

    call.__ipycap_inspection__ = True
    return call


def _guard_jedi_access():
    """While a completion runs: Jedi's live-object access (``DirectObjectAccess``) is given
    a stand-in for any capsule object it reaches (through a trusted container, an attribute),
    so its getattr/``inspect.signature`` never touch the proxy."""
    try:
        from jedi.inference.compiled.access import DirectObjectAccess
    except ImportError:  # pragma: no cover - IPython without Jedi
        return None
    init = vars(DirectObjectAccess).get("__init__")
    if init is None or getattr(init, "__ipycap_inspection__", False):
        return None

    def __init__(self, inference_state, obj):
        if type(obj) is ReverseProxy:
            obj = describe("", obj)
        init(self, inference_state, obj)

    __init__.__ipycap_inspection__ = True
    DirectObjectAccess.__init__ = __init__
    return DirectObjectAccess, init


def _restore_jedi_access(saved) -> None:
    if saved is not None:
        cls, init = saved
        cls.__init__ = init


def make_evaluate_expr(original):
    def _evaluate_expr(expr):
        obj = original(expr)
        return describe(str(expr), obj) if type(obj) is ReverseProxy else obj

    _evaluate_expr.__ipycap_inspection__ = True
    return _evaluate_expr


_COMPLETER_METHODS = ("completions", "complete")


def install(shell, owner) -> None:
    wrapper = make_object_find(shell, shell._object_find)
    wrapper.__ipycap_extension__ = owner
    shell._object_find = wrapper
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    for name in _COMPLETER_METHODS:
        method = make_completer_call(completer, getattr(completer, name))
        method.__ipycap_extension__ = owner
        setattr(completer, name, method)
    if hasattr(completer, "_evaluate_expr"):
        method = make_evaluate_expr(completer._evaluate_expr)
        method.__ipycap_extension__ = owner
        completer._evaluate_expr = method


def uninstall(shell, owner) -> None:
    if getattr(vars(shell).get("_object_find"), "__ipycap_extension__", None) is owner:
        del shell._object_find
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    for name in (*_COMPLETER_METHODS, "_evaluate_expr"):
        if getattr(vars(completer).get(name), "__ipycap_extension__", None) is owner:
            delattr(completer, name)


__all__ = ["CapsuleObjectInfo", "describe", "install", "uninstall"]
