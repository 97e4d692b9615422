"""Descriptor numbers are authority (red team 8, finding 1; ipycap/engine/fds.py).

A granted library's native code takes any object with a ``fileno()`` as a file and reads or
writes the number it returns below Python's I/O.  The number itself is checked where native
code uses it (``os.dup``/``os.dup2`` in the real os module, Pillow's codecs), the capsule's
own file gives its number only while its grants are active, and a profile's file-object
argument must be the capsule's file or an in-memory stream.  Every payload aims at a marker
file the test made and holds open (a "trusted" descriptor), never at anything real.
"""

from __future__ import annotations

import fnmatch
import io
import os
import statistics
import sys
import time

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine import fds


def _run(capsule, source):
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


@pytest.fixture
def trusted_fd(tmp_path):
    """A marker file trusted code holds open for reading and writing, with a secret in it."""
    marker = tmp_path / "trusted.log"
    marker.write_bytes(b"SECRET-TOKEN-1234")
    fd = os.open(marker, os.O_RDWR)
    yield fd, marker
    os.close(fd)


@pytest.fixture
def granted(tmp_path):
    folder = tmp_path / "granted"
    folder.mkdir()
    return folder


def _np_capsule(granted, write=True, **kw):
    import numpy

    grants = [("import", "numpy"), ("read", str(granted))]
    if write:
        grants.append(("write", str(granted)))
    capsule = Capsule(grants=grants, protected={"D": str(granted)}, **kw)
    capsule.namespace["raw_fromfile"] = numpy.fromfile  # raw: only the tests hand it over
    return capsule


# -- (a) os.dup / os.dup2: the number is checked ------------------------------------------------
TRAMPOLINE = """
import copy
import numpy as np
arr = np.frombuffer(b"PWNED-BY-CAPSULE", dtype=np.uint8)
class F:
    __copy__ = arr.tofile  # copy.copy calls it from a trusted frame
    def fileno(self):
        return NUMBER
    def flush(self):
        pass
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
copy.copy(F())
"""


def test_os_dup_is_the_checked_wrapper_and_works_for_trusted_code(trusted_fd):
    fd, _ = trusted_fd
    Capsule()  # arms the tripwire (and installs the wrapper)
    assert os.dup is fds.dup and os.dup2 is fds.dup2
    assert os.dup.__name__ == "dup" and os.dup.__module__ == "os"
    copy = os.dup(fd)
    try:
        assert os.read(copy, 6) == b"SECRET"
        other = os.open(os.devnull, os.O_RDONLY)
        os.dup2(copy, other)
        os.close(other)
    finally:
        os.close(copy)


def test_os_dup_costs_trusted_code_little(trusted_fd):
    """Trusted os.dup: a flag test and a walk of the stack more than the real one."""
    fd, _ = trusted_fd
    Capsule()

    def per_call(fn, n=2000):
        samples = []
        for _ in range(15):
            start = time.perf_counter_ns()
            for _ in range(n):
                os.close(fn(fd))
            samples.append((time.perf_counter_ns() - start) / n)
        return statistics.median(samples)

    real, wrapped = per_call(fds._real_dup), per_call(os.dup)
    depth, f = 0, sys._getframe()
    while f is not None:
        depth, f = depth + 1, f.f_back
    print(
        f"\nos.dup+close at stack depth {depth}: real {real:.0f} ns, checked {wrapped:.0f} ns "
        f"(+{wrapped - real:.0f}, {(wrapped - real) / depth:.0f} per frame)"
    )
    # the tripwire's walk (one audited sys._getframe, two lookups per frame); a loose bound
    # for shared cores: a per-call cost far above it would be a bug
    assert wrapped - real < 10_000 + 2_000 * depth


def test_tofile_through_a_trampoline_to_a_trusted_descriptor_is_refused(trusted_fd, granted):
    fd, marker = trusted_fd
    result = _run(_np_capsule(granted), TRAMPOLINE.replace("NUMBER", str(fd)))
    assert isinstance(result, CapabilityError)
    assert "descriptor" in str(result)
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"


def test_tofile_to_a_closed_capsule_files_reused_number_is_refused(trusted_fd, granted):
    """The capsule's file was closed and trusted code's file got its number."""
    _, marker = trusted_fd
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/own.bin', 'wb')\nn = f.fileno()\nf.close()")
    number = capsule.namespace["n"]
    reused = os.open(marker, os.O_RDWR)
    try:
        assert reused == number  # the lowest free number: the one the capsule's file had
        result = _run(capsule, TRAMPOLINE.replace("NUMBER", "n"))
        assert isinstance(result, CapabilityError)
        assert marker.read_bytes() == b"SECRET-TOKEN-1234"
    finally:
        os.close(reused)


def test_tofile_to_another_capsules_file_is_refused(granted):
    a = _np_capsule(granted, label="a")
    a.run("f = open(D + '/a.bin', 'wb')")
    b = Capsule(grants=[("import", "numpy")], label="b")
    b.namespace["f"] = a.namespace["f"]
    result = _run(b, TRAMPOLINE.replace("NUMBER", "f.fileno()"))
    assert isinstance(result, CapabilityError)
    assert "another capsule" in str(result)
    a.run("f.close()")
    assert (granted / "a.bin").read_bytes() == b""


def test_tofile_to_a_read_only_own_file_is_refused(granted):
    (granted / "r.bin").write_bytes(b"original")
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/r.bin', 'rb')")
    try:  # the read-only descriptor is the file's own: numpy's fdopen(.., "wb") fails on it
        capsule.run(TRAMPOLINE.replace("NUMBER", "f.fileno()"))
    except (CapabilityError, OSError):
        pass
    assert (granted / "r.bin").read_bytes() == b"original"


def test_tofile_to_own_writable_file_works(granted):
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/w.bin', 'wb')")
    capsule.run(TRAMPOLINE.replace("NUMBER", "f.fileno()"))
    capsule.run("f.close()")
    assert (granted / "w.bin").read_bytes() == b"PWNED-BY-CAPSULE"


def test_dup2_onto_a_trusted_descriptor_is_refused(trusted_fd, granted):
    fd, marker = trusted_fd
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/x.bin', 'wb')")
    own = capsule.namespace["f"].fileno()
    # a trusted trampoline calling os.dup2 for capsule code (as numpy calls os.dup)
    capsule.namespace["dup2"] = os.dup2  # raw: only this test hands it over
    result = _run(capsule, f"dup2({own}, {fd})")
    assert isinstance(result, CapabilityError)
    assert os.read(fd, 6) == b"SECRET"
    capsule.run("f.close()")


def test_numpy_own_opens_of_granted_paths_still_work(granted):
    """numpy opens a path itself (checked by the tripwire) and dups that descriptor: admitted
    by what it names, a regular file within the grants."""
    (granted / "p.bin").write_bytes(bytes([0, 1, 2]))
    capsule = _np_capsule(granted)
    capsule.run(
        "import numpy as np\nnp.save(D + '/p.npy', np.arange(4))\nr1 = np.load(D + '/p.npy')"
        ".tolist()\nr2 = np.fromfile(D + '/p.bin', dtype=np.uint8).tolist()"
    )
    assert capsule.namespace["r1"] == [0, 1, 2, 3] and capsule.namespace["r2"] == [0, 1, 2]


def test_trusted_descriptors_by_what_they_name(tmp_path, granted):
    """A number that is no capsule file: a pipe is refused; a regular file outside the grants
    is refused; one inside them (the capsule could open it itself) is admitted."""
    inside = granted / "in.bin"
    inside.write_bytes(b"inside!!")  # one float64 (the default dtype)
    outside = tmp_path / "out.bin"
    outside.write_bytes(b"outside")
    r, w = os.pipe()
    fds_in, fds_out = os.open(inside, os.O_RDONLY), os.open(outside, os.O_RDONLY)
    try:
        read = FD_READ_TRAMPOLINE
        for number in (r, fds_out):
            capsule = _np_capsule(granted, write=False)
            result = _run(capsule, read.replace("NUMBER", str(number)))
            assert isinstance(result, CapabilityError), number
            assert capsule.namespace.get("loot") is None
        capsule = _np_capsule(granted, write=False)
        capsule.run(read.replace("NUMBER", str(fds_in)))
        assert len(capsule.namespace["loot"]) == 1
    finally:
        for n in (r, w, fds_in, fds_out):
            os.close(n)


FD_READ_TRAMPOLINE = """
import copy
class F:
    __copy__ = raw_fromfile  # numpy's own function (handed over by the test: past the profile)
    def fileno(self):
        return NUMBER
    def flush(self):
        pass
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
loot = copy.copy(F()).tolist()
"""


# -- (c) RevocableFile.fileno checks its grants --------------------------------------------------
def test_revoked_files_fileno_is_refused(granted):
    (granted / "s.txt").write_text("secret")
    capsule = _np_capsule(granted, write=False)
    capsule.run("f = open(D + '/s.txt', 'rb')\nn = f.fileno()")
    assert type(capsule.namespace["n"]) is int
    for cap in capsule.context.grants:
        if cap.kind == "read":
            cap.revoke()
    assert isinstance(_run(capsule, "f.fileno()"), CapabilityError)


def test_revoked_files_number_is_refused_by_the_descriptor_check(granted):
    """Taken before the revoke, used after: refused by the number."""
    (granted / "s.txt").write_text("secret-after-revoke")
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/s.txt', 'rb')\nn = f.fileno()")
    for cap in capsule.context.grants:
        if cap.kind == "read":
            cap.revoke()
    result = _run(capsule, FD_READ_TRAMPOLINE.replace("NUMBER", "n"))
    assert isinstance(result, CapabilityError), result
    assert "revoked" in str(result)
    assert capsule.namespace.get("loot") is None


# -- (d) np.fromfile of the capsule's own file ---------------------------------------------------
def test_fromfile_of_own_file_works(granted):
    (granted / "d.bin").write_bytes(bytes(range(6)))
    capsule = _np_capsule(granted, write=False)
    capsule.run(
        "import numpy as np\nf = open(D + '/d.bin', 'rb')\nr = np.fromfile(f, dtype=np.uint8)"
        ".tolist()\nf.close()"
    )
    assert capsule.namespace["r"] == [0, 1, 2, 3, 4, 5]


def test_fromfile_of_own_text_file_and_a_stdviews_path_work(granted):
    (granted / "t.txt").write_text("1 2 3")
    capsule = _np_capsule(granted, write=False)
    capsule.run(
        "import numpy as np\nfrom pathlib import Path\n"
        "a = np.fromfile(Path(D) / 't.txt', sep=' ').tolist()\n"
        "with open(D + '/t.txt') as f:\n    b = np.fromfile(f, sep=' ').tolist()"
    )
    assert capsule.namespace["a"] == capsule.namespace["b"] == [1.0, 2.0, 3.0]


# -- (b) a profile's file-object argument -------------------------------------------------------
FILE_LIKES = {
    "method": "class F:\n    def fileno(self):\n        return NUMBER\n    def read(self, n=-1):\n"
    "        return b''\nobj = F()",
    "instance attribute": "class F:\n    def read(self, n=-1):\n        return b''\n"
    "obj = F()\nobj.fileno = lambda: NUMBER",
    "__getattr__": "class F:\n    def __getattr__(self, name):\n        return lambda *a: NUMBER\n"
    "obj = F()",
    "BytesIO subclass": "import io\nclass F(io.BytesIO):\n    def fileno(self):\n"
    "        return NUMBER\nobj = F()",
    "TextIOWrapper over one": "import io\nclass R(io.BytesIO):\n    def fileno(self):\n"
    "        return NUMBER\nobj = io.TextIOWrapper(R())",
    "the number itself": "obj = NUMBER",
}


@pytest.mark.parametrize("shape", sorted(FILE_LIKES))
@pytest.mark.parametrize(
    "call",
    [
        "np.fromfile(obj, dtype=np.uint8)",
        "np.load(obj)",
        "np.save(obj, np.arange(3))",
        "np.loadtxt(obj)",
    ],
)
def test_file_object_with_a_foreign_fileno_is_refused_by_the_profile(
    trusted_fd, granted, shape, call
):
    fd, marker = trusted_fd
    source = FILE_LIKES[shape].replace("NUMBER", str(fd)) + "\nimport numpy as np\n" + call
    result = _run(_np_capsule(granted), source)
    assert isinstance(result, CapabilityError), result
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"


def test_in_memory_and_own_files_still_work_with_numpy(granted):
    capsule = _np_capsule(granted)
    capsule.run(
        "import io\nimport numpy as np\nb = io.BytesIO()\nnp.save(b, np.arange(4))\nb.seek(0)\n"
        "r1 = np.load(b).tolist()\n"
        "with open(D + '/a.npy', 'wb') as f:\n    np.save(f, np.arange(3))\n"
        "with open(D + '/a.npy', 'rb') as f:\n    r2 = np.load(f).tolist()\n"
        "r3 = np.loadtxt(io.StringIO('1 2\\n3 4')).tolist()\n"
        "class Reader:\n    def __init__(self, text):\n        self.lines = text.splitlines()\n"
        "    def __iter__(self):\n        return iter(self.lines)\n"
        "r4 = np.loadtxt(Reader('5 6')).tolist()"
    )
    ns = capsule.namespace
    assert ns["r1"] == [0, 1, 2, 3] and ns["r2"] == [0, 1, 2]
    assert ns["r3"] == [[1.0, 2.0], [3.0, 4.0]] and ns["r4"] == [5.0, 6.0]


def test_save_to_a_read_only_own_file_is_refused_without_closing_it(granted):
    (granted / "r.npy").write_bytes(b"x")
    capsule = _np_capsule(granted)
    capsule.run("f = open(D + '/r.npy', 'rb')")
    result = _run(capsule, "import numpy as np\nnp.save(f, np.arange(3))")
    assert isinstance(result, CapabilityError) and "not opened for writing" in str(result)
    assert capsule.run("f.read()") == b"x"


def test_pandas_readers_take_in_memory_and_own_files(granted):
    pytest.importorskip("pandas")
    (granted / "t.csv").write_text("a,b\n1,2\n")
    capsule = Capsule(
        grants=[("import", "pandas"), ("read", str(granted))], protected={"D": str(granted)}
    )
    capsule.run(
        "import io\nimport pandas as pd\nr1 = int(pd.read_csv(io.StringIO('a\\n7')).a[0])\n"
        "with open(D + '/t.csv') as f:\n    r2 = int(pd.read_csv(f).b[0])"
    )
    assert capsule.namespace["r1"] == 7 and capsule.namespace["r2"] == 2


def test_pandas_reader_given_a_foreign_fileno_is_refused(trusted_fd, granted):
    pytest.importorskip("pandas")
    fd, _ = trusted_fd
    capsule = Capsule(grants=[("import", "pandas"), ("read", str(granted))])
    source = FILE_LIKES["method"].replace("NUMBER", str(fd)) + "\nimport pandas as pd\n"
    assert isinstance(_run(capsule, source + "pd.read_csv(obj)"), CapabilityError)


# -- Pillow and matplotlib -----------------------------------------------------------------------
PIL_F = """
class F:
    def fileno(self):
        return NUMBER
    def flush(self):
        pass
    def write(self, data):
        return len(data)
    def tell(self):
        return 0
    def seek(self, *args):
        return 0
"""


@pytest.fixture
def pil_image():
    image = pytest.importorskip("PIL.Image")
    image.init()
    return image


@pytest.mark.parametrize(
    "call",
    [
        "Image.new('RGB', (4, 4), (78, 87, 80)).save(F(), format='BMP')",
        "Image.new('RGB', (4, 4), (78, 87, 80)).save(fp=F(), format='PNG')",
        # the save registry reached directly: past Image.save, to ImageFile._save
        "im = Image.new('RGB', (4, 4), (78, 87, 80))\nim.encoderinfo = {}\n"
        "Image.SAVE['BMP'](im, F(), 'x.bmp')",
        "im = Image.new('RGB', (4, 4), (78, 87, 80))\nim.encoderinfo = {}\n"
        "im.encoderconfig = ()\nImage.SAVE['TIFF'](im, F(), 'x.tif')",
    ],
)
def test_pil_writes_to_a_foreign_descriptor_are_refused(pil_image, trusted_fd, granted, call):
    fd, marker = trusted_fd
    capsule = Capsule(grants=[("import", "PIL"), ("read", str(granted))])
    source = "from PIL import Image\n" + PIL_F.replace("NUMBER", str(fd)) + call
    result = _run(capsule, source)
    assert isinstance(result, CapabilityError), result
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"


def test_pil_codec_given_a_foreign_descriptor_is_refused(pil_image, trusted_fd, granted):
    """The libtiff/jpeg2k codecs get the number in their arguments (checked by the number)."""
    fd, _ = trusted_fd
    capsule = Capsule(grants=[("import", "PIL"), ("read", str(granted))])
    capsule.namespace["getdecoder"] = pil_image._getdecoder  # what a plugin calls, for the test
    result = _run(capsule, f"getdecoder('RGB', 'libtiff', ('RGB', {fd}, 8))")
    assert isinstance(result, CapabilityError) and "descriptor" in str(result)


def test_pil_save_and_open_of_own_files_and_bytesio_work(pil_image, granted):
    capsule = Capsule(
        grants=[("import", "PIL"), ("read", str(granted)), ("write", str(granted))],
        protected={"D": str(granted)},
    )
    capsule.run(
        "import io\nfrom PIL import Image\n"
        "for fmt in ('BMP', 'PNG', 'TIFF'):\n"
        "    with open(D + '/i.' + fmt.lower(), 'wb') as f:\n"
        "        Image.new('RGB', (4, 4), (1, 2, 3)).save(f, format=fmt)\n"
        "with open(D + '/z.tiff', 'wb') as f:\n"
        "    Image.new('RGB', (4, 4), (1, 2, 3)).save(f, format='TIFF', compression='tiff_lzw')\n"
        "with open(D + '/z.tiff', 'rb') as f:\n    p4 = Image.open(f).getpixel((0, 0))\n"
        "with open(D + '/i.bmp', 'rb') as f:\n    p1 = Image.open(f).getpixel((0, 0))\n"
        "b = io.BytesIO()\nImage.new('RGB', (2, 2), (4, 5, 6)).save(b, 'PNG')\nb.seek(0)\n"
        "p2 = Image.open(b).getpixel((1, 1))\np3 = Image.open(D + '/i.tiff').getpixel((0, 0))"
    )
    assert capsule.namespace["p1"] == capsule.namespace["p3"] == (1, 2, 3)
    assert capsule.namespace["p4"] == (1, 2, 3)
    assert capsule.namespace["p2"] == (4, 5, 6)


@pytest.mark.parametrize("fmt", ["jpg", "png", "tiff"])
def test_savefig_to_a_foreign_descriptor_is_refused_and_to_own_files_works(
    trusted_fd, granted, fmt
):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    pytest.importorskip("PIL.Image").init()
    fd, marker = trusted_fd
    capsule = Capsule(
        grants=[("import", "matplotlib"), ("read", str(granted)), ("write", str(granted))],
        protected={"D": str(granted)},
    )
    source = "import matplotlib.pyplot as plt\n" + PIL_F.replace("NUMBER", str(fd))
    result = _run(capsule, source + f"plt.figure(figsize=(1, 1)).savefig(F(), format={fmt!r})")
    assert isinstance(result, CapabilityError), result
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"
    capsule.run(
        f"import io\nfig = plt.figure(figsize=(1, 1))\nwith open(D + '/f.{fmt}', 'wb') as f:\n"
        f"    fig.savefig(f, format={fmt!r})\nb = io.BytesIO()\nfig.savefig(b, format={fmt!r})\n"
        "n = len(b.getvalue())"
    )
    assert (granted / f"f.{fmt}").stat().st_size > 0 and capsule.namespace["n"] > 0


# -- (e) the scan: every file-taking callable is checked or classified --------------------------
FILE_NAMES = frozenset("file fname fp f buf path_or_buf fh target source".split())

#: pattern (fnmatch over the scan's key) -> why it needs no file-object check.
CLASSIFIED = {
    # the parameter is no file
    "numpy.gradient": "f is the array",
    "numpy.interp": "fp are the y values",
    "numpy.moveaxis": "source are axes",
    "numpy.ma.core.alltrue": "target is an array",
    "numpy.ma.core.sometrue": "target is an array",
    "numpy.lib.format.isfileobj": "a type test (isinstance of io's own classes)",
    "pandas.compat.*": "fname is a function's name",
    "pandas.core.apply:*": "target is a frame",
    "pandas.core.computation.*": "source is expression text; target a frame",
    "pandas.core.dtypes.common.is_dtype_equal": "dtypes",
    "pandas.core.groupby.*": "f is a function",
    "pandas.core.indexers.*": "target is an indexer",
    "pandas.core.indexes.*": "target is an index",
    "pandas.core.indexing.*": "target is a key",
    "pandas.core.internals.*": "f is a function",
    "pandas.core.sorting.*": "target is an index",
    "pandas.core.tools.datetimes.format_is_iso": "f is a format string",
    "pandas.core.window.*": "f is a function",
    "pandas.tseries.*": "source/target are frequencies",
    "matplotlib.artist:ArtistInspector.aliased_name_rest": "target is a name",
    "matplotlib.transforms:Affine2D.from_values": "f is a number",
    "matplotlib.font_manager:*": "fname is a font path: ft2font opens it through Python "
    "(the tripwire checks the path)",
    "matplotlib.text:Text.set_font*": "fp is a FontProperties",
    "PIL.Image:Image.alpha_composite": "source is a position",
    "PIL.Image.is_path": "a type test",
    "PIL.SpiderImagePlugin.isInt": "a type test",
    # Python-level I/O: the library calls the object's read/write methods, never fileno
    "numpy.fromregex": "reads through file.read (a path: Python's open, checked)",
    "numpy.ma.core.fromfile": "raises NotImplementedError",
    "numpy.lib.format.*": "fp.read/fp.write, or for io's own file classes ndarray.tofile / "
    "fromfile, whose os.dup is checked by the number (fds)",
    "numpy:*.dump": "pickle.dump into file.write (a path: Python's open, checked)",
    "pandas.core.frame:*": "text written through buf.write",
    "pandas.core.series:*": "text written through buf.write",
    "pandas.core.generic:*": "to_csv/to_json/to_latex write through .write; to_hdf is "
    "PyTables (a path, opened by C: pandas' profile refuses tables)",
    "pandas.io.*": "pandas' handles: Python-level reads and writes (get_handle opens paths "
    "with Python's open, checked by the tripwire)",
    "matplotlib.artist.setp": "print(file=...)",
    "matplotlib.cbook.*": "Python's open, checked by the tripwire",
    "matplotlib.image.im*": "Pillow (Image.open/save: descriptors checked in its codecs)",
    "matplotlib.pyplot.im*": "Pillow (Image.open/save: descriptors checked in its codecs)",
    "matplotlib.pyplot.savefig": "Figure.savefig (checked: writes_file_object)",
    "matplotlib*rc_context": "rc_params_from_file: Python's open, checked",
    "matplotlib.rc_params_from_file": "Python's open, checked",
    "PIL.*ImagePlugin*": "the plugins read and write through fp.read/fp.write; the "
    "descriptors their codecs get are checked by the number (pil.install_descriptor_checks)",
    "PIL.GimpGradientFile:*": "fp.readline",
    "PIL.GimpPaletteFile:*": "fp.readline",
    "PIL.PaletteFile:*": "fp.readline",
    "PIL.ImagePalette:ImagePalette.save": "fp.write (a path: Python's open, checked)",
    "PIL.Image:Exif.load_from_fp": "fp.read",
    "PIL.ImageFile:*": "fp.read; the encoder's descriptor is checked in _encode_tile",
    "PIL.PdfParser:*": "f.read/f.write; mmap of a descriptor raises an audit event the "
    "tripwire refuses",
    "sklearn.datasets.*svmlight_file": "Cython over f's Python-level lines and write "
    "(a path: Python's open, checked)",
    # imported only by some earlier test: found in the whole suite, not in this file alone
    "sklearn.utils.graph.single_source_shortest_path_length": "source is a graph node",
    "pyarrow.compute:FunctionOptions.deserialize": "buf is serialized options (data)",
    "pyarrow.ipc.deserialize_pandas": "buf is an IPC buffer (data)",
    "pyarrow.lib.*compress": "buf is data",
    "pyarrow.lib:Codec.*compress": "buf is data",
    "pyarrow.substrait.*": "buf is a serialized plan (data)",
    "tqdm.*": "file is the stream the bar is written to (Python-level write)",
    "numpy.distutils.*": "build tooling (Python's open)",
    "PIL.*FontFile*": "font files read through fp.read/readline",
    "PIL.ContainerIO:*": "reads through file.read (as an argument it has a fileno, so "
    "check_file_object refuses it: pass the file itself)",
    "PIL.TarIO:*": "opens the tar file with Python's open (checked by the tripwire)",
    "PIL.GdImageFile.open": "an ImageFile: fp.read; its codecs' descriptors are checked",
    "PIL.ImageDraw2:*": "ImageFont.truetype (a file object: read through .read)",
    "PIL.PSDraw:*": "fp.write",
}

SCANNED = ("numpy", "PIL", "matplotlib", "pandas", "sklearn", "polars", "pyarrow", "tqdm")


@pytest.fixture(scope="module")
def imported():
    for name in (
        "numpy",
        "PIL.Image",
        "matplotlib.pyplot",
        "pandas",
        "sklearn.datasets",
        "polars",
        "pyarrow",
        "pyarrow.csv",
        "pyarrow.dataset",
        "pyarrow.feather",
        "pyarrow.ipc",
        "pyarrow.json",
        "pyarrow.orc",
        "pyarrow.parquet",
        "tqdm",
    ):
        pytest.importorskip(name)
    sys.modules["PIL.Image"].init()
    from ipycap.engine.libraries import wrappers

    wrappers.install()


@pytest.mark.parametrize("package", SCANNED)
def test_every_file_parameter_is_checked_or_classified(imported, package):
    from ipycap.engine.libraries import PROFILES
    from tests import test_library_native_io as scan

    profile = PROFILES[package]
    keys, objects, refused_modules, refused_classes = scan._covered(profile)
    checked = {k for k, f in profile.replaced.items() if f.endswith("_file_object")}
    unclassified = []
    old = scan.PATH_NAMES
    scan.PATH_NAMES = FILE_NAMES
    try:
        hits = list(scan._hits(package))
    finally:
        scan.PATH_NAMES = old
    for key, fn, owner, params in hits:
        where = getattr(owner if owner is not None else fn, "__module__", "") + "."
        if (
            key in keys
            or key in checked
            or id(fn) in objects
            # a class the profile checks as a callable (pq.ParquetFile(source)): its view
            # is the checked function, which checks the file object
            or (owner is not None and key.endswith(".__init__") and id(owner) in objects)
            or (owner is not None and id(owner) in refused_classes)
            or (owner is not None and key.rpartition(".")[2] in profile.object_attrs)
            or where.startswith(refused_modules)
            or any(fnmatch.fnmatchcase(key, p) for p in CLASSIFIED)
        ):
            continue
        unclassified.append(f"{key} {params}")
    assert not unclassified, (
        f"{package} callables taking a file that no profile checks and this test does not "
        f"classify (a fileno() would reach native code unchecked?): {sorted(unclassified)}"
    )


def test_checked_methods_are_wrapped_in_place(imported):
    pil_image = sys.modules["PIL.Image"]
    figure = sys.modules["matplotlib.figure"]
    for fn in (pil_image.Image.save, figure.Figure.savefig):
        assert fn.__code__.co_filename.endswith("wrappers.py"), fn
    pil_file = sys.modules["PIL.ImageFile"]
    for fn in (pil_image._getdecoder, pil_image._getencoder, pil_file._encode_tile):
        assert fn.__code__.co_filename.endswith("pil.py"), fn


def test_file_object_check_runs_no_capsule_code():
    """What decides "may answer fileno" reads class dicts only."""
    from ipycap.engine.libraries.wrappers import _may_answer_fileno

    ran = []

    class Sneaky:
        def __getattribute__(self, name):
            ran.append(name)
            return object.__getattribute__(self, name)

    class Plain:
        def read(self):
            return b""

    assert _may_answer_fileno(Sneaky()) and not ran
    assert not _may_answer_fileno(Plain()) and _may_answer_fileno(io.BytesIO())
    p = Plain()
    p.fileno = lambda: 3
    assert _may_answer_fileno(p)

    class Key(str):
        __hash__ = str.__hash__

        def __eq__(self, other):
            ran.append("eq")
            return str.__eq__(self, other)

    q = Plain()
    q.__dict__[Key("fileno")] = lambda: 3
    assert _may_answer_fileno(q) and not ran


# -- polars: Rust dups the number of an exact io.TextIOWrapper (no os.dup, no audit event) -----
RAW_F = """
import io
class F(io.RawIOBase):
    def fileno(self):
        return NUMBER
    def readable(self):
        return True
    def writable(self):
        return True
    def seekable(self):
        return True
    def seek(self, pos, whence=0):
        return 0
    def tell(self):
        return 0
    def write(self, b):
        return len(b)
    def readinto(self, b):
        return 0
wrapped = io.TextIOWrapper(F(), encoding="utf-8")
"""


@pytest.mark.parametrize(
    "call",
    [
        "pl.DataFrame({'x': ['PWNED']}).write_csv(wrapped)",
        "pl.DataFrame({'x': ['PWNED']}).write_parquet(wrapped)",
        "pl.DataFrame({'x': ['PWNED']}).write_ndjson(wrapped)",
        "loot = pl.read_csv(wrapped).to_dicts()",
    ],
)
def test_polars_given_a_text_wrapper_over_a_foreign_descriptor_is_refused(
    trusted_fd, granted, call
):
    """Found on the way (not in rt8's tests): polars' Rust takes the fileno() of an exact
    io.TextIOWrapper (utf-8) and dups it with fcntl, below os.dup; write_csv/write_parquet
    wrote a trusted descriptor on main.  Refused by the profile's file-object check."""
    pytest.importorskip("polars")
    fd, marker = trusted_fd
    capsule = Capsule(grants=[("import", "polars"), ("read", str(granted))])
    result = _run(capsule, RAW_F.replace("NUMBER", str(fd)) + "import polars as pl\n" + call)
    assert isinstance(result, CapabilityError), result
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"
    assert "SECRET" not in str(capsule.namespace.get("loot"))


def test_polars_in_memory_and_own_files_still_work(granted):
    pytest.importorskip("polars")
    capsule = Capsule(
        grants=[("import", "polars"), ("read", str(granted)), ("write", str(granted))],
        protected={"D": str(granted)},
    )
    capsule.run(
        "import io\nimport polars as pl\ndf = pl.DataFrame({'x': [1, 2]})\nb = io.BytesIO()\n"
        "df.write_parquet(b)\nb.seek(0)\nr1 = pl.read_parquet(b)['x'].to_list()\n"
        "with open(D + '/p.csv', 'w') as f:\n    df.write_csv(f)\n"
        "with open(D + '/p.csv', 'rb') as f:\n    r2 = pl.read_csv(f)['x'].to_list()"
    )
    assert capsule.namespace["r1"] == capsule.namespace["r2"] == [1, 2]


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_print_figure_past_savefig_is_refused_by_pillows_codec_check(trusted_fd, granted, fmt):
    """The canvas called directly (past Figure.savefig's profile check): Pillow's encoder
    meets the number in _encode_tile."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    pytest.importorskip("PIL.Image").init()
    fd, marker = trusted_fd
    capsule = Capsule(grants=[("import", "matplotlib"), ("read", str(granted))])
    source = "import matplotlib.pyplot as plt\n" + PIL_F.replace("NUMBER", str(fd))
    call = f"plt.figure(figsize=(1, 1)).canvas.print_figure(F(), format={fmt!r})"
    result = _run(capsule, source + call)
    assert isinstance(result, CapabilityError), result
    assert "descriptor" in str(result)
    assert marker.read_bytes() == b"SECRET-TOKEN-1234"


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_pil_lazy_load_of_a_revoked_file_is_refused(pil_image, tmp_path, compression):
    """Image.open reads the header; the pixels are read at load(), after the revoke: through
    fileno (libtiff's descriptor) or read, both checked."""
    secret = tmp_path / "secret"
    secret.mkdir()
    kwargs = {"compression": compression} if compression else {}
    pil_image.new("RGB", (64, 64), (11, 22, 33)).save(secret / "s.tiff", **kwargs)
    capsule = Capsule(
        grants=[("import", "PIL"), ("read", str(secret))], protected={"D": str(secret)}
    )
    capsule.run("from PIL import Image\nf = open(D + '/s.tiff', 'rb')\nim = Image.open(f)")
    for cap in capsule.context.grants:
        if cap.kind == "read":
            cap.revoke()
    result = _run(capsule, "px = im.getpixel((0, 0))")
    assert isinstance(result, (CapabilityError, OSError)), result
    assert capsule.namespace.get("px") != (11, 22, 33)


def test_a_descriptor_given_as_an_index_object_is_refused(trusted_fd, granted):
    """os.dup takes any __index__; the check cannot read one without running it."""
    fd, _ = trusted_fd
    capsule = _np_capsule(granted)
    capsule.namespace["dup"] = os.dup  # raw: only this test hands it over
    source = f"class N:\n    def __index__(self):\n        return {fd}\nn = dup(N())"
    result = _run(capsule, source)
    assert isinstance(result, CapabilityError), result
    assert capsule.namespace.get("n") is None
