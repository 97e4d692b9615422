# ruff: noqa: UP006, UP007, UP045 - the payloads use typing's aliases on purpose (their caches)
"""Trusted hash tables compared with ``==`` (red team 1, "trusted caches compared with =="):
a capsule key whose ``__eq__``/``__hash__`` is capsule code, aimed with a computed hash at
a key trusted code stored, is handed that stored key.  A proxy hashes like its target, so
``hash(type(vault))`` names the raw class.  Each payload below receives the raw ``Vault``
class as plain Python (same process, same caches) and nothing raw in a capsule
(ipycap/engine/caches.py: typing's alias caches; ipycap/engine/hooks.py: the ABC caches and
registries)."""

from __future__ import annotations

import collections.abc
import typing

import pytest

from ipycap import Capsule

from .harness import Vault
from .payloads_boundary import METACLASS_EQ

_META = METACLASS_EQ

#: name -> (what trusted code cached first, what the capsule then does)
PAYLOADS = {
    "typing-list-alias": (lambda: typing.List[Vault], "typing.List[H]"),
    "typing-dict-alias": (
        lambda: typing.Dict[str, Vault],
        "typing.Dict[str, H]",
    ),
    "typing-optional": (
        lambda: typing.Optional[Vault],
        "typing.Optional[H]",
    ),
    "typing-type-alias": (lambda: typing.Type[Vault], "typing.Type[H]"),
    "abc-negative-cache-issubclass": (
        lambda: isinstance(Vault("x"), collections.abc.Sequence),
        "issubclass(H, collections.abc.Sequence)",
    ),
    "abc-negative-cache-isinstance": (
        lambda: isinstance(Vault("x"), collections.abc.Sequence),
        "isinstance(H(), collections.abc.Sequence)",
    ),
    "abc-cache-through-a-class-property": (
        lambda: isinstance(Vault("x"), collections.abc.Sequence),
        "class Liar:\n    @property\n    def __class__(self):\n        return H\n"
        "isinstance(Liar(), collections.abc.Sequence)",
    ),
}


def _run(source: str, capsule: bool):
    vault = Vault("TOKEN")
    if not capsule:
        ns = {"vault": vault}
        exec(compile(source, "<plain>", "exec"), ns)
        return ns["got"]
    c = Capsule(protected={"vault": vault})
    try:
        c.run(source)
    except Exception:  # noqa: BLE001 - a refusal is fine; what got received decides
        pass
    return c.namespace.get("got", [])


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_capsule_key_meets_no_trusted_key(name):
    trusted_first, payload = PAYLOADS[name]
    trusted_first()
    got = _run(_META + payload + "\n", capsule=True)
    assert not [x for x in got if x is Vault], f"{name}: the capsule received the raw class"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_the_same_key_reaches_the_trusted_key_in_plain_python(name):
    trusted_first, payload = PAYLOADS[name]
    trusted_first()
    got = _run(_META + payload + "\n", capsule=False)
    assert [x for x in got if x is Vault], f"{name} is not a real attack"


def test_registering_a_capsule_compared_class_with_an_abc_is_refused():
    """ABC registries are weak sets compared with ``==``; a capsule class with such a
    metaclass never gets there (and its __eq__ sees nothing).  Since red team 10 the
    metaclass itself is refused: classes compare and hash by identity in a capsule, so no
    class-keyed trusted table anywhere asks capsule code (hooks.py, CLASS_IDENTITY)."""
    collections.abc.Sequence.register(Vault)  # trusted code registered its own class
    try:
        c = Capsule(protected={"vault": Vault("TOKEN")})
        with pytest.raises(TypeError, match="classes compare and hash by identity"):
            c.run(_META + "collections.abc.Sequence.register(H)\n")
        assert not [x for x in c.namespace["got"] if x is Vault]
    finally:
        collections.abc.Sequence._abc_registry_clear()


def test_typing_and_abc_answers_are_unchanged_for_capsule_keys():
    """Capsule classes with metaclasses of their own (all a capsule may define: no
    ``__eq__``/``__hash__``) get the right answers from typing and the ABCs."""
    c = Capsule()
    c.run(
        "import collections.abc, typing\n"
        "class M(type):\n    def describe(cls):\n        return cls.__name__\n"
        "class H(collections.abc.Sized, metaclass=type('AM', (M, type(collections.abc.Sized)), {})):\n"
        "    def __len__(self):\n        return 0\n"
        "class P(metaclass=M):\n    pass\n"
        "alias = typing.List[P]\n"
        "answers = (issubclass(H, collections.abc.Sized), isinstance(H(), collections.abc.Sized),"
        " issubclass(P, collections.abc.Sized), isinstance(P(), collections.abc.Iterable))\n"
    )
    assert c.namespace["answers"] == (True, True, False, False)
    assert typing.get_args(c.namespace["alias"]) == (c.namespace["P"],)


_REGISTER = {
    "call": "import collections.abc\nclass A:\n    pass\ncollections.abc.Sequence.register(A)",
    "decorator": "import collections.abc\n@collections.abc.Iterable.register\nclass A:\n    pass",
}


@pytest.mark.parametrize("name", sorted(_REGISTER))
def test_a_capsule_cannot_register_with_a_trusted_abc(name):
    """A trusted ABC's registry is trusted state every later isinstance() consults (I3): a
    capsule class there changes trusted answers for the rest of the session, and its
    metaclass is asked about trusted classes."""
    import collections.abc

    before = (
        {abc_: list(abc_._abc_registry_dump()[0]) for abc_ in (collections.abc.Sequence,)}
        if hasattr(collections.abc.Sequence, "_abc_registry_dump")
        else None
    )
    with pytest.raises(TypeError, match="registry trusted code shares"):
        Capsule().run(_REGISTER[name])
    if before is not None:
        assert {a: list(a._abc_registry_dump()[0]) for a in before} == before
    assert isinstance([], collections.abc.Sized) and isinstance((), collections.abc.Iterable)


def test_a_capsule_registers_with_its_own_abc():
    c = Capsule(grants=[("import", "abc")])
    assert (
        c.run(
            "import abc\nclass B(abc.ABC):\n    pass\nclass A:\n    pass\nB.register(A)\nissubclass(A, B)"
        )
        is True
    )


def test_plain_python_registration_changes_what_trusted_code_is_told():
    import abc

    class Scratch(abc.ABC):  # noqa: B024 - a stand-in for collections.abc.Sequence
        pass

    class A:
        pass

    assert not isinstance(A(), Scratch)
    Scratch.register(A)  # what the capsule did
    assert isinstance(A(), Scratch)  # every later trusted check now answers differently
