"""The gate, specified: every node type classified, reserved names refused, risky accesses
rewritten into guard calls while ordinary ``obj.name`` stays a native attribute load."""

from __future__ import annotations

import ast
import dis
import types

import pytest

from ipycap import Capsule, CapsuleSyntaxError
from ipycap.engine.errors import CapabilityError
from ipycap.engine.gate import GETATTR_HOOK, classified_node_types, gate, source_filename


def _all_node_types():
    seen, todo = set(), [ast.AST]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
    return seen


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _instructions(code):
    for co in _code_objects(code):
        yield from dis.get_instructions(co)


# -- fail closed -------------------------------------------------------------------------------
def test_every_ast_node_type_of_this_python_is_classified():
    known = classified_node_types()
    # Only the parser's own node types: libraries subclass ast.AST too (IPython's tracebacks
    # import executing, whose EnhancedAST never comes out of ast.parse).
    missing = sorted(
        cls.__name__
        for cls in _all_node_types()
        if cls.__module__ == "ast" and cls.__name__ not in known
    )
    assert not missing, f"ast node types the gate has not reviewed: {missing}"


def test_classification_values_are_plain_checked_or_refused():
    assert set(classified_node_types().values()) <= {"plain", "checked", "refused"}


def test_attribute_name_and_matchclass_are_checked_not_plain():
    table = classified_node_types()
    for name in ("Attribute", "Name", "MatchClass"):
        assert table[name] == "checked"


def test_except_star_is_refused_with_reason():
    src = "try:\n    pass\nexcept* ValueError:\n    pass\n"
    with pytest.raises(CapsuleSyntaxError, match=r"except\*"):
        gate(src)


def test_refusal_is_a_syntax_error_and_a_capability_error():
    with pytest.raises(SyntaxError) as info:
        gate("__builtins__")
    assert isinstance(info.value, CapabilityError)
    assert info.value.layer == "gate"


# -- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, name",
    [
        ("__builtins__", "__builtins__"),
        ("x = __import__('os')", "__import__"),
        ("__build_class__", "__build_class__"),
        ("__loader__", "__loader__"),
        ("__spec__", "__spec__"),
        ("_ipycap_getattr(1, 'x')", "_ipycap_getattr"),
        ("def f(__builtins__): pass", "__builtins__"),
        ("import math as __builtins__", "__builtins__"),
        ("from math import pi as _ipycap_x", "_ipycap_x"),
        ("global __builtins__", "__builtins__"),
        ("class __import__: pass", "__import__"),
        ("for __spec__ in (): pass", "__spec__"),
        ("try:\n    pass\nexcept Exception as __builtins__:\n    pass", "__builtins__"),
        ("match 1:\n    case __builtins__:\n        pass", "__builtins__"),
        ("lambda __loader__: 1", "__loader__"),
    ],
)
def test_reserved_names_are_refused_naming_the_name(src, name):
    with pytest.raises(CapsuleSyntaxError) as info:
        gate(src)
    assert name in str(info.value)
    assert isinstance(info.value, SyntaxError)


def test_nfkc_spelling_of_a_reserved_name_is_refused():
    # '𝘣' (MATHEMATICAL SANS-SERIF ITALIC SMALL B) normalises to 'b' in the parser.
    with pytest.raises(CapsuleSyntaxError, match="__builtins__"):
        gate("__𝘣uiltins__")


def test_nfkc_dunder_attribute_is_rewritten_like_the_ascii_one():
    ascii_tree = gate("x.__class__").tree
    fancy = gate("x.__𝘤𝘭𝘢𝘴𝘴__")
    assert fancy.rewrites == 1
    assert ast.dump(fancy.tree) == ast.dump(ascii_tree)
    call = fancy.tree.body[0].value
    assert isinstance(call, ast.Call) and call.func.id == GETATTR_HOOK
    assert call.args[1].value == "__class__"


def test_names_read_are_reported():
    assert {"a", "b", "print"} <= gate("print(a + b)\nc = 1").names
    assert "c" not in gate("c = 1").names


def test_non_str_source_is_refused():
    with pytest.raises(TypeError):
        gate(b"1")


# -- shell escapes and magics --------------------------------------------------------------
@pytest.mark.parametrize("line", ["!ls", "%timeit 1", "   !cat /etc/passwd", "%%bash"])
def test_shell_and_magic_lines_are_refused_with_teaching_message(line):
    with pytest.raises(CapsuleSyntaxError) as info:
        gate(f"x = 1\n{line}\n")
    msg = str(info.value)
    assert "shell escapes" in msg and "magics" in msg
    assert "ordinary cell" in msg  # says what to do instead
    assert info.value.lineno == 2


def test_percent_inside_a_multiline_string_is_fine():
    src = 's = """\n%d items\n!not a shell line\n"""\n'
    gate(src)
    assert Capsule().run(src + "s.count('%')") == 1


def test_modulo_on_a_continuation_line_is_not_a_magic():
    # A line inside brackets that starts with '%' is the modulo operator, valid Python.
    assert Capsule().run("x = 7\ny = (x\n% 4)\ny") == 3


def test_capsule_run_reports_magic_refusal_not_a_plain_syntax_error():
    with pytest.raises(CapsuleSyntaxError, match="magics"):
        Capsule().run("%matplotlib inline\n1")


# -- rewriting and native attribute loads -----------------------------------------------------
def _compiled_cell(source):
    capsule = Capsule()
    body, tail, _names = capsule.compile(source)
    codes = [body] + ([tail] if tail is not None else [])
    return [ins for code in codes for ins in _instructions(code)]


def test_ordinary_attribute_stays_native_load_and_dunder_becomes_guard_call():
    source = (
        "class C:\n"
        "    def m(self):\n"
        "        return obj.name, obj.__class__\n"
        "def f(obj):\n"
        "    obj.method()\n"
        "    return obj.name, obj.__class__\n"
    )
    ins = _compiled_cell(source)
    loads = [(i.opname, i.argval) for i in ins if i.argval in ("name", "method", "__class__")]
    assert ("LOAD_ATTR", "name") in loads
    assert any(op in ("LOAD_METHOD", "LOAD_ATTR") and v == "method" for op, v in loads)
    assert not any(op in ("LOAD_ATTR", "LOAD_METHOD") and v == "__class__" for op, v in loads)
    assert any(i.argval == GETATTR_HOOK for i in ins)
    assert ("LOAD_CONST", "__class__") in [(i.opname, i.argval) for i in ins]


def test_gate_counts_only_risky_rewrites():
    g = gate("a.b.c\nd.__dict__\ne.gi_frame\nf.format\n'{}'.format_map")
    assert g.rewrites == 4


@pytest.mark.parametrize("attr", ["gi_frame", "tb_frame", "f_back", "cr_frame", "format"])
def test_frame_and_format_attributes_are_rewritten(attr):
    call = gate(f"x.{attr}").tree.body[0].value
    assert isinstance(call, ast.Call) and call.func.id == GETATTR_HOOK


def test_rexec_mode_rewrites_every_underscore_attribute():
    assert gate("x._private", rexec=True).rewrites == 1
    assert gate("x._private").rewrites == 0


def test_risky_store_becomes_setattr_and_delete_becomes_delattr():
    tree = gate("x.__dict__ = {}\ndel x.__doc__, y.z").tree
    dumped = ast.dump(tree)
    assert "_ipycap_setattr" in dumped
    assert "_ipycap_delattr" in dumped
    assert "Delete" in dumped  # the plain 'y.z' stays a native delete


@pytest.mark.parametrize(
    "src",
    [
        "a.__class__ = b = 1",  # multiple targets
        "a.__dict__ += 1",  # augmented store
        "a.__x__: int = 1",  # annotated store
        "for a.__class__ in []: pass",
        "with f() as a.__class__: pass",
        "(a.__class__, b) = 1, 2",
        "[x for a.__dict__ in []]",
    ],
)
def test_risky_stores_in_other_positions_are_refused(src):
    with pytest.raises(CapsuleSyntaxError):
        gate(src)


def test_risky_store_on_outside_object_is_refused_at_runtime():
    with pytest.raises(AttributeError):
        Capsule().run("def f(): pass\nx = 1\nx.__class__ = int")


def test_risky_store_on_own_object_works():
    out = Capsule().run("class A: pass\nclass B: pass\na = A()\na.__class__ = B\ntype(a).__name__")
    assert out == "B"


# -- match ---------------------------------------------------------------------------------
def test_positional_class_pattern_refused_with_hint():
    src = "match p:\n    case Point(x, y):\n        pass\n"
    with pytest.raises(CapsuleSyntaxError) as info:
        gate(src)
    assert "positional class patterns" in str(info.value)
    assert "case C(x=x)" in str(info.value)


def test_keyword_class_pattern_works():
    src = (
        "class P:\n    def __init__(self, x): self.x = x\n"
        "match P(3):\n    case P(x=v):\n        r = v\n"
        "r"
    )
    assert Capsule().run(src) == 3


def test_keyword_class_pattern_on_a_risky_attribute_is_refused():
    with pytest.raises(CapsuleSyntaxError, match="__class__"):
        gate("match p:\n    case object(__class__=c):\n        pass\n")


def test_builtin_positional_patterns_like_int_x_are_refused_too():
    with pytest.raises(CapsuleSyntaxError):
        gate("match 1:\n    case int(x):\n        pass\n")


# -- filenames -------------------------------------------------------------------------------
def test_source_filename_is_stable_and_recognisable():
    a = source_filename("x = 1", "cell")
    assert a == source_filename("x = 1", "cell")
    assert a.startswith("<capsule-cell-") and a.endswith(">")
    assert a != source_filename("x = 2", "cell")
    assert "/" not in source_filename("x", "../../etc")


def test_big_int_operators_are_rewritten_only_when_the_right_operand_can_be_big():
    """x ** 2, x ** 0.5 and x << 3 stay native bytecode; x ** n and x << n call the
    pre-check (ipycap/engine/intlimits.py), so does x **= n on a name."""
    from ipycap.engine.gate import gate as run_gate

    for source in ("x ** 2", "x ** 0.5", "x ** -2", "x << 3", "x * 10"):
        assert run_gate(source).rewrites == 0, source
    for source, hook in (
        ("x ** n", "_ipycap_pow"),
        ("x << n", "_ipycap_lshift"),
        ("x **= n", "_ipycap_ipow"),
    ):
        gated = run_gate(source)
        assert gated.rewrites == 1 and hook in ast.dump(gated.tree), source
