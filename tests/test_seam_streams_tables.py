"""Where trusted code hands capsule code its own objects without a call into the capsule:
the process streams, comparisons, class-level instance tables (rt6-seam, as classes).

- The process streams (``sys.stdout``/``sys.stderr`` during and between cells) carry no
  authority: no attribute path to the run, its context, the stream below (streams.py).
- A capsule class's comparison methods called by trusted code receive trusted operands as
  proxies whose capability ends when the method returns (hooks.py, ``_Operands``).
- Class-level tables of live instances of granted libraries are per capsule
  (libraries/instances.py); a scan fails on any such table no profile classifies.
"""

from __future__ import annotations

import importlib
import io
import sys
import textwrap
import types
import warnings
import weakref

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ipycap import CapabilityError, Capsule
from ipycap.engine import streams
from ipycap.engine.libraries import PROFILES, instances


def _run(capsule, source):
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


# -- the process streams --------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["_run", "_stream", "_ipycap_state", "buffer", "session", "__dict__", "__reduce_ex__"],
)
def test_cell_stream_reached_through_a_library_exposes_nothing(path):
    """Any library keeping sys.stderr (tqdm's fp) hands the capsule ipycap's stream: it
    writes, and every other attribute path is refused."""
    capsule = Capsule(grants=[("import", "tqdm")])
    source = (
        "import tqdm\nbar = tqdm.tqdm(total=1)\ns = bar.fp._wrapped\nbar.close()\n"
        f"getattr(s, {path!r})"
    )
    result = _run(capsule, source)
    assert isinstance(result, (CapabilityError, AttributeError)), result
    # what it is for still works: writing (sanitised, counted) and the plain IO attributes
    ok = "import tqdm\nbar = tqdm.tqdm(total=1)\ns = bar.fp._wrapped\nbar.close()\n"
    assert capsule.run(ok + "s.write('x')") == 1
    assert type(capsule.run(ok + "s.isatty()")) is bool


def test_process_stream_cannot_be_reinitialised_or_read_by_a_capsule():
    """``__init__`` again (redirecting what trusted code writes) is refused; the state
    accessor is gone from the classes."""
    capsule = Capsule(grants=[("import", "tqdm")])
    result = _run(
        capsule,
        "import tqdm\nbar = tqdm.tqdm(total=1)\ns = bar.fp._wrapped\nbar.close()\n"
        "class Spy:\n    def write(self, t):\n        pass\ntype(s).__init__(s, Spy(), None)",
    )
    assert isinstance(result, (CapabilityError, TypeError)), result
    for cls in (streams.CellStream, streams.ProcessStream):
        members = [
            name
            for c in cls.__mro__
            for name, value in vars(c).items()
            if isinstance(value, types.MemberDescriptorType) and name != "__weakref__"
        ]
        assert members == [] and "_ipycap_state" not in dir(cls)


def test_trusted_code_still_reaches_the_stream_below():
    """ipykernel's set_parent and the like: attributes of the stream below, for trusted
    callers."""
    below = io.StringIO()
    below.custom = "trusted"
    stream = streams.ProcessStream(below)
    assert stream.custom == "trusted"
    stream.write("a\x1b[2Jb")
    assert below.getvalue() == "a\x1b[2Jb"  # trusted writes pass as they are


# -- comparisons ---------------------------------------------------------------------------
COMPARE = """
import tqdm
seen = []
class File:
    def write(self, s):
        pass
    def flush(self):
        pass
    def __eq__(self, other):
        seen.append((type(other).__name__, hasattr(other, 'write'), hasattr(other, '_token')))
        keep.append(other)
        return False
    __hash__ = object.__hash__
keep = []
bar = tqdm.tqdm(total=1, file=File())
bar.close()
"""


def test_trusted_comparison_hands_a_call_scoped_proxy():
    """tqdm compares the capsule's file with sys.stderr: the capsule's __eq__ gets a proxy
    (public attributes while it runs, no private ones), revoked once it returned."""
    capsule = Capsule(grants=[("import", "tqdm")], scope="session")
    assert _run(capsule, COMPARE) is None
    seen = capsule.run("seen")
    assert seen and all(private is False for _, _, private in seen), seen
    later = _run(capsule, "keep[0].write")
    assert isinstance(later, PermissionError), later  # the operand's capability ended


def test_capsule_comparisons_among_its_own_objects_are_unchanged():
    """sorted, ==, in, list.index from capsule code: operands as they are."""
    capsule = Capsule()
    source = textwrap.dedent(
        """
        class V:
            def __init__(self, n):
                self.n = n
            def __lt__(self, other):
                return self.n < other.n
            def __eq__(self, other):
                return isinstance(other, V) and other.n == self.n
            __hash__ = object.__hash__
        vs = [V(3), V(1), V(2)]
        [v.n for v in sorted(vs)], V(2) in vs, vs.index(V(1)), V(1) == 1
        """
    )
    assert capsule.run(source) == ([1, 2, 3], True, 1, False)


def test_a_comparison_assigned_later_is_guarded_too():
    capsule = Capsule(grants=[("import", "tqdm")], scope="session")
    source = COMPARE.replace("    def __eq__(self, other):", "    def eq(self, other):")
    source = source.replace("bar = tqdm", "File.__eq__ = File.eq\nbar = tqdm")
    assert _run(capsule, source) is None
    seen = capsule.run("seen")
    assert seen and all(private is False for _, _, private in seen), seen


# -- class-level instance tables ---------------------------------------------------------------
def test_trusted_code_never_walks_a_capsule_bar_and_the_capsule_sees_only_its_own():
    import tqdm

    trusted = tqdm.tqdm(total=1, file=io.StringIO())
    try:
        capsule = Capsule(grants=[("import", "tqdm")], scope="session")
        capsule.run("import tqdm\nb = tqdm.tqdm(total=2)\nb2 = tqdm.tqdm(total=2)")
        mine = capsule.run("[x.total for x in tqdm.tqdm._instances]")
        assert sorted(mine) == [2, 2]
        assert sorted(capsule.run("[b.pos, b2.pos]")) == [0, 1]  # positions as tqdm gives
        assert [x.total for x in tqdm.tqdm._instances] == [1]  # trusted: its own bars
        capsule.run("b.close()\nb2.close()")
        assert capsule.run("len(tqdm.tqdm._instances)") == 0
    finally:
        trusted.close()


def test_numpy_finfo_cache_is_per_capsule():
    """finfo objects are cached on the class with writable attributes."""
    import numpy as np

    eps = np.finfo(np.float64).eps
    capsule = Capsule(grants=[("import", "numpy")])
    _run(capsule, "import numpy as np\nf = np.finfo(np.float64)\nf.eps = 0.5\nf.eps")
    assert np.finfo(np.float64).eps == eps


def test_listed_instance_tables_are_per_capsule_once_granted():
    """Every listed table of an imported library is a PerCapsule on its class once a capsule
    imported the library (before the class is frozen)."""
    for package in ("tqdm", "numpy", "matplotlib"):
        Capsule(grants=[("import", package)]).run(f"import {package}")
    importlib.import_module("matplotlib.path")
    Capsule(grants=[("import", "matplotlib")]).run("import matplotlib.path")
    missing = []
    for profile in PROFILES.values():
        for key in profile.instance_tables:
            module_name, _, path = key.partition(":")
            cls_name, _, attr = path.rpartition(".")
            cls = getattr(sys.modules.get(module_name), cls_name, None)
            if cls is not None and type(vars(cls).get(attr)) is not instances.PerCapsule:
                missing.append(key)
    assert not missing, f"instance tables not per capsule: {missing}"


_PLAIN = (str, bytes, int, float, complex, bool, type(None), tuple, frozenset)
_CODE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    staticmethod,
    classmethod,
    property,
)


def _holds_objects(value) -> bool:
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (set, list)):
        items = list(value)
    else:
        return False
    return any(
        not isinstance(v, _CODE) and not isinstance(v, (*_PLAIN, dict, list, set)) for v in items
    )


def _instance_table_candidates():
    """Class attributes (non-dunder, not an enum's member maps) of every profiled library's
    classes that are weak containers, or sets/lists/dicts holding objects."""
    from tests.test_library_boundary import _MODULES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    found = set()
    for modname, module in sorted(sys.modules.items()):
        if modname.partition(".")[0] not in PROFILES or module is None:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or getattr(cls, "__module__", None) != modname:
                continue
            for attr, value in list(vars(cls).items()):
                if attr[:2] == "__" or attr in ("_member_map_", "_value2member_map_"):
                    continue
                if (
                    type(value) is instances.PerCapsule
                    or isinstance(value, (weakref.WeakSet, *instances.WEAK_TABLES))
                    or _holds_objects(value)
                ):
                    found.add(f"{modname}:{cls.__qualname__}.{attr}")
    return found


def test_every_class_level_instance_table_of_the_profiled_libraries_is_classified():
    """A library upgrade adding a table of live instances on a class fails here until its
    profile says whether it is per capsule (instance_tables) or shared, and why."""
    classified = set()
    for profile in PROFILES.values():
        classified.update(profile.instance_tables, profile.shared_tables)
    missing = sorted(_instance_table_candidates() - classified)
    assert not missing, f"class-level tables no profile classifies: {missing}"


# -- the %%capsule path ----------------------------------------------------------------------
@pytest.fixture
def ip(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    shell.run_line_magic("load_ext", "ipycap")
    yield shell
    shell.run_line_magic("unload_ext", "ipycap")
    shell.reset(new_session=False)


def test_magic_cell_stream_through_tqdm_exposes_nothing(ip):
    """The same door through %%capsule in IPython: sys.stderr is the opaque cell stream."""
    cell = (
        "%%capsule --allow-import tqdm\nimport tqdm\nbar = tqdm.tqdm(total=1)\n"
        "s = bar.fp._wrapped\nbar.close()\ns._run"
    )
    result = ip.run_cell(cell, store_history=False)
    assert isinstance(result.error_in_exec, AttributeError), result.error_in_exec
    ok = ip.run_cell(
        "%%capsule --allow-import tqdm\nimport tqdm\nfor i in tqdm.tqdm(range(3)):\n    pass\n1",
        store_history=False,
    )
    assert ok.error_in_exec is None and ok.result == 1


# -- string engines of granted libraries --------------------------------------------------------
def test_styler_renders_in_a_capsule_and_for_trusted_code():
    """pandas' own templates (files inside pandas) still compile and render."""
    import pandas as pd

    capsule = Capsule(grants=[("import", "pandas")])
    html = capsule.run("import pandas as pd\npd.DataFrame({'a': [1, 2]}).style.to_html()")
    assert "<table" in html and ">2<" in html
    assert "<table" in pd.DataFrame({"a": [1]}).style.to_html()


@pytest.mark.parametrize(
    "template",
    [
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ out.append(1) }}",
    ],
)
def test_capsule_jinja_text_runs_only_in_the_sandbox(template):
    """from_string / Template() of pandas' environment render in jinja's immutable sandbox:
    ordinary templates work, the escape paths raise jinja's SecurityError."""
    capsule = Capsule(grants=[("import", "pandas")])
    prelude = "import pandas as pd\nenv = type(pd.DataFrame().style).env\nout = []\n"
    assert capsule.run(prelude + "env.from_string('{{ 1 + x }}').render(x=2)") == "3"
    source = prelude + f"env.from_string({template!r}).render(out=out)\nout"
    try:
        result = capsule.run(source)
    except Exception as err:  # noqa: BLE001 - jinja's SecurityError or a refusal
        result = err
    assert isinstance(result, Exception) or result == [], result
    if isinstance(result, Exception):
        assert type(result).__name__ in ("SecurityError", "UndefinedError") or isinstance(
            result, CapabilityError
        ), result


def test_capsule_template_files_are_not_compiled_unsandboxed(tmp_path):
    """from_custom_template with a folder the capsule wrote: its template is capsule text."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "evil.tpl").write_text("{{ cycler.__init__.__globals__.os.getcwd() }}")
    capsule = Capsule(grants=[("import", "pandas"), ("read", str(folder))])
    source = (
        "import pandas as pd\n"
        f"S = pd.io.formats.style.Styler.from_custom_template({str(folder)!r}, 'evil.tpl')\n"
        "S(pd.DataFrame({'a': [1]})).to_html()"
    )
    result = _run(capsule, source)
    assert isinstance(result, CapabilityError), result


def test_jinja_classes_are_frozen_for_capsules():
    capsule = Capsule(grants=[("import", "pandas")])
    with pytest.raises(TypeError, match="immutable"):
        capsule.run(
            "import pandas as pd\nE = type(type(pd.DataFrame().style).env)\nE.compile = len"
        )
    import jinja2

    assert jinja2.Environment.compile is not len


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nnp.testing.measure('import sys', 1)",
        "import numpy as np\nnp.testing.runstring('x = 1', {})",
        "import numpy.f2py",
    ],
)
def test_numpy_exec_wrappers_are_refused(source):
    import numpy.testing  # noqa: F401 (trusted code imported it)

    assert isinstance(_run(Capsule(grants=[("import", "numpy")]), source), CapabilityError)


def test_pil_string_eval_is_refused_and_lambda_eval_works():
    capsule = Capsule(grants=[("import", "PIL")])
    source = "from PIL import ImageMath\nImageMath.unsafe_eval('a + 1', a=1)"
    assert isinstance(_run(capsule, source), CapabilityError)
    ok = "from PIL import Image, ImageMath\nim = Image.new('L', (1, 1), 3)\n"
    ok += "ImageMath.lambda_eval(lambda a: a['im'] + 1, im=im).getpixel((0, 0))"
    assert capsule.run(ok) == 4


def _evaluator_candidates():
    import dis

    from tests.test_library_boundary import _MODULES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (*_MODULES, "numpy.testing", "PIL.ImageMath"):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - an optional part that cannot load
                continue

    def codes(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from codes(const)

    def evaluates(fn):
        return any(
            ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in ("exec", "eval", "compile")
            for code in codes(fn.__code__)
            for ins in dis.get_instructions(code)
        )

    found = set()
    for modname, module in sorted(sys.modules.items()):
        if modname.partition(".")[0] not in PROFILES or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, types.FunctionType) and value.__module__ == modname:
                if evaluates(value):
                    found.add(f"{modname}.{attr}")
            elif isinstance(value, type) and value.__module__ == modname:
                for name, entry in list(vars(value).items()):
                    fn = getattr(entry, "__func__", entry)
                    if isinstance(fn, types.FunctionType) and evaluates(fn):
                        found.add(f"{modname}:{value.__qualname__}.{name}")
    return found


def test_every_exec_eval_compile_caller_of_the_profiled_libraries_is_classified():
    """A library function that runs text with exec/eval/compile in its own frames fails here
    until its profile refuses it or says why no capsule text reaches it."""
    classified = set()
    for profile in PROFILES.values():
        classified.update(profile.evaluators)
    missing = sorted(_evaluator_candidates() - classified)
    assert not missing, f"exec/eval/compile callers no profile classifies: {missing}"
