"""The library matrix (tests/library_cases.py) in the capsule kernel, through jupyter_client:
grants come from '%capsule request' answered by the human, the packages are the real ones."""

from __future__ import annotations

import pytest

from tests.library_cases import CANARY, CSV, REFUSED, WORKS

from .conftest import OUTSIDE, WORKDIR, execute, start_kernel

pytestmark = pytest.mark.kernel

PACKAGES = sorted(
    {p for case in (*WORKS.values(), *REFUSED.values()) for p in case[0].split(",") if p}
)


@pytest.fixture(scope="module")
def kc(kernelspecs):
    """One capsule kernel, granted every library of the matrix and the data folder."""
    data = WORKDIR / "data"
    data.mkdir(exist_ok=True)
    (data / "t.csv").write_text(CSV)
    for extra in ("out.csv", "plot.png", "i.png"):
        (data / extra).unlink(missing_ok=True)
    km, kc = start_kernel(kernelspecs["plain"])
    for kind, target in [("read", str(data)), ("write", str(data))] + [
        ("import", p) for p in PACKAGES
    ]:
        reply, _, prompts = execute(kc, f"%capsule request {kind} {target}", stdin_answer="y")
        assert reply["status"] == "ok" and prompts, (kind, target, reply)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _result(outputs):
    return [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"]


KERNEL_WORKS = sorted(WORKS)


@pytest.mark.parametrize("name", KERNEL_WORKS)
def test_library_operation_works_in_the_capsule_kernel(kc, name):
    _, _, source, expected = WORKS[name]
    if name == "pathlib-list-granted-folder":
        source = source.replace("sorted(p.name", "sorted(n for n in [p.name").replace(
            ".iterdir())", ".iterdir()] if n == 't.csv')"
        )
    reply, outputs, _ = execute(kc, source, timeout=60)
    assert reply["status"] == "ok", (name, reply.get("evalue"))
    assert _result(outputs) == [expected]


@pytest.mark.parametrize("name", sorted(CANARY))
def test_payload_at_the_canary_is_refused_in_the_kernel(kc, name):
    _, template, words = CANARY[name]
    secret = OUTSIDE / "secret.txt"
    reply, outputs, _ = execute(kc, template.format(canary=str(secret), outside=str(OUTSIDE)))
    assert reply["status"] == "error" and words in reply["evalue"], (name, reply.get("evalue"))
    assert "OUTSIDE-SECRET" not in str(outputs) + reply["evalue"]


@pytest.mark.parametrize("name", sorted(n for n in REFUSED if n != "pyarrow-needs-own-grant"))
def test_profile_refusal_in_the_kernel(kc, name):
    _, source, words = REFUSED[name]  # (the kernel was granted pyarrow itself)
    reply, _, _ = execute(kc, source.format())
    assert reply["status"] == "error", name
    assert words in reply["evalue"] or words in "\n".join(reply["traceback"]), reply["evalue"]
