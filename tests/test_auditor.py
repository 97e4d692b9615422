"""The boundary auditor itself: it sees raw trusted objects crossing into capsule frames at
Python-level calls and returns, and it lets through what capsule code may hold (I2)."""

from __future__ import annotations

import json

from ipycap import Capsule
from ipycap.engine import auditor


class Secret:
    def __init__(self):
        self._token = "t"


def test_trusted_code_calling_capsule_code_with_a_raw_object_is_seen():
    f = Capsule().run("def f(a):\n    return a\nf")
    with auditor.watching() as seen:
        f(Secret())
    assert seen and "raw" in seen[0][1] and "Secret" in seen[0][1]


def test_a_raw_module_returned_into_a_capsule_frame_is_seen():
    def leak():
        return json

    c = Capsule(namespace={"leak": leak})  # as if a trusted helper handed out a module
    with auditor.watching() as seen:
        c.run("leak()")
    assert any("raw module 'json'" in why for _, why in seen)


def test_module_globals_are_seen_even_inside_containers():
    def leak():
        return [1, {"g": vars(json)}]

    c = Capsule(namespace={"leak": leak})
    with auditor.watching() as seen:
        c.run("leak()")
    assert any("module-level dict" in why for _, why in seen)


def test_what_capsule_code_may_hold_passes_unseen():
    c = Capsule(protected={"s": Secret(), "data": {"a": [1, 2]}}, grants=[("import", "csv")])
    with auditor.watching() as seen:
        c.run(
            "import json, copy, collections, csv\n"
            "class A:\n    def __init__(self, x):\n        self.x = x\n"
            "a = copy.deepcopy(A([1, (2, 3)]))\n"
            "json.loads('{\"k\": [1]}', object_hook=lambda d: d)\n"
            "collections.Counter('abc').most_common(1)\n"
            "sorted([A(2), A(1)], key=lambda o: o.x)\n"
            "(s, data['a'], len(data), type(s), slice(1, 2))"
        )
    assert seen == []


def test_verdicts_name_what_is_wrong():
    import sys

    assert auditor.verdict(1) is None
    assert auditor.verdict((1, "a", slice(None, 2))) is None
    assert "raw module" in auditor.verdict(sys)
    assert "frame" in auditor.verdict(sys._getframe()).lower()
    assert "Secret" in auditor.verdict(Secret)


def test_objects_of_a_library_a_granted_profile_loads_pass_and_others_are_seen():
    """pandas hands back numpy scalars and scikit-learn numpy arrays: granting the library
    trusts what its profile loads (numpy), so those cross unseen; with no grant covering
    numpy the same raw object is still seen."""
    import numpy as np

    def scalar():  # (numpy's numeric scalars cross as plain values since the libraries work)
        return np.arange(3)

    with auditor.watching() as seen:
        Capsule(namespace={"scalar": scalar}).run("scalar()")
    assert any("raw numpy.ndarray" in why for _, why in seen)
    with auditor.watching() as seen:
        Capsule(namespace={"scalar": scalar}, grants=[("import", "pandas")]).run("scalar()")
    assert seen and not any("numpy" in why for _, why in seen)  # only the raw 'scalar' itself


def test_a_cython_function_is_judged_by_its_own_module():
    """Cython's function type keeps __module__ per function (a member descriptor on the
    type): the auditor reads the function's, so a granted library's function passes and the
    same function with no grant is seen, by its module's name."""
    import pyarrow._parquet as native

    fn = next(v for v in vars(native).values() if type(v).__name__ == "cython_function_or_method")
    with auditor.watching() as seen:
        Capsule(namespace={"give": lambda: fn}).run("give()")
    module = fn.__module__
    assert any(f"raw {module}.cython_function_or_method" in why for _, why in seen)
    with auditor.watching() as seen:
        Capsule(namespace={"give": lambda: fn}, grants=[("import", "pyarrow")]).run("give()")
    assert seen and not any("raw pyarrow" in why for _, why in seen)  # only the raw 'give' itself


def test_deeply_nested_data_is_judged_without_recursing_past_the_limit():
    """The kernel's crasher tests leave a million-deep tuple in the namespace (list of nested
    zips): the auditor judges containers depth-bounded, so no auditor error; a raw module a
    few levels down is still seen."""
    c = Capsule()
    c.run("x = (1,)\nfor _ in range(200000):\n    x = (x,)\n")
    with auditor.watching() as seen:
        c.run("1")
    assert seen == []

    def leak():
        return (1, ((json,),))

    with auditor.watching() as seen:
        Capsule(namespace={"leak": leak}).run("leak()")
    assert any(
        "tuple holding tuple holding tuple holding the raw module 'json'" in why for _, why in seen
    )
