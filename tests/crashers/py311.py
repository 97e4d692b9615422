"""Interpreter crashers of CPython 3.11 that capsule code can reach: each must leave the session
alive (the shell or kernel answers the next cell, the process exits 0).

Sources: the report of issue 16 (nested iterators segfault, rc 139, and their dealloc), CPython's
``Lib/test/crashers`` of the 3.11 branch and its issue tracker.  What those list and a capsule
cannot reach is named with the reason, so a reviewer sees the whole list was read:

* ``bogus_code_obj.py``, ``null_code_obj.py`` (``types.CodeType``/``code.replace``): no code
  constructor in a capsule (the guard refuses ``__code__`` and ``types`` is not importable);
* ``gc_inspection.py``, ``underlying_dict.py``, ``mutation_inside_cyclegc.py``: need ``gc``
  (denied import);
* ``trace_at_recursion_limit.py``, ``recursive_call.py``, ``recursion_limit_too_high.py``: need
  ``sys.settrace``/``sys.setrecursionlimit`` (not in the capsule's ``sys`` view);
* ``infinite_loop_re.py``: not a crash but a regex that backtracks for hours in C; the timeout
  cannot stop it (see ipycap/engine/limits.py), so it is not run here.

Each entry is (name, source).  The source builds the structure and then uses it, drops it, or
leaves it in the capsule's namespace (freed when the cell's namespace is cleared).
"""

DEPTH = 1_000_000

_NEST = """
import itertools
x = iter([1])
for _ in range({depth}):
    x = {wrap}
{use}
"""

_WRAPS = {
    "map": "map(abs, x)",
    "filter": "filter(None, x)",
    "zip": "zip(x)",
    "chain": "itertools.chain(x)",
    "chain_from_iterable": "itertools.chain.from_iterable([x])",
    "islice": "itertools.islice(x, None)",
    "enumerate": "map(lambda p: p[1], enumerate(x))",
    "starmap": "itertools.starmap(lambda v: v, zip(x))",
    "takewhile": "itertools.takewhile(bool, x)",
    "dropwhile": "itertools.dropwhile(lambda v: False, x)",
    "compress": "itertools.compress(x, itertools.repeat(1))",
    "accumulate": "itertools.accumulate(x)",
    "zip_longest": "itertools.zip_longest(x)",
    "pairwise_like": "itertools.islice(itertools.zip_longest(x, ()), None)",
}

_USES = {
    "list": "result = list(x)",
    "next": "result = next(x, None)",
    "del": "del x",
    "kept": "",  # left in the namespace: freed with it
}

CRASHERS: list[tuple[str, str]] = []
for _wrap_name, _wrap in _WRAPS.items():
    for _use_name, _use in _USES.items():
        if _use_name in ("next", "kept") and _wrap_name not in ("map", "filter", "zip", "chain"):
            continue  # the dealloc and next paths are the same C recursion for the others
        CRASHERS.append(
            (
                f"nested-{_wrap_name}-{_use_name}",
                _NEST.format(depth=DEPTH, wrap=_wrap, use=_use),
            )
        )

CRASHERS += [
    # Deep C recursion in dealloc of other containers that do not use the trashcan.
    (
        "nested-reversed-list",
        "x = [1]\nfor _ in range(DEPTH):\n    x = reversed([x])\nresult = list(x)\ndel x".replace(
            "DEPTH", str(DEPTH)
        ),
    ),
    # The compiler/parser on deeply nested source (gh-issues on compiler recursion).
    (
        "deep-unary-eval",
        "try:\n    eval('-' * 200000 + '1')\nexcept (RecursionError, SyntaxError, MemoryError):\n"
        "    pass",
    ),
    (
        "deep-parentheses-compile",
        "try:\n    compile('(' * 100000 + ')' * 100000, 'c', 'eval')\n"
        "except (RecursionError, SyntaxError, MemoryError):\n    pass",
    ),
    # Python-level recursion and generators: bounded by the recursion limit.
    (
        "recursive-function",
        "def f(n):\n    return f(n + 1)\ntry:\n    f(0)\nexcept RecursionError:\n    pass",
    ),
    (
        "nested-generators",
        "g = iter([1])\nfor _ in range(DEPTH):\n    g = (v for v in g)\n"
        "try:\n    list(g)\nexcept RecursionError:\n    pass\ndel g".replace("DEPTH", str(DEPTH)),
    ),
    # repr/str of deeply nested containers (guarded by Py_EnterRecursiveCall).
    (
        "deep-list-repr",
        "x = []\nfor _ in range(DEPTH):\n    x = [x]\ntry:\n    repr(x)\nexcept RecursionError:\n"
        "    pass\ndel x".replace("DEPTH", str(DEPTH)),
    ),
    (
        "deep-dict-json",
        "import json\nx = {}\nfor _ in range(DEPTH):\n    x = {'a': x}\ntry:\n    json.dumps(x)\n"
        "except RecursionError:\n    pass\ndel x".replace("DEPTH", str(DEPTH)),
    ),
    # A huge repetition (C memset of terabytes) and int->str (3.11's digit limit).
    (
        "huge-repetition",
        "try:\n    'a' * 10**13\nexcept MemoryError:\n    pass",
    ),
    (
        "int-str-digits",
        "try:\n    str(10**100000)\nexcept ValueError:\n    pass",
    ),
]
