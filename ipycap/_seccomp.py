"""The seccomp half of the OS confinement layer (see :mod:`ipycap.confine`).

Landlock decides *which files and TCP ports* a confined kernel may use; it cannot express
"no new socket of this kind" or "never call this kernel-administration syscall".  This
module installs a small classic-BPF seccomp filter that makes those calls fail with EPERM:

* ``socket()`` unless it is an ``AF_INET``/``AF_INET6`` ``SOCK_STREAM`` socket with protocol
  0 or TCP.  That refuses UDP, raw and packet sockets (Landlock ABI 4-7 only knows TCP),
  netlink (as root: routes, firewall; it fails with EOPNOTSUPP, as on a kernel without
  netlink, because libzmq aborts on any other errno from getifaddrs() while glibc and libzmq
  fall back cleanly on this one), SCTP/MPTCP, and ``AF_UNIX`` *pathname* sockets, which
  Landlock does not mediate at all (``connect('/var/run/docker.sock')`` as root would be a
  full escape).  ``socketpair()`` stays allowed: asyncio and tornado use it for wake-ups and
  it reaches nothing outside the process.  ZeroMQ's tcp transport needs nothing else (its
  internal signalling uses eventfd); the ``ipc`` transport does not work when confined.
* ``execve``/``execveat`` (Landlock already refuses exec; this also covers kernels without it).
* ``io_uring_*`` (it can create and connect sockets without the ``socket`` syscall), process
  tracing and memory access (``ptrace``, ``process_vm_*``, ``pidfd_getfd``), file-handle
  opens (``open_by_handle_at``, the classic container escape), kernel modules, kexec, bpf,
  perf, mounts and namespaces, keyrings, swap, reboot and x86 port I/O.
* Every syscall of another ABI (i386 via ``int 0x80`` on x86_64, x32, arm32 on aarch64): the
  filter checks ``seccomp_data.arch`` first, because syscall numbers differ between ABIs.

A filter covers the thread that installs it and the threads it creates later, like a
Landlock domain; filters can be stacked but never removed.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import socket
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
_X32_SYSCALL_BIT = 0x40000000

# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_AND_K = 0x54
_RET_K = 0x06

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# name -> (x86_64 number, aarch64 number or None); from asm/unistd_64.h and asm-generic/unistd.h
_SYSCALLS = {
    "socket": (41, 198),
    "execve": (59, 221),
    "execveat": (322, 281),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "setns": (308, 268),
    "unshare": (272, 97),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "acct": (163, 89),
    "iopl": (172, None),
    "ioperm": (173, None),
}
DENIED = [name for name in _SYSCALLS if name != "socket"]


def machine() -> str:
    m = platform.machine().lower()
    return _MACHINE_ALIASES.get(m, m)


def unavailable_reason() -> str | None:
    """Why the filter cannot be installed here, or None when it can."""
    arch = machine()
    if sys.platform != "linux":
        return f"Linux only (this is {sys.platform})"
    if arch not in AUDIT_ARCH:
        return f"no syscall table for architecture {platform.machine()!r}"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        return f"kernel without seccomp ({errno.errorcode.get(err, err)})"
    return None


def build(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter for ``arch`` as (code, jt, jf, k) instructions; jumps resolved from labels."""
    nr = {name: nums[0 if arch == "x86_64" else 1] for name, nums in _SYSCALLS.items()}
    prog: list[tuple[int, object, object, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 0, "deny", AUDIT_ARCH[arch]),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if arch == "x86_64":  # x32 syscalls share AUDIT_ARCH_X86_64 but set this bit
        prog.append((_JGE_K, "deny", 0, _X32_SYSCALL_BIT))
    for name in DENIED:
        if nr[name] is not None:
            prog.append((_JEQ_K, "deny", 0, nr[name]))
    prog += [
        (_JEQ_K, 0, "allow", nr["socket"]),
        (_LD_W_ABS, 0, 0, 16),  # args[0] (low 32 bits: the kernel reads an int): domain
        (_JEQ_K, "type", 0, socket.AF_INET),
        (_JEQ_K, "type", 0, socket.AF_INET6),
        (_JEQ_K, 0, "deny", socket.AF_NETLINK),
        (_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EOPNOTSUPP),
        ("type", _LD_W_ABS, 0, 0, 24),  # args[1]: type | SOCK_NONBLOCK | SOCK_CLOEXEC
        (_AND_K, 0, 0, 0xF),
        (_JEQ_K, 0, "deny", socket.SOCK_STREAM),
        (_LD_W_ABS, 0, 0, 32),  # args[2]: protocol (0 or TCP; not SCTP, not MPTCP)
        (_JEQ_K, "allow", 0, 0),
        (_JEQ_K, "allow", "deny", socket.IPPROTO_TCP),
        ("allow", _RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("deny", _RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
    ]
    labels, plain = {}, []
    for ins in prog:
        if isinstance(ins[0], str):
            labels[ins[0]] = len(plain)
            ins = ins[1:]
        plain.append(ins)

    def offset(target: object, i: int) -> int:
        if isinstance(target, str):
            delta = labels[target] - i - 1
            assert 0 <= delta < 256, "classic BPF jumps are forward and short"
            return delta
        return int(target)

    return [(c, offset(jt, i), offset(jf, i), k) for i, (c, jt, jf, k) in enumerate(plain)]


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def install() -> None:
    """Install the filter on the calling thread (no_new_privs is set first, as required)."""
    reason = unavailable_reason()
    if reason:
        raise OSError(errno.ENOSYS, reason)
    ins = build(machine())
    filters = (_SockFilter * len(ins))(*[_SockFilter(*i) for i in ins])
    prog = _SockFprog(len(ins), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    for args in (
        (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
    ):
        if libc.prctl(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({args[0]}) failed: {errno.errorcode.get(err, err)}")
