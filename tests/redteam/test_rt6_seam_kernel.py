"""Red team rt6-seam, in the capsule kernel: the tqdm stream finding of test_rt6_seam.py
reaches the kernel's own state (its session key) and a file outside the kernel's ceiling.
FAILS while the finding stands."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import OUTSIDE, execute, kernelspecs, start_kernel  # noqa: F401

pytestmark = pytest.mark.kernel

PAYLOAD = """
import tqdm
stream = tqdm.tqdm(total=1).fp._wrapped      # sys.stderr of the cell: ipycap's _CellStream
ctx = stream._run.context                    # the capsule's CapsuleContext
cap = ctx.grants[0]
ctx.grants.append(type(cap)(ctx.registry, 'cap-x', 'read', '/', 'config', 'session'))
out = stream
while hasattr(out, '_stream'):
    out = out._stream                        # ProcessStream -> ipykernel's OutStream
print('KEY', out.session.key.hex())
print('SECRET', open(SECRET).read())
"""


@pytest.fixture
def kc(kernelspecs):  # noqa: F811 (the kernel suite's session fixture, imported)
    km, kc = start_kernel(kernelspecs["plain"])
    reply, _, prompts = execute(kc, "%capsule request import tqdm", stdin_answer="y")
    assert reply["status"] == "ok" and prompts, reply
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_tqdm_stream_gives_the_kernel_session_key_and_an_outside_file(kc):
    """I4/I2 in the kernel: a granted library's default stream (sys.stderr) is ipycap's own
    _CellStream, which carries the run's context; past it, ipykernel's OutStream (session,
    signing key) and a grant beyond the kernel's ceiling."""
    km, client = kc
    code = f"SECRET = {str(OUTSIDE / 'secret.txt')!r}\n" + PAYLOAD
    _, outputs, _ = execute(client, code)
    text = "".join(c.get("text", "") for t, c in outputs if t == "stream")
    assert km.session.key.hex() not in text, "the capsule read the kernel's signing key"
    assert "OUTSIDE-SECRET" not in text, "the capsule read a file outside the kernel's ceiling"
