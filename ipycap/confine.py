"""Layer 6: the kernel process confines itself with Landlock, seccomp and rlimits (Linux).

The capsule layers confine code *inside* CPython, and CPython has a long record of escapes.
This layer bounds what an escape can reach.  After :func:`apply`, even fully trusted Python in
this process can only read the Python installation (never write it), the system files the
interpreter needs (``/usr``, ``/etc`` without shadow/ssh host keys/sudoers, its own
``/proc/<pid>``, a few ``/proc`` and ``/sys`` files, ``/dev/null``, ``/dev/urandom`` ...), and
the policy's ``readable_paths``; write only ``writable_paths``; never exec (Landlock never
grants EXECUTE; extension modules still load: ``dlopen`` maps files, it does not exec them);
bind TCP only on the given ports and connect nowhere (the kernel's ZMQ sockets bind; they
never connect); never open ``denied_paths``, raw devices, ``/proc/kcore``, or write ``/proc``,
``/sys`` and ``/dev``.  Seccomp (:mod:`ipycap._seccomp`) refuses exec, every socket but TCP,
and kernel-administration syscalls; a root process keeps only its file capabilities, so the
rlimits hold.  Nothing pretends: the report lists what was unavailable.

**Call it in the main thread before any other thread starts.**  A Landlock domain, a seccomp
filter, ``no_new_privs`` and capabilities are per-thread: they cover the thread that applies
them and the threads it creates *afterwards*, never threads already running (Landlock ABI 8's
TSYNC would lift this; ABI 7 has none).  ipykernel starts its threads while the kernel app
initialises, so the kernel must call :func:`apply` before that.  :func:`apply` refuses to run
outside the main thread and reports threads that were already running.

Landlock is allow-only, so a denied folder under an allowed root cannot be subtracted.  When
a root contains a denied path we grant the root's *children* that are not denied instead,
recursing toward the denied path.  Limits of that (stated, not hidden): a directory that
directly holds a denied path gets no rule of its own, so it cannot be listed, and entries
created in it after :func:`apply` (or files there replaced by rename) are not reachable;
a hard link or bind mount of a denied file elsewhere under an allowed root stays reachable.
Rules bind inodes: a path created after :func:`apply` is covered only through a granted
ancestor directory, and a ceiling path that does not exist yet is not granted at all.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import site
import stat
import sys
import sysconfig
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from . import _seccomp

try:
    import resource
except ImportError:  # not a POSIX system: status() still works, apply() reports unavailability
    resource = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .engine.policy import CapsulePolicy

__all__ = ["ConfinementError", "ConfinementReport", "apply", "status"]

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_ARCHES = ("x86_64", "aarch64")
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
# LANDLOCK_ACCESS_FS_* bits
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_READ = READ_FILE | READ_DIR
# Never EXECUTE, MAKE_CHAR or MAKE_BLOCK (root could mknod a disk device and read it raw),
# MAKE_SOCK (pathname sockets are refused by seccomp anyway) or IOCTL_DEV.
_WRITE = WRITE_FILE | MAKE_REG | MAKE_DIR | REMOVE_FILE | REMOVE_DIR | MAKE_SYM | MAKE_FIFO
_WRITE |= REFER | TRUNCATE
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # rights a file rule may hold

# Never granted through a wider root: raw disks, memory and kernel log bypass every path
# rule; writing /proc or /sys reconfigures the running kernel (core_pattern runs as root).
_READ_HAZARDS = ["/dev", "/proc/kcore"]
_WRITE_HAZARDS = ["/dev", "/proc", "/sys"]
_DEVICES_READ = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
# Secrets that the *baseline* grant of /etc leaves out (a policy ceiling may still include them).
_ETC_SECRETS = (
    "/etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow- /etc/ssh /etc/ssl/private /etc/sudoers "
    "/etc/sudoers.d /etc/security/opasswd /etc/krb5.keytab"
).split()
_WALK_BUDGET = 50_000  # directory entries examined per apply(); beyond it, fail closed
# Capabilities a confined root keeps: ordinary file access by DAC.  Dropping the others makes
# the rlimits binding (CAP_SYS_RESOURCE raises them) and removes admin powers Landlock does
# not mediate (SysV IPC of others, kill, raw I/O, ...).
_KEEP_CAPS = dict(
    CHOWN=0, DAC_OVERRIDE=1, DAC_READ_SEARCH=2, FOWNER=3, FSETID=4, NET_BIND_SERVICE=10
)


class ConfinementError(OSError):
    """OS confinement was required but could not be applied (or apply() was misused)."""


@dataclass
class ConfinementReport:
    """What the OS confinement layer did (``active``) or could do (:func:`status`)."""

    active: bool = False
    landlock_abi: int | None = None
    applied: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fs_read: list[str] = field(default_factory=list)
    fs_write: list[str] = field(default_factory=list)
    bind_ports: list[int] = field(default_factory=list)
    seccomp: bool = False
    rlimits: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the registry view and the kernel's start banner."""
        head = "OS confinement" if self.active else "OS confinement (available, not applied)"
        parts = []
        if self.landlock_abi:
            kinds = ["fs"] + (["tcp"] if self.landlock_abi >= 4 else [])
            kinds += ["scope"] if self.landlock_abi >= 6 else []
            parts.append(f"Landlock ABI {self.landlock_abi} ({', '.join(kinds)})")
        if self.seccomp:
            parts.append("seccomp")
        if self.rlimits:
            parts.append("rlimit " + " ".join(f"{k}={_size(v)}" for k, v in self.rlimits.items()))
        missing = [u.split(": ", 1) for u in self.unavailable]
        if not self.landlock_abi:
            why = next((w for what, w in missing if what == "Landlock"), "not probed")
            state = "partial" if parts else "unavailable"
            return f"{head}: {state} (Landlock {why})" + "".join(f"; {p}" for p in parts)
        others = [what for what, _ in missing]
        return f"{head}: {', '.join(parts)}" + (
            f"; unavailable: {', '.join(others)}" if others else ""
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g}{unit}"
    return f"{n}B"


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
if _libc is not None:
    _libc.syscall.restype = ctypes.c_long


def _syscall(nr: int, *args) -> int:
    ret = _libc.syscall(ctypes.c_long(nr), *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _landlock_abi() -> tuple[int | None, str]:
    """(ABI version, '') or (None, why not)."""
    if sys.platform != "linux":
        return None, f"Linux only (this is {sys.platform})"
    if platform.machine().lower() not in _ARCHES + ("amd64", "arm64"):
        return None, f"syscall numbers not known for {platform.machine()!r}"
    try:
        return _syscall(
            _SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
        ), ""
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        if e.errno == errno.EOPNOTSUPP:
            return None, f"disabled at boot: {name} (add 'landlock' to the lsm= boot parameter)"
        return None, f"not supported by this kernel: {name}"


def status() -> ConfinementReport:
    """What :func:`apply` could enforce here, probed without confining anything."""
    abi, why = _landlock_abi()
    rep = ConfinementReport(landlock_abi=abi)
    if abi is None:
        rep.unavailable.append(f"Landlock: {why}")
    else:
        if abi < 4:
            rep.unavailable.append(f"tcp: Landlock ABI {abi} < 4 cannot restrict TCP")
        if abi < 6:
            rep.unavailable.append(f"scope: Landlock ABI {abi} < 6 cannot scope signals")
    why_sc = _seccomp.unavailable_reason()
    rep.seccomp = why_sc is None
    if why_sc:
        rep.unavailable.append(f"seccomp: {why_sc}")
    return rep


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _plan(root: str, denied: list[str], out: list[str], budget: list[int]) -> None:
    """Append to ``out`` the paths to grant so that ``root`` is covered except ``denied``."""
    if any(_within(root, d) for d in denied):
        return
    inner = [d for d in denied if _within(d, root)]
    if not inner:
        out.append(root)
        return
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return  # not a listable directory: grant nothing (fail closed)
    for name in names:
        budget[0] -= 1
        if budget[0] < 0:
            return
        child = os.path.join(root, name)
        try:
            if stat.S_ISLNK(os.lstat(child).st_mode):
                continue  # a symlink needs no rule: access is checked on its target
        except OSError:
            continue
        _plan(child, inner, out, budget)


_CODE_SUFFIXES = (".py", ".pyc", ".pyw", ".pth", ".so", ".pyd", ".zip", ".egg")


def _plain_sys_path_folders() -> set[str]:
    """sys.path folders that are not part of the installation (a script's or the kernel's
    working directory)."""
    installed = {os.path.realpath(p) for p in _installation_paths()}
    out = set()
    for p in sys.path:
        real = os.path.realpath(p or os.getcwd())
        if os.path.isdir(real) and not any(_within(real, i) for i in installed):
            out.add(real)
    return out


def _installation_paths() -> set[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {
        v
        for k, v in sysconfig.get_paths().items()
        if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    return paths


def _plan_sys_path_folder(root, denied, out, budget) -> None:
    """Existing sub-folders (not __pycache__, not hidden) and non-code files of a sys.path
    folder."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for name in names:
        if name[:1] == ".":
            continue  # .git (hooks and config run later), .venv, .envrc ...: never
        child = os.path.join(root, name)
        try:
            mode = os.lstat(child).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) and name != "__pycache__":
            _plan(child, denied, out, budget)
        elif stat.S_ISREG(mode) and not name.endswith(_CODE_SUFFIXES) and "." in name:
            _plan(child, denied, out, budget)


def _python_paths() -> set[str]:
    """The interpreter, its stdlib, sys.path and the packages already imported (read-only)."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        os.path.dirname(__file__),
    }
    paths |= {p for p in sys.path if p}  # '' (the cwd) is the ceiling's business
    paths |= {
        v
        for k, v in sysconfig.get_paths().items()
        if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    try:
        paths |= set(site.getsitepackages()) | {site.getusersitepackages()}
    except AttributeError:  # site may be replaced (e.g. virtualenv<20)
        pass
    for mod in list(sys.modules.values()):  # editable installs live outside sys.path
        if "." not in getattr(mod, "__name__", ".") and getattr(mod, "__path__", None):
            paths |= {p for p in mod.__path__ if isinstance(p, str)}
    return paths


def _baseline() -> list[str]:
    """System files the interpreter and common libraries read at run time (no execute)."""
    proc = "/proc/self /proc/meminfo /proc/cpuinfo /proc/stat /proc/sys/vm/overcommit_memory"
    cpu = "/sys/devices/system/cpu /sys/devices/system/node"
    return ["/usr", "/lib", "/lib64", "/etc", *proc.split(), *cpu.split(), *_python_paths()]


def _resolve(paths: Iterable[str], rep=None, what="") -> list[str]:
    """Existing real paths (Landlock rules bind existing inodes; later creation is not covered)."""
    out = set()
    for p in paths:
        real = os.path.realpath(os.path.expanduser(p))
        if os.path.exists(real):
            out.add(real)
        elif rep is not None:
            rep.warnings.append(f"{what} {p}: does not exist, not granted")
    return sorted(out)


def _rules(policy: CapsulePolicy, extra_read, extra_write, rep) -> dict[str, int]:
    """path -> Landlock access rights, computed before anything is restricted."""
    deny_r, deny_w = policy.denied_path_roots("read"), policy.denied_path_roots("write")
    deny_w += sorted(_python_paths())  # the Python installation is read-only, editable installs too
    budget = [_WALK_BUDGET]
    rules: dict[str, int] = {}
    plain_sys_path = _plain_sys_path_folders()

    def grant(roots, denied, rights, exempt=False, hazards=True, what=""):
        for root in _resolve(roots, rep if what else None, what):
            out: list[str] = []
            # Caller extras are the kernel's own files: only what lies *beneath* them is denied.
            d = [x for x in denied if not exempt or (x != root and _within(x, root))]
            if hazards:
                d += _WRITE_HAZARDS if rights & WRITE_FILE else _READ_HAZARDS
            _plan(root, d, out, budget)
            if not out and rights & WRITE_FILE and root in plain_sys_path:
                # A folder on sys.path (the kernel's working directory): a module written
                # into it would be imported later, so the folder itself stays read-only, but
                # its existing sub-folders and non-code files may be written.
                _plan_sys_path_folder(root, [x for x in d if x != root], out, budget)
                if out and what:
                    rep.warnings.append(
                        f"{what} {root}: on sys.path, so only its existing sub-folders and "
                        "non-code files are writable (no new files directly in it)"
                    )
            if what and not out:
                rep.warnings.append(f"{what} {root}: not granted (denied)")
            for p in out:
                rules[p] = rules.get(p, 0) | rights

    grant(_baseline(), deny_r + _ETC_SECRETS, _READ)
    grant(_DEVICES_READ, [], READ_FILE, hazards=False)
    grant(["/dev/null"], [], WRITE_FILE | TRUNCATE | READ_FILE, hazards=False)
    grant(policy.ceiling("read"), deny_r, _READ, what="readable_paths")
    grant(policy.ceiling("write"), deny_w, _WRITE, what="writable_paths")
    grant(extra_read, deny_r, _READ, exempt=True, what="extra_read")
    grant(extra_write, deny_w + deny_r, _READ | _WRITE, exempt=True, what="extra_write")
    if budget[0] < 0:
        rep.warnings.append(
            f"more than {_WALK_BUDGET} entries beside denied paths: the rest is not granted"
        )
    return rules


def _fs_handled(abi: int) -> int:
    rights = (1 << 13) - 1
    rights |= REFER if abi >= 2 else 0
    rights |= TRUNCATE if abi >= 3 else 0
    return rights | (IOCTL_DEV if abi >= 5 else 0)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _landlock(abi: int, rules: dict[str, int], ports: list[int], rep: ConfinementReport) -> None:
    handled = _fs_handled(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        attr.net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    ruleset = _syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    try:
        for path, rights in sorted(rules.items()):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue  # vanished since planned: nothing granted
            try:
                rights &= handled
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    rights &= _FILE_ONLY
                if rights:
                    _syscall(
                        _SYS_ADD_RULE,
                        ruleset,
                        _RULE_PATH_BENEATH,
                        ctypes.byref(_PathBeneath(rights, fd)),
                        ctypes.c_uint32(0),
                    )
                    if rights & READ_FILE:
                        rep.fs_read.append(path)
                    if rights & WRITE_FILE:
                        rep.fs_write.append(path)
            finally:
                os.close(fd)
        for port in ports if abi >= 4 else ():
            _syscall(
                _SYS_ADD_RULE,
                ruleset,
                _RULE_NET_PORT,
                ctypes.byref(_NetPort(_NET_BIND_TCP, port)),
                ctypes.c_uint32(0),
            )
        _syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    rep.applied.append(f"Landlock ABI {abi}: fs allow-list ({len(rules)} rules), no exec")
    if abi >= 4:
        rep.bind_ports = list(ports)
        rep.applied.append(f"tcp: connect denied, bind only on {ports or 'no port'}")
    if abi >= 6:
        rep.applied.append("scope: abstract UNIX sockets and signals limited to this domain")


def _rlimits(policy: CapsulePolicy, rep: ConfinementReport) -> None:
    if resource is None:
        if policy.memory_limit or policy.file_size_limit:
            rep.unavailable.append("rlimits: no resource module on this platform")
        return
    for name, limit in (("AS", policy.memory_limit), ("FSIZE", policy.file_size_limit)):
        if not limit:
            continue
        which = getattr(resource, f"RLIMIT_{name}")
        _soft, hard = resource.getrlimit(which)
        value = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        try:
            resource.setrlimit(which, (value, value))  # hard too: an escape may not raise it
        except (OSError, ValueError) as e:
            rep.unavailable.append(f"rlimit {name}: {e}")
            continue
        rep.rlimits[name] = value
        if name == "FSIZE":  # a write past the limit fails with EFBIG instead of killing us
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if os.geteuid() == 0:
        rep.warnings.append(
            "root is exempt from RLIMIT_NPROC: the number of processes (fork) is not limited"
        )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def _drop_capabilities(rep: ConfinementReport) -> None:
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if _libc.capget(ctypes.byref(header), data) != 0:
        rep.unavailable.append(f"capabilities: capget failed ({os.strerror(ctypes.get_errno())})")
        return
    keep = sum(1 << bit for bit in _KEEP_CAPS.values())
    if not any(d.permitted & ~(keep if i == 0 else 0) for i, d in enumerate(data)):
        return  # nothing beyond the kept set (an ordinary user): nothing to report
    for i, d in enumerate(data):
        mask = keep if i == 0 else 0
        d.effective, d.permitted, d.inheritable = (
            d.effective & mask,
            d.permitted & mask,
            d.inheritable & mask,
        )
    if _libc.capset(ctypes.byref(header), data) != 0:
        rep.unavailable.append(f"capabilities: capset failed ({os.strerror(ctypes.get_errno())})")
        return
    rep.applied.append("capabilities: dropped all but " + ", ".join(_KEEP_CAPS))


def apply(
    policy: CapsulePolicy,
    *,
    bind_ports: Iterable[int] = (),
    extra_read: Iterable[str] = (),
    extra_write: Iterable[str] = (),
    require: bool = False,
) -> ConfinementReport:
    """Confine the calling process for good, following ``policy``'s ceiling.

    Must be called in the main thread before other threads start (see the module docstring).
    ``bind_ports`` are the TCP ports the process may bind (the kernel's connection-file ports);
    ``extra_read``/``extra_write`` are the caller's own files (e.g. the connection file),
    granted even inside ``denied_paths`` - prefer files to folders: Jupyter's runtime folder
    holds *other* kernels' signing keys.  With ``require=True`` a missing Landlock raises
    :class:`ConfinementError` before anything is changed; otherwise the report says what was
    unavailable.  Nothing can be undone: confinement only ever narrows.
    """
    if threading.current_thread() is not threading.main_thread():
        raise ConfinementError(errno.EINVAL, "confine.apply() must run in the main thread")
    rep = status()
    rep.active = True
    abi = rep.landlock_abi
    if abi is None and require:
        why = rep.unavailable[0].split(": ", 1)[1]
        msg = f"OS confinement is required, but Landlock is unavailable ({why}); not running unconfined"
        raise ConfinementError(errno.ENOSYS, msg)
    ports = sorted({int(p) for p in bind_ports})
    if any(not 0 < p < 65536 for p in ports):
        raise ConfinementError(errno.EINVAL, f"bind_ports must be TCP ports, got {ports}")
    rules = _rules(policy, list(extra_read), list(extra_write), rep) if abi else {}
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads > 1:
        rep.warnings.append(f"{threads - 1} thread(s) already running are NOT confined")
    if _libc is not None and _libc.prctl(_seccomp.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        rep.applied.append("no_new_privs")
    if abi:
        _landlock(abi, rules, ports, rep)
    if rep.seccomp:
        try:
            _seccomp.install()
            rep.applied.append("seccomp: exec, non-TCP sockets and kernel-admin syscalls -> EPERM")
        except OSError as e:
            rep.seccomp = False
            rep.unavailable.append(f"seccomp: {e.strerror}")
    _rlimits(policy, rep)
    if _libc is not None:
        _drop_capabilities(rep)
    return rep
