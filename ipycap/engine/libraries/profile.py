"""What a library profile says (one small module per library fills one in)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PathArg:
    """Where a native-I/O function takes its path: a position and a keyword.

    ``data_bytes``: a ``bytes`` argument is data (polars reads CSV from bytes), not a path."""

    position: int = 0
    keyword: str = "path"
    data_bytes: bool = False


@dataclass(frozen=True)
class Profile:
    """What a grant of ``package`` covers, refuses and checks.

    Names are ``"module.attr"`` (a module function or attribute a view hands out) or
    ``"module:Class.method"`` (a method, checked on the class itself: instances reach the
    capsule raw, so the check runs whenever capsule code is the caller)."""

    #: The top-level import name a user grants (``--allow-import pandas``).
    package: str
    #: One line for the README and the registry: what a grant of it is for.
    summary: str
    #: Third-party packages it imports lazily on its own behalf (pyarrow under pandas).
    loads: tuple[str, ...] = ()
    #: Standard-library modules capsules are denied that it imports lazily (importlib.metadata).
    stdlib: tuple[str, ...] = ()
    #: Attributes a view refuses outright: name -> why.
    refused: dict = field(default_factory=dict)
    #: Attribute names refused on this library's objects (``arr.ctypes``): name -> why.
    object_attrs: dict = field(default_factory=dict)
    #: Native I/O whose path argument is checked against the read / write grants.
    reads: dict = field(default_factory=dict)
    writes: dict = field(default_factory=dict)
    #: Global option setters: name -> the per-block alternative (refused with it as the hint).
    options: dict = field(default_factory=dict)
    #: Public functions named like setters (``set_*``, ``reset_*``, ``enable_*``, ``use``,
    #: ``seed`` ...) that change no process-wide state trusted code reads: name -> why (they
    #: act on the object given, or what they change is the capsule's own or put back after
    #: its run, libraries/blocks.py).  tests/redteam/test_rt8_libs.py fails on any such name
    #: of the installed library in none of the profile's tables.
    not_options: dict = field(default_factory=dict)
    #: Registration functions and methods: name -> the process-wide table they write
    #: (``matplotlib.scale.register_scale`` -> "matplotlib's scale names").  Refused when capsule
    #: code calls them: trusted code looks the table up later and would call what a capsule
    #: registered with its own data (I3).  The library's own calls on its own behalf pass.
    registers: dict = field(default_factory=dict)
    #: Names that look like registrations (``register*``, ``add_*``) but write no shared table:
    #: name -> why.  tests/test_library_boundary.py fails on any such name of the installed
    #: library that is in neither table.
    not_registries: dict = field(default_factory=dict)
    #: Template-taking APIs (the template is run with ``str.format`` by library code, outside
    #: the guard): name -> the argument (position, keyword) holding the template.  Checked with
    #: the capsule's own rule: a field may only traverse public names.
    templates: dict = field(default_factory=dict)
    #: Functions taking a callable the library may run on its own worker threads (polars'
    #: ``map_elements``): name -> the argument.  A capsule's callable runs under a frame of
    #: that capsule, so the tripwire sees it there too.
    udfs: dict = field(default_factory=dict)
    #: Names replaced by a safe version: name -> factory(original) (see ``wrappers``).
    replaced: dict = field(default_factory=dict)
    #: Environment variables it sets on its own behalf (prefixes): polars' Config blocks.
    environ: tuple[str, ...] = ()
    #: Whether its classes are frozen when a capsule gets them (False only for a library that
    #: keeps state on its classes at run time; the profile says why).
    freeze: bool = True
    #: Classes ("module:Class") whose instances a read-only proxy holds as an immutable
    #: stand-in sharing their data: class -> function name in ``readonly`` (read-only
    #: targets, membrane/readonly.py).
    readonly: dict = field(default_factory=dict)
    #: Classes ("module:Class") whose results -- of method calls, attribute reads, items and
    #: operators, through a read-only proxy -- are judged by whether they can reach the data
    #: of what they were derived from: class -> rule name in ``readonly`` (False: they stay
    #: read-only; True: they are the capsule's own, membrane/derived.py).  A rule names a
    #: class the library defines; subclasses of user code are never sources.
    derived: dict = field(default_factory=dict)
    #: Class-level tables of live instances (``"module:Class.attr"``): seen per capsule
    #: (``instances.PerCapsule``), so trusted instances never reach a capsule through them and
    #: trusted code never walks a capsule's (tqdm's ``_instances``).
    instance_tables: tuple = ()
    #: Class-level containers of objects that are not such tables: key -> why they stay
    #: shared.  tests/test_library_boundary.py fails on any such container of the installed
    #: library that is in neither.
    shared_tables: dict = field(default_factory=dict)
    #: Functions of the package whose code calls exec/eval/compile (``"module.func"`` or
    #: ``"module:Class.method"``): key -> why a capsule cannot run its own text through it
    #: (refused in ``refused``, or the text is the library's own).  tests/
    #: test_library_boundary.py fails on any such function of the installed library not here.
    evaluators: dict = field(default_factory=dict)
    #: Public callables with a parameter named like a path (``path``, ``file``, ``source``,
    #: ``where``, ``sink`` ...) that are neither checked (reads/writes) nor refused: name -> why
    #: the parameter is not a file the library opens natively.  tests/test_library_native_io.py
    #: fails on such a parameter in none of the tables.
    not_paths: dict = field(default_factory=dict)
    #: Process-wide containers trusted code reads later, kept on a class or a shared object
    #: (``"module:Class.attr"``, ``"module:obj.attr.attr"``): name -> what trusted code does
    #: with it.  Replaced in place by a shared table (ipycap.engine.tables) that capsule code
    #: reads read-only and cannot change.
    tables: dict = field(default_factory=dict)
    #: Containers on the library's public classes and shared objects that are left as they
    #: are: name -> why.  tests/test_library_tables.py fails on one in neither table.
    shared: dict = field(default_factory=dict)
    #: What stays unchecked, said plainly (README, refusals).
    unchecked: str = ""
