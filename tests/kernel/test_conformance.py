"""jupyter_kernel_test's conformance suite against the capsule kernel, plain and confined.

Every sample attribute is set, in the idioms a notebook user types, and the run must have
skipped nothing: a subclass with only ``kernel_name`` set passes 1 test and skips 11.  The
suites are run by unittest inside one pytest test each (``__test__ = False`` keeps pytest
from collecting them a second time), so a skip fails the test.
"""

from __future__ import annotations

import unittest

import jupyter_kernel_test as jkt
import pytest

pytestmark = pytest.mark.kernel


class CapsuleKernelTests(jkt.KernelTests):
    __test__ = False
    kernel_name = "capsule-test"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys\nprint('oops', file=sys.stderr)"
    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import", "matches": {"import"}},
        {"text": "str.isdig", "matches": {"str.isdigit"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n    return x\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):", "for i in range(3):"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "print?"
    code_generate_error = "raise ValueError('this cell fails')"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'hello, ' + 'world'", "result": "'hello, world'"},
        {"code": "sorted({3, 1, 2})", "result": "[1, 2, 3]"},
    ]
    code_display_data = [
        {
            "code": "from IPython.display import display\ndisplay(3 + 4)",
            "mime": "text/plain",
        },
        {
            "code": "from IPython.display import display, Markdown\ndisplay(Markdown('*hi*'))",
            "mime": "text/plain",
        },
    ]
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output\nprint('x')\nclear_output()"

    def test_history(self) -> None:
        """The tail and search parts of the base check (its 'range' part cannot pass on any
        IPython-based kernel: IPython reports the current session as 0)."""
        codes = [s["code"] for s in self.code_execute_result]
        n = len(codes)
        reply = self.history_helper(codes, output=False, raw=True, hist_access_type="tail", n=n)
        self.assertEqual(codes, [h[2] for h in reply["content"]["history"]])
        reply = self.history_helper(codes, output=True, raw=True, hist_access_type="tail", n=n)
        self.assertEqual(len(reply["content"]["history"][0][2]), 2)
        pattern = self.code_history_pattern
        reply = self.history_helper(
            codes, output=False, raw=True, hist_access_type="search", pattern=pattern
        )
        self.assertGreaterEqual(len(reply["content"]["history"]), 1)
        reply = self.history_helper(
            codes, output=False, raw=True, hist_access_type="search", pattern=pattern, unique=True
        )
        self.assertEqual(len(reply["content"]["history"]), 1)
        reply = self.history_helper(
            codes, output=False, raw=True, hist_access_type="search", pattern=pattern, n=3
        )
        self.assertEqual(len(reply["content"]["history"]), 3)


class ConfinedCapsuleKernelTests(CapsuleKernelTests):
    __test__ = False
    kernel_name = "capsule-confined-test"


def _run(case: type[unittest.TestCase]) -> None:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    expected = suite.countTestCases()
    result = unittest.TestResult()
    suite.run(result)
    problems = [f"{t.id()}:\n{tb}" for t, tb in result.failures + result.errors]
    assert not problems, "\n\n".join(problems)
    assert not result.skipped, f"skipped: {[(t.id(), why) for t, why in result.skipped]}"
    assert result.testsRun == expected >= 12


def test_conformance(kernelspecs):
    _run(CapsuleKernelTests)


def test_conformance_confined(kernelspecs):
    _run(ConfinedCapsuleKernelTests)
