"""Membrane benchmarks: the price of reaching a protected object through its proxy.

Why: users keep their data in the user namespace and capsule code reaches it through
``ipycap.engine.membrane.Proxy``; if a proxied read or call is much dearer than zope.security's C
proxy, the proxy approach loses its argument.  Targets (issue 13): <= 3x plain for an attribute read,
<= 4x for a method call (the first issue measured zope.security at 36x / 42x and
``wrapt.ObjectProxy`` at 52x / 24x, and set 8x / 10x).  Also: starting a capsule must not depend on the size of
the user namespace (it is exposed lazily), flat within 10% from 10 to 100,000 names.

Every variant runs the *same* loop source inside a function (for the capsule, its own
compiled code) with ``obj`` bound to the raw object (plain exec), to a capsule-defined object
(no proxy), to ipycap's proxy (capsule code, ``obj`` in ``protected``), to a zope.security
proxy or to a wrapt proxy (plain exec).  Two shapes: timeit-style, one operation per loop
iteration with the loop included -- how the issue's zope/wrapt figures were taken and what
the targets mean -- and net, ten operations per iteration with an empty loop of the same
shape timed in the same rounds and subtracted, which compares the operations alone.
"""

from __future__ import annotations

from itertools import repeat

from common import Settings, Table, check, compare

from ipycap import Capsule

READ_TARGET = 3.0
CALL_TARGET = 4.0
FLAT_TARGET = 0.10
PROXIED = "capsule, proxied (ipycap)"


class Account:
    """A realistic protected object: public state, private state, a method."""

    def __init__(self):
        self.balance = 42
        self._secret = "token"

    def deposit(self, amount):
        return amount


_TEN = 10


def _loop(name: str, body: str, per: int) -> str:
    """A loop like timeit's: trusted code passes in ``itertools.repeat(None, n)``."""
    return f"def {name}(it):\n    for _ in it:\n" + f"        {body}\n" * per


#: timeit-style: one operation per loop iteration, loop included (how the issue's zope and
#: wrapt figures were measured, and what the targets refer to).
READ_1 = _loop("reads", "x = obj.balance", 1)
CALL_1 = _loop("calls", "x = obj.deposit(1)", 1)
#: net: ten operations per iteration, minus an empty loop of the same shape.
READ_10 = _loop("reads", "x = obj.balance", _TEN)
CALL_10 = _loop("calls", "x = obj.deposit(1)", _TEN)
EMPTY_10 = _loop("empty", "x = obj", _TEN)
OWN = """
class Account:
    def __init__(self):
        self.balance = 42

    def deposit(self, amount):
        return amount

obj = Account()
"""


def _timed(fn):
    return lambda n: fn(repeat(None, n))


def _plain(source: str, name: str, obj):
    ns = {"__name__": "__bench__", "obj": obj}
    exec(compile(source, "<plain>", "exec"), ns)
    return _timed(ns[name])


def _capsule(source: str, name: str, obj=None):
    """``name`` compiled as capsule code; ``obj`` protected, or the capsule's own Account.

    The source gets a distinct trailing comment per variant: the compile cache would
    otherwise hand both capsules one code object, whose inline caches would then see two
    types at one site and stop specialising (a real effect, but not the one measured).
    """
    if obj is None:
        capsule = Capsule(label="bench")
        capsule.run(OWN)
        source += "# own object\n"
    else:
        capsule = Capsule(label="bench", protected={"obj": obj})
        source += "# proxied\n"
    capsule.run(source)
    return _timed(capsule.namespace[name])


def zope_proxy(obj):
    from zope.security.checker import Checker, CheckerPublic, ProxyFactory

    return ProxyFactory(obj, Checker({"balance": CheckerPublic, "deposit": CheckerPublic}))


def wrapt_proxy(obj):
    import wrapt

    return wrapt.ObjectProxy(obj)


def _variants(source: str, name: str) -> dict:
    """The same loop against each kind of object; each gets its own Account, since a proxy
    library that reads the target's ``__dict__`` would otherwise slow the plain reads too."""
    return {
        "plain": _plain(source, name, Account()),
        "capsule, own object": _capsule(source, name),
        PROXIED: _capsule(source, name, Account()),
        "zope.security proxy": _plain(source, name, zope_proxy(Account())),
        "wrapt.ObjectProxy": _plain(source, name, wrapt_proxy(Account())),
    }


def bench_access(settings: Settings) -> list[Table]:
    tables = []
    for what, unit, one, ten, target in (
        ("attribute read obj.balance", "read", READ_1, READ_10, READ_TARGET),
        ("method call obj.deposit(1)", "call", CALL_1, CALL_10, CALL_TARGET),
    ):
        fn = one.split("(")[0].split()[-1]
        gross = compare(
            f"membrane: {what} (timeit-style: one per loop iteration, loop included)",
            _variants(one, fn),
            settings,
            unit=unit,
        )
        check(gross, PROXIED, at_most=target, target=f"<= {target}x plain")
        net = compare(
            f"membrane: {what} (net: ten per iteration, empty loop subtracted)",
            _variants(ten, fn),
            settings,
            unit=unit,
            overhead=_plain(EMPTY_10, "empty", Account()),
            per=_TEN,
        )
        net.notes.append("stricter than the targets' timeit-style measure; informative only")
        tables += [gross, net]
    return tables


def bench_start(settings: Settings) -> list[Table]:
    """``Capsule(protected=ns).run('x0 + 1')`` with 10, 1,000 and 100,000 names."""
    sizes = (10, 1_000, 100_000)
    spaces = {size: {f"x{i}": i for i in range(size)} for size in sizes}

    def start(ns):
        def run(n):
            for _ in range(n):
                Capsule(protected=ns).run("x0 + 1")

        return run

    table = compare(
        "membrane: capsule start vs user-namespace size",
        {f"{size:,} names": start(ns) for size, ns in spaces.items()},
        settings,
        unit="start",
    )
    worst = max(table.rows, key=lambda r: abs(r.ratio - 1.0))
    check(
        table,
        worst.name,
        at_most=1 + FLAT_TARGET,
        at_least=1 - FLAT_TARGET,
        target=f"flat within {FLAT_TARGET:.0%} of 10 names",
    )
    return [table]


def bench_read_only(settings: Settings) -> list[Table]:
    """What a read-only proxy's stand-in costs (membrane/readonly.py): a library container
    reaching a capsule read-only is held as a non-writeable numpy view over a read-only
    buffer, or a lazy pandas copy, made once per object per capability and reused while the
    proxy lives.  Fresh results (``arr + 1``, ``df['c0']``) get one each: the table times
    the operation that makes the fresh object alone, and with its stand-in."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:  # pragma: no cover - the bench extra installs both
        return []
    from ipycap.engine.libraries import readonly

    arr = np.arange(100.0)
    big = np.arange(1_000_000.0)
    df = pd.DataFrame({f"c{i}": np.arange(100) for i in range(10)})

    def loop(make):
        def work(n):
            for _ in range(n):
                make()

        return work

    tables = []
    for what, variants in (
        (
            "numpy: arr + 1 (100 floats)",
            {
                "arr + 1": loop(lambda: arr + 1),
                "arr + 1, read-only stand-in": loop(lambda: readonly.numpy_array(arr + 1)),
            },
        ),
        (
            "numpy: stand-in of a 1,000,000-float array (no copy: same cost)",
            {
                "arr.view()": loop(big.view),
                "read-only stand-in": loop(lambda: readonly.numpy_array(big)),
            },
        ),
        (
            "pandas: df['c0'] (10 x 100 frame)",
            {
                "df['c0']": loop(lambda: df["c0"]),
                "df['c0'], read-only stand-in": loop(lambda: readonly.pandas_frame(df["c0"])),
            },
        ),
    ):
        table = compare(f"membrane: read-only stand-in, {what}", variants, settings, unit="op")
        table.notes.append("made once per object per capability while its proxy lives")
        tables.append(table)
    return tables


def run(settings: Settings) -> list[Table]:
    return bench_access(settings) + bench_start(settings) + bench_read_only(settings)
