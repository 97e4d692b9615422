"""Pure-Python workloads shared by the engine benchmarks.

Each source defines ``work()``, a function doing a fixed amount of ordinary Python work (a
few tens of microseconds).  The same text runs as capsule code, as plain ``exec`` and, where
RestrictedPython refuses the text, as the closest port it accepts (see ``RP_PORTS``).
"""

from __future__ import annotations

LOOPS = """
def work():
    total = 0
    for i in range(200):
        for j in range(10):
            total += (i * j) % 7
        if total > 10_000:
            total -= 3
    return total
"""

ATTRS = """
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm2(self):
        return self.x * self.x + self.y * self.y

pts = [Point(i, i + 1) for i in range(50)]

def work():
    total = 0
    for p in pts:
        total += p.x + p.y
        p.x = p.y - 1
        total += p.norm2()
    return total
"""

CLASSES = """
class Base:
    def __init__(self, name):
        self.name = name

class Shape(Base):
    def __init__(self, name, w, h):
        super().__init__(name)
        self.w = w
        self.h = h

class Square(Shape):
    def __init__(self, name, side):
        super().__init__(name, side, side)

    def area(self):
        return self.w * self.h

def work():
    total = 0
    for i in range(60):
        s = Square("s", i)
        total += s.area()
    return total
"""

FSTRINGS = """
def work():
    out = []
    for i in range(60):
        x = i * 1.2345
        out.append(f"{i:04d} | {x:>10.3f} | {x:.2e} | {i:#x} | {'ab':^6}")
    return len("".join(out))
"""

CONTAINERS = """
def work():
    d = {}
    words = ["alpha", "beta", "gamma", "delta", "epsilon"] * 12
    for i, w in enumerate(words):
        d[w] = d.get(w, 0) + i
    items = sorted(d.items(), key=lambda kv: kv[1])
    squares = [k * k for k in range(80) if k % 3]
    merged = {**d, "n": len(squares)}
    keys = [k for k, v in merged.items() if v]
    first, *rest = squares
    return len(items) + sum(squares[:10]) + len(keys) + first + len(rest)
"""

MODULES = """
import math

def work():
    total = 0.0
    for i in range(100):
        total += math.sqrt(i) + math.sin(i) * math.pi
    return round(total, 6)
"""

#: Operators, ``in`` and indexing of the capsule's own classes: every dunder a capsule class
#: defines with an argument is an operand hook (ipycap/engine/hooks.py).  Not in WORKLOADS:
#: RestrictedPython refuses any name starting with '_', so it has no port.
OPERATORS = """
class Vec:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __add__(self, other):
        return Vec(self.x + other.x, self.y + other.y)

    def __mul__(self, k):
        return Vec(self.x * k, self.y * k)

    def __eq__(self, other):
        return self.x == other.x and self.y == other.y

    def __getitem__(self, i):
        return self.x if i == 0 else self.y

    def __contains__(self, v):
        return v == self.x or v == self.y

vs = [Vec(i, i + 1) for i in range(30)]

def work():
    total = Vec(0, 0)
    hits = 0
    for v in vs:
        total = total + v * 2
        hits += (3 in v) + (v == total) + v[1]
    return total.x, total.y, hits
"""

WORKLOADS = {
    "loops in a function": LOOPS,
    "attributes of own objects": ATTRS,
    "classes + super().__init__()": CLASSES,
    "f-strings with format specs": FSTRINGS,
    "dict/list work": CONTAINERS,
    "stdlib module calls (math.*)": MODULES,
}

#: RestrictedPython refuses any attribute starting with '_' at compile time, so
#: ``super().__init__(...)`` cannot be written; its port calls a public initialiser instead.
RP_PORTS = {
    "classes + super().__init__()": """
class Base:
    def __init__(self, name):
        self.setup_base(name)

    def setup_base(self, name):
        self.name = name

class Shape(Base):
    def __init__(self, name, w, h):
        self.setup_shape(name, w, h)

    def setup_shape(self, name, w, h):
        super().setup_base(name)
        self.w = w
        self.h = h

class Square(Shape):
    def __init__(self, name, side):
        super().setup_shape(name, side, side)

    def area(self):
        return self.w * self.h

def work():
    total = 0
    for i in range(60):
        s = Square("s", i)
        total += s.area()
    return total
""",
}

#: A realistic 50-line notebook cell: imports, a dataclass-like class, helpers, a loop and
#: a final expression.  Used for the gate+compile overhead and the cached re-run.
CELL_50 = '''
import math
import statistics
from collections import Counter, defaultdict


class Sample:
    """One measurement with a label."""

    def __init__(self, label, values):
        self.label = label
        self.values = list(values)

    def mean(self):
        return statistics.fmean(self.values) if self.values else float("nan")

    def spread(self):
        lo, hi = min(self.values), max(self.values)
        return hi - lo

    def __repr__(self):
        return f"Sample({self.label!r}, n={len(self.values)})"


def summarise(samples, digits=3):
    rows = []
    for s in samples:
        m = s.mean()
        rows.append(f"{s.label:<8} {m:>{digits + 6}.{digits}f} {s.spread():8.2f}")
    return "\\n".join(rows)


def bucket(values, width=10):
    counts = defaultdict(int)
    for v in values:
        counts[int(v // width) * width] += 1
    return dict(sorted(counts.items()))


samples = [Sample(f"s{i}", [math.sin(i * k) * 10 + k for k in range(20)]) for i in range(5)]
words = Counter("the quick brown fox jumps over the lazy dog the end".split())
table = summarise(samples)
histogram = bucket([v for s in samples for v in s.values], width=5)
top = words.most_common(3)
total = sum(len(s.values) for s in samples)
assert total == 100, total
(table.count("\\n") + 1, top[0], len(histogram))
'''

#: Class creation in a cell: every class a capsule makes, however made (a class statement,
#: a standard-library deputy such as ``make_dataclass``, ``namedtuple`` or ``Enum``), gets
#: the array-protocol guard (ipycap/engine/arrayguard.py), so these cost more than plain.
DATACLASSES = """
import dataclasses

def work():
    @dataclasses.dataclass
    class Point:
        x: int
        y: int = 0

    @dataclasses.dataclass(frozen=True)
    class Label:
        text: str

    p = Point(1, 2)
    return p.x + p.y + len(Label("ab").text) + len(dataclasses.fields(Point))
"""

NAMEDTUPLE_ENUM = """
import enum
from collections import namedtuple

def work():
    Pair = namedtuple("Pair", "left right")
    Color = enum.Enum("Color", "RED GREEN BLUE")
    return Pair(1, 2).right + Color.BLUE.value + len(Color)
"""

#: Workloads timed capsule vs plain only (RestrictedPython refuses their imports).
CLASS_WORKLOADS = {
    "dataclasses cell (2 dataclasses per call)": DATACLASSES,
    "namedtuple + Enum cell (1 each per call)": NAMEDTUPLE_ENUM,
}
