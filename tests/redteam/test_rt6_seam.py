"""Red team rt6-seam: where trusted code (granted libraries, the standard library) calls capsule
code or hands it raw trusted objects.

Every test here FAILS while the finding stands: the capsule reaches a canary the test made
(a secret file outside the grants, a trusted object's private token) or holds a raw trusted
object it must never see (I2).  Each test's docstring names the class, the mechanism and the
invariant; ``_plain`` shows the same payload as plain Python, without ipycap, so each is a real
attack and not an artefact of the harness.
"""

from __future__ import annotations

import io
import secrets
import sys

import pytest

from ipycap import CapabilityError, Capsule


@pytest.fixture
def canary(tmp_path):
    """A secret file outside every grant, holding a random token."""
    token = secrets.token_hex(16)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret = secret_dir / "token.txt"
    secret.write_text(token)
    return token, str(secret)


def _run(capsule, source):
    """The capsule's result, or the refusal it met (a refusal is the capsule being stopped)."""
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


def _plain(source, **names):
    """The payload as plain Python (no ipycap): what it reaches there."""
    namespace = dict(names)
    exec(compile(source, "<plain>", "exec"), namespace)
    return namespace


# -- 1. rich comparison: a library compares a capsule object with its own objects ------------
#
# Class: trusted code evaluates ``capsule_obj == trusted_obj`` (``x in (a, b)``, ``list.index``,
# dict/set probes on a hash collision, ``sorted``/``min``): Python calls the capsule's
# ``__eq__``/``__lt__`` with the trusted operand, raw.  No membrane sits on an operand.  tqdm
# does ``fp in (sys.stderr, sys.stdout)`` on the capsule's ``file=`` object while a bar starts,
# and ``inst.fp == fp`` over every live bar in tqdm.write(), later, from trusted code.  During a
# capsule cell sys.stderr is ipycap's own limits._CellStream, whose ``_run.context`` is the
# capsule's CapsuleContext (registry, grants): native attribute loads (no dunder) reach it.

TQDM_EQ_PAYLOAD = """
import tqdm
got = []
class File:
    def write(self, s):
        pass
    def flush(self):
        pass
    def __eq__(self, other):
        got.append(other)
        return False
    __hash__ = object.__hash__
bar = tqdm.tqdm(total=1, file=File())
"""

TQDM_ESCAPE = (
    TQDM_EQ_PAYLOAD
    + """
stream = [g for g in got if hasattr(g, '_run')][0]
ctx = stream._run.context
ctx.grants.append(ctx.registry.grant('read', SECRET.rpartition('/')[0]))
bar.close()
open(SECRET).read()
"""
)


def test_tqdm_compares_capsule_file_with_sys_stderr_and_hands_over_the_cell_stream(canary):
    """rich-comparison operand (tqdm ``fp in (sys.stderr, sys.stdout)``) -> the raw
    sys.stderr of the cell (ipycap's _CellStream) -> its run's CapsuleContext -> a read grant
    the capsule writes itself -> the secret file.  Breaks I2 (raw trusted object in a capsule
    frame, via an operand) and I4 (the stream trusted code uses carries the context)."""
    token, secret = canary
    plain = _plain(TQDM_EQ_PAYLOAD)  # plain Python: the file's __eq__ is handed sys.stderr
    assert any(g is sys.stderr for g in plain["got"])
    plain["bar"].close()
    capsule = Capsule(grants=[("import", "tqdm")], protected={"SECRET": secret})
    result = _run(capsule, TQDM_ESCAPE)
    assert result != token, "the capsule read the secret file through tqdm's comparison"


STREAM_ESCAPE = """
import tqdm
stream = tqdm.tqdm(total=1).fp._wrapped   # the bar's default file, sys.stderr of the cell
ctx = stream._run.context
ctx.grants.append(ctx.registry.grant('read', SECRET.rpartition('/')[0]))
open(SECRET).read()
"""


def test_library_default_stream_is_the_cell_stream_carrying_the_context(canary):
    """Same door, no comparison needed (I4: nothing a capsule can reach carries authority):
    any library that keeps ``sys.stderr``/``sys.stdout`` as an attribute (tqdm's ``fp``,
    wrapped, ``._wrapped``) gives the capsule ipycap's _CellStream, whose ``_run.context`` is
    the capsule's CapsuleContext."""
    token, secret = canary
    capsule = Capsule(grants=[("import", "tqdm")], protected={"SECRET": secret})
    result = _run(capsule, STREAM_ESCAPE)
    assert result != token, "the capsule granted itself a read through tqdm's default stream"


def test_tqdm_write_later_hands_trusted_stdout_to_a_capsule_eq(canary):
    """Same class, later (I3 + I2): the capsule's bar stays in tqdm's class-level instance set;
    a trusted ``tqdm.write()`` after the cell compares every bar's file with the trusted
    ``sys.stdout``, so the capsule's ``__eq__`` receives that raw stream.  Here the trusted
    stream holds the token in a private attribute; in a kernel it is ipykernel's OutStream
    (its session, with the signing key)."""
    import tqdm

    token, _ = canary

    class TrustedStream:
        def __init__(self, secret):
            self._token = secret

        def write(self, s):
            return len(s)

        def flush(self):
            pass

    capsule = Capsule(grants=[("import", "tqdm")], scope="session")
    assert _run(capsule, TQDM_EQ_PAYLOAD) is None
    real = sys.stdout
    sys.stdout = TrustedStream(token)
    try:
        tqdm.tqdm.write("a trusted message")  # trusted code, after the cell
    finally:
        sys.stdout = real
    result = _run(capsule, "[g._token for g in got if hasattr(g, '_token')]")
    _run(capsule, "bar.close()")  # out of tqdm's instance table, for the tests after this one
    assert token not in (result if isinstance(result, list) else []), (
        "a trusted tqdm.write() handed the capsule the raw trusted sys.stdout"
    )


# -- 2. shallow freezing: a granted library's table is read-only, its entries are not --------
#
# Class: the profile freezes a library's classes and wraps its named process-wide tables
# (rcParams, rcParamsDefault, the style library mapping itself is a mappingproxy), but the
# *values* inside are the library's own mutable objects, handed raw: matplotlib.style.library's
# RcParams per style, MarkerStyle.markers / Line2D.lineStyles (dicts on frozen classes),
# colors.get_named_colors_mapping() (the colour-name table).  Trusted code reads them later.
# Here: the capsule edits the 'ggplot' style's animation.ffmpeg_path (an rcParam it may not set
# directly) to /bin/sh and writes a script named 'rawvideo' in its granted working folder; the
# user's trusted cell later does plt.style.use('ggplot') and saves an animation, and matplotlib
# runs ``/bin/sh -f rawvideo ...``: the capsule's script, with the user's full authority.

STYLE_PAYLOAD = """
import matplotlib.pyplot as plt
plt.style.library['ggplot']['animation.ffmpeg_path'] = '/bin/sh'
with open(WORKDIR + '/rawvideo', 'w') as f:
    f.write('echo ran-with-full-authority > ' + WORKDIR + '/marker\\n')
"""


def _save_animation_as_trusted_user(workdir, monkeypatch):
    import matplotlib.animation as animation
    import matplotlib.pyplot as plt

    monkeypatch.chdir(workdir)
    plt.style.use("ggplot")  # the user's own cell, after the capsule's
    fig, ax = plt.subplots()
    try:
        anim = animation.FuncAnimation(fig, lambda i: [], frames=2)
        try:
            anim.save(str(workdir / "out.mp4"), writer="ffmpeg")
        except (OSError, RuntimeError, ValueError):
            pass  # the capsule's "ffmpeg" does not read the frames
    finally:
        plt.close(fig)


@pytest.fixture
def mpl_styles():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.style

    # The plain demonstration edits the entries in place, and reload_library() reuses them
    # (its base library is read once, at import): put each entry's own options back.
    saved = {name: dict(dict.items(entry)) for name, entry in matplotlib.style.library.items()}
    yield
    matplotlib.style.reload_library()
    for name, options in saved.items():
        entry = matplotlib.style.library.get(name)
        if entry is not None:
            for key in set(dict.keys(entry)) - set(options):
                dict.__delitem__(entry, key)
            dict.update(entry, options)
    matplotlib.rcdefaults()


def test_style_library_entry_edit_makes_a_trusted_animation_save_run_capsule_code(
    tmp_path, monkeypatch, mpl_styles
):
    """shallow freeze of a granted library's tables (I3: no option table of trusted code is
    changed by capsule code): a capsule-chosen executable reaches trusted rcParams through
    ``plt.style.use`` and matplotlib runs it.  The marker file is the canary."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    capsule = Capsule(
        grants=[("import", "matplotlib"), ("write", str(workdir))],
        protected={"WORKDIR": str(workdir)},
    )
    _run(capsule, STYLE_PAYLOAD)
    _save_animation_as_trusted_user(workdir, monkeypatch)
    assert not (workdir / "marker").exists(), (
        "a trusted animation save ran the capsule's script (style table edited by the capsule)"
    )


# More entries of the same class: each a table trusted code reads later, reached raw.
def _styler():
    import pandas as pd

    return type(pd.DataFrame().style)


def _forget_capsule_red():
    import matplotlib.colors

    mapping = matplotlib.colors.get_named_colors_mapping()
    if "capsule-red" in mapping:
        del mapping["capsule-red"]  # __delitem__ also clears the colour cache


TABLE_EDITS = {
    "colors.get_named_colors_mapping()": (
        "import matplotlib.colors as c\nc.get_named_colors_mapping()['capsule-red'] = '#00ff00'",
        lambda: __import__("matplotlib.colors").colors.is_color_like("capsule-red"),
        _forget_capsule_red,
    ),
    "MarkerStyle.markers": (
        "from matplotlib.markers import MarkerStyle\nMarkerStyle.markers['capsule'] = 'x'",
        lambda: "capsule" in __import__("matplotlib.markers").markers.MarkerStyle.markers,
        lambda: __import__("matplotlib.markers").markers.MarkerStyle.markers.pop("capsule", 0),
    ),
    "BoxStyle._style_list": (
        "from matplotlib.patches import BoxStyle\n"
        "class Evil:\n    pass\nBoxStyle._style_list['capsule'] = Evil",
        lambda: "capsule" in __import__("matplotlib.patches").patches.BoxStyle._style_list,
        lambda: __import__("matplotlib.patches").patches.BoxStyle._style_list.pop("capsule", 0),
    ),
    "font_manager.fontManager.defaultFamily": (
        "import matplotlib.font_manager as fm\nfm.fontManager.defaultFamily['capsule'] = 'x'",
        lambda: (
            "capsule"
            in __import__("matplotlib.font_manager").font_manager.fontManager.defaultFamily
        ),
        lambda: __import__("matplotlib.font_manager").font_manager.fontManager.defaultFamily.pop(
            "capsule", 0
        ),
    ),
    "pandas Styler.env.globals": (
        "import pandas as pd\ntype(pd.DataFrame().style).env.globals['capsule'] = print",
        lambda: "capsule" in _styler().env.globals,
        lambda: _styler().env.globals.pop("capsule", 0),
    ),
    "pandas Styler.loader.searchpath": (
        "import pandas as pd\ntype(pd.DataFrame().style).loader.searchpath.append('/capsule')",
        lambda: "/capsule" in _styler().loader.searchpath,
        lambda: [
            _styler().loader.searchpath.remove("/capsule")
            for _ in range(_styler().loader.searchpath.count("/capsule"))
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(TABLE_EDITS))
def test_library_table_entry_edited_by_a_capsule(case, mpl_styles):
    """shallow freeze, more tables (I3): trusted code later sees the capsule's entry (a colour
    name, a marker, a box-style class it instantiates, a font family, a jinja global, a template
    search path)."""
    code, changed, cleanup = TABLE_EDITS[case]
    package = "pandas" if "pandas" in case else "matplotlib"
    try:
        _run(Capsule(grants=[("import", package)]), code)
        assert not changed(), f"a capsule changed {case}, a table trusted code reads later"
    finally:
        cleanup()


def test_plain_style_library_edit_runs_the_script(tmp_path, monkeypatch, mpl_styles):
    """The plain-Python demonstration of the chain above."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    _plain(STYLE_PAYLOAD, WORKDIR=str(workdir))
    _save_animation_as_trusted_user(workdir, monkeypatch)
    assert (workdir / "marker").exists()


# -- 3. class-level registries of live instances, shared with trusted code -------------------
#
# Class: a granted library keeps every live instance in a class-level table
# (tqdm.tqdm._instances, a WeakSet; TMonitor and tqdm.write() walk it), and a capsule reads
# the library's non-dunder private names natively.  Trusted progress bars are in the same
# table: their ``iterable`` (a trusted file, a trusted list), ``fp`` (the trusted stream) reach
# the capsule raw.  The other way (I3), a capsule bar left in the table has its methods and
# attributes used by trusted tqdm.write()/TMonitor later.


def test_tqdm_instance_table_hands_trusted_bars_to_the_capsule(canary):
    """I2: a trusted bar over a trusted file (kept open, as notebooks do when a loop stops
    early) is read out of tqdm's class-level instance table; its iterable is the raw file."""
    import tqdm

    token, secret = canary
    code = "import tqdm\nresult = [b.iterable.read() for b in list(tqdm.tqdm._instances)]\nresult"
    with open(secret) as trusted_file:
        bar = tqdm.tqdm(trusted_file, file=io.StringIO())  # the user's own, trusted
        try:
            capsule = Capsule(grants=[("import", "tqdm")])
            result = _run(capsule, code)
            trusted_file.seek(0)
            assert token in _plain(code)["result"]  # plain Python: the same payload reads it
        finally:
            bar.close()
    assert token not in (result if isinstance(result, list) else []), (
        "the capsule read a trusted progress bar's file out of tqdm._instances"
    )


# -- 4. template engines a granted library carries, unsandboxed ------------------------------
#
# Class: a granted library holds a string-evaluating engine that compiles capsule-supplied
# text into Python and runs it in the engine's own frames and globals, with no guard: pandas'
# Styler keeps a jinja2 ``Environment`` (``Styler.env``, ``df.style.template_html.environment``,
# ``Styler.from_custom_template``'s loader).  Jinja's non-sandboxed attribute lookup walks
# ``__init__.__globals__`` of its own helpers (``cycler``) to the raw ``os``/``sys`` modules;
# the template can hand them back through any capsule callable it is given (``out.append``).
# The gate never sees the template text; DESIGN's "string-evaluating engines unless routed
# through the gate" covers df.eval/query, not the template engine.

JINJA_ESCAPE = """
import pandas as pd
env = type(pd.DataFrame({"a": [1]}).style).env
out = []
env.from_string(
    "{{ out.append(cycler.__init__.__globals__.os.sys.modules['ipycap.engine.tripwire']"
    ".current_context()) }}"
).render(out=out)
ctx = out[0]
ctx.grants.append(ctx.registry.grant("read", SECRET.rpartition("/")[0]))
open(SECRET).read()
"""


def test_pandas_styler_jinja_environment_runs_capsule_templates_unguarded(canary):
    """string-evaluating engine of a granted library (I1: the template runs with the
    engine's globals, real builtins; I2: raw sys/os and the capsule's own CapsuleContext
    come back into the capsule frame).  The secret file is the canary."""
    token, secret = canary
    plain = _plain(
        "import pandas as pd\nenv = type(pd.DataFrame({'a': [1]}).style).env\nout = []\n"
        "env.from_string('{{ out.append(cycler.__init__.__globals__.os) }}').render(out=out)"
    )
    assert plain["out"][0] is __import__("os")  # plain Python: the template hands over os
    capsule = Capsule(grants=[("import", "pandas")], protected={"SECRET": secret})
    result = _run(capsule, JINJA_ESCAPE)
    assert result != token, "a jinja2 template run through pandas' Styler read the secret"


RUNSTRING_ESCAPE = """
import numpy as np
d = {}
np.testing.runstring(
    "import sys as s\\nc = s.modules['ipycap.engine.tripwire'].current_context()\\n", d
)
ctx = d["c"]
ctx.grants.append(ctx.registry.grant("read", SECRET.rpartition("/")[0]))
open(SECRET).read()
"""


def test_numpy_testing_runstring_execs_capsule_source_with_real_builtins(canary):
    """Same class (a granted library's exec-from-string helper): ``numpy.testing.runstring``
    is ``exec(astr, dict)`` in numpy's frame, so the capsule's dict gets the real builtins
    and ``import sys`` the raw module.  The tripwire's compile rule is a list of risky names
    and attributes; an ``import`` statement and plain attribute names (``modules``,
    ``current_context``) pass it.  Precondition: numpy.testing was imported by trusted code
    (``from numpy.testing import assert_allclose`` in a user cell; its first import from a
    capsule meets a refused ``signal`` import)."""
    import numpy.testing  # noqa: F401 (the user's trusted import)

    token, secret = canary
    plain = {}
    numpy.testing.runstring("import sys as s\nm = s.modules\n", plain)
    assert plain["m"] is sys.modules  # plain Python: the executed string gets raw sys
    capsule = Capsule(grants=[("import", "numpy")], protected={"SECRET": secret})
    result = _run(capsule, RUNSTRING_ESCAPE)
    assert result != token, "numpy.testing.runstring ran capsule source with raw sys"


# -- 5. file names inside a granted library's query text ------------------------------------
#
# Class: the profiles check the *path arguments* of native-I/O functions; a query language a
# granted library runs natively names files inside its text, where no argument check looks.
# polars SQL's table functions (read_csv, read_parquet, read_ipc, read_json; globs too) open
# the file in Rust: no Python open, so no audit event and no tripwire.  Same through
# pl.sql, pl.SQLContext().execute, DataFrame.sql and LazyFrame.sql.

POLARS_SQL = (
    "import polars as pl\n"
    "pl.sql(f\"SELECT * FROM read_csv('{SECRET}', has_header => false)\").collect().item()"
)


def test_polars_sql_table_function_reads_a_file_outside_the_grants(canary):
    """native I/O named inside a string (layer: library profile; the tripwire cannot see
    Rust I/O).  The secret file is the canary."""
    token, secret = canary
    assert (
        _plain("result = " + POLARS_SQL.split("\n")[1], pl=__import__("polars"), SECRET=secret)[
            "result"
        ]
        == token
    )  # plain Python reads it too
    capsule = Capsule(grants=[("import", "polars")], protected={"SECRET": secret})
    result = _run(capsule, POLARS_SQL)
    assert result != token, "polars SQL read the secret file outside the capsule's grants"


# -- 6. native I/O methods the profile's by-name lists leave out --------------------------
#
# Class: the profiles check the paths of the native-I/O functions they name (polars
# read_*/scan_*/write_*/sink_*, pyarrow write_table/new_file...); other entry points take a
# path too and open it in C++/Rust, where the tripwire sees nothing: polars
# DataFrame/LazyFrame.serialize(file) and Expr.meta.serialize(file) (and .deserialize(source)
# for reading), pyarrow's writer classes ParquetWriter(where) and ipc.RecordBatchFileWriter.
# With no write grant at all, each creates the marker outside the grants.

NATIVE_WRITES = {
    "polars DataFrame.serialize": (
        "polars",
        "import polars as pl\npl.DataFrame({'a': [1]}).serialize(MARKER)",
    ),
    "polars LazyFrame.serialize": (
        "polars",
        "import polars as pl\npl.LazyFrame({'a': [1]}).serialize(MARKER)",
    ),
    "pyarrow ParquetWriter": (
        "pyarrow",
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "pq.ParquetWriter(MARKER, pa.schema([('a', pa.int64())])).close()",
    ),
    "pyarrow RecordBatchFileWriter": (
        "pyarrow",
        "import pyarrow as pa, pyarrow.ipc as ipc\n"
        "ipc.RecordBatchFileWriter(MARKER, pa.schema([('a', pa.int64())])).close()",
    ),
}


@pytest.mark.parametrize("case", sorted(NATIVE_WRITES))
def test_native_write_entry_point_outside_the_profile_lists(tmp_path, case):
    """native write past the profile (its lists are by name; the tripwire cannot see native
    I/O).  The marker file outside every grant is the canary."""
    package, code = NATIVE_WRITES[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = outside / "marker"
    capsule = Capsule(grants=[("import", package)], protected={"MARKER": str(marker)})
    _run(capsule, code)
    assert not marker.exists(), f"{case} wrote a file outside the capsule's grants"


# -- 7. raw memory through a granted library's data-interchange protocol ---------------------
#
# Class: a library *imports* data by protocol from an object the capsule defines, and trusts
# the addresses the object reports: the DataFrame interchange protocol (``__dataframe__``,
# ``Buffer.ptr``/``bufsize``) is followed by pandas.api.interchange.from_dataframe and
# pyarrow.interchange.from_dataframe, which copy ``bufsize`` bytes from ``ptr``: a read of any
# address of the process.  (The profiles refuse the array-interface pointers and ctypeslib;
# this protocol is the same power under another name; ``__arrow_c_*__``/``__dlpack__``
# capsules and ``__cuda_array_interface__`` are its neighbours.)  With id() the capsule walks
# from its proxy to the protected target and reads its private token.

INTERCHANGE_FRAME = """
class _Buf:
    def __init__(self, ptr, size):
        self.ptr = ptr
        self.bufsize = size
class _Col:
    def __init__(self, ptr, n):
        self.ptr, self.n = ptr, n
    def size(self):
        return self.n
    offset = 0
    dtype = (0, 8, "c", "=")
    describe_null = (0, None)
    null_count = 0
    metadata = {}
    def num_chunks(self):
        return 1
    def get_chunks(self, n_chunks=None):
        yield self
    def get_buffers(self):
        return {"data": (_Buf(self.ptr, self.n), self.dtype), "validity": None, "offsets": None}
class _Frame:
    def __init__(self, ptr, n):
        self.col = _Col(ptr, n)
        self.n = n
    def __dataframe__(self, nan_as_null=False, allow_copy=True):
        return self
    metadata = {}
    def num_columns(self):
        return 1
    def num_rows(self):
        return self.n
    def num_chunks(self):
        return 1
    def column_names(self):
        return ["m"]
    def get_column(self, i):
        return self.col
    def get_column_by_name(self, name):
        return self.col
    def get_columns(self):
        return [self.col]
    def get_chunks(self, n_chunks=None):
        yield self
    def select_columns(self, i):
        return self
    def select_columns_by_name(self, names):
        return self
"""

PEEK = {
    "pandas": (
        "import pandas as pd\n"
        "def peek(address, n):\n"
        "    frame = pd.api.interchange.from_dataframe(_Frame(address, n))\n"
        "    return bytes(int(b) & 0xFF for b in frame['m'].tolist())\n"
    ),
    "pyarrow": (
        "import pyarrow.interchange as pai\n"
        "def peek(address, n):\n"
        "    table = pai.from_dataframe(_Frame(address, n))\n"
        "    return bytes(int(b) & 0xFF for b in table.column(0).to_pylist())\n"
    ),
}

WALK_TO_TOKEN = """
def word(address):
    return int.from_bytes(peek(address, 8), "little")
raw = word(id(vault) + 16)   # the proxy (ipycap's ProxyBase): ob_refcnt, ob_type, target
values = word(raw - 32)      # CPython 3.11 managed dict: the values array before the header
s = word(values)             # the first attribute's value: the _token str
peek(s + 48, word(s + 16)).decode()  # a compact ASCII str: its data after the header
"""


class _Vault:
    """A protected object with its secret in private state."""

    def __init__(self, token):
        self._token = token


@pytest.mark.parametrize("package", sorted(PEEK))
def test_interchange_protocol_reads_process_memory(package):
    """Raw memory read through a library's import protocol (I2/I4: the protected target's
    bytes reach the capsule; layer: library profile, the guard never sees a pointer).  The
    protected object's private token is the canary.  The walk uses CPython 3.11's object
    layouts (the project's Python)."""
    token = secrets.token_hex(16)
    secret = token.encode()
    plain = _plain(INTERCHANGE_FRAME + PEEK[package] + "r = peek(id(S) + 32, len(S))", S=secret)
    assert plain["r"] == secret  # plain Python: the library copies from the given address
    capsule = Capsule(
        grants=[("import", package)],
        protected={"vault": _Vault(token)},
    )
    code = INTERCHANGE_FRAME + PEEK[package] + WALK_TO_TOKEN
    result = _run(capsule, code)
    assert result != token, f"{package}'s interchange import read the protected token"
