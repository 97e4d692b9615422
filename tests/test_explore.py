"""The introspection explorer: what a learner sees when they call ``ipycap.explain(obj)``.

The table must tell the truth in all three columns (raw, proxy, rexec), escape everything it
renders, and never change or drain the object it explains."""

from __future__ import annotations

import html.parser
import itertools
import json

import ipycap
from ipycap.explore import Explanation


class Account:
    """A realistic protected object: public data, private state, a method."""

    def __init__(self):
        self.owner = "ann"
        self._token = "SECRET-TOKEN-42"

    def greet(self):
        return "hi " + self.owner


def _column(expl: Explanation, index: int) -> str:
    return "\n".join(row[index] for row in expl.rows)


def test_rows_cover_every_operation_with_three_columns():
    expl = ipycap.explain(Account(), name="acct")
    ops = [r[0] for r in expl.rows]
    for op in (
        "type(acct)",
        "acct.__class__",
        "dir(acct)",
        "vars(acct)",
        "acct.__dict__",
        "repr(acct)",
        "acct._token",
        "acct.greet.__func__",
        "acct.greet.__self__",
        "acct.greet.__globals__",
        "setattr(acct, 'probe', 1)",
        "isinstance(acct, type(acct))",
        "hash(acct)",
        "acct == acct",
        "iterate acct (first 3)",
    ):
        assert op in ops, op
    assert all(len(r) == 4 and all(isinstance(c, str) for c in r) for r in expl.rows)


def test_proxy_hides_private_state_that_the_raw_object_shows():
    expl = ipycap.explain(Account(), name="acct")
    op, raw, proxy, rexec = expl.row("acct._token")
    assert "SECRET-TOKEN-42" in raw
    assert "CapsuleAttributeError [membrane]" in proxy
    assert "CapsuleAttributeError" in rexec
    # The secret appears nowhere in the capsule columns.
    assert "SECRET" not in _column(expl, 2) + _column(expl, 3)
    _, raw_vars, proxy_vars, _ = expl.row("vars(acct)")
    assert "_token" in raw_vars and "[membrane]" in proxy_vars
    _, raw_dir, proxy_dir, _ = expl.row("dir(acct)")
    assert "2 names (0 underscore): greet, owner" == proxy_dir
    assert "underscore" in raw_dir and not raw_dir.startswith("2 names")
    _, raw_type, proxy_type, _ = expl.row("type(acct)")
    assert raw_type == "<class 'tests.test_explore.Account'>"
    assert proxy_type.startswith("<proxy of")
    assert expl.row("isinstance(acct, type(acct))")[1:] == ("True", "True", "True")


def test_function_globals_are_refused_through_the_capsule():
    def helper(a):
        return a

    expl = ipycap.explain(helper, name="helper")
    _, raw, proxy, rexec = expl.row("helper.__globals__")
    assert raw.startswith("{'__name__'")
    assert "refused" not in raw
    assert proxy.startswith("CapsuleAttributeError [")
    assert rexec.startswith("CapsuleAttributeError [")


def test_rexec_denies_introspection_that_proxy_mode_allows():
    # An exact int crosses the membrane as itself: proxy mode lets capsule code read its
    # class (harmless), rexec mode refuses every underscore name, as rexec did.
    expl = ipycap.explain(5)
    _, raw, proxy, rexec = expl.row("x.__class__")
    assert raw == proxy == "<class 'int'>"
    assert rexec.startswith("CapsuleAttributeError [guard]")
    assert expl.refused[[r[0] for r in expl.rows].index("x.__class__")] == (False, False, True)


def test_explain_never_mutates_the_object():
    acct = Account()
    before = dict(vars(acct))
    expl = ipycap.explain(acct)
    assert vars(acct) == before
    assert not hasattr(acct, "probe")
    assert "not run" in expl.row("setattr(x, 'probe', 1)")[1]
    assert expl.row("setattr(x, 'probe', 1)")[2].startswith("CapsuleTypeError [membrane]")


def test_custom_setattr_is_never_run():
    calls = []

    class Loud:
        def __setattr__(self, name, value):
            calls.append(name)

    expl = ipycap.explain(Loud())
    assert calls == []
    assert "own __setattr__" in expl.row("setattr(x, 'probe', 1)")[1]


def test_iterators_are_not_advanced():
    counter = itertools.count()
    expl = ipycap.explain(counter)
    assert next(counter) == 0
    assert "not run" in expl.row("next(x)")[1]

    def gen():
        yield "first"
        yield "second"

    g = gen()
    expl = ipycap.explain(g)
    assert next(g) == "first"
    _, raw, proxy, rexec = expl.row("x.gi_frame")
    assert raw.startswith("<frame")
    assert proxy.startswith("CapsuleAttributeError")
    assert rexec.startswith("CapsuleAttributeError")


def test_infinite_iterables_give_three_items_per_column():
    nexts = []

    class Endless:
        def __iter__(self):
            def produce():
                for i in itertools.count():
                    nexts.append(i)
                    yield i

            return produce()

    expl = ipycap.explain(Endless())
    _, raw, proxy, rexec = expl.row("iterate x (first 3)")
    assert raw == "[0, 1, 2]"
    assert proxy == rexec == "[0, 1, 2]"
    assert len(nexts) == 9  # three columns, three items each, never a fourth


def test_html_is_a_table_with_every_value_escaped():
    class Hostile:
        def __repr__(self):
            return "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"

    expl = ipycap.explain(Hostile(), name="h")
    page = expl._repr_html_()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page

    class Count(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    parser = Count()
    parser.feed(page)
    assert parser.tags[0] == "table"
    assert parser.tags.count("tr") == len(expl.rows) + 1
    assert parser.tags.count("td") == 4 * len(expl.rows)
    assert set(parser.tags) <= {"table", "caption", "thead", "tbody", "tr", "th", "td", "code"}


def test_plain_text_table_lists_every_operation():
    expl = ipycap.explain({"a": 1}, name="d")
    text = repr(expl)
    assert text.splitlines()[0] == "ipycap.explain(d): a dict"
    for row in expl.rows:
        assert row[0] in text
    assert str(expl) == text
    assert "TypeError: unhashable type: 'dict'" in expl.row("hash(d)")[1]


def test_module_internals_are_hidden_by_the_module_view():
    expl = ipycap.explain(json, name="json")
    op = next(r[0] for r in expl.rows if r[0].startswith("json._") and r[0][6] != "_")
    _, raw, proxy, _ = expl.row(op)
    assert "refused" not in raw and "Capsule" not in raw
    assert proxy.startswith("CapsuleAttributeError")
    assert expl.row("vars(json)")[2].startswith("CapsuleAttributeError")


def test_odd_names_fall_back_to_x():
    expl = ipycap.explain([1, 2], name="not an identifier")
    assert expl.rows[0][0] == "type(x)"


def test_explain_never_compares_a_capsule_setattr_with_the_generic_ones():
    """Regression (red team 2): explain compared a class's __setattr__ with object.__setattr__
    and friends using ``in``, so a capsule object standing there was handed the generic
    setattr slot wrappers through its __eq__."""
    from ipycap import explain

    seen = []

    class Spy:
        def __eq__(self, other):
            seen.append(other)
            return False

        __hash__ = object.__hash__

    class Odd:
        pass

    Odd.__setattr__ = Spy()
    explain(Odd(), name="odd")
    assert seen == []
