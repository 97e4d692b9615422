"""Session 11's own findings, while fixing the rc blocks of red team 10.

Option values kept by a library's process-wide table
  A capsule's function given as an option value (``pd.option_context(
  'styler.format.formatter', f)``) was kept by pandas and called by the Styler, trusted code,
  with the raw cells of a protected frame: the capsule held the raw object (I2) and read its
  private state.  The same held for a partial of one, a dict of them, and ipycap's own
  guarded ``operator.attrgetter`` (it decides for the capsule, and read a raw object's
  private name when trusted code called it).  Option values that hold capsule code now leave
  as the membrane exports them: reverse proxies that wrap what trusted code hands them.

Red team 11 (a fresh pass on granted libraries)
  D3  library functions returning a module (polars' ``import_optional('sys')``, sklearn's
      ``get_namespace``) handed over the raw module: from raw ``sys`` the user's
      ``__main__`` and ipycap's own tripwire state.  A view function's result that is or
      holds a module is the capsule's view of it now (``_viewcalls.c``).
  D4  pandas' expression ``Scope(level)`` copied the globals and locals of the host's and
      ipycap's frames past the capsule's.  The tripwire refuses ``sys._getframe`` answers
      older than every capsule frame when a capsule frame lies between; pandas' scope
      classes are refused to capsule code.
  D5  functions returning one of their module's own tables (sklearn's
      ``distance_metrics()``) handed it over writable: it comes back read-only.
"""

from __future__ import annotations

import pytest

from ipycap import CapabilityError, Capsule

pd = pytest.importorskip("pandas")


class Vault:
    def __init__(self, token):
        self._token = token

    def __repr__(self):
        return "Vault()"


def _frame():
    return pd.DataFrame({"a": [Vault("TOKEN-11")], "b": [1.5]})


def _run(source, **protected):
    capsule = Capsule(protected=protected, grants=[("import", "pandas")])
    try:
        return capsule.run("import pandas as pd\n" + source), capsule
    except CapabilityError as err:
        return err, capsule
    except TypeError as err:  # pandas cannot deep-copy a reverse proxy: refused that way
        return err, capsule


_FORMATTERS = {
    "function": "f = lambda x: got.append(x) or 'x'",
    "partial": "import functools\nf = functools.partial(lambda x: got.append(x) or 'x')",
    "bound method": "class K:\n    def m(self, x):\n        got.append(x)\n        return 'x'\nf = K().m",
    "per-column dict": "g = lambda x: got.append(x) or 'x'\nf = {'a': g}",
    "capsule callable object": "class F:\n    def __call__(self, x):\n        got.append(x)\n"
    "        return 'x'\nf = F()",
}


@pytest.mark.parametrize("kind", sorted(_FORMATTERS))
def test_a_capsule_formatter_kept_by_pandas_never_gets_raw_cells(kind):
    source = (
        f"got = []\n{_FORMATTERS[kind]}\n"
        "with pd.option_context('styler.format.formatter', f):\n"
        "    try:\n        df.style.to_html()\n    except Exception:\n        pass\n"
        "[x._token for x in got if type(x).__name__ == 'Vault']"
    )
    result, capsule = _run(source, df=_frame())
    leaked = [x for x in capsule.namespace.get("got", []) if type(x) is Vault]
    assert not leaked, f"{kind}: the capsule got the raw cell"
    assert "TOKEN-11" not in repr(result)


def test_ipycaps_attrgetter_given_to_pandas_reads_no_private_state():
    source = (
        "import operator\n"
        "with pd.option_context('styler.format.formatter', {'a': operator.attrgetter('_token')}):\n"
        "    h = df.style.to_html()\n"
        "h"
    )
    result, _ = _run(source, df=_frame())
    assert "TOKEN-11" not in str(result)


def test_plain_option_values_still_work():
    source = (
        "frame = pd.DataFrame({'x': [1.5]})\n"
        "with pd.option_context('display.float_format', '{:.2f}'.format):\n"
        "    a = repr(frame)\n"
        "with pd.option_context('display.float_format', lambda v: '%.3f' % v):\n"
        "    b = repr(frame)\n"
        "with pd.option_context('display.max_rows', 3):\n"
        "    c = pd.get_option('display.max_rows')\n"
        "(a.split()[-1], b.split()[-1], c)"
    )
    result, _ = _run(source)
    assert result == ("1.50", "1.500", 3)


# -- D3: call results that are modules ---------------------------------------------------------
_MODULE_RESULTS = {
    "polars import_optional": (
        "polars",
        "import polars.dataframe.frame as f\nm = f.import_optional('sys')\nm.modules",
    ),
    "sklearn array_namespace": (
        "sklearn",
        "import numpy as np\nimport sklearn.externals.array_api_compat as aac\n"
        "aac.array_namespace(np.arange(2))._aliases._helpers.sys",
    ),
    "sklearn get_namespace tuple": (
        "sklearn",
        "import numpy as np\nimport sklearn.utils.validation as v\n"
        "xp, _ = v.get_namespace(np.arange(2))\nxp._aliases",
    ),
}


@pytest.mark.parametrize("case", sorted(_MODULE_RESULTS))
def test_a_library_call_never_returns_a_raw_module(case):
    pytest.importorskip(_MODULE_RESULTS[case][0])
    package, source = _MODULE_RESULTS[case]
    capsule = Capsule(grants=[("import", package), ("import", "numpy")])
    with pytest.raises(CapabilityError):
        capsule.run(source)


def test_a_module_a_library_call_returns_is_the_capsules_view():
    pytest.importorskip("polars")
    capsule = Capsule(grants=[("import", "polars")])
    result = capsule.run(
        "import polars.dataframe.frame as f\nm = f.import_optional('json')\n(repr(m), m.dumps([1]))"
    )
    assert result == ("<module 'json' (capsule view)>", "[1]")


# -- D4: frames past the capsule -----------------------------------------------------------------
def _climb(n):
    import sys

    return sys._getframe(n).f_globals.get("__name__")


def test_trusted_code_a_capsule_calls_gets_no_frame_past_the_capsule():
    capsule = Capsule(protected={"climb": _climb})
    assert capsule.run("climb(1)") == "__capsule__"  # the capsule's own frame: answered
    for n in (2, 3, 6):
        with pytest.raises(PermissionError, match="sys._getframe past the capsule"):
            capsule.run(f"climb({n})")
    refused = [e for e in capsule.context.registry.refusals() if "sys._getframe" in e["what"]]
    assert len(refused) == 3  # each one in the capsule's registry, as the tripwire's are
    assert _climb(1) == __name__  # trusted code outside a capsule is unchanged


def test_pandas_scopes_are_refused_and_eval_still_sees_the_capsules_names():
    capsule = Capsule(grants=[("import", "pandas")])
    for source in (
        "import pandas.core.computation.scope as sc\nsc.Scope(3)",
        "from pandas.core.computation.expr import Scope",
        "import pandas.core.computation.expr as e\ne.Expr('1 + 1', level=4)",
        "import pandas.core.computation.scope as sc\nsc.ensure_scope(3)",
    ):
        with pytest.raises(CapabilityError):
            capsule.run(source)
    result = capsule.run(
        "import pandas as pd\nx = 2\ndf = pd.DataFrame({'a': [1, 2, 3]})\n"
        "(len(df.query('a > @x')), float(df.eval('a * @x').sum()), int(pd.eval('1 + 2')))"
    )
    assert result == (1, 12.0, 3)


def test_stdlib_helpers_that_name_their_caller_still_work_in_a_capsule():
    result = Capsule().run(
        "import collections, enum, typing\n"
        "P = collections.namedtuple('P', 'x')\nE = enum.Enum('E', 'A')\n"
        "T = typing.TypeVar('T')\n(P.__module__, E.__module__, T.__name__)"
    )
    assert result == ("__capsule__", "__capsule__", "T")


# -- D5: a module's own tables returned by its functions ----------------------------------------
def test_a_modules_table_returned_by_its_function_is_read_only():
    pytest.importorskip("sklearn")
    from sklearn.metrics import pairwise

    before = dict(pairwise.PAIRWISE_DISTANCE_FUNCTIONS)
    capsule = Capsule(grants=[("import", "sklearn"), ("import", "numpy")])
    for source in (
        "from sklearn.metrics import pairwise as pw\npw.distance_metrics()['cosine'] = len",
        "from sklearn.metrics import pairwise as pw\npw.kernel_metrics().clear()",
    ):
        with pytest.raises(CapabilityError, match="changes a table trusted code reads later"):
            capsule.run(source)
    assert pairwise.PAIRWISE_DISTANCE_FUNCTIONS == before
    # reading it, and a function's fresh containers, are as before
    assert capsule.run(
        "from sklearn.metrics import pairwise as pw\n"
        "('cosine' in pw.distance_metrics(), type(dict(pw.kernel_metrics())).__name__)"
    ) == (True, "dict")
    assert Capsule().run("import json\nd = json.loads('{}')\nd['a'] = 1\nd") == {"a": 1}


# -- D1 (in part): pandas' holiday-calendar registry ------------------------------------------
def test_a_capsule_cannot_register_a_holiday_calendar_directly():
    from pandas.tseries import holiday

    before = dict(holiday.holiday_calendars)
    capsule = Capsule(grants=[("import", "pandas")])
    with pytest.raises(CapabilityError, match="holiday calendars"):
        capsule.run(
            "from pandas.tseries import holiday as h\n"
            "class C:\n    name = 'USFederalHolidayCalendar'\nh.register(C)"
        )
    assert holiday.holiday_calendars == before


# -- D6: process-wide native switches ------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    ["pa.log_memory_allocations(True)", "pa.jemalloc_set_decay_ms(5)", "pa.set_cpu_count(1)"],
)
def test_pyarrows_process_switches_are_refused_without_a_false_hint(call):
    pytest.importorskip("pyarrow")
    capsule = Capsule(grants=[("import", "pyarrow")])
    with pytest.raises(CapabilityError) as info:
        capsule.run(f"import pyarrow as pa\n{call}")
    text = str(info.value)
    assert "whole session" in text and "For a block" not in text  # no block exists for it
