"""The decision tables, in one place: read by the gate, the guard and the membrane alike.

Every dunder name this Python defines on its builtin types is classified here (a test fails
on any name left out).  Rules:

``allow``   harmless on any object (protocol methods, names, documentation, class structure)
``own``     only on objects the capsule created (a capsule ``class``, a gate-compiled function)
``never``   refused on every object, own ones included (frames, code, generic accessors that
            would bypass this table, pickling hooks, subclass walking)
``special`` decided by code in the guard (``__class__``, ``__self__``, ``__func__``)
"""

from __future__ import annotations

#: Frame, generator, coroutine, traceback and code attributes: refused on every object.
FRAME_ATTRS = frozenset(
    """gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await cr_origin ag_frame ag_code
    ag_await tb_frame tb_next tb_lasti tb_lineno f_back f_globals f_locals f_builtins f_code
    f_trace f_lasti f_lineno f_trace_lines f_trace_opcodes co_code co_consts co_names
    co_varnames co_filename co_name co_qualname co_firstlineno co_lnotab co_linetable
    co_exceptiontable co_freevars co_cellvars co_flags co_nlocals co_stacksize co_argcount
    co_kwonlyargcount co_posonlyargcount co_positions co_lines func_globals func_code
    im_self im_func""".split()
)

#: Attributes that traverse other attributes in C (the str.format oracle).
FORMAT_ATTRS = frozenset({"format", "format_map"})

#: Attributes CPython fills in on exceptions with the object an operation failed on
#: (``AttributeError.obj`` since 3.10): an oracle when the failure happened in trusted code.
EXCEPTION_ATTRS = frozenset({"obj"})

#: Names a capsule may never bind or read as variables.
RESERVED_NAMES = frozenset(
    {"__builtins__", "__import__", "__build_class__", "__loader__", "__spec__"}
)
RESERVED_PREFIX = "_ipycap"

#: Dunders that only run or describe the protocol; harmless on any object.
PROTOCOL = frozenset(
    """__init__ __new__ __call__ __len__ __length_hint__ __iter__ __next__ __reversed__
    __contains__ __getitem__ __setitem__ __delitem__ __missing__ __enter__ __exit__
    __aenter__ __aexit__ __await__ __aiter__ __anext__ __bool__ __hash__ __eq__ __ne__
    __lt__ __le__ __gt__ __ge__ __add__ __sub__ __mul__ __matmul__ __truediv__
    __floordiv__ __mod__ __divmod__ __pow__ __lshift__ __rshift__ __and__ __xor__ __or__
    __radd__ __rsub__ __rmul__ __rmatmul__ __rtruediv__ __rfloordiv__ __rmod__
    __rdivmod__ __rpow__ __rlshift__ __rrshift__ __rand__ __rxor__ __ror__ __iadd__
    __isub__ __imul__ __imatmul__ __itruediv__ __ifloordiv__ __imod__ __ipow__
    __ilshift__ __irshift__ __iand__ __ixor__ __ior__ __neg__ __pos__ __abs__ __invert__
    __complex__ __int__ __float__ __index__ __round__ __trunc__ __floor__ __ceil__
    __repr__ __str__ __bytes__ __format__ __sizeof__ __dir__ __fspath__ __copy__
    __deepcopy__ __class_getitem__ __init_subclass__ __subclasshook__ __instancecheck__
    __subclasscheck__ __prepare__ __mro_entries__ __set_name__ __getformat__
    __buffer__ __release_buffer__ __length__ __origin__ __args__ __parameters__
    __unpacked__ __typing_unpacked_tuple_args__ __typing_is_unpacked_typevartuple__
    __concat__ __iconcat__ __inv__ __not__ __alloc__ __vectorcalloffset__""".split()
)

#: Protocol dunders that the gate still routes through the guard: ABC hooks, which trusted
#: isinstance/issubclass calls with its own classes, are guarded when assigned
#: (ipycap/engine/hooks.py); reading them is allowed everywhere.
ABC_HOOKS = frozenset({"__subclasshook__", "__instancecheck__", "__subclasscheck__"})

#: Descriptive dunders: strings, classes or tuples of them (``__xname__``: the module name
#: _pydecimal keeps, a str).
DESCRIPTIVE = frozenset(
    """__name__ __qualname__ __doc__ __module__ __text_signature__ __bases__ __base__
    __mro__ __basicsize__ __itemsize__ __flags__ __weakrefoffset__ __dictoffset__
    __abstractmethods__ __isabstractmethod__ __slots__ __match_args__ __objclass__
    __self_class__ __thisclass__ __file__ __package__ __cached__ __version__ __all__
    __members__ __orig_bases__ __orig_class__ __type_params__ __notes__ __suppress_context__
    __context__ __cause__ __debug__ __future__ __weakref__
    __about__ __author__ __copyright__ __credits__ __date__ __status__
    __libmpdec_version__ __final__ __forward_arg__ __forward_is_argument__ __forward_is_class__
    __forward_evaluated__ __forward_module__ __dataclass_params__ __slotnames__
    __IPYTHON__ __docformat__ __xname__""".split()
)

#: Introspection a capsule may use on what it created, never on anything else.
OWN_ONLY = frozenset(
    """__dict__ __closure__ __defaults__ __kwdefaults__ __annotations__ __wrapped__
    __getattr__ __del__ __signature__ __getnewargs__ __getnewargs_ex__
    __dataclass_fields__ __forward_value__ __getinitargs__ __new_member__
    __typing_subst__ __typing_prepare_subst__ __getitem_inner__
    __array_interface__ __array_struct__ __test__""".split()
)
# (the array protocols: an address is no business of capsule code on trusted objects; on
# its own, the guard answers for them -- ipycap/engine/arrayguard.py -- and setting them is
# refused on every object)

#: An ABC's registry state (``_abc_impl``, the raw ``_abc_data``) and ABCMeta's methods that
#: empty or dump it: a capsule's own ABC given a trusted ABC's state (or none, inheriting one)
#: registers into the trusted registry (red team 6, finding C).  Refused on every object.
ABC_STATE = frozenset(
    """_abc_impl _abc_registry _abc_cache _abc_negative_cache _abc_negative_cache_version
    _abc_registry_clear _abc_caches_clear _dump_registry""".split()
)

#: Refused on every object: frames, code, globals, generic accessors, pickling hooks.
NEVER = (
    frozenset(
        """__globals__ __builtins__ __code__ __subclasses__ __getattribute__ __setattr__
    __delattr__ __get__ __set__ __delete__ __reduce__ __reduce_ex__ __getstate__
    __setstate__ __traceback__ __loader__ __spec__ __path__ __import__ __build_class__
    __callback__ __self_class_cell__ __classcell__ __dictoffset_raw__ __func_globals__
    __annotate__ __static_attributes__ __firstlineno__
    __forward_code__ __breakpointhook__ __displayhook__ __excepthook__
    __interactivehook__ __unraisablehook__ __stderr__ __stdin__ __stdout__ __newobj__
    __newobj_ex__ __ipycap_cap__ __ipycap_code__ __ipycap_module__ __ipycap_target__
    __ipycap_writable__
    __ctype_be__ __ctype_le__ __ctypes_from_outparam__ __warningregistry__
    __arrow_c_array__ __arrow_c_schema__ __arrow_c_stream__ __arrow_c_device_array__
    __arrow_c_device_stream__ __dlpack__ __dlpack_device__ __dataframe__
    __cuda_array_interface__""".split()
    )
    | FRAME_ATTRS
    | ABC_STATE
)

#: Decided by code in the guard.
SPECIAL = frozenset({"__class__", "__self__", "__func__"})

#: Attribute names a granted library's profile refuses on that library's objects (numpy's
#: ``arr.ctypes``): name -> rule(value, name) that raises for the library's objects.  Filled
#: by ipycap.engine.libraries; the gate routes these names through the guard.
LIBRARY_ATTRS: dict = {}

#: rexec mode keeps only the names needed to *run* code, none to introspect it.
REXEC_ALLOWED = PROTOCOL


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name[:2] == "__" and name[-2:] == "__"


#: Mutable tables standard-library classes keep as class attributes, by name: native
#: bytecode would read them raw from the shared class (frozen classes still hold mutable
#: lists and dicts), and a capsule that puts its own object into one changes what trusted
#: code computes, or has trusted code call the capsule's methods later (I3): a member in a
#: shared enum's ``_value2member_map_`` is what trusted ``re.RegexFlag(n)`` returns.  The
#: gate routes these names through the guard, which gives a read-only snapshot unless the
#: table is the capsule's own (guard._table_attr).  tests/test_trusted_tables.py fails on a
#: class-level table of a capsule-reachable module that is not named here.
CLASS_TABLES = frozenset(
    {
        # enum.EnumType's member maps, on every Enum class
        "_member_map_",
        "_value2member_map_",
        "_member_names_",
        "_unhashable_values_",
        # namedtuple defaults (informational, but shared)
        "_field_defaults",
        # calendar.HTMLCalendar's CSS class names, pasted into trusted HTML
        "cssclasses",
        "cssclasses_weekday_head",
        # configparser's accepted booleans (getboolean returns the table's value)
        "BOOLEAN_STATES",
        # textwrap.TextWrapper's str.translate table
        "unicode_whitespace_trans",
        # tarfile.TarFile.open's compression methods (names of class methods it calls)
        "OPEN_METH",
        # ipaddress's netmask cache (trusted code keeps adding to it)
        "_netmask_cache",
        # decimal (pure-Python fallback) rounding dispatch
        "_pick_rounding_function",
    }
)


def is_risky(name: str) -> bool:
    """Whether the gate must route ``obj.NAME`` through the guard (proxy mode).

    Protocol dunders (``__init__``, ``__add__``...) give bound methods that are harmless on
    every object, proxies included (the membrane answers them the same way natively), so
    ``super().__init__()`` stays native bytecode; what can be derived from them
    (``__self__``, ``__func__``) is itself risky."""
    if name[:2] == "__" and name[-2:] == "__":
        return name not in PROTOCOL or name in ABC_HOOKS
    return (
        name in FRAME_ATTRS
        or name in ABC_STATE
        or name in FORMAT_ATTRS
        or name in EXCEPTION_ATTRS
        or name in LIBRARY_ATTRS
        or name in CLASS_TABLES
    )


_BINARY = "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or".split()

#: Argument-taking dunders of a capsule class that trusted code may call with values of its
#: own: hooks.py makes the capsule's entries for them call-scoped (hooks._Operands), however
#: the class was made and whenever the entry was stored (is_risky_store).
OPERAND_DUNDERS = frozenset(
    [f"__{op}__" for op in _BINARY]
    + [f"__r{op}__" for op in _BINARY]
    + [f"__i{op}__" for op in _BINARY if op != "divmod"]
    + """__eq__ __ne__ __lt__ __le__ __gt__ __ge__
    __contains__ __getitem__ __setitem__ __delitem__ __missing__
    __format__ __round__ __call__ __init__ __new__ __setattr__ __delattr__
    __set__ __delete__ __set_name__ __init_subclass__ __class_getitem__ __mro_entries__
    __prepare__ __exit__ __aexit__ __deepcopy__ __reduce_ex__ __setstate__
    __buffer__ __release_buffer__ __array__ __array_ufunc__ __array_function__
    __array_wrap__ __array_finalize__ __array_prepare__""".split()
)

#: Argument-taking dunders deliberately not in OPERAND_DUNDERS: name -> why.
NOT_OPERAND = {
    "__subclasshook__": "an ABC hook: guarded by hooks._Hook (arguments through inbound())",
    "__subclasscheck__": "an ABC hook: guarded by hooks._Hook",
    "__instancecheck__": "an ABC hook: guarded by hooks._Hook",
    "__getattribute__": "its argument is the attribute name the lookup was asked for; "
    "arrayguard wraps a capsule class's entry (and a metaclass's is a hooks._Hook)",
    "__getattr__": "as __getattribute__: the attribute name, and arrayguard's wrapper",
    "__get__": "slot_tp_descr_get calls the raw class-dict entry without binding it (a "
    "descriptor there is called, not bound); its operands are the instance and class the "
    "attribute lookup itself reached",
    "__getstate__": "no argument since 3.11 (only self)",
    "__reduce__": "no argument (only self)",
    "__sizeof__": "no argument (only self)",
    "__dir__": "no argument (only self)",
    "__getformat__": "float's own class method (a test helper): no protocol calls it on "
    "another class",
}


def is_risky_store(name: str) -> bool:
    """Whether the gate must route a *store or delete* of ``obj.NAME`` through the guard:
    the names whose loads it routes, and every dunder the engine guards on a capsule class
    (hooks.py re-guards the class entry after the write: an operand or ABC hook assigned
    later is hooked like one in the class statement).  The guard's setattr/delattr decide
    with this same predicate (tests/test_operand_hooks.py checks that they agree)."""
    if is_risky(name):
        return True
    return name in OPERAND_DUNDERS or name in ABC_HOOKS


def is_risky_store_rexec(name: str) -> bool:
    return is_risky_rexec(name) or name in OPERAND_DUNDERS or name in ABC_HOOKS


def is_risky_rexec(name: str) -> bool:
    """rexec mode routes every other underscore name through the guard too."""
    if name[:1] == "_":
        return name not in PROTOCOL or name in ABC_HOOKS
    return (
        name in FRAME_ATTRS
        or name in FORMAT_ATTRS
        or name in EXCEPTION_ATTRS
        or name in LIBRARY_ATTRS
    )


def classify(name: str) -> str | None:
    """The table's rule for a dunder name, or ``None`` when it is not classified."""
    if name in NEVER or name.startswith("__ipycap"):
        return "never"
    if name in SPECIAL:
        return "special"
    if name in OWN_ONLY:
        return "own"
    if name in PROTOCOL or name in DESCRIPTIVE:
        return "allow"
    return None


#: The audited list of I2 (DESIGN.md): besides plain data, the capsule's own objects, proxies
#: and the standard library (frozen classes, the functions module views hand out, objects a
#: standard-library constructor made for the capsule), the modules whose functions, classes
#: and objects capsule code may hold.  Everything else of ipycap (the tripwire's helpers, the
#: registry, the context, the hosts) never enters a capsule frame.
AUDITED_MODULES = frozenset(
    {
        # what standard-library code generation makes for a capsule (namedtuple, Enum(...))
        "__capsule__",
        # the capsule's builtins, guarded stand-ins, views, printers and refusals
        "ipycap.engine.builtins",
        "ipycap.engine.codeexec",
        # refusing stand-ins of process-wide stdlib deputies, revocable file handles
        "ipycap.engine.deputies",
        "ipycap.engine.handles",
        "ipycap.engine.errors",
        "ipycap.engine.guard",
        "ipycap.engine.hooks",
        # the array-protocol guard a capsule class carries, and a proxy's __array__
        "ipycap.engine.arrayguard",
        "ipycap.engine.membrane.arrays",
        "ipycap.engine.membrane.authority",
        "ipycap.engine.membrane.crossing",
        "ipycap.engine.modules",
        "ipycap.engine.output",
        "ipycap.engine.stdlib_guards",
        "ipycap.engine.stdviews",
        # the process streams a library holds (sys.stderr as tqdm's fp): opaque, no state
        "ipycap.engine.streams",
        # read-only and shared views of library tables
        "ipycap.engine.tables",
        "ipycap.engine.libraries.wrappers",
        # a scoped option block a capsule enters (pd.option_context...): frozen, parked
        "ipycap.engine.libraries.blocks",
        "ipycap.engine._speedups",
        # the classes the capsule's IPython.display view hands out (HTML, Markdown, ...)
        "IPython.core.display",
        "IPython.core.display_functions",
        "IPython.lib.display",
    }
)


#: Standard-library classes whose own code writes their class attributes while the program
#: runs, so they cannot be frozen for sharing: (module, qualname) -> why.  classfreeze leaves
#: them mutable and guard.share_class refuses to hand one to a capsule (frozen, trusted code
#: using the class would break; unfrozen, a capsule could change it).
FREEZE_EXEMPT = {
    ("weakref", "finalize"): "finalize() sets finalize._dirty and _registered_with_atexit "
    "on every call; weakref is denied, and no grantable module returns the class",
    ("_frozen_importlib_external", "_NamespacePath"): "importlib.invalidate_caches() "
    "increments _NamespacePath._epoch; importlib is denied and nothing grantable returns it",
    ("difflib", "HtmlDiff"): "make_table() increments HtmlDiff._default_prefix: refused in "
    "capsules (difflib's other helpers work)",
}
