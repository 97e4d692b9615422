"""Red team rt8: the engine helpers surface (handles, stdviews, codeexec, limits, rollback...).

Every test here asserts that a canary the test itself made is NOT reached from capsule code:
a secret file outside every grant (read through a descriptor trusted code holds open), a
marker file trusted code holds open for writing, a trusted object's private state.  While a
finding stands its test fails, so each is marked ``xfail(strict=True)`` with the finding's
number; ``_plain`` shows the same payload reaching the canary without ipycap, so each is a
real attack and not an artefact of the harness.  /work/scratch/rt8-docs.md has the class,
the root cause and the suggested class fix of each finding.
"""

from __future__ import annotations

import os
import secrets

import pytest

from ipycap import CapabilityError, Capsule


@pytest.fixture
def canary(tmp_path):
    """A secret file outside every grant, holding a random token, and a granted folder."""
    token = secrets.token_hex(16)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret = secret_dir / "token.txt"
    secret.write_text(token)
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "ok.txt").write_text("ok")
    return token, str(secret), str(granted)


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


# -- 1. descriptor numbers: native I/O on the fd a capsule object's fileno() names -----------
#
# Class: a granted library's native code accepts any object with a ``fileno()`` as a file and
# reads or writes the descriptor it names, below Python's I/O (numpy's npy_PyFile_Dup2:
# ``os.dup`` + ``fdopen``; Pillow's ImageFile._save: ``encoder.encode_to_file(fh)``).  None
# of ``os.dup``, ``fdopen``, ``read``/``write`` on a descriptor raises an audit event, so the
# tripwire never sees it; the library profile's path check (wrappers._as_path) passes "a file
# object" through unchecked; handles.py assumed "fileno gives an int no capsule can use (the
# tripwire refuses opening a descriptor)".  A capsule class returns any small integer:
# every descriptor the kernel holds (the history database, sockets, a log, a trusted file).

FD_READ = """
import numpy as np
class F:
    def fileno(self):
        return FD
    def flush(self):
        pass
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
loot = bytes(np.fromfile(F(), dtype=np.uint8).tolist()).decode()
"""

FD_WRITE_NUMPY = """
import copy
import numpy as np
arr = np.frombuffer(b"PWNED-BY-CAPSULE", dtype=np.uint8)
class F:
    __copy__ = arr.tofile  # copy.copy calls it from a trusted frame (real __import__ for os)
    def fileno(self):
        return FD
    def flush(self):
        pass
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
copy.copy(F())
"""

FD_WRITE_PIL = """
from PIL import Image
class F:
    def fileno(self):
        return FD
    def flush(self):
        pass
    def write(self, data):
        return len(data)
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
Image.new("RGB", (8, 8), (78, 87, 80)).save(F(), format="BMP")  # BGR: b"PWN"...
"""


def _secret_fd(secret):
    return os.open(secret, os.O_RDONLY)


def test_rt8_1a_numpy_fromfile_reads_a_trusted_descriptor(canary):
    pytest.importorskip("numpy")
    token, secret, granted = canary
    fd = _secret_fd(secret)
    try:
        source = FD_READ.replace("FD", str(fd))
        assert _plain(source)["loot"] == token
        os.lseek(fd, 0, os.SEEK_SET)
        capsule = Capsule(grants=[("import", "numpy"), ("read", granted)], label="rt8-1a")
        result = _run(capsule, source)
        loot = capsule.namespace.get("loot")
        assert token not in str(loot) and token not in str(result)
    finally:
        os.close(fd)


REVOKED_FD = """
import numpy as np
class G:
    def fileno(self):
        return f.fileno()  # RevocableFile passes fileno through, revoked or not
    def flush(self):
        pass
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
loot = bytes(np.fromfile(G(), dtype=np.uint8).tolist())
"""


def test_rt8_1b_numpy_fromfile_reads_a_revoked_files_descriptor(canary):
    """The same through the capsule's own (revocable) file after its grant is revoked: its
    fileno() is passed through unchecked, so the descriptor outlives the revocation that
    RevocableFile enforces on read().  (Passing the RevocableFile itself to np.fromfile
    raises AttributeError: wrappers._as_path takes its ``__ipycap_path__`` slot descriptor
    for stdviews.Path's marker -- a side bug.)"""
    pytest.importorskip("numpy")
    token, secret, granted = canary
    secret_dir = os.path.dirname(secret)
    capsule = Capsule(grants=[("import", "numpy"), ("read", secret_dir)], label="rt8-1b")
    capsule.run("f = open(SECRET, 'rb')".replace("SECRET", repr(secret)))
    for cap in capsule.context.grants:
        if cap.kind == "read":
            cap.revoke()
    result = _run(capsule, REVOKED_FD)
    loot = capsule.namespace.get("loot")
    assert token.encode() not in (loot or b"") and token not in str(result)
    assert isinstance(_run(capsule, "f.read()"), CapabilityError)  # the handle is revoked


def test_rt8_1c_numpy_tofile_writes_a_trusted_descriptor(canary, tmp_path):
    pytest.importorskip("numpy")
    _, _, granted = canary
    marker = tmp_path / "trusted.log"
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        source = FD_WRITE_NUMPY.replace("FD", str(fd))
        _plain(source)
        assert marker.read_bytes() == b"PWNED-BY-CAPSULE"
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        capsule = Capsule(grants=[("import", "numpy"), ("read", granted)], label="rt8-1c")
        _run(capsule, source)
        assert b"PWNED" not in marker.read_bytes()
    finally:
        os.close(fd)


def test_rt8_1d_pil_save_writes_a_trusted_descriptor(canary, tmp_path):
    image = pytest.importorskip("PIL.Image")
    image.init()  # the user's own session has loaded Pillow's plugins already
    _, _, granted = canary
    marker = tmp_path / "trusted.log"
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        source = FD_WRITE_PIL.replace("FD", str(fd))
        _plain(source)
        assert b"PWN" in marker.read_bytes()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        capsule = Capsule(grants=[("import", "PIL"), ("read", granted)], label="rt8-1d")
        _run(capsule, source)
        assert b"PWN" not in marker.read_bytes()
    finally:
        os.close(fd)


# -- 2. the host's traceback keeps live capsule frames: formatted later, on the main thread ---
#
# Class: error_for_host keeps the capsule's frames (capsule_traceback) in the exception the
# host shows and keeps (sys.last_traceback).  Under ``%xmode Verbose`` (a common setting)
# IPython's traceback formatter calls repr() on every local of those frames: capsule
# ``__repr__`` code, run on the main thread after the cell ended -- no --timeout, no memory
# limit, its text neither sanitised nor counted (I3: "values are formatted inside the capsule
# and only plain bundles reach IPython").  The terminal canary: an OSC 52 clipboard write.

from tests import test_magics as _magics  # noqa: E402

_shell = _magics._shell
ip = _magics.ip

VERBOSE_CELL = r"""%%capsule --timeout 1
import time
class R:
    def __repr__(self):
        t = time.monotonic()
        while time.monotonic() - t < SPIN:
            pass
        return "\x1b]52;c;UFdORUQ=\x07R-REPR-RAN"
def f(r):
    return r.missing
f(R())
"""


def test_rt8_2a_verbose_traceback_shows_raw_capsule_repr(ip, capsys):
    ip.ok("%xmode Verbose")
    capsys.readouterr()
    ip.fails(VERBOSE_CELL.replace("SPIN", "0"), AttributeError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "R-REPR-RAN" in text or "missing" in text  # the traceback was shown
    assert "\x1b]52" not in text  # no terminal escape of the capsule's reaches the terminal


def test_rt8_2b_verbose_traceback_runs_capsule_code_past_the_timeout(ip, capsys):
    import time

    ip.ok("%xmode Verbose")
    start = time.monotonic()
    ip.fails(VERBOSE_CELL.replace("SPIN", "2"), AttributeError)
    elapsed = time.monotonic() - start
    capsys.readouterr()
    # --timeout 1: whatever capsule code the cell leads to is stopped after about a second
    assert elapsed < 1.9, f"capsule __repr__ ran {elapsed:.1f}s after a 1s cell limit"


FD_WRITE_MPL = """
import matplotlib.pyplot as plt
class F:
    def fileno(self):
        return FD
    def flush(self):
        pass
    def write(self, data):
        return len(data)
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
plt.figure(figsize=(1, 1)).savefig(F(), format="jpg")
"""


def test_rt8_1e_matplotlib_savefig_writes_a_trusted_descriptor(canary, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    pytest.importorskip("PIL.Image").init()
    _, _, granted = canary
    marker = tmp_path / "trusted.log"
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        source = FD_WRITE_MPL.replace("FD", str(fd))
        _plain(source)
        assert marker.stat().st_size > 0
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        capsule = Capsule(grants=[("import", "matplotlib"), ("read", granted)], label="rt8-1e")
        _run(capsule, source)
        assert marker.stat().st_size == 0  # nothing reached the trusted file
    finally:
        os.close(fd)


# -- 3. a library's scoped option context, entered by a capsule and never exited -------------
#
# Class: the profiles refuse the global option setters (pandas.set_option, rcParams[...] =,
# polars.Config.set_*) but give out their context-manager forms (pd.option_context,
# matplotlib.rc_context / style.context, polars.Config(...)), whose undo runs only when the
# capsule exits them.  A capsule calls __enter__ and keeps the manager alive past the cell:
# any trusted cache that holds a capsule object does (here ``re``'s compile cache, keyed by
# a capsule ``str`` subclass instance that carries the manager as an attribute).  The
# session's options then stay the capsule's: a callable option (pandas'
# display.float_format) makes trusted code call capsule code later with raw trusted values
# (I3), and a later capsule reads back what it saw.

KEEP_ALIVE = """
import re
class Key(str):
    pass
k = Key("rt8-keepalive-NAME")
k.keep = cm
re.compile(k)  # re's compile cache keeps k, and so cm, alive after the cell
"""

PANDAS_HOOK = (
    """%%capsule --allow-import pandas
import pandas as pd
class Fmt:
    def __init__(self):
        self.seen = []
    def __call__(self, x):
        self.seen.append(x)
        return "%.1f" % x
cm = pd.option_context("display.float_format", Fmt(), "display.max_rows", 3)
cm.__enter__()
"""
    + KEEP_ALIVE
)

PANDAS_READ_BACK = """%%capsule --allow-import pandas --export loot
import pandas as pd
loot = [float(x) for x in pd.get_option("display.float_format").seen]
"""


def test_rt8_3a_pandas_option_context_hooks_trusted_display(ip):
    pd = pytest.importorskip("pandas")
    import re

    secret = 4242.0 + secrets.randbelow(10**6) / 1000
    try:
        ip.ok(PANDAS_HOOK.replace("NAME", "3a"))
        ip.ns["secret_series"] = pd.Series([secret])
        ip.ok("text = repr(secret_series)")  # trusted code shows its own data
        rows = pd.get_option("display.max_rows")
        hook = pd.get_option("display.float_format")
        ip.run(PANDAS_READ_BACK)
        loot = ip.ns.get("loot") or []
        assert rows != 3 and hook is None  # the session's options are the user's
        assert secret not in list(loot)  # no later capsule learns what trusted code showed
    finally:
        pd.reset_option("display.float_format")
        pd.reset_option("display.max_rows")
        re.purge()


MPL_RC = (
    """%%capsule --allow-import matplotlib
import matplotlib as mpl
cm = mpl.rc_context({"lines.linewidth": 77.0})
cm.__enter__()
"""
    + KEEP_ALIVE
)


def test_rt8_3b_matplotlib_rc_context_outlives_the_cell(ip):
    mpl = pytest.importorskip("matplotlib")
    import re

    before = dict(mpl.rcParams)
    try:
        ip.ok(MPL_RC.replace("NAME", "3b"))
        assert mpl.rcParams["lines.linewidth"] != 77.0
    finally:
        mpl.rcParams.update(before)
        re.purge()


POLARS_CONFIG = (
    """%%capsule --allow-import polars
import polars as pl
cm = pl.Config(tbl_rows=1)
cm.__enter__()
"""
    + KEEP_ALIVE
)


def test_rt8_3c_polars_config_outlives_the_cell(ip):
    pl = pytest.importorskip("polars")
    import re

    before = pl.Config.state(if_set=True)
    try:
        ip.ok(POLARS_CONFIG.replace("NAME", "3c"))
        assert pl.Config.state(if_set=True) == before
    finally:
        pl.Config.restore_defaults()
        re.purge()


# -- 4. trusted caches keep capsule objects alive past the cell ------------------------------
#
# Class: the standard library's string-keyed caches store the key object they are given:
# ``re``'s compile cache, ``_strptime``'s format-regex cache (``time.strptime``), and the
# like (fnmatch's lru_cache, struct's format cache for granted modules).  A capsule ``str``
# subclass instance used as a pattern stays in the cache after the cell (caches.py judged
# these safe because an equal string "learns nothing"; the object itself is the problem):
# anything it carries stays alive (finding 3's keep-alive), and its ``__del__`` runs later,
# inside whichever trusted call evicts it (re.purge, a trusted regex that fills the cache),
# on the main thread without the cell's --timeout or memory limit (I3).

FINALIZER_CELL = """%%capsule --timeout 1
import re, time
class Key(str):
    def __del__(self):
        raise LookupError("rt8-finalizer-ran-in-trusted-code")
CALL
"""


def _finalizers_in_trusted_call(ip, monkeypatch, call, clear):
    """Run the cell, then ``clear()`` as trusted code; the capsule finalizers it ran (their
    exceptions reach sys.unraisablehook).  A finalizer that runs while the cell does (its
    object freed there, under the cell's limits) is the fixed behaviour; its exception is
    collected apart, so pytest's own hook does not meet the capsule's tripwire."""
    import sys

    in_cell = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: in_cell.append(str(u.exc_value)))
    ip.ok(FINALIZER_CELL.replace("CALL", call))
    ran = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ran.append(str(u.exc_value)))
    clear()  # trusted code, later
    return [r for r in ran if "rt8-finalizer-ran" in r]


def test_rt8_4a_re_cache_runs_a_capsule_finalizer_in_trusted_code(ip, monkeypatch):
    import re

    assert not _finalizers_in_trusted_call(
        ip, monkeypatch, 'p = re.compile(Key("rt8-4a"))\ndel p', re.purge
    )


def test_rt8_4b_strptime_cache_runs_a_capsule_finalizer_in_trusted_code(ip, monkeypatch):
    import _strptime

    ran = _finalizers_in_trusted_call(
        ip, monkeypatch, 'time.strptime("2020", Key("%Y"))', _strptime._regex_cache.clear
    )
    assert not ran


# -- 5. glob patterns in native I/O: the library expands them and follows symlinks -----------
#
# Class: libraries/wrappers._check_one checks a glob pattern by its literal leading folder
# only; the library then expands the pattern natively (polars' Rust glob, pyarrow datasets
# for directories) and opens every match, following symlinks and hard links the folder
# holds to files outside the grants (the builtins' open resolves and checks each path; the
# hard-link check is skipped for patterns, ``if kind == "read" and not tail``).  A granted
# project folder holding one symlink to a secret is enough.


@pytest.fixture
def linked(tmp_path, canary):
    """A granted folder with a CSV and a symlink to a secret CSV outside every grant."""
    token, _, _ = canary
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("tok\nok\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "s.csv").write_text(f"tok\n{token}\n")
    os.symlink(outside / "s.csv", folder / "z.csv")
    return token, str(folder)


GLOB_READS = {
    "5a": "import polars as pl\nloot = str(pl.read_csv(FOLDER + '/*.csv')['tok'].to_list())",
    "5b": "import polars as pl\nloot = str(pl.scan_csv(FOLDER + '/*.csv').collect()['tok'].to_list())",
    "5c": "import polars as pl\nloot = str(pl.read_csv(FOLDER + '/[az].csv')['tok'].to_list())",
}


@pytest.mark.parametrize("case", sorted(GLOB_READS))
def test_rt8_5_polars_glob_reads_through_a_symlink(linked, case):
    pytest.importorskip("polars")
    token, folder = linked
    source = f"FOLDER = {folder!r}\n" + GLOB_READS[case]
    assert token in _plain(source)["loot"]
    capsule = Capsule(grants=[("import", "polars"), ("read", folder)], label=f"rt8-{case}")
    result = _run(capsule, source)
    assert token not in str(capsule.namespace.get("loot")) and token not in str(result)


def test_rt8_5d_hidden_and_nested_links_are_checked_too(tmp_path, canary):
    """Rust's glob matches hidden names and ``**`` descends through symlinked folders."""
    pytest.importorskip("polars")
    token, secret, _ = canary
    folder = tmp_path / "data2"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("tok\nok\n")
    outside = tmp_path / "outside2"
    outside.mkdir()
    (outside / "s.csv").write_text(f"tok\n{token}\n")
    os.symlink(outside / "s.csv", folder / ".hidden.csv")
    os.symlink(outside, folder / "sub" / "dirlink")
    capsule = Capsule(grants=[("import", "polars"), ("read", str(folder))], label="rt8-5d")
    for pattern in ("/*.csv", "/**/*.csv"):
        source = f"import polars as pl\nloot = str(pl.read_csv({str(folder) + pattern!r}))"
        result = _run(capsule, source)
        assert isinstance(result, CapabilityError), result
        assert token not in str(capsule.namespace.get("loot"))


def test_rt8_5e_a_hard_link_matched_by_a_pattern_is_refused(tmp_path, canary):
    pytest.importorskip("polars")
    token, secret, _ = canary
    folder = tmp_path / "data3"
    folder.mkdir()
    (folder / "a.csv").write_text("tok\nok\n")
    outside = tmp_path / "outside3"
    outside.mkdir()
    (outside / "s.csv").write_text(f"tok\n{token}\n")
    os.link(outside / "s.csv", folder / "z.csv")
    capsule = Capsule(grants=[("import", "polars"), ("read", str(folder))], label="rt8-5e")
    source = f"import polars as pl\nloot = str(pl.read_csv({str(folder) + '/*.csv'!r}))"
    assert isinstance(_run(capsule, source), CapabilityError)
    assert token not in str(capsule.namespace.get("loot"))


def test_rt8_5f_globs_and_folders_inside_the_grant_still_read(tmp_path):
    pl = pytest.importorskip("polars")
    folder = tmp_path / "clean"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("n\n1\n")
    (folder / "sub" / "b.csv").write_text("n\n2\n")
    os.symlink(folder / "a.csv", folder / "sub" / "inside-link.csv")  # a link inside: fine
    pl.DataFrame({"n": [3]}).write_parquet(folder / "c.parquet")
    capsule = Capsule(grants=[("import", "polars"), ("read", str(folder))], label="rt8-5f")
    source = (
        "import polars as pl\n"
        f"a = sorted(pl.read_csv({str(folder) + '/**/*.csv'!r})['n'].to_list())\n"
        f"b = pl.scan_csv({str(folder) + '/*.csv'!r}).collect()['n'].to_list()\n"
        f"c = pl.read_parquet({str(folder) + '/*.parquet'!r})['n'].to_list()\n"
        "(a, b, c)"
    )
    assert capsule.run(source) == ([1, 1, 2], [1], [3])


def test_rt8_3d_failed_cell_keeps_its_option_context_alive(ip):
    """No cache needed: the host's traceback keeps the failed cell's frames (finding 2), so
    its namespace, and the manager in it, outlive the cell."""
    pd = pytest.importorskip("pandas")
    try:
        ip.fails(
            "%%capsule --allow-import pandas\nimport pandas as pd\n"
            'cm = pd.option_context("display.max_rows", 4)\ncm.__enter__()\n1/0\n',
            ZeroDivisionError,
        )
        assert pd.get_option("display.max_rows") != 4
    finally:
        pd.reset_option("display.max_rows")
