"""Layer 6 (ipycap.confine): what an escaped cell can still reach once the kernel is confined.

Every test starts a child Python that calls ``confine.apply`` and then, as fully trusted
Python (what an in-process escape would have), tries to read, write, connect, bind, exec,
allocate.  The child prints a JSON result; the test asserts on it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from ipycap import confine

STATUS = confine.status()
needs_landlock = pytest.mark.skipif(
    STATUS.landlock_abi is None, reason=f"no Landlock here: {STATUS.unavailable}"
)
needs_tcp = pytest.mark.skipif(
    (STATUS.landlock_abi or 0) < 4, reason="Landlock ABI < 4 has no TCP rules"
)
needs_scope = pytest.mark.skipif(
    (STATUS.landlock_abi or 0) < 6, reason="Landlock ABI < 6 has no signal scoping"
)
needs_seccomp = pytest.mark.skipif(not STATUS.seccomp, reason=f"no seccomp: {STATUS.unavailable}")

PRELUDE = """
import json, os, sys
RESULT = {}
P = json.loads(os.environ["TEST_PATHS"])

def attempt(name, fn):
    try:
        value = fn()
        if not isinstance(value, (bool, int, float, str, list, type(None))):
            value = repr(value)
        RESULT[name] = {"ok": True, "value": value}
    except BaseException as e:
        RESULT[name] = {"ok": False, "exc": type(e).__name__, "errno": getattr(e, "errno", None),
                        "msg": str(e)}

def read(path):
    with open(path) as f:
        return f.read()

def write(path, text="x"):
    with open(path, "w") as f:
        return f.write(text)

from ipycap.engine.policy import CapsulePolicy
from ipycap import confine
policy = CapsulePolicy(**json.loads(os.environ["TEST_POLICY"]))
"""
APPLY = """
REPORT = confine.apply(policy, **json.loads(os.environ["TEST_APPLY"]))
RESULT["report"] = REPORT.to_dict()
RESULT["summary"] = REPORT.summary()
"""
EPILOGUE = """
print("RESULT:" + json.dumps(RESULT), flush=True)
"""


@pytest.fixture
def box(tmp_path):
    """A home, Jupyter dirs, a readable and a writable folder and canaries, all under tmp."""
    d = {name: tmp_path / name for name in ("home", "data", "out", "outside", "cwd", "ipython")}
    for p in d.values():
        p.mkdir()
    for name in ("config", "data", "runtime"):
        (tmp_path / "jupyter" / name).mkdir(parents=True)
    (d["data"] / "ok.txt").write_text("granted")
    (d["outside"] / "canary.txt").write_text("secret")
    (d["home"] / ".ssh").mkdir()
    (d["home"] / ".ssh" / "id_canary").write_text("PRIVATE KEY")
    (d["home"] / "notes.txt").write_text("notes")
    runtime = tmp_path / "jupyter" / "runtime"
    (runtime / "kernel-me.json").write_text('{"key": "mine"}')
    (runtime / "kernel-other.json").write_text('{"key": "someone else"}')
    paths = {k: str(v) for k, v in d.items()}
    paths.update(
        canary=str(d["outside"] / "canary.txt"),
        ssh_canary=str(d["home"] / ".ssh" / "id_canary"),
        runtime=str(runtime),
        tmp=str(tmp_path),
    )
    return paths


def run_child(box, body, *, policy=None, apply=None, head="", pre="", do_apply=True, env=None):
    policy = {"readable_paths": [box["data"]], "writable_paths": [box["out"]], **(policy or {})}
    script = textwrap.dedent(head) + PRELUDE + textwrap.dedent(pre) + (APPLY if do_apply else "")
    script += textwrap.dedent(body) + EPILOGUE
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    child_env.update(
        HOME=box["home"],
        IPYTHONDIR=box["ipython"],
        JUPYTER_CONFIG_DIR=os.path.join(box["tmp"], "jupyter", "config"),
        JUPYTER_DATA_DIR=os.path.join(box["tmp"], "jupyter", "data"),
        JUPYTER_RUNTIME_DIR=box["runtime"],
        TEST_PATHS=json.dumps(box),
        TEST_POLICY=json.dumps(policy),
        TEST_APPLY=json.dumps(apply or {}),
        **(env or {}),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=box["cwd"],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT:"):
            return json.loads(line[len("RESULT:") :])
    raise AssertionError(f"child failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def refused(result, err=errno.EACCES, exc="PermissionError"):
    assert not result["ok"], f"expected {exc}, but it succeeded: {result}"
    assert result["exc"] == exc, result
    if err is not None:
        assert result["errno"] == err, result
    return True


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@needs_landlock
def test_read_outside_readable_paths_is_refused(box):
    r = run_child(
        box,
        """
        attempt("granted", lambda: read(os.path.join(P["data"], "ok.txt")))
        attempt("canary", lambda: os.open(P["canary"], os.O_RDONLY))
        attempt("listdir", lambda: os.listdir(P["outside"]))
        """,
    )
    assert r["granted"] == {"ok": True, "value": "granted"}
    assert refused(r["canary"])
    assert refused(r["listdir"])
    assert r["report"]["active"] and box["data"] in r["report"]["fs_read"]


@needs_landlock
def test_write_outside_writable_paths_is_refused_and_write_does_not_imply_read(box):
    r = run_child(
        box,
        """
        attempt("write_out", lambda: write(os.path.join(P["out"], "new.txt"), "hello"))
        attempt("mkdir_rename", lambda: (os.mkdir(os.path.join(P["out"], "d")),
            os.rename(os.path.join(P["out"], "new.txt"), os.path.join(P["out"], "d", "n.txt"))))
        attempt("write_data", lambda: write(os.path.join(P["data"], "new.txt")))
        attempt("overwrite_data", lambda: write(os.path.join(P["data"], "ok.txt")))
        attempt("write_outside", lambda: write(os.path.join(P["outside"], "x.txt")))
        attempt("read_back", lambda: read(os.path.join(P["out"], "d", "n.txt")))
        """,
    )
    assert r["write_out"]["ok"] and r["mkdir_rename"]["ok"]
    assert os.path.exists(os.path.join(box["out"], "d", "n.txt"))
    assert refused(r["write_data"]) and refused(r["overwrite_data"]) and refused(r["write_outside"])
    assert open(os.path.join(box["data"], "ok.txt")).read() == "granted"
    assert refused(r["read_back"])  # a write grant is not a read grant (policy rule)


@needs_landlock
def test_root_ceiling_still_refuses_denied_folders(box):
    """readable_paths ['/'] (the extension's default) must not reach ~/.ssh or Jupyter keys."""
    os.symlink(box["ssh_canary"], os.path.join(box["home"], "innocent-link"))
    r = run_child(
        box,
        """
        attempt("notes", lambda: read(os.path.join(P["home"], "notes.txt")))
        attempt("elsewhere", lambda: read(P["canary"]))
        attempt("system", lambda: len(read("/etc/passwd")) > 0)
        attempt("ssh", lambda: read(P["ssh_canary"]))
        attempt("ssh_list", lambda: os.listdir(os.path.join(P["home"], ".ssh")))
        attempt("via_symlink", lambda: read(os.path.join(P["home"], "innocent-link")))
        attempt("via_proc", lambda: read("/proc/self/root" + P["ssh_canary"]))
        attempt("other_kernel_key", lambda: read(os.path.join(P["runtime"], "kernel-other.json")))
        attempt("kcore", lambda: os.open("/proc/kcore", os.O_RDONLY))
        """,
        policy={"readable_paths": ["/"]},
    )
    assert r["notes"]["value"] == "notes" and r["elsewhere"]["value"] == "secret"
    assert r["system"]["value"] is True
    for name in ("ssh", "ssh_list", "via_symlink", "via_proc", "other_kernel_key"):
        assert refused(r[name]), name
    if os.path.exists("/proc/kcore"):  # kernel memory (page cache of every secret)
        assert refused(r["kcore"])


@needs_landlock
def test_root_ceiling_refuses_raw_block_devices(box):
    devices = sorted(
        os.path.join("/dev", n)
        for n in os.listdir("/dev")
        if os.path.exists(os.path.join("/dev", n))
        and __import__("stat").S_ISBLK(os.stat(os.path.join("/dev", n)).st_mode)
    )
    if not devices:
        pytest.skip("no block device in /dev")
    r = run_child(
        box,
        f"""
        attempt("disk", lambda: os.open({devices[0]!r}, os.O_RDONLY))
        attempt("urandom", lambda: len(open("/dev/urandom", "rb").read(8)))
        """,
        policy={"readable_paths": ["/"]},
    )
    assert refused(r["disk"])  # reading the raw disk would bypass every path rule
    assert r["urandom"]["value"] == 8


@needs_landlock
def test_root_write_ceiling_cannot_reconfigure_the_kernel(box):
    import sysconfig

    name = "ipycap-confine-test-" + os.path.basename(box["tmp"])  # unique per run
    planted = [
        os.path.join(sysconfig.get_paths()["purelib"], name + ".pth"),
        os.path.join(os.path.dirname(confine.__file__), name + ".py"),
    ]
    try:
        r = run_child(
            box,
            f"""
            create = lambda path: os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            attempt("core_pattern", lambda: os.open("/proc/sys/kernel/core_pattern", os.O_WRONLY))
            attempt("tmp_write", lambda: write(os.path.join(P["out"], "x")))
            attempt("site_packages", lambda: create({planted[0]!r}))
            attempt("ipycap_source", lambda: create({planted[1]!r}))
            """,
            policy={"writable_paths": ["/"]},
        )
    finally:  # a failing run must not leave files in the package or the venv
        for path in planted:
            if os.path.exists(path):
                os.unlink(path)
    assert refused(r["core_pattern"])  # core_pattern would run a program as root
    # planting code that runs later with full authority (ipycap's own source too, even when
    # it is an editable install outside sys.path)
    assert refused(r["site_packages"]) and refused(r["ipycap_source"])
    assert r["tmp_write"]["ok"]


@needs_landlock
def test_extra_read_grants_the_callers_own_file_inside_a_denied_folder(box):
    me = os.path.join(box["runtime"], "kernel-me.json")
    r = run_child(
        box,
        """
        attempt("mine", lambda: read(os.path.join(P["runtime"], "kernel-me.json")))
        attempt("other", lambda: read(os.path.join(P["runtime"], "kernel-other.json")))
        """,
        apply={"extra_read": [me]},
    )
    assert r["mine"]["ok"]
    assert refused(r["other"])


@needs_tcp
def test_tcp_connect_is_refused(box):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        r = run_child(
            box,
            f"""
            import socket
            attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5))
            """,
        )
        assert refused(r["connect"])
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the listener
    finally:
        listener.close()


@needs_tcp
def test_bind_only_on_bind_ports(box):
    allowed, other = free_ports(2)
    r = run_child(
        box,
        f"""
        import socket
        def bind(port):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            return s.getsockname()[1]
        attempt("allowed", lambda: bind({allowed}))
        attempt("other", lambda: bind({other}))
        """,
        apply={"bind_ports": [allowed]},
    )
    assert r["allowed"] == {"ok": True, "value": allowed}
    assert refused(r["other"])
    assert r["report"]["bind_ports"] == [allowed]


@needs_tcp
@needs_seccomp
def test_zmq_sockets_work_on_bind_ports(box):
    zmq = pytest.importorskip("zmq")
    allowed, other = free_ports(2)
    script = (
        PRELUDE
        + APPLY
        + textwrap.dedent(
            f"""
        import zmq
        ctx = zmq.Context()
        attempt("other", lambda: ctx.socket(zmq.REP).bind("tcp://127.0.0.1:{other}"))
        rep = ctx.socket(zmq.REP)
        rep.bind("tcp://127.0.0.1:{allowed}")
        print("READY", flush=True)
        if rep.poll(20000):
            msg = rep.recv()
            rep.send(b"pong:" + msg)
            RESULT["got"] = msg.decode()
        """
        )
        + EPILOGUE
    )
    env = {k: v for k, v in os.environ.items()}
    env.update(
        HOME=box["home"],
        IPYTHONDIR=box["ipython"],
        JUPYTER_RUNTIME_DIR=box["runtime"],
        TEST_PATHS=json.dumps(box),
        TEST_POLICY=json.dumps({"readable_paths": [box["data"]], "writable_paths": []}),
        TEST_APPLY=json.dumps({"bind_ports": [allowed]}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=box["cwd"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        req = ctx.socket(zmq.REQ)
        req.connect(f"tcp://127.0.0.1:{allowed}")
        req.send(b"ping")
        assert req.poll(20000), "the confined REP socket never answered"
        assert req.recv() == b"pong:ping"
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        ctx.destroy(linger=0)
    result = json.loads(out.split("RESULT:", 1)[1])
    assert result["got"] == "ping"
    assert refused(result["other"], err=None, exc="ZMQError")


@needs_landlock
def test_exec_is_refused(box):
    r = run_child(
        box,
        """
        import subprocess
        attempt("run", lambda: subprocess.run(["/bin/true"]).returncode)
        attempt("execv", lambda: os.execv(sys.executable, [sys.executable, "-c", "print(1)"]))
        """,
        policy={"readable_paths": ["/"]},
    )
    assert refused(r["run"], err=None) and refused(r["execv"], err=None)


@needs_seccomp
def test_seccomp_refuses_sockets_other_than_tcp(box):
    r = run_child(
        box,
        """
        import asyncio, socket
        attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        attempt("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
        attempt("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
        attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        attempt("sctp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132))
        attempt("tcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
        attempt("asyncio", lambda: asyncio.run(asyncio.sleep(0, "loop ok")))  # socketpair
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def raw(*args):  # -> errno of a raw syscall (0 on success)
            ret = libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
            return 0 if ret >= 0 else ctypes.get_errno()
        nr = {"x86_64": (425, 304), "aarch64": (425, 265)}[__import__("platform").machine()]
        # io_uring can create and connect sockets without socket(); unconfined it succeeds
        RESULT["io_uring"] = raw(nr[0], 1, ctypes.create_string_buffer(120))
        # open_by_handle_at: the container escape; unconfined this NULL handle gives EFAULT
        RESULT["by_handle"] = raw(nr[1], -100, None, 0)
        """,
    )
    for name in ("udp", "udp6", "unix", "raw", "sctp"):
        assert refused(r[name], err=errno.EPERM), name
    # netlink looks absent (EOPNOTSUPP): libzmq aborts on EPERM from getifaddrs()
    assert refused(r["netlink"], err=errno.EOPNOTSUPP, exc="OSError")
    assert r["io_uring"] == errno.EPERM and r["by_handle"] == errno.EPERM
    assert r["tcp"]["ok"] and r["asyncio"]["value"] == "loop ok"
    assert r["report"]["seccomp"] is True


def test_memory_limit_holds_and_cannot_be_raised(box):
    r = run_child(
        box,
        """
        import resource
        attempt("small", lambda: len(bytearray(64 * 1024**2)))
        attempt("big", lambda: len(bytearray(2 * 1024**3)))
        attempt("raise", lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
        """,
        policy={"memory_limit": 1024**3},
    )
    assert r["small"]["ok"]
    assert refused(r["big"], err=None, exc="MemoryError")
    if os.geteuid() == 0:  # root could raise it with CAP_SYS_RESOURCE: apply drops that
        assert refused(r["raise"], err=None, exc="ValueError")
    assert r["report"]["rlimits"]["AS"] == 1024**3


@pytest.mark.skipif(os.geteuid() != 0, reason="capabilities matter for root")
def test_root_keeps_only_file_capabilities(box):
    r = run_child(
        box,
        """
        def caps():
            line = [ln for ln in read("/proc/self/status").splitlines() if ln.startswith("CapEff")]
            return int(line[0].split()[1], 16)
        attempt("caps", caps)
        """,
    )
    keep = sum(1 << bit for bit in confine._KEEP_CAPS.values())
    # e.g. CAP_SYS_RESOURCE would let an escape raise the rlimits, CAP_SYS_MODULE load code
    # into the kernel, CAP_NET_ADMIN reconfigure the network
    assert r["caps"]["ok"] and r["caps"]["value"] & ~keep == 0, hex(r["caps"]["value"])


def test_file_size_limit_fails_the_write_not_the_process(box):
    r = run_child(
        box,
        """
        def big():
            with open(os.path.join(P["out"], "big.bin"), "wb") as f:
                f.write(b"x" * (2 * 1024**2))
        attempt("small", lambda: write(os.path.join(P["out"], "small.txt"), "y" * 1000))
        attempt("big", big)
        """,
        policy={"file_size_limit": 1024**2},
        # CPython ignores SIGXFSZ itself; a host that restored the default must not be
        # killed by it: apply() ignores it again.
        pre="import signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL)",
    )
    assert r["small"]["ok"]
    assert refused(r["big"], err=errno.EFBIG, exc="OSError")
    assert os.path.getsize(os.path.join(box["out"], "big.bin")) <= 1024**2


@needs_landlock
def test_granted_access_and_imports_still_work(box):
    r = run_child(
        box,
        """
        attempt("fresh", lambda: sorted(m for m in ("_ssl", "_sqlite3", "_csv", "_elementtree")
                                          if m in sys.modules))
        """,
        do_apply=False,
    )
    assert r["fresh"]["value"] == []  # so the imports below really load extension modules
    r = run_child(
        box,
        """
        import importlib.util
        attempt("json", lambda: __import__("json").dumps({"a": 1}))
        attempt("decimal", lambda: str(__import__("decimal").Decimal("1.1") * 2))
        attempt("sqlite3", lambda: __import__("sqlite3").connect(":memory:")
                .execute("select 40 + 2").fetchone()[0])
        attempt("lzma", lambda: len(__import__("lzma").compress(b"x" * 100)) > 0)
        attempt("bz2", lambda: len(__import__("bz2").compress(b"x" * 100)) > 0)
        attempt("csv", lambda: next(__import__("csv").reader(["a,b"])) == ["a", "b"])
        attempt("etree", lambda: __import__("xml.etree.ElementTree").etree.ElementTree
                .fromstring("<a/>").tag)
        attempt("ssl", lambda: bool(__import__("ssl").create_default_context())
                if importlib.util.find_spec("_ssl") else "absent")
        attempt("proc_self", lambda: read("/proc/self/status").startswith("Name:"))
        attempt("cpu_count", lambda: os.cpu_count() >= 1)
        attempt("devnull", lambda: write(os.devnull, "discarded"))
        attempt("time", lambda: __import__("time").strftime("%Y", __import__("time").localtime()))
        attempt("data", lambda: read(os.path.join(P["data"], "ok.txt")))
        attempt("out", lambda: write(os.path.join(P["out"], "f.txt")))
        """,
    )
    for name in (
        "json",
        "decimal",
        "sqlite3",
        "lzma",
        "bz2",
        "csv",
        "etree",
        "ssl",
        "proc_self",
        "cpu_count",
        "devnull",
        "time",
        "data",
        "out",
    ):
        assert r[name]["ok"], (name, r[name])
    assert r["decimal"]["value"] == "2.2" and r["sqlite3"]["value"] == 42


@needs_landlock
def test_thread_started_after_apply_is_confined(box):
    r = run_child(
        box,
        """
        import threading
        t = threading.Thread(target=lambda: attempt("thread_read", lambda: read(P["canary"])))
        t.start(); t.join()
        """,
    )
    assert refused(r["thread_read"])


@needs_landlock
def test_thread_started_before_apply_is_not_confined(box):
    """Why the kernel must apply() before ipykernel starts threads (documented limitation)."""
    r = run_child(
        box,
        """
        ev.set(); t.join()
        attempt("main_read", lambda: read(P["canary"]))
        """,
        pre="""
        import threading
        ev = threading.Event()
        def early():
            ev.wait()
            attempt("early_read", lambda: read(P["canary"]))
        t = threading.Thread(target=early); t.start()
        """,
    )
    assert r["early_read"] == {"ok": True, "value": "secret"}  # NOT confined
    assert refused(r["main_read"])
    assert any("NOT confined" in w for w in r["report"]["warnings"])


@needs_landlock
def test_apply_outside_the_main_thread_is_refused(box):
    r = run_child(
        box,
        """
        import threading
        t = threading.Thread(target=lambda: attempt("apply", lambda: confine.apply(policy)))
        t.start(); t.join()
        attempt("read", lambda: read(P["canary"]))
        """,
        do_apply=False,
    )
    assert refused(r["apply"], err=errno.EINVAL, exc="ConfinementError")
    assert r["read"]["ok"]


@needs_scope
def test_signals_to_processes_outside_are_refused(box):
    r = run_child(
        box,
        """
        attempt("parent", lambda: os.kill(os.getppid(), 0))
        attempt("self", lambda: os.kill(os.getpid(), 0))
        """,
    )
    assert refused(r["parent"], err=errno.EPERM)
    assert r["self"]["ok"]


@needs_landlock
def test_status_probes_without_confining(box):
    r = run_child(
        box,
        """
        st = confine.status()
        RESULT["status"] = st.to_dict(); RESULT["summary"] = st.summary()
        attempt("read", lambda: read(P["canary"]))
        """,
        do_apply=False,
    )
    assert r["status"]["landlock_abi"] == STATUS.landlock_abi and not r["status"]["active"]
    assert "not applied" in r["summary"]
    assert r["read"]["ok"]


# A seccomp filter that makes landlock_create_ruleset fail with ENOSYS, as on a kernel
# without Landlock.  The child installs it before importing ipycap.
NO_LANDLOCK = """
import ctypes, errno, platform
arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[platform.machine()]
class F(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(F))]
ins = [(0x20, 0, 0, 4), (0x15, 1, 0, arch), (0x06, 0, 0, 0x7FFF0000), (0x20, 0, 0, 0),
       (0x15, 0, 1, 444), (0x06, 0, 0, 0x00050000 | errno.ENOSYS), (0x06, 0, 0, 0x7FFF0000)]
arr = (F * len(ins))(*[F(*i) for i in ins])
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(Prog(len(ins), arr)), 0, 0) == 0
"""


@needs_seccomp
def test_require_refuses_to_run_unconfined_when_landlock_is_missing(box):
    r = run_child(
        box,
        """
        st = confine.status()
        RESULT["status"] = st.to_dict(); RESULT["status_summary"] = st.summary()
        attempt("required", lambda: confine.apply(policy, require=True))
        RESULT["is_oserror"] = issubclass(confine.ConfinementError, OSError)
        attempt("read_after_refusal", lambda: read(P["canary"]))
        rep = confine.apply(policy)
        RESULT["report"] = rep.to_dict(); RESULT["summary"] = rep.summary()
        attempt("read_unconfined", lambda: read(P["canary"]))
        """,
        head=NO_LANDLOCK,
        do_apply=False,
    )
    assert r["status"]["landlock_abi"] is None
    assert "ENOSYS" in r["status_summary"]
    assert refused(r["required"], err=errno.ENOSYS, exc="ConfinementError")
    assert "Landlock" in r["required"]["msg"] and r["is_oserror"]
    assert r["read_after_refusal"]["ok"]
    # Without require, the report says honestly that files are not confined ...
    assert r["report"]["landlock_abi"] is None and r["report"]["fs_read"] == []
    assert r["summary"].startswith("OS confinement: partial (Landlock not supported by this kernel")
    assert r["read_unconfined"]["ok"]  # ... which is true


@needs_landlock
def test_sys_path_folder_keeps_existing_subfolders_and_data_writable(box, tmp_path):
    """The kernel's working directory is on sys.path: a module written into it would be
    imported later, so it stays read-only itself, but its existing sub-folders and data files
    stay writable (a confined kernel with the default ceiling could write nowhere before);
    hidden folders such as .git (hooks run later) are never granted."""
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    (work / ".git" / "hooks").mkdir(parents=True)
    (work / "data.csv").write_text("1,2\n")
    code = f"""
import sys
sys.path.insert(0, {str(work)!r})
from ipycap.confine import apply
from ipycap.engine.policy import CapsulePolicy
apply(CapsulePolicy(readable_paths=[{str(work)!r}], writable_paths=[{str(work)!r}]))
def attempt(path):
    try:
        with open(path, "a") as f:
            f.write("x")
        return "ok"
    except OSError as e:
        return type(e).__name__
print(attempt({str(work / "out" / "r.txt")!r}), attempt({str(work / "data.csv")!r}),
      attempt({str(work / "json.py")!r}), attempt({str(work / ".git" / "hooks" / "pre-commit")!r}))
"""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.split() == ["ok", "ok", "PermissionError", "PermissionError"], out.stderr
