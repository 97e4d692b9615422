"""Import-by-protocol entry points beside numpy's array interface: the DataFrame interchange
protocol (``__dataframe__``: pandas' and pyarrow's ``from_dataframe`` copy ``bufsize`` bytes
from each buffer's ``ptr``), the Arrow C data interface and DLPack.  A capsule object never
answers them (ipycap/engine/arrayguard.py); the regression tests are the red team's
(tests/redteam/test_rt6_seam.py, section 7) and the variants here."""

from __future__ import annotations

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine import arrayguard

FRAME = """
class _Buf:
    ptr = 4096
    bufsize = 8
class _Col:
    def size(self):
        return 1
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
        return {"data": (_Buf(), self.dtype), "validity": None, "offsets": None}
"""

IMPORTS = {
    "pandas": "import pandas as pd\nfrom_dataframe = pd.api.interchange.from_dataframe\n",
    "pyarrow": "import pyarrow.interchange as pai\nfrom_dataframe = pai.from_dataframe\n",
    "polars": "import polars as pl\nfrom_dataframe = pl.from_dataframe\n",
}


def _run(package, source):
    try:
        return Capsule(grants=[("import", package)]).run(IMPORTS[package] + FRAME + source)
    except CapabilityError as err:
        return err
    except (TypeError, ValueError, AttributeError) as err:  # the library's own "not a frame"
        return err


@pytest.mark.parametrize("package", sorted(IMPORTS))
@pytest.mark.parametrize(
    "maker",
    [
        # a class defining it, a __getattr__ answering it, instance dicts no class guards
        "class F:\n    def __dataframe__(self, nan_as_null=False, allow_copy=True):\n"
        "        return self\nobj = F()\n",
        "class F:\n    def __getattr__(self, name):\n        return lambda *a, **k: self\nobj = F()\n",
        "def obj():\n    pass\nobj.__dict__['__dataframe__'] = lambda *a, **k: obj\n",
    ],
)
def test_capsule_objects_never_answer_the_interchange_protocol(package, maker):
    result = _run(package, maker + "from_dataframe(obj)")
    assert isinstance(result, BaseException), result
    if isinstance(result, CapabilityError):
        assert "data protocol defined by capsule code" in str(result)


@pytest.mark.parametrize(
    "name", sorted(arrayguard.ARRAY_NAMES - {"__array_interface__", "__array_struct__"})
)
def test_data_protocol_names_cannot_be_set_or_defined(name):
    capsule = Capsule()
    for source in (
        f"class F:\n    pass\nf = F()\nf.{name} = 1",
        f"def f():\n    pass\nf.{name} = 1",
        f"class F:\n    {name} = 1\nF().{name}",
    ):
        with pytest.raises(CapabilityError):
            capsule.run(source)


def test_instance_dicts_no_class_guards_never_answer():
    """SimpleNamespace and functions (the C hook, process-wide): the names are absent."""
    import types

    assert arrayguard.install()
    for name in sorted(arrayguard.ARRAY_NAMES):
        ns = types.SimpleNamespace(**{name: 1})

        def f():
            pass

        f.__dict__[name] = 1
        for obj in (ns, f):
            with pytest.raises(AttributeError):
                getattr(obj, name)


def test_real_frames_still_interchange():
    """Trusted frames cross by protocol as before, inside a capsule too."""
    source = (
        "import pandas as pd, pyarrow as pa, pyarrow.interchange as pai\n"
        "df = pd.DataFrame({'a': [1, 2]})\n"
        "t = pai.from_dataframe(df)\n"
        "back = pd.api.interchange.from_dataframe(pa.table({'b': [3]}))\n"
        "(t.column(0).to_pylist(), back['b'].tolist())"
    )
    capsule = Capsule(grants=[("import", "pandas"), ("import", "pyarrow")])
    assert capsule.run(source) == ([1, 2], [3])


def test_capsule_subclass_of_a_c_array_type_keeps_its_own_protocols():
    """A capsule subclass of np.ndarray keeps numpy's own __dlpack__ (its own memory)."""
    source = (
        "import numpy as np\nclass A(np.ndarray):\n    pass\n"
        "a = np.arange(3).view(A)\nnp.from_dlpack(a).tolist()"
    )
    assert Capsule(grants=[("import", "numpy")]).run(source) == [0, 1, 2]
