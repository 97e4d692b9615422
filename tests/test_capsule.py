"""The engine, specified: ordinary Python runs unchanged in a capsule, the last expression is
the cell's value, the namespace stays inspectable, tracebacks show the capsule's source lines,
an unchanged cell is served from the compile cache, and a failing cell leaves a consistent
namespace."""

from __future__ import annotations

import traceback

import pytest

from ipycap import Capsule, CapsuleAttributeError, CapsuleImportError
from ipycap.engine import capsule as capsule_module


def run(source, **kwargs):
    return Capsule(**kwargs).run(source)


# -- ordinary code works unchanged -------------------------------------------------------------
CLASSES = """
class Animal:
    kind = 'animal'
    def __init__(self, name):
        self.name = name
    def speak(self):
        return f'{self.name} makes a sound'
    def __repr__(self):
        return f'{type(self).__name__}({self.name!r})'

class Dog(Animal):
    def __init__(self, name, tricks=()):
        super().__init__(name)
        self.tricks = list(tricks)
    def speak(self):
        return super().speak().replace('a sound', 'woof')
    @property
    def trick_count(self):
        return len(self.tricks)
    @classmethod
    def puppy(cls):
        return cls('pup')
    @staticmethod
    def legs():
        return 4

d = Dog('rex', ['sit'])
(d.speak(), d.trick_count, Dog.puppy().name, Dog.legs(), repr(d), isinstance(d, Animal),
 issubclass(Dog, Animal), d.kind)
"""


def test_classes_with_inheritance_and_super_init():
    assert run(CLASSES) == ("rex makes woof", 1, "pup", 4, "Dog('rex')", True, True, "animal")


def test_dataclass_and_enum_work():
    src = (
        "from dataclasses import dataclass, field\nimport enum\n"
        "@dataclass(order=True)\nclass P:\n    x: int\n    y: int = 0\n"
        "    tags: list = field(default_factory=list)\n"
        "class Color(enum.Enum):\n    RED = 1\n    BLUE = 2\n"
        "(P(1) < P(2), P(1, 2), Color.RED.name, Color(2))"
    )
    out = run(src)
    assert out[0] is True and repr(out[1]) == "P(x=1, y=2, tags=[])"
    assert out[2] == "RED" and out[3].name == "BLUE"


def test_closures_and_nonlocal():
    src = (
        "def counter():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n"
        "        return n\n    return inc\nc = counter()\nc(); c()\nc()"
    )
    assert run(src) == 3


def test_generators_and_comprehensions():
    src = (
        "def fib():\n    a, b = 0, 1\n    while True:\n        yield a\n        a, b = b, a + b\n"
        "import itertools\n"
        "g = fib()\n"
        "first = list(itertools.islice(g, 8))\n"
        "squares = {n: n * n for n in range(4)}\n"
        "evens = [x for x in range(10) if x % 2 == 0]\n"
        "uniq = {c for c in 'hello'}\n"
        "total = sum(x for x in range(5))\n"
        "def delegate():\n    yield from range(2)\n    return 'done'\n"
        "(first, squares, evens, sorted(uniq), total, list(delegate()))"
    )
    assert run(src) == (
        [0, 1, 1, 2, 3, 5, 8, 13],
        {0: 0, 1: 1, 2: 4, 3: 9},
        [0, 2, 4, 6, 8],
        ["e", "h", "l", "o"],
        10,
        [0, 1],
    )


def test_exceptions_raise_except_finally_and_custom_classes():
    src = (
        "class AppError(Exception):\n"
        "    def __init__(self, code):\n        super().__init__(f'code {code}')\n"
        "        self.code = code\n"
        "log = []\n"
        "def f():\n"
        "    try:\n        raise AppError(7)\n"
        "    except AppError as e:\n        log.append(e.code)\n        raise ValueError('wrapped') from e\n"
        "    finally:\n        log.append('finally')\n"
        "try:\n    f()\nexcept ValueError as e:\n"
        "    log.append(str(e))\n    log.append(type(e.__cause__).__name__)\n"
        "try:\n    {}['missing']\nexcept KeyError as e:\n    log.append(e.args)\n"
        "try:\n    1 / 0\nexcept (TypeError, ZeroDivisionError):\n    log.append('zde')\n"
        "else:\n    log.append('no')\n"
        "log"
    )
    assert run(src) == [7, "finally", "wrapped", "AppError", ("missing",), "zde"]


def test_fstrings_and_format():
    src = (
        "x = 3.14159\nname = 'ab'\nimport datetime\nd = datetime.date(2024, 1, 2)\n"
        "(f'{x:.2f}', f'{name!r:>6}', f'{1234567:,}', f'{x=:.1f}', f'{d:%Y/%m}',"
        " '{0}'.format(1), '{0[a]}'.format({'a': 1}), '{:>4}|{:<3}|'.format(1, 2),"
        " '%s-%d' % ('a', 2), format(255, 'x'))"
    )
    assert run(src) == (
        "3.14",
        "  'ab'",
        "1,234,567",
        "x=3.1",
        "2024/01",
        "1",
        "1",
        "   1|2  |",
        "a-2",
        "ff",
    )


def test_idna_encoding():
    assert run("'bücher.de'.encode('idna')") == b"xn--bcher-kva.de"


def test_other_codecs():
    assert run("'é'.encode('utf-8').decode('latin-1')") == "Ã©"


@pytest.mark.parametrize(
    "src, expected",
    [
        ("import math\nmath.gcd(12, 18)", 6),
        ("import json\njson.loads(json.dumps({'a': [1, 2]}))", {"a": [1, 2]}),
        ("import re\nre.findall(r'\\d+', 'a1b22')", ["1", "22"]),
        ("import collections\ncollections.Counter('aab').most_common(1)", [("a", 2)]),
        (
            "from collections import defaultdict, deque\nd = defaultdict(list)\nd['x'].append(1)\n"
            "dict(d), list(deque([1, 2], maxlen=1))",
            ({"x": [1]}, [2]),
        ),
        ("import itertools\nlist(itertools.combinations('abc', 2))[:2]", [("a", "b"), ("a", "c")]),
        (
            "import functools\n@functools.lru_cache\ndef f(n):\n    return n if n < 2 else "
            "f(n-1) + f(n-2)\nf(30)",
            832040,
        ),
        ("import functools\nfunctools.reduce(lambda a, b: a * b, range(1, 6))", 120),
        ("import random\nr = random.Random(1)\nr.randint(1, 1)", 1),
        ("import random\nrandom.seed(3)\n0 <= random.random() < 1", True),
        ("import statistics\nstatistics.mean([1, 2, 3])", 2),
        ("import decimal\nstr(decimal.Decimal('0.1') + decimal.Decimal('0.2'))", "0.3"),
        ("import fractions\nfractions.Fraction(1, 3) * 3", 1),
        ("import datetime\n(datetime.date(2024, 3, 1) - datetime.timedelta(days=1)).day", 29),
        ("import textwrap\ntextwrap.wrap('aa bb cc', 5)", ["aa bb", "cc"]),
        ("import textwrap\ntextwrap.dedent('  x\\n  y')", "x\ny"),
        ("import enum\nclass E(enum.IntEnum):\n    A = 1\nE.A + 1", 2),
        ("import string\nstring.ascii_lowercase[:3]", "abc"),
        ("import string\nstring.Template('$x!').substitute(x=1)", "1!"),
        ("import heapq\nh = [5, 1, 3]\nheapq.heapify(h)\nheapq.heappop(h)", 1),
        ("import bisect\nbisect.bisect([1, 3, 5], 4)", 2),
    ],
)
def test_allowed_imports_work(src, expected):
    assert run(src) == expected


def test_granted_file_read_and_write(tmp_path):
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    src = (
        f"with open({str(tmp_path / 'in.csv')!r}) as f:\n"
        "    rows = [line.strip().split(',') for line in f]\n"
        f"with open({str(tmp_path / 'out.txt')!r}, 'w') as f:\n"
        "    f.write(str(len(rows)))\n"
        "rows"
    )
    grants = [("read", str(tmp_path)), ("write", str(tmp_path))]
    assert run(src, grants=grants) == [["a", "b"], ["1", "2"]]
    assert (tmp_path / "out.txt").read_text() == "2"


# -- results and namespace ---------------------------------------------------------------------
def test_last_expression_value_is_returned():
    assert run("x = 2\nx * 21") == 42
    assert run("x = 2") is None
    assert run("x = 2\nif x:\n    x") is None  # the last statement is not an expression
    assert run("") is None
    assert run("(1 +\n 2)") == 3


def test_namespace_is_inspectable_and_persists_between_runs():
    c = Capsule()
    c.run("x = 1\ndef f():\n    return x + 1")
    assert c.namespace["x"] == 1 and callable(c.namespace["f"])
    assert c.run("x = f()\nx") == 2
    assert c.namespace["x"] == 2
    assert c.namespace["__name__"] == "__capsule__"


def test_explicit_namespace():
    ns = {}
    Capsule().run("y = 5", namespace=ns)
    assert ns["y"] == 5


def test_failing_run_leaves_namespace_consistent():
    c = Capsule()
    c.run("a = 1\nb = [1]")
    with pytest.raises(ZeroDivisionError):
        c.run("a = 2\nb.append(2)\n1 / 0\nc = 3")
    assert c.namespace["a"] == 2 and c.namespace["b"] == [1, 2]  # like a notebook cell
    assert "c" not in c.namespace
    assert c.run("a + len(b)") == 4  # the capsule still works
    with pytest.raises(CapsuleImportError):
        c.run("z = 1\nimport os")
    assert c.run("z") == 1
    assert "os" not in c.namespace


def test_syntax_error_runs_nothing():
    c = Capsule()
    with pytest.raises(SyntaxError):
        c.run("a = 1\ndef (:")
    assert "a" not in c.namespace


# -- tracebacks --------------------------------------------------------------------------------
def test_traceback_shows_capsule_source_line():
    c = Capsule(label="demo")
    source = "def divide(a, b):\n    return a / b  # the divisor\ndivide(1, 0)\n"
    with pytest.raises(ZeroDivisionError) as info:
        c.run(source)
    text = "".join(traceback.format_exception(info.value))
    assert "return a / b  # the divisor" in text
    assert "<capsule-demo-" in text


def test_traceback_of_last_expression_keeps_its_line_number():
    source = "x = 1\n\ny = 0\nx / y\n"
    with pytest.raises(ZeroDivisionError) as info:
        run(source)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].lineno == 4 and frames[-1].line == "x / y"


def test_explicit_filename_is_used():
    with pytest.raises(NameError) as info:
        Capsule().run("undefined_name", filename="<capsule-mine>")
    assert "<capsule-mine>" in "".join(traceback.format_exception(info.value))


# -- compile cache -----------------------------------------------------------------------------
def test_unchanged_cell_is_served_from_the_compile_cache():
    cache = capsule_module._CACHE
    source = "total = 0\nfor i in range(10):\n    total += i\ntotal  # cache-test-1\n"
    c = Capsule()
    assert c.run(source) == 45
    hits = cache.hits
    assert c.run(source) == 45
    assert cache.hits > hits
    hits = cache.hits
    assert Capsule().run(source) == 45  # another capsule, same cell
    assert cache.hits > hits


def test_cache_is_keyed_by_mode():
    source = "class A:\n    _p = 1\nA._p  # cache-mode-test\n"
    assert Capsule().run(source) == 1
    with pytest.raises(AttributeError):
        Capsule(mode="rexec").run(source)


def test_cell_scoped_grants_end_with_the_cell(tmp_path):
    (tmp_path / "f").write_text("x")
    c = Capsule(grants=[("read", str(tmp_path))])
    src = f"open({str(tmp_path / 'f')!r}).read()"
    assert c.run(src) == "x"
    c.end()
    with pytest.raises(PermissionError):
        c.run(src)


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        Capsule(mode="sandbox")


def test_dataclass_with_string_annotations_works():
    """dataclasses resolves string annotations in sys.modules[cls.__module__]; capsule classes
    say '__capsule__', which once was no module at all (AttributeError inside dataclasses)."""
    result = Capsule().run(
        "import dataclasses\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    a: 'int' = 1\n"
        "    b: 'list' = dataclasses.field(default_factory=list)\n"
        "P(), [f.name for f in dataclasses.fields(P)]"
    )
    assert repr(result[0]) == "P(a=1, b=[])" and result[1] == ["a", "b"]


def test_a_class_is_its_capsules_own_inside_its_init_subclass_and_set_name():
    """Class-registry patterns: a capsule class is own while it is being made (issue 11)."""
    src = (
        "class Plugin:\n"
        "    registry = {}\n"
        "    def __init_subclass__(cls, /, name=None, **kw):\n"
        "        super().__init_subclass__(**kw)\n"
        "        Plugin.registry[name or cls.__name__] = cls\n"
        "        cls.fields = sorted(k for k in vars(cls) if not k.startswith('_'))\n"
        "class A(Plugin, name='a'):\n"
        "    x = 1\n"
        "class D:\n"
        "    def __set_name__(self, owner, name):\n"
        "        self.seen = (owner.__qualname__, name,\n"
        "                     sorted(k for k in vars(owner) if not k.startswith('__')))\n"
        "class B:\n"
        "    d = D()\n"
        "(sorted(Plugin.registry), A.fields, B.d.seen)"
    )
    assert Capsule().run(src) == (["a"], ["x"], ("B", "d", ["d"]))


def test_a_class_being_built_never_makes_a_trusted_class_look_own():
    """While a capsule class named like a trusted one is being made, the trusted class is
    still not the capsule's (the capsule renamed its module to match)."""
    src = (
        "__name__ = 'collections'\n"
        "class OrderedDict:\n"
        "    class Meta(type):\n"
        "        pass\n"
        "    def __init_subclass__(cls):\n"
        "        pass\n"
        "import collections\n"
        "class Probe:\n"
        "    def __set_name__(self, owner, name):\n"
        "        self.got = vars(collections.OrderedDict)\n"
        "class OrderedDict:\n"
        "    p = Probe()\n"
    )
    # Python 3.11 reports an error inside __set_name__ as a RuntimeError caused by it.
    with pytest.raises(RuntimeError) as info:
        Capsule().run(src)
    assert isinstance(info.value.__cause__, CapsuleAttributeError)


def test_a_reused_capsule_sees_protected_names_as_they_are_now():
    """A host that keeps one Capsule across cells and rebinds or deletes a user name between
    runs: each run sees the current value (through a fresh proxy), never the previous one."""
    from ipycap import Capsule

    user = {"acct": [1]}
    c = Capsule(protected=user)
    assert c.run("acct[0]") == 1
    user["acct"] = [2]
    assert c.run("acct[0]") == 2
    del user["acct"]
    with pytest.raises(NameError):
        c.run("acct")
    user["acct"] = [3]
    assert c.run("acct[0]") == 3
    # A user name never shadows a builtin of the capsule's own.
    user["len"] = lambda x: -1
    assert c.run("len([1, 2])") == 2
