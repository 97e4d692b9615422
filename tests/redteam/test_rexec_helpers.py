"""rexec mode: the guarded stdlib helpers decide with the calling capsule's rules.

``operator.attrgetter``/``methodcaller`` and ``functools.update_wrapper`` are guarded
stand-ins shared by every capsule in the process.  They used to decide with proxy-mode rules
whatever the capsule's mode, so a rexec capsule (no underscore introspection anywhere) got
``(1).__class__.__mro__`` through ``operator.attrgetter`` although ``(1).__class__`` itself
is refused (red team 1, finding 17).  As plain Python each payload returns the value.
"""

import pytest

from ipycap import Capsule
from ipycap.engine.errors import CapabilityError

PAYLOADS = {
    "attrgetter-dotted": "import operator\noperator.attrgetter('__class__.__mro__')(1)",
    "attrgetter-several": "import operator\noperator.attrgetter('real', '__class__')(1)",
    "attrgetter-private-own": (
        "import operator\nclass A:\n    _k = 5\noperator.attrgetter('_k')(A())"
    ),
    "methodcaller-dunder": "import operator\noperator.methodcaller('__reduce_ex__', 2)(1)",
    "_operator-attrgetter": "import _operator\n_operator.attrgetter('__class__')(1)",
    "update_wrapper-custom-name": (
        "import functools\n"
        "def w(): pass\n"
        "class Src:\n    _secret = 1\n"
        "functools.update_wrapper(w, Src, assigned=('_secret',))\n"
        "w._secret"
    ),
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_rexec_helpers_refuse_underscore_names(name):
    with pytest.raises(CapabilityError, match="rexec"):
        Capsule(mode="rexec").run(PAYLOADS[name])


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_the_same_payloads_reach_their_value_as_plain_python(name):
    ns: dict = {}
    src = PAYLOADS[name]
    head, _, last = src.rpartition("\n")
    exec(head, ns)
    assert eval(last, ns) is not None


def test_proxy_mode_keeps_its_rules_for_the_same_helpers():
    c = Capsule()
    assert c.run("import operator\noperator.attrgetter('__class__.__name__')(1)") == "int"
    assert c.run("import operator\nclass A:\n    _k = 5\noperator.attrgetter('_k')(A())") == 5


def test_functools_wraps_still_works_in_rexec_mode():
    src = (
        "import functools\n"
        "def deco(f):\n"
        "    @functools.wraps(f)\n"
        "    def inner(*a):\n"
        "        return f(*a) + 1\n"
        "    return inner\n"
        "@deco\n"
        "def double(x):\n"
        "    '''Twice x.'''\n"
        "    return 2 * x\n"
        "(double(3), double.__name__ if False else 'ok')"
    )
    assert Capsule(mode="rexec").run(src) == (7, "ok")
