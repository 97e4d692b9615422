"""Session 11's own findings, while fixing the rc blocks of red team 10.

Option values kept by a library's process-wide table
  A capsule's function given as an option value (``pd.option_context(
  'styler.format.formatter', f)``) was kept by pandas and called by the Styler, trusted code,
  with the raw cells of a protected frame: the capsule held the raw object (I2) and read its
  private state.  The same held for a partial of one, a dict of them, and ipycap's own
  guarded ``operator.attrgetter`` (it decides for the capsule, and read a raw object's
  private name when trusted code called it).  Option values that hold capsule code now leave
  as the membrane exports them: reverse proxies that wrap what trusted code hands them.
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
