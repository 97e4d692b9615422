"""The tripwire (DESIGN.md layer 5): every audit event of this Python is classified, and
effects done *for* a capsule (by a library, by trusted code calling a stored callback, by a
``__del__`` after the cell ended) obey the capsule's grants.

The event inventory comes from three independent sources, so a new Python's new event
fails here until someone classifies it: CPython 3.11's documented audit events table, the
``sys.audit("...")`` calls in this Python's standard library, and the event-like strings
compiled into this Python's C code (libpython and lib-dynload).
"""

from __future__ import annotations

import gc
import glob
import os
import re
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from ipycap import Capsule
from ipycap.engine import tripwire

#: The names in CPython 3.11's "Audit events table" (Doc/library/audit_events.rst and the
#: ``audit-event`` directives it collects), including the internal-only table.
DOCUMENTED_311 = """array.__new__ builtins.breakpoint builtins.id builtins.input
builtins.input/result code.__new__ compile cpython.PyInterpreterState_Clear
cpython.PyInterpreterState_New cpython._PySys_ClearAuditHooks cpython.run_command
cpython.run_file cpython.run_interactivehook cpython.run_module cpython.run_startup
cpython.run_stdin ctypes.addressof ctypes.call_function ctypes.cdata ctypes.cdata/buffer
ctypes.create_string_buffer ctypes.create_unicode_buffer ctypes.dlopen ctypes.dlsym
ctypes.dlsym/handle ctypes.get_errno ctypes.get_last_error ctypes.seh_exception
ctypes.set_errno ctypes.set_exception ctypes.set_last_error ctypes.string_at
ctypes.wstring_at ctypes.PyObj_FromPtr ensurepip.bootstrap exec fcntl.fcntl fcntl.flock
fcntl.ioctl fcntl.lockf ftplib.connect ftplib.sendcmd function.__new__ gc.get_objects
gc.get_referents gc.get_referrers glob.glob glob.glob/2 http.client.connect
http.client.send imaplib.open imaplib.send import marshal.dumps marshal.load marshal.loads
mmap.__new__ msvcrt.get_osfhandle msvcrt.locking msvcrt.open_osfhandle nntplib.connect
nntplib.putline object.__delattr__ object.__getattr__ object.__setattr__ open
os.add_dll_directory os.chdir os.chflags os.chmod os.chown os.exec os.fork os.forkpty
os.fwalk os.getxattr os.kill os.killpg os.link os.listdir os.listxattr os.lockf os.mkdir
os.posix_spawn os.putenv os.remove os.removexattr os.rename os.rmdir os.scandir
os.setxattr os.spawn os.startfile os.startfile/2 os.symlink os.system os.truncate
os.unsetenv os.utime os.walk pathlib.Path.glob pathlib.Path.rglob pdb.Pdb
pickle.find_class poplib.connect poplib.putline pty.spawn resource.prlimit
resource.setrlimit setopencode shutil.chown shutil.copyfile shutil.copymode
shutil.copystat shutil.copytree shutil.make_archive shutil.move shutil.rmtree
shutil.unpack_archive signal.pthread_kill smtplib.connect smtplib.send socket.__new__
socket.bind socket.connect socket.getaddrinfo socket.gethostbyaddr socket.gethostbyname
socket.gethostname socket.getnameinfo socket.getservbyname socket.getservbyport
socket.sendmsg socket.sendto socket.sethostname sqlite3.connect sqlite3.connect/handle
sqlite3.enable_load_extension sqlite3.load_extension subprocess.Popen
sys._current_exceptions sys._current_frames sys._getframe sys.addaudithook sys.excepthook
sys.set_asyncgen_hooks_finalizer sys.set_asyncgen_hooks_firstiter sys.setprofile
sys.settrace sys.unraisablehook syslog.closelog syslog.openlog syslog.setlogmask
syslog.syslog telnetlib.Telnet.open telnetlib.Telnet.write tempfile.mkdtemp
tempfile.mkstemp time.sleep urllib.Request webbrowser.open winreg.ConnectRegistry
winreg.CreateKey winreg.DeleteKey winreg.DeleteValue winreg.DisableReflectionKey
winreg.EnableReflectionKey winreg.EnumKey winreg.EnumValue
winreg.ExpandEnvironmentStrings winreg.LoadKey winreg.OpenKey winreg.OpenKey/result
winreg.PyHKEY.Detach winreg.QueryInfoKey winreg.QueryReflectionKey winreg.QueryValue
winreg.SaveKey winreg.SetValue _winapi.CreateFile _winapi.CreateJunction
_winapi.CreateNamedPipe _winapi.CreatePipe _winapi.CreateProcess _winapi.OpenProcess
_winapi.TerminateProcess""".split()

#: Prefixes of the event names CPython's C code raises.
_C_PREFIXES = (
    "array builtins code cpython ctypes fcntl function gc marshal mmap object os pickle "
    "resource setopencode signal socket sqlite3 sys syslog time"
).split()
#: Strings in the binaries that look like events but name types, constants or files.
_NOT_EVENTS = {
    "sqlite3.dump",  # a module sqlite3's iterdump imports
    "array.arrayiterator",  # a type's qualified name
    "ctypes.error_object",  # a capsule name for ctypes' errno storage
    "signal.itimer_error",  # an exception's qualified name
}


def _stdlib_events() -> set[str]:
    """Every literal ``sys.audit("name", ...)`` in this Python's standard library."""
    found = set()
    stdlib = sysconfig.get_paths()["stdlib"]
    pattern = re.compile(r"""sys\.audit\(\s*['"]([^'"]+)['"]""")
    for path in glob.glob(os.path.join(stdlib, "**", "*.py"), recursive=True):
        if f"{os.sep}test{os.sep}" in path or "site-packages" in path:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            found.update(pattern.findall(f.read()))
    return found


def _binary_events() -> set[str]:
    """Event-like strings compiled into libpython and the stdlib's extension modules."""
    libdir = sysconfig.get_config_var("LIBDIR")
    files = glob.glob(os.path.join(libdir, "libpython3*.so*"))
    files += glob.glob(os.path.join(sysconfig.get_config_var("DESTSHARED"), "*.so"))
    files = [f for f in files if "_test" not in os.path.basename(f)]
    assert files, "cannot find this Python's libpython / lib-dynload to scan"
    prefixes = "|".join(_C_PREFIXES)
    pattern = re.compile(
        rb"\x00((?:%s)(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?:/[A-Za-z0-9_]+)?)\x00" % prefixes.encode()
    )
    found = set()
    for path in files:
        with open(path, "rb") as f:
            found.update(m.decode() for m in pattern.findall(f.read()))
    return {name for name in found if _looks_like_event(name)}


def _looks_like_event(name: str) -> bool:
    """Drop qualified type/constant names (``os.stat_result``, ``socket.gaierror``) and files."""
    if name in _NOT_EVENTS or name.endswith((".c", ".h")) or name in ("os.path",):
        return False
    module, _, attr = name.partition(".")
    head = attr.split("/")[0].split(".")[0]
    if head[:1].isupper() and module in ("sqlite3", "socket", "signal", "os", "sys", "time"):
        return False
    try:
        value = getattr(__import__(module if module != "function" else "types"), head)
    except (ImportError, AttributeError):
        return True
    return not isinstance(value, type) and not isinstance(value, (int, str, tuple))


def test_every_documented_311_event_is_classified():
    missing = [e for e in DOCUMENTED_311 if tripwire.classify_event(e) is None]
    assert not missing, f"audit events not in tripwire.EVENTS: {missing}"


def test_every_stdlib_sys_audit_event_is_classified():
    events = _stdlib_events()
    assert len(events) > 30, "the stdlib scan found too few events to be real"
    missing = sorted(e for e in events if tripwire.classify_event(e) is None)
    assert not missing, f"stdlib audit events not in tripwire.EVENTS: {missing}"


def test_every_event_compiled_into_this_python_is_classified():
    events = _binary_events()
    assert {"os.chdir", "socket.connect", "marshal.loads", "sys.settrace"} <= events
    missing = sorted(e for e in events if tripwire.classify_event(e) is None)
    assert not missing, f"C-level audit events not in tripwire.EVENTS: {missing}"


_OBSERVER = textwrap.dedent(
    """
    import sys, os, tempfile, json
    seen = set()
    sys.addaudithook(lambda event, args: seen.add(event))
    d = tempfile.mkdtemp()
    p = os.path.join(d, "f")
    open(p, "w").close(); os.listdir(d); list(os.scandir(d)); os.chmod(p, 0o600)
    os.rename(p, p + "2"); os.remove(p + "2"); os.mkdir(p); os.rmdir(p)
    import glob, shutil, pathlib, marshal, pickle, gc, sqlite3, socket, ctypes, mmap
    glob.glob(d + "/*"); list(pathlib.Path(d).glob("*")); shutil.rmtree(d)
    marshal.loads(marshal.dumps(1)); pickle.loads(pickle.dumps(json.JSONDecoder))
    gc.get_referrers(d); sqlite3.connect(":memory:").close()
    socket.socket().close(); ctypes.create_string_buffer(1); mmap.mmap(-1, 16).close()
    compile("1", "<x>", "eval"); exec("1"); id(1); sys._getframe()
    def f(): pass
    f.__defaults__ = (); f.__code__
    type(f)(f.__code__, {})
    print("\\n".join(sorted(seen)))
    """
)


def test_every_event_observed_at_run_time_is_classified():
    out = subprocess.run(
        [sys.executable, "-c", _OBSERVER], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert "socket.__new__" in out and "function.__new__" in out
    missing = [e for e in out if tripwire.classify_event(e) is None]
    assert not missing, f"observed audit events not in tripwire.EVENTS: {missing}"


# -- behaviour ---------------------------------------------------------------------------------
class Reader:
    """Trusted library code that does I/O for whoever calls it."""

    def read(self, path):
        with open(path) as f:
            return f.read()

    def listdir(self, path):
        return os.listdir(path)

    def chdir(self, path):
        os.chdir(path)

    def raise_event(self, name):
        sys.audit(name)

    def read_pathlike(self, p):
        with open(p) as f:
            return f.read()


def _capsule(**kw):
    return Capsule(protected={"reader": Reader()}, **kw)


def test_library_io_for_a_capsule_obeys_its_grants(canary, tmp_path):
    path, token = canary
    allowed = tmp_path / "ok.txt"
    allowed.write_text("fine")
    c = _capsule(grants=[("read", str(allowed))])
    assert c.run(f"reader.read({str(allowed)!r})") == "fine"
    with pytest.raises(PermissionError) as info:
        c.run(f"reader.read({str(path)!r})")
    assert "tripwire" in str(info.value) and token not in str(info.value)
    assert Reader().read(path) == token  # the same call outside a capsule reaches it


def test_denied_events_for_a_capsule(canary, tmp_path):
    path, _ = canary
    c = _capsule()
    before = os.getcwd()
    for call in (
        f"reader.listdir({str(path.parent)!r})",
        f"reader.chdir({str(path.parent)!r})",
        "reader.raise_event('ipycap.test.unknown-event')",
    ):
        with pytest.raises(PermissionError) as info:
            c.run(call)
        assert "tripwire" in str(info.value), call
    assert os.getcwd() == before
    assert Reader().listdir(path.parent) == ["secret.txt"]


def test_pathlike_that_changes_its_answer_is_refused(canary, tmp_path):
    path, token = canary
    allowed = tmp_path / "ok.txt"
    allowed.write_text("fine")
    c = _capsule(grants=[("read", str(allowed))])
    src = f"""
class P:
    n = 0
    def __fspath__(self):
        P.n += 1
        return {str(allowed)!r} if P.n == 1 else {str(path)!r}
got = None
try:
    got = reader.read_pathlike(P())
except Exception as e:
    got = str(e)
got"""
    assert token not in str(c.run(src))


def test_capsule_del_after_the_cell_is_refused(canary):
    path, token = canary
    c = Capsule()
    c.run(
        f"""
class Later:
    def __del__(self):
        try:
            self.got = open({str(path)!r}).read()
        except Exception:
            pass
        leak.append(getattr(self, 'got', None))
leak = []
keep = [Later()]
"""
    )
    c.end()
    leak = c.namespace["leak"]
    c.namespace.pop("keep")
    gc.collect()
    assert leak == [None]


def test_stored_callback_called_later_by_trusted_code_is_refused(canary):
    path, token = canary
    callbacks = []

    def register(callback):  # a user function (a bound list.append is a read-only mutator)
        callbacks.append(callback)

    c = Capsule(protected={"register": register})
    c.run(f"register(lambda: open({str(path)!r}).read())")
    c.end()
    (cb,) = callbacks
    with pytest.raises(Exception) as info:
        cb()  # trusted code calls the capsule's callback after the cell
    assert token not in str(info.value)


def test_repr_called_later_by_trusted_code_is_refused(canary):
    path, token = canary
    c = Capsule()
    value = c.run(
        f"""
class Shown:
    def __repr__(self):
        return open({str(path)!r}).read()
Shown()"""
    )
    with pytest.raises(Exception) as info:
        repr(value)  # e.g. the display hook, after the cell ended
    assert token not in str(info.value)


def test_a_helper_mark_is_void_below_a_capsule_frame(canary, tmp_path):
    path, token = canary
    ok = tmp_path / "ok.txt"
    ok.write_text("fine")
    c = Capsule(grants=[("read", str(ok))])
    verify = c.run(f"lambda fd, p: open({str(path)!r}).read()")
    with pytest.raises(PermissionError):
        tripwire.trusted_open(str(ok), "r", -1, None, None, None, verify=verify)


def test_generated_code_from_capsule_input_is_refused(canary):
    path, token = canary
    c = Capsule()
    src = f"""
import typing
class X:
    leak = []
    a: "(leak.append(open({str(path)!r}).read()), int)[1]"
try:
    typing.get_type_hints(X)
except Exception as e:
    pass
X.leak"""
    assert token not in str(c.run(src))
    ns = {}
    exec(src, ns)  # plain Python: the annotation reads the secret
    assert ns["X"].leak == [token]


def test_ordinary_library_code_generation_still_works():
    c = Capsule()
    assert c.run(
        "from dataclasses import dataclass\n@dataclass(frozen=True)\nclass D:\n    x: int\n"
        "from collections import namedtuple\nP = namedtuple('P', 'a b')\n"
        "import typing\nclass T:\n    a: 'int'\n"
        "(repr(D(1)), P(1, 2).b, typing.get_type_hints(T)['a'].__name__)"
    ) == ("D(x=1)", 2, "int")


def test_trusted_code_is_not_affected_by_the_hook(canary):
    path, token = canary
    Capsule()  # installs the hook
    assert tripwire.is_installed()
    assert open(path).read() == token
    assert os.listdir(path.parent) == ["secret.txt"]


def test_the_code_generation_verdict_is_remembered_per_library_and_source(monkeypatch):
    """A dataclass cell run again compiles the same generated sources: their verdict is
    remembered for the library function that generated them, and for no other caller."""
    checked = []
    real = tripwire._source_is_clean

    def counting(source):
        checked.append(source)
        return real(source)

    monkeypatch.setattr(tripwire, "_source_is_clean", counting)
    monkeypatch.setattr(tripwire, "_CLEAN_CACHE", {})
    src = "from dataclasses import dataclass\n@dataclass\nclass D:\n    x: int\n    y: int = 0\n"
    c = Capsule()
    c.run(src)
    generated = list(checked)
    assert generated and all("__dataclass" in s or "self" in s for s in generated)
    c.run(src)
    assert checked == generated  # the second run: remembered, not parsed again
    # The same source compiled by another function, called from the capsule: checked again.
    source = generated[0]

    def another_caller():
        compile(source, "<elsewhere>", "exec")
        return True

    assert Capsule(protected={"f": another_caller}).run("f()") is True
    assert checked == [*generated, source]


def test_the_code_generation_cache_never_accepts_a_source_from_an_unrelated_caller(monkeypatch):
    monkeypatch.setattr(tripwire, "_CLEAN_CACHE", {})
    calls = []
    monkeypatch.setattr(tripwire, "_source_is_clean", lambda s: calls.append(s) or s == "ok")

    def frame_of(fn):
        return fn()

    def library():
        return sys._getframe()

    def unrelated():
        return sys._getframe()

    assert tripwire._generated_source_is_clean("ok", frame_of(library)) is True
    assert tripwire._generated_source_is_clean("ok", frame_of(library)) is True
    assert calls == ["ok"]
    # Another function with the very same code (code objects compare equal by value) is
    # another caller: identity, not equality, names the library.
    twin = type(library)(library.__code__.replace(), globals())
    assert twin.__code__ == library.__code__ and twin.__code__ is not library.__code__
    assert tripwire._generated_source_is_clean("ok", frame_of(twin)) is True
    assert tripwire._generated_source_is_clean("ok", frame_of(unrelated)) is True
    assert calls == ["ok", "ok", "ok"]
    # A refusal is remembered too, for its library only.
    assert tripwire._generated_source_is_clean("bad", frame_of(library)) is False
    assert tripwire._generated_source_is_clean("bad", frame_of(library)) is False
    assert tripwire._generated_source_is_clean("bad", frame_of(unrelated)) is False
    assert calls == ["ok", "ok", "ok", "bad", "bad"]
