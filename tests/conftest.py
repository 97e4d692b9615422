"""Test-wide isolation: HOME, IPYTHONDIR and JUPYTER_* point at a temporary tree, so no test
touches the real home or the machine's Jupyter configuration (set before anything imports
IPython or jupyter_core, and inherited by every kernel the tests start)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_ROOT = tempfile.mkdtemp(prefix="ipycap-tests-")
# The scratch tree goes when the run ends (registered first, so it runs after IPython's own
# atexit work, which still writes its history under it): nothing is left in TMPDIR.
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
for _var, _sub in {
    "HOME": "home",
    "IPYTHONDIR": "home/.ipython",
    "JUPYTER_CONFIG_DIR": "home/.jupyter",
    "JUPYTER_DATA_DIR": "home/.local/share/jupyter",
    "JUPYTER_RUNTIME_DIR": "home/.local/share/jupyter/runtime",
}.items():
    _path = os.path.join(_ROOT, _sub)
    os.makedirs(_path, exist_ok=True)
    os.environ[_var] = _path
os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
os.environ.pop("JUPYTER_PATH", None)

import pytest  # noqa: E402

from ipycap.engine import auditor  # noqa: E402

if auditor.enabled():
    # The boundary auditor's pass (make test-audit): kernels the tests start inherit the
    # switch and append what they see to this log (set after ipycap is imported, so this
    # process keeps its own violations in auditor.violations), checked after each test and
    # when the session ends.
    os.environ[auditor.LOG_ENV] = os.path.join(_ROOT, "audit.log")
_KERNEL_LOG = {"read": 0}


def _new_kernel_violations() -> list[str]:
    """Lines kernels appended to the audit log since the last look."""
    log = os.environ.get(auditor.LOG_ENV)
    if not log or not os.path.exists(log):
        return []
    with open(log, "rb") as f:
        f.seek(_KERNEL_LOG["read"])
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]
    _KERNEL_LOG["read"] += len(complete)
    return complete.decode("utf-8", "replace").splitlines()


@pytest.fixture
def test_home():
    """The isolated home directory all tests share."""
    return os.environ["HOME"]


@pytest.fixture
def canary(tmp_path):
    """A secret file outside every grant; payloads aim at it and must never read it."""
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    path = secret_dir / "secret.txt"
    token = "CANARY-" + os.urandom(8).hex()
    path.write_text(token)
    return path, token


@pytest.fixture(autouse=True)
def _boundary_audit(request):
    """In the auditor's pass, a test fails when a raw trusted object crossed into capsule
    code while it ran (ipycap.engine.auditor)."""
    if not auditor.enabled():
        yield
        return
    start = len(auditor.violations)
    _new_kernel_violations()  # what an earlier test's kernel wrote late is not this test's
    yield
    seen = [f"{where}: {why}" for where, why in auditor.violations[start:]]
    seen += [f"(in a kernel) {line}" for line in _new_kernel_violations()]
    if not auditor.watching_this_thread():  # the rest of the run would go unwatched
        auditor.install()
        seen.append("the auditor was switched off on the test's thread (sys.setprofile)")
    if seen:
        lines = "\n".join(f"  {line}" for line in seen[:10])
        pytest.fail(f"the boundary auditor saw {len(seen)} crossing(s) outside I2:\n{lines}")


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is not a pass: the suite fails if anything was skipped (the machines
    this project targets have everything the tests need; .ci/run installs it)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    seen = _new_kernel_violations()  # written by kernels after their last test ended
    if seen and reporter:
        reporter.write_line(
            f"the boundary auditor saw {len(seen)} crossing(s) outside I2 in kernels after "
            "their tests ended:\n" + "\n".join(seen[:20]),
            red=True,
        )
        session.exitstatus = 1
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0 and not os.environ.get("IPYCAP_ALLOW_SKIPS"):
        reporter.write_line(
            f"{len(skipped)} test(s) were skipped; a skip is not a pass "
            "(set IPYCAP_ALLOW_SKIPS=1 to accept them on a machine that lacks something)",
            red=True,
        )
        session.exitstatus = 1


def pytest_configure(config):
    if not config.option.basetemp:  # tmp_path folders inside the scratch tree, not TMPDIR's
        config.option.basetemp = os.path.join(_ROOT, "pytest")
