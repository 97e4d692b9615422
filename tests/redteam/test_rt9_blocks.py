"""Red team rt9-blocks: the scoped option blocks (libraries/blocks.py) as a seam.

A scoped block is trusted code standing between a capsule and a library's own context
manager.  Three findings, one class -- *the block handed the library's raw objects to the
capsule, or the capsule's objects to the library*:

1. ``with pl.Config(...) as cfg`` bound polars' own ``Config``: ``type(cfg)`` is the class
   whose setters change the whole session, ``save_to_file`` (a file written by trusted code,
   outside the open policy) and ``set_default_credential_provider`` (a capsule callable
   stored where trusted scans call it) included.  ``pl.Config._set_config_params`` reached
   the same class from the stand-in.
2. ``block.__exit__(tp, value, tb)`` passed the capsule's arguments to the library's exit:
   contextlib's ``_GeneratorContextManager.__exit__`` calls ``tp()`` and ``isinstance(value,
   ...)`` (which reads a capsule ``__class__``), so capsule code ran inside trusted frames.
3. The decorator form ran ``functools.wraps`` over the capsule's callable: a capsule object's
   ``__name__`` property or ``__getattr__`` ran inside trusted frames.

The fix is one rule for every block (blocks.ScopedBlock): the block binds itself or None,
the library's object never crosses; exits are normal exits; the decorator reads a function's
fields in C only.  The tests below go over every block factory the profiles name, so a new
factory is covered (and fails :func:`test_every_profile_block_has_a_case` until it has one).
"""

from __future__ import annotations

import os

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine.libraries import PROFILES, blocks

pd = pytest.importorskip("pandas")
mpl = pytest.importorskip("matplotlib")
sklearn = pytest.importorskip("sklearn")
pl = pytest.importorskip("polars")

#: profile key (the name a capsule calls) -> (package, an expression making the block)
CASES = {
    "pandas.option_context": ("pandas", "pandas.option_context('display.max_rows', 3)"),
    "matplotlib.rc_context": ("matplotlib", "matplotlib.rc_context({'lines.linewidth': 7.0})"),
    "matplotlib.pyplot.rc_context": (
        "matplotlib",
        "matplotlib.pyplot.rc_context({'lines.linewidth': 7.0})",
    ),
    "matplotlib.style.context": ("matplotlib", "matplotlib.style.context('ggplot')"),
    "matplotlib.pyplot.xkcd": ("matplotlib", "matplotlib.pyplot.xkcd()"),
    "matplotlib.pyplot.ioff": ("matplotlib", "matplotlib.pyplot.ioff()"),
    "matplotlib.pyplot.ion": ("matplotlib", "matplotlib.pyplot.ion()"),
    "sklearn.config_context": ("sklearn", "sklearn.config_context(assume_finite=True)"),
    "polars.Config": ("polars", "polars.Config(tbl_rows=3)"),
}

_IMPORT = {
    "pandas": "import pandas\n",
    "matplotlib": "import matplotlib\nimport matplotlib.pyplot\nimport matplotlib.style\n",
    "sklearn": "import sklearn\n",
    "polars": "import polars\n",
}


@pytest.fixture(autouse=True)
def _options_put_back():
    rc = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    interactive = mpl.is_interactive()
    yield
    pd.reset_option("display.max_rows")
    mpl.rcParams.update(rc)
    mpl.interactive(interactive)
    pl.Config.restore_defaults()
    sklearn.set_config(assume_finite=False)


def _run(package, source):
    capsule = Capsule(grants=[("import", package)])
    try:
        return capsule.run(_IMPORT[package] + source)
    except CapabilityError as err:
        return err


def _profile_blocks() -> set:
    keys = {
        key
        for profile in PROFILES.values()
        for key, factory in profile.replaced.items()
        if factory in blocks.FACTORIES
    }
    return keys | {"polars.Config"}  # polars' stand-in makes its blocks (wrappers.py)


def test_every_profile_block_has_a_case():
    """Every block factory a profile hands out is covered by the tests below."""
    assert _profile_blocks() == set(CASES)


@pytest.mark.parametrize("key", sorted(CASES))
def test_with_block_binds_the_block_or_nothing(key):
    """Finding 1: ``with factory(...) as x`` (and ``x = cm.__enter__()``) binds the capsule's
    block or None, never the library's own object, class or generator."""
    package, expr = CASES[key]
    bound = _run(package, f"with {expr} as x:\n    pass\ncm = {expr}\ny = cm.__enter__()\n(x, y)")
    assert not isinstance(bound, CapabilityError), bound
    for value in bound:
        assert value is None or type(value) is blocks.ScopedBlock, (key, type(value))


@pytest.mark.parametrize("key", sorted(CASES))
def test_exit_never_hands_the_capsule_exception_to_the_library(key):
    """Finding 2: ``__exit__`` called with a capsule exception class (contextlib would call
    it) or instance (contextlib's isinstance reads its ``__class__``): no capsule code runs
    during the exit, the block still ends, and a ``with`` block's exception propagates."""
    package, expr = CASES[key]
    source = (
        "ran = []\n"
        "class Bad(Exception):\n"
        "    def __init__(self, *a):\n"
        "        ran.append('init')\n"
        "    @property\n"
        "    def __class__(self):\n"
        "        ran.append('__class__')\n"
        "        return StopIteration\n"
        "bad = Bad()\n"
        "ran.clear()\n"
        f"cm = {expr}\ncm.__enter__()\ncm.__exit__(Bad, None, None)\n"
        f"cm = {expr}\ncm.__enter__()\ncm.__exit__(Bad, bad, None)\n"
        f"cm = {expr}\ncm.__enter__()\ncm.__exit__(type(bad), bad, 'not a traceback')\n"
        "try:\n"
        f"    with {expr}:\n"
        "        raise KeyError('mine')\n"
        "except KeyError as e:\n"
        "    caught = e.args\n"
        "(ran, caught)"
    )
    result = _run(package, source)
    assert not isinstance(result, CapabilityError), result
    assert result == ([], ("mine",))


def test_decorator_runs_no_capsule_code_when_made():
    """Finding 3: decorating a capsule callable object reads none of its attributes (its
    ``__name__`` property would run inside the block's trusted frame); a decorated function
    keeps its name and runs in a block of its own."""
    source = (
        "ran = []\n"
        "class Sly:\n"
        "    @property\n"
        "    def __name__(self):\n"
        "        ran.append('__name__')\n"
        "        return 'sly'\n"
        "    def __getattr__(self, name):\n"
        "        ran.append(name)\n"
        "        raise AttributeError(name)\n"
        "    def __call__(self):\n"
        "        return pandas.get_option('display.max_rows')\n"
        "wrapped = pandas.option_context('display.max_rows', 4)(Sly())\n"
        "made = list(ran)\n"
        "@pandas.option_context('display.max_rows', 5)\n"
        "def named():\n"
        "    return pandas.get_option('display.max_rows')\n"
        "(made, wrapped(), named(), named.__name__, pandas.get_option('display.max_rows'))"
    )
    before = pd.get_option("display.max_rows")
    assert _run("pandas", source) == ([], 4, 5, "named", before)


def test_polars_block_offers_its_setters_and_nothing_of_polars_class(tmp_path):
    """Finding 1, polars: in a block, ``cfg.set_*`` works (chained, undone on exit), outside
    it is refused; the class's other members (``save_to_file``, ``load_from_file``,
    ``_set_config_params``) are refused, from the block and from ``pl.Config`` alike; a
    setter given a capsule callable is refused.  The canary file is never written."""
    canary = tmp_path / "written-by-polars.json"
    source = (
        "out = []\n"
        "def attempt(f):\n"
        "    try:\n        f()\n        out.append('ok')\n"
        "    except Exception as e:\n        out.append(type(e).__name__)\n"
        "with polars.Config(tbl_rows=3) as cfg:\n"
        "    cfg.set_tbl_cols(4).set_fmt_str_lengths(9)\n"
        "    inside = polars.Config.state(if_set=True)\n"
        f"    attempt(lambda: cfg.save_to_file({str(canary)!r}))\n"
        "    attempt(lambda: cfg.set_default_credential_provider(lambda: ({}, None)))\n"
        "    attempt(lambda: cfg._set_config_params(tbl_rows=9))\n"
        "attempt(lambda: cfg.set_tbl_rows(11))\n"
        f"attempt(lambda: polars.Config.save_to_file({str(canary)!r}))\n"
        "attempt(lambda: polars.Config._set_config_params)\n"
        "attempt(lambda: polars.Config.load_from_file('x.json'))\n"
        "attempt(lambda: polars.Config.set_tbl_rows(11))\n"
        "attempt(lambda: polars.Config(tbl_rows=len))\n"
        "(inside.get('POLARS_FMT_MAX_ROWS'), inside.get('POLARS_FMT_MAX_COLS'),\n"
        " inside.get('POLARS_FMT_STR_LEN'), out, polars.Config.state().get('POLARS_FMT_MAX_COLS'))"
    )
    rows, cols, strlen, out, after = _run("polars", source)
    assert (rows, cols, strlen) == ("3", "4", "9")
    assert out == ["CapsulePermissionError"] * 9
    assert after is None and pl.Config.state().get("POLARS_FMT_MAX_COLS") is None
    assert not os.path.exists(canary)


def test_polars_config_plain_python_reaches_the_class():
    """Without ipycap the bound object is polars' class with the whole-session setters (what
    finding 1 handed the capsule)."""
    with pl.Config(tbl_rows=3) as cfg:
        assert hasattr(type(cfg), "save_to_file") and type(cfg) is pl.Config
