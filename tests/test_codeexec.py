"""The capsule's frame-relative builtins (exec, eval, globals, locals): every ordinary idiom
works as in plain Python, and a trusted function calling them back gets a refusal (I1), and
the builtins a capsule namespace holds carry no authority (I4)."""

from __future__ import annotations

import pytest

from ipycap import Capsule, CapsuleAttributeError, CapsuleTypeError

IDIOMS = {
    "eval-in-function-sees-locals": ("def f(a):\n    return eval('a + 1')\nf(41)", 42),
    "exec-in-function-reads-locals": (
        "def f(a):\n    ns = {'a': a}\n    exec('r = a * 2', ns)\n    return ns['r']\nf(21)",
        42,
    ),
    "locals-in-function": ("def f(a, b=2):\n    return sorted(locals())\nf(1)", ["a", "b"]),
    "lambda-eval": ("g = lambda x: eval('x * 3')\ng(14)", 42),
    "comprehension-eval": ("[eval('i') for i in range(3)]", [0, 1, 2]),
    "generator-locals": ("def gen(n):\n    yield sorted(locals())\nnext(gen(1))", ["n"]),
    "class-body-locals": (
        "class C:\n    x = 1\n    names = sorted(k for k in locals() if not k.startswith('__'))\n"
        "C.names",
        ["x"],
    ),
    "format-with-locals": ("def f(a):\n    return '{a}!'.format(**locals())\nf('hi')", "hi!"),
    "eval-sees-closure-variable": (
        "def outer():\n    v = 5\n    def inner():\n        return eval('v', globals(), {'v': v})\n"
        "    return inner()\nouter()",
        5,
    ),
    "eval-with-explicit-namespaces": ("eval('a + b', {'a': 1}, {'b': 2})", 3),
    "exec-defines-a-function-in-a-fresh-dict": (
        "ns = {}\nexec('def sq(x):\\n    return x * x', ns)\nns['sq'](7)",
        49,
    ),
    "globals-reads-a-module-name": ("x = 40\nglobals()['x'] + 2", 42),
    "exec-at-top-level-binds-names": ("exec('y = 42')\ny", 42),
    "eval-of-a-compiled-handle": ("c = compile('6 * 7', 'x', 'eval')\neval(c)", 42),
    "exec-in-a-method": (
        "class K:\n    def run(self):\n        ns = {'self': self}\n"
        "        exec('self.v = 42', ns)\n        return self.v\nK().run()",
        42,
    ),
}


@pytest.mark.parametrize("source,expected", IDIOMS.values(), ids=list(IDIOMS))
def test_ordinary_exec_eval_locals_idioms_work(source, expected):
    assert Capsule().run(source) == expected


TRAMPOLINES = {
    "copy-calls-exec": (
        "import copy\nclass R:\n    def __reduce_ex__(self, p):\n"
        "        return (exec, ('x = 1',))\ncopy.copy(R())"
    ),
    "copy-calls-globals": (
        "import copy\nclass R:\n    def __reduce_ex__(self, p):\n"
        "        return (globals, ())\ncopy.copy(R())"
    ),
    "copy-calls-locals": (
        "import copy\nclass R:\n    def __reduce_ex__(self, p):\n"
        "        return (locals, ())\ncopy.copy(R())"
    ),
    "template-defaultdict-eval": (
        "import collections, functools, string\n"
        "d = collections.defaultdict(functools.partial(eval, '1'))\n"
        "string.Template('$x').substitute(d)"
    ),
    "json-hook-eval": (
        "import functools, json\njson.loads('{}', object_hook=functools.partial(eval, '1', None))"
    ),
    "reduce-calls-eval": (
        "import functools\nclass R:\n    def __reduce_ex__(self, p):\n"
        "        return (eval, ('1',))\nimport copy\ncopy.deepcopy(R())"
    ),
}


@pytest.mark.parametrize("source", TRAMPOLINES.values(), ids=list(TRAMPOLINES))
def test_trusted_code_calling_a_frame_relative_builtin_is_refused(source):
    with pytest.raises(CapsuleTypeError, match="called by code outside this capsule"):
        Capsule().run(source)


def test_builtins_module_of_a_namespace_is_read_only_and_has_no_engine_state():
    c = Capsule()
    assert c.run("b = globals()['__builtins__']\nb.len([1, 2])") == 2
    for attempt in (
        "b._ipycap_context",
        "getattr(b, '_ipycap_context')",
        "b.__dict__",
        "vars(b)",
    ):
        with pytest.raises(CapsuleAttributeError):
            c.run(f"b = globals()['__builtins__']\n{attempt}")
    for attempt in ("b.len = None", "del b.len", "b['len'] = None", "setattr(b, 'open', 1)"):
        with pytest.raises((CapsuleTypeError, TypeError)):
            c.run(f"b = globals()['__builtins__']\n{attempt}")
    assert c.run("len([1])") == 1  # nothing changed


def test_exec_refuses_a_namespace_with_the_real_builtins():
    """A trusted module's globals (real builtins) is never a place to run capsule code."""
    import json

    from ipycap.engine import auditor

    c = Capsule(namespace={"g": vars(json)})  # as if a raw module dict had leaked
    with auditor.watching() as seen:  # (a deliberate leak: the auditor flags it)
        with pytest.raises(CapsuleTypeError, match="belongs to code outside the capsule"):
            c.run("exec('x = 1', g)")
    assert seen
    assert "x" not in vars(json)
