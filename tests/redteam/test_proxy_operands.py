"""Every operand a proxy forwards to its target crosses the membrane (exported).

``Proxy.__round__`` passed ``ndigits`` to the trusted target unchanged, so the target's code
met the capsule object itself, not a reverse proxy, and a comparison inside handed the
capsule's ``__eq__`` the trusted value it compared with (red team 1, finding 11).  As plain
Python the capsule's ``__eq__`` receives the private pin.
"""

import secrets

import pytest

from ipycap import Capsule

SPY = """
LOOT = []
class N:
    def __eq__(self, other):
        LOOT.append(other)
        return False
    def __hash__(self):
        return 1
    def __index__(self):
        return 2
"""

#: operator forms whose second operand reaches the target's own method
OPERATIONS = {
    "round": "round(m, N())",
    "divmod": "divmod(m, N())",
    "pow": "pow(m, N())",
    "getitem": "m[N()]",
    "contains": "N() in m",
    "eq": "m == N()",
    "lt": "m < N()",
}


def _target(token):
    class Money:
        def __init__(self):
            self._pin = token

        def __round__(self, ndigits=None):
            return 12.3 if ndigits == self._pin else round(12.3456, ndigits)

        def __divmod__(self, other):
            return (1, 0) if other == self._pin else (0, 1)

        def __pow__(self, other, mod=None):
            return 1 if other == self._pin else 0

        def __getitem__(self, key):
            return 1 if key == self._pin else 0

        def __contains__(self, item):
            return item == self._pin

        def __eq__(self, other):
            return other == self._pin

        def __lt__(self, other):
            return other == self._pin

        __hash__ = object.__hash__

    return Money()


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operands_reach_the_target_as_reverse_proxies(name):
    token = secrets.token_hex(16)
    c = Capsule(protected={"m": _target(token)})
    try:
        c.run(SPY + OPERATIONS[name])
    except Exception:  # noqa: BLE001 - a refusal also keeps the pin
        pass
    assert token not in repr(c.run("LOOT")), f"{name}: the capsule's __eq__ got the pin"


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_plain_python_hands_the_pin_to_the_operand(name):
    token = secrets.token_hex(16)
    ns = {"m": _target(token)}
    exec(SPY + OPERATIONS[name], ns)
    assert token in repr(ns["LOOT"])
