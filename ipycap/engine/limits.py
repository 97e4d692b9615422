"""Limits of one capsule cell: time, memory, output, and a stack deep C recursion cannot overflow.

``run_limited(runner, body, tail, ns, context, limits)`` runs capsule code on its own thread
(the *capsule thread*) and waits for it on the calling thread:

* **stack** -- the capsule thread's stack is sized so that no recursion in C can outgrow it:
  CPython's C code that recurses without a depth check (nested iterators' ``__next__`` and
  dealloc, ...) uses at most ~1.3 bytes of C stack per byte of heap its objects occupy
  (measured: ``map`` 128 B of stack per 96 B object), so a stack of 4x the heap the cell can
  reach -- the process's resident size plus ``max_memory`` -- is out of reach (capped by the
  machine's memory, the bound when there is no memory limit).  The stack is virtual memory:
  only the pages used are ever touched.
* **timeout** -- when time is up the capsule thread gets :class:`CellStopped` raised at its
  next bytecode (``PyThreadState_SetAsyncExc``), never while ipycap's own state changes
  (:func:`in_critical_code`) are running; from then on every line of capsule code raises it
  again (a per-thread trace function), so ``except BaseException`` cannot keep a cell alive.
  Guarantee: Python-level code stops within ``STOP_GRACE`` of the limit.  A single C call
  runs to its end before the stop lands.  Pre-checked: big-int ``**``, ``pow`` and ``<<``
  (``10 ** 10**9``, ``1 << 10**12``) are refused from their operands' sizes before they run
  (``intlimits.py``: a result over 64M, or over ``--max-memory``).  Bounded by the memory
  limit: C calls that allocate as they go (``'a' * 10**10``, ``bytearray(10**12)``,
  ``list(range(10**10))``).  Uninterruptible and not bounded (they take time, not memory):
  a regex that backtracks (``re.match('(a*)*b', 'a' * 40)``), ``sum(range(10**12))``,
  ``math.factorial`` / ``math.comb`` of big ints, ``str(int)`` / ``int(str)`` of huge
  numbers (capped by CPython's int digit limit, 4300 digits by default), sorting or
  hashing a huge container, big-int multiplication or division of operands already in
  memory, ``a.__pow__(b)`` / ``operator.pow`` called explicitly, ``x.attr **= n``, and one
  long C call of a granted library (a numpy or pandas operation on a big array).  The host gets
  :class:`CellTimeout`, a refusal naming ``--timeout``, and nothing of the cell is bound.
* **interrupts** -- SIGINT lands on the main thread.  While it waits here, the host's
  ``KeyboardInterrupt`` is forwarded to the capsule thread; the capsule kernel's deferred
  interrupt (``ipycap.kernel.interrupts``) checks the capsule thread's frame instead of the
  waiting one (:func:`running_frame`) and forwards itself (:func:`forward_interrupt`).
* **memory** -- with ``max_memory`` the allocator hook (``_memlimit``) counts what Python's
  allocators take while the cell runs, net of what they give back; over budget, an allocation
  of the capsule thread fails with ``MemoryError`` (inside the capsule, catchable there), and
  if it leaves the cell the host gets :class:`CellMemoryLimit`.  What does not count: memory
  a C library takes from ``malloc`` directly or with ``mmap``.  numpy's array data (numpy
  >= 1.22) counts: the capsule thread's context gets ipycap's numpy memory handler
  (``PyDataMem_SetHandler``) for the cell, so ``np.zeros(10**9)`` over the budget raises
  numpy's ``MemoryError`` inside the capsule; numpy is imported for that when the cell was
  granted a third-party package.  A ``MemoryError`` in the middle of a library call
  leaves what any ``MemoryError`` leaves: a container the library was filling half filled,
  a cache half updated; the names the cell bound are not kept (the capsule kernel's
  rollback, ``rollback.py``; a ``%%capsule`` cell binds user names only on success).
* **output** -- while the cell runs, ``sys.stdout``/``sys.stderr`` are wrapped: text written
  by the capsule thread passes :func:`ipycap.engine.terminal.sanitize` and counts against
  ``max_output``, as do display bundles (:func:`charge_display`); past it, output is dropped
  and one note at the end says how much.
* **context** -- the capsule thread runs in a copy of the caller's ``contextvars`` context
  (ipykernel's parent header); what it sets there stays there (a library's ContextVar,
  numpy's error state, must not flow back to trusted code).  ``sys``'s streams and hooks are
  put back as they were after every cell.

The engine module never imports IPython.
"""

from __future__ import annotations

import contextvars
import ctypes
import gc
import os
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass

from . import guard, intlimits, streams, tripwire
from .errors import CapabilityError, PolicyError
from .guard import CAPSULE_MARK
from .libraries import blocks

try:
    import resource
except ImportError:  # not on this platform
    resource = None
try:
    from . import _memlimit
except ImportError:  # no compiler at install time, or no malloc_usable_size
    _memlimit = None

#: How long after the limit Python-level code has stopped (the stop is re-delivered this often).
STOP_GRACE = 1.0
REDELIVER_SECONDS = 0.1
WAIT_STEP = 0.05
#: C stack per byte of reachable heap (measured worst ~1.3, with margin).
STACK_PER_HEAP_BYTE = 4
MIN_STACK = 256 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class CellTimeout(CapabilityError, TimeoutError):
    """The cell ran past its ``--timeout``."""


class CellMemoryLimit(CapabilityError, MemoryError):
    """The cell went over its ``--max-memory``."""


class CellStopped(BaseException):
    """Raised inside the capsule thread when its time is up (the host sees CellTimeout).

    Instantiated by the interpreter in the capsule thread itself, which is where it starts
    the trace that raises it again on every later line of capsule code."""

    def __init__(self, *args):
        super().__init__(*args)
        run = _RUNS.get(threading.get_ident())
        if run is not None and run.stopping and not run.tracing:
            run.start_stop_trace()


# -- sizes ----------------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value) -> int:
    """``'300M'`` -> bytes (K, M, G, T are powers of 1024; a plain number is bytes; 0 = none)."""
    if type(value) is int:
        if value < 0:
            raise ValueError(f"a size is >= 0 bytes, not {value}")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size (expected e.g. 300M, 2G, 64K or bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_seconds(value) -> float:
    """``'1.5'`` or ``'2s'`` -> seconds (0 = none)."""
    text = str(value).strip().lower().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a number of seconds (expected e.g. 10 or 2.5)"
        ) from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"a timeout is a finite number of seconds >= 0, not {value!r}")
    return seconds


def format_size(n: int) -> str:
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= factor and n % (factor // 1024 or 1) == 0 and n / factor == int(n / factor):
            return f"{n // factor}{unit}"
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f}{unit}"
    return f"{n}B"


# -- the limits of a cell -------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What one cell may use: seconds, bytes of memory, bytes of output (0 = no limit)."""

    timeout: float = 0.0
    max_memory: int = 0
    max_output: int = 0

    @classmethod
    def from_policy(cls, policy) -> Limits:
        """The policy's limits (the default of every cell, and its ceiling)."""
        return cls(
            float(policy.timeout), parse_size(policy.max_memory), parse_size(policy.max_output)
        )

    def narrowed(self, *, timeout=None, max_memory=None, max_output=None) -> Limits:
        """These limits with a cell's own: a cell may ask for less, never for more.

        Values are flag strings or numbers; ``None`` keeps this limit.  Raises ``PolicyError``
        naming the flag and the policy trait for a request above the ceiling or no limit at
        all where the policy has one."""
        new = {}
        for name, value, parse in (
            ("timeout", timeout, parse_seconds),
            ("max_memory", max_memory, parse_size),
            ("max_output", max_output, parse_size),
        ):
            ceiling = getattr(self, name)
            if value is None:
                new[name] = ceiling
                continue
            try:
                asked = parse(value)
            except ValueError as e:
                flag = "--" + name.replace("_", "-")
                raise PolicyError(f"{flag} {value}: {e}", "policy", None) from None
            if ceiling and (asked == 0 or asked > ceiling):
                flag = "--" + name.replace("_", "-")
                shown = self._show(name, ceiling)
                raise PolicyError(
                    f"{flag} {value} is above the policy's limit of {shown}",
                    "policy",
                    f"raise c.CapsulePolicy.{name} (now {shown}) in the configuration",
                )
            new[name] = asked
        return Limits(**new)

    @staticmethod
    def _show(name, value) -> str:
        if not value:
            return "none"
        return f"{value:g}s" if name == "timeout" else format_size(value)

    def describe(self) -> str:
        """``timeout 10s, memory 300M, output none`` (for the registry and the audit log)."""
        return ", ".join(
            f"{label} {self._show(name, getattr(self, name))}"
            for label, name in (
                ("timeout", "timeout"),
                ("memory", "max_memory"),
                ("output", "max_output"),
            )
        )

    def check_available(self) -> None:
        """A memory limit needs the allocator hook: refuse rather than run unlimited."""
        if self.max_memory and memory_accounting_unavailable():
            raise PolicyError(
                f"--max-memory {format_size(self.max_memory)}: memory accounting is not "
                f"available here ({memory_accounting_unavailable()})",
                "limits",
                None,
                hint="set c.CapsulePolicy.max_memory = 0 to run capsule cells without it",
            )


def memory_accounting_unavailable() -> str | None:
    """Why ``--max-memory`` cannot be enforced in this process, or None."""
    if _memlimit is None:
        return "ipycap.engine._memlimit was not built"
    if os.environ.get("PYTHONMALLOC", "") not in ("", "pymalloc", "malloc"):
        return f"PYTHONMALLOC={os.environ['PYTHONMALLOC']} installs allocator debug hooks"
    if sys.flags.dev_mode or hasattr(sys, "gettotalrefcount"):
        return "Python's allocator debug hooks are on (-X dev or a debug build)"
    return None


# -- one running cell -----------------------------------------------------------------------
_RUNS: dict[int, _Run] = {}  # capsule thread ident -> its run


class _Run:
    """The state of one limited cell: its capsule thread, clocks and counters."""

    def __init__(self, limits: Limits, context):
        self.limits = limits
        self.context = context
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.interrupted = False
        self.tracing = False
        self.output_used = 0
        self.output_dropped = 0
        self.memory_peak = 0
        self.memory_hit = False
        self.result = None
        self.error: BaseException | None = None
        self.after = False  # capsule code the host runs for a cell after it (run_after)
        # Released by the capsule thread as its last act.  Waited on instead of
        # Thread.join: a join interrupted by SIGINT marks a running thread as stopped (3.11).
        self.done = threading.Lock()
        self.done.acquire()

    # output ------------------------------------------------------------------------------
    def take_output(self, size: int) -> int:
        """How many of ``size`` bytes may still be shown (the rest is counted as dropped)."""
        cap = self.limits.max_output
        if not cap:
            return size
        room = max(cap - self.output_used, 0)
        kept = min(room, size)
        self.output_used += kept
        self.output_dropped += size - kept
        return kept

    # stopping ----------------------------------------------------------------------------
    def start_stop_trace(self) -> None:
        """(In the capsule thread.)  Every later line of capsule code raises CellStopped."""
        self.tracing = _memlimit is not None  # without it, the stop is re-delivered instead
        state = tripwire._state  # setting a trace is an audited event; this is ipycap's own
        was_busy = getattr(state, "busy", False)
        state.busy = True
        try:
            if _memlimit is not None:  # a C trace: a Python one is unset when it raises
                _memlimit.start_stop_trace(CellStopped, CAPSULE_MARK)
        finally:
            state.busy = was_busy


def _async_raise(ident: int, exc_type) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next bytecode check (None: clear)."""
    if _memlimit is not None:
        _memlimit.async_raise(ident, exc_type)
        return
    state = tripwire._state  # a ctypes call is an audited event; this one is ipycap's own
    was_busy = getattr(state, "busy", False)
    state.busy = True
    try:
        _SET_ASYNC_EXC(
            ctypes.c_ulong(ident), None if exc_type is None else ctypes.py_object(exc_type)
        )
    finally:
        state.busy = was_busy


_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc


def critical_code() -> frozenset:
    """Code objects of ipycap's state changes: a registry record and its event, a grant,
    a revocation, a protected name's proxy and capability being cached."""
    global _CRITICAL
    if _CRITICAL is None:
        # Looked up, not imported: both modules import this one (and are loaded before any
        # capsule runs).
        capsule = sys.modules["ipycap.engine.capsule"]
        registry = sys.modules["ipycap.engine.registry"]
        Registry, Capability = registry.Registry, registry.Capability
        functions = [
            Registry.grant,
            Registry.use,
            Registry.count_use,
            Registry.counter,
            Registry.flush_uses,
            Registry.refuse,
            Registry.revoke,
            Registry.end_cell,
            Registry._event,
            Registry._append_log,
            Capability.revoke,
            capsule.Capsule._expose,
            capsule.Capsule._proxy_for,
            capsule.CapsuleContext._use_import,
        ]
        _CRITICAL = frozenset(f.__code__ for f in functions)
    return _CRITICAL


_CRITICAL: frozenset | None = None


def in_critical_code(frame) -> bool:
    """Whether ``frame`` is inside one of ipycap's state changes (below the innermost capsule
    frame), or in trusted code with no capsule frame at all."""
    critical = critical_code()
    # Reading f_code raises an audit event the tripwire refuses while a capsule is on the
    # stack; the caller is trusted and runs no capsule code, so the hook stands aside.
    state = tripwire._state
    was_busy = getattr(state, "busy", False)
    state.busy = True
    try:
        f = frame
        while f is not None:
            if CAPSULE_MARK in f.f_builtins:
                return False
            if f.f_code in critical:
                return True
            f = f.f_back
        return True
    finally:
        state.busy = was_busy


#: The run the main thread is waiting for (for the SIGINT handler, which runs there).
_WAITED: list[_Run] = []


def running_frame(frame):
    """The frame an interrupt should be judged by: the capsule thread's when the interrupted
    thread is waiting for one, else ``frame``."""
    if _WAITED and threading.current_thread() is threading.main_thread():
        thread = _WAITED[-1].thread
        if thread is not None and thread.ident is not None:
            return sys._current_frames().get(thread.ident, frame)
    return frame


def forward_interrupt() -> bool:
    """Raise KeyboardInterrupt in the capsule thread the main thread waits for, if any."""
    if _WAITED and threading.current_thread() is threading.main_thread():
        thread = _WAITED[-1].thread
        if thread is not None and thread.ident is not None and run_of(thread) is not None:
            _WAITED[-1].interrupted = True  # its thread is not reused (see _Worker)
            _async_raise(thread.ident, KeyboardInterrupt)
            return True
    return False


def run_of(thread: threading.Thread) -> _Run | None:
    return _RUNS.get(thread.ident)


def current_run() -> _Run | None:
    """The limited cell running on this thread, or None."""
    return _RUNS.get(threading.get_ident())


def bundle_size(data, metadata=None) -> int:
    """Characters a display bundle shows: its data's texts and bytes, and every text, key and
    number of its metadata (an image's 'alt' is output too)."""
    size = sum(len(v) for v in dict.values(data) if type(v) in (str, bytes))
    todo, seen = [metadata], 0
    while todo and seen < 100_000:  # nested containers, bounded
        item = todo.pop()
        seen += 1
        tp = type(item)
        if tp is str or tp is bytes:
            size += len(item)
        elif tp is dict:
            todo.extend(dict.keys(item))
            todo.extend(dict.values(item))
        elif tp in (list, tuple):
            todo.extend(item)
        elif item is not None:
            size += 8
    return size


def charge_display(data, metadata=None) -> bool:
    """Count a display bundle published by the running cell; False: drop it (over budget)."""
    run = current_run()
    if run is None or not run.limits.max_output:
        return True
    size = bundle_size(data, metadata)
    if size > run.limits.max_output - run.output_used:  # a bundle is shown whole or not at all
        run.output_dropped += size
        return False
    run.output_used += size
    return True


# The process streams (opaque: no attribute path to the run, its context or the stream
# below; streams.py).
_CellStream = streams.CellStream
ProcessStream = streams.ProcessStream


def _guard_process_streams() -> None:
    for name in ("stdout", "stderr"):
        stream = sys.__dict__.get(name)
        if stream is not None and type(stream) is not ProcessStream:
            setattr(sys, name, ProcessStream(stream))


# -- running ----------------------------------------------------------------------------------
def stack_size_for(limits: Limits) -> int:
    """The capsule thread's stack: 4x the heap the cell can reach, within physical memory."""
    try:
        phys = os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        phys = 8 << 30
    rss = 0
    if limits.max_memory:
        try:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            rss = 0
    reach = rss + limits.max_memory if limits.max_memory else phys
    size = min(max(STACK_PER_HEAP_BYTE * reach, MIN_STACK), phys)
    if resource is not None:  # a confined kernel's address-space limit holds the stack too
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            try:
                with open("/proc/self/statm") as f:
                    mapped = int(f.read().split()[0]) * _PAGE
            except (OSError, ValueError, IndexError):
                mapped = soft // 2
            size = min(size, max((soft - mapped) // 3, 32 << 20))
    return size - size % (1 << 20)


def _start(thread: threading.Thread, size: int) -> int:
    """Start ``thread`` with a ``size`` stack, or the largest the OS grants (RLIMIT_AS);
    returns the size it got."""
    lock = _STACK_LOCK
    with lock:
        previous = threading.stack_size()
        try:
            while True:
                threading.stack_size(size)
                try:
                    thread.start()
                    return size
                except RuntimeError:  # "can't start new thread": the mapping was refused
                    if size <= 32 << 20:
                        raise
                    size //= 2
        finally:
            threading.stack_size(previous)


_STACK_LOCK = threading.Lock()


class _Consumed(BaseException):
    """Raised on the capsule thread by itself to take the place of a pending stop."""


def _consume_pending() -> None:
    ident = threading.get_ident()
    for _ in range(1000):
        try:
            _async_raise(ident, _Consumed)
            for _ in range(100):  # bytecode, so the pending exception lands here
                pass
        except _Consumed:
            return
        except BaseException:  # noqa: BLE001, S112 - a stop that was still pending: again
            continue


#: The last limited run of each capsule context: what the host runs of that cell's capsule
#: code after it (run_after) continues its output budget.
_LAST_RUN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_after(fn, context, limits: Limits | None = None):
    """Run ``fn()`` -- capsule code the host runs for a cell after the cell returned: the
    formatting of its value, ``%capsule explain``'s calls, finalizers freed with its
    namespace -- on a capsule thread under the same limits (timeout, memory, sanitised and
    counted output, continuing the cell's output budget) as the cell itself."""
    last = _LAST_RUN.get(context)
    if limits is None:
        limits = last.limits if last is not None else Limits.from_policy(context.policy)
    return run_limited(lambda body, tail, ns: fn(), None, None, None, context, limits, _after=last)


def run_limited(runner, body, tail, ns, context, limits: Limits, _after=None):
    """Run ``runner(body, tail, ns)`` on a capsule thread under ``limits`` (see the module
    docstring); returns its value or raises its exception (limit hits as refusals)."""
    if current_run() is not None:  # a capsule run from inside a limited cell: already bounded
        return runner(body, tail, ns)
    limits.check_available()
    run = _Run(limits, context)
    if _after is not None and _after.limits.max_output == limits.max_output:
        run.output_used = _after.output_used
    run.after = _after is not None
    try:
        _LAST_RUN[context] = run
    except TypeError:  # a context that cannot be weakly referenced: no continuation
        pass
    copied = contextvars.copy_context()

    def work():
        _RUNS[threading.get_ident()] = run
        numpy_saved = None
        if limits.max_memory:
            numpy_saved = _count_numpy(context)
            _memlimit.arm(limits.max_memory)
        try:
            run.result = runner(body, tail, ns)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            run.error = e
        finally:
            if sys.gettrace() is not None:  # the stop trace (an audited event to unset)
                sys.settrace(None)
            # A stop or interrupt still pending would land at the next Python call: it is
            # replaced by a marker raised and caught here, never in what follows.  (Clearing
            # with PyThreadState_SetAsyncExc(id, NULL) instead leaves CPython 3.11's
            # pending-exception signal set when nothing was pending, and any profile
            # function set later, the boundary auditor's, then never returns.)
            _consume_pending()
            if limits.max_memory:
                run.memory_peak, hit, _ = _memlimit.disarm()
                run.memory_hit = bool(hit)
                if numpy_saved is not None:
                    _memlimit.numpy_handler(*numpy_saved)
            _RUNS.pop(threading.get_ident(), None)
            run.done.release()

    worker = _Worker.take(stack_size_for(limits))
    run.thread = worker.thread
    _guard_process_streams()  # kept after the cell: capsule code may write later
    saved_sys = _snapshot_sys()
    saved_options = blocks.snapshot(context)  # granted libraries' options (libraries/blocks.py)
    streams = _wrap_streams(run)
    _WAITED.append(run)
    try:
        worker.submit(copied.run, work)
        _wait(run)
        worker.settle()  # it has released run.done: only the end of the job is left
    finally:
        _WAITED.remove(run)
        _unwrap_streams(streams)
        _restore_sys(saved_sys)
        options_error = blocks.restore(saved_options)
        # The capsule thread's context (copied) is dropped, not copied back: a library's
        # ContextVar set by the cell (numpy 2's error state and seterrcall callback) would
        # otherwise hold in trusted code after it (I3).  decimal: Capsule.run.
    # A worker takes the next cell only after a run nothing stopped or interrupted from
    # outside (no exception of ours can still be pending on it) and that ended cleanly.
    worker.give_back(
        run.error is None and not run.stopping and not run.interrupted and not run.memory_hit
    )
    _finish(run)
    if run.error is not None:
        raise run.error
    if options_error is not None:
        raise options_error
    return run.result


def _cell_memory_limit():
    run = current_run()
    return run.limits.max_memory if run is not None else None


intlimits.cell_memory_limit = _cell_memory_limit
intlimits.format_size = format_size


def _numpy_api():
    """numpy's C API table (a capsule), importing numpy when it is installed, or None."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        import importlib.util

        if importlib.util.find_spec("numpy") is None:
            return None
        import numpy
    version = tuple(int(p) for p in re.findall(r"\d+", numpy.__version__)[:2])
    if version < (1, 22):  # no per-context memory handler: its data is not counted
        return None
    core = sys.modules.get("numpy._core._multiarray_umath") or sys.modules.get(
        "numpy.core._multiarray_umath"
    )
    return getattr(core, "_ARRAY_API", None)


def _count_numpy(context):
    """Count numpy's array data in this (the capsule thread's) context: ipycap's handler,
    when the cell may use numpy (it is imported, or the capsule was granted a package that
    is not the standard library, which may load it).  Returns what restores the previous
    handler, or None."""
    if "numpy" not in sys.modules and not any(
        c.kind == "import" and not c.revoked and c.target.partition(".")[0] not in _STDLIB
        for c in getattr(context, "grants", ())
    ):
        return None
    try:
        api = _numpy_api()
        if api is None:
            return None
        return api, _memlimit.numpy_handler(api, None)
    except Exception:  # noqa: BLE001 - a broken numpy is the cell's to meet, not the run's
        return None


_STDLIB = frozenset(sys.stdlib_module_names)


class _Worker:
    """A capsule thread that runs one job at a time and can be reused by the next cell.

    Starting a thread with a capsule-sized stack per cell cost 0.15-0.6 ms here; handing a
    job to a waiting thread ~12 us.  Each job starts as a fresh thread would: the trace and
    profile functions ``threading.settrace``/``setprofile`` set (the boundary auditor's),
    and the engine's thread-local state empty.  A worker is reused only after a run that
    ended cleanly (see ``run_limited``); otherwise it is retired and ends."""

    _idle: list = []
    _lock = threading.Lock()
    MAX_IDLE = 2

    def __init__(self, size: int):
        self.broken = False
        self._job = None
        self._go = threading.Lock()
        self._go.acquire()
        self._idle_now = threading.Lock()
        self._idle_now.acquire()
        self.thread = threading.Thread(target=self._loop, name="ipycap-capsule", daemon=True)
        self.granted = _start(self.thread, size)  # less than size under a tight RLIMIT_AS

    @classmethod
    def take(cls, size: int) -> _Worker:
        with cls._lock:
            for i, worker in enumerate(cls._idle):
                if worker.granted >= size and worker.thread.is_alive():
                    return cls._idle.pop(i)
        return cls(size)

    def submit(self, fn, *args) -> None:
        self._job = (fn, args)
        self._go.release()

    def settle(self) -> None:
        """Wait for the job to return (or the thread to end: a stop that landed after the
        cell released its run.done ends a retired worker's loop instead)."""
        while not self._idle_now.acquire(timeout=WAIT_STEP):
            if not self.thread.is_alive():
                self.broken = True
                return

    def give_back(self, reuse: bool) -> None:
        with self._lock:
            if reuse and not self.broken and len(self._idle) < self.MAX_IDLE:
                self._idle.append(self)
                return
        self._job = None
        self._go.release()  # no job: the thread ends

    def _loop(self) -> None:
        try:
            while True:
                self._go.acquire()
                job, self._job = self._job, None
                if job is None:
                    return
                try:
                    _fresh_thread_state()
                    job[0](*job[1])
                except BaseException:  # noqa: BLE001 - the job's own: this worker is done
                    self.broken = True
                finally:
                    job = None  # the cell's closure (its namespace) is not kept until the next
                    if sys.gettrace() is not None:
                        sys.settrace(None)
                    if sys.getprofile() is not None:
                        sys.setprofile(None)
                    self._idle_now.release()
        except BaseException:  # noqa: BLE001 - a stray stop on a retired worker: it ends
            self.broken = True
            return


def _fresh_thread_state() -> None:
    """What a new thread starts with: threading's trace/profile hooks, empty engine locals.
    (Each set is an audited event, so it is made only when it changes something.)"""
    trace, profile = threading._trace_hook, threading._profile_hook  # noqa: SLF001
    if trace is not None or sys.gettrace() is not None:
        sys.settrace(trace)  # as Thread._bootstrap_inner does
    if profile is not None or sys.getprofile() is not None:
        sys.setprofile(profile)
    auditor = sys.modules.get(__package__ + ".auditor")
    for local in (tripwire._state, guard._BUILDING, getattr(auditor, "_state", None)):
        if local is not None:
            local.__dict__.clear()
    blocks.fresh_thread()  # granted libraries' thread-local configurations


def _wait(run: _Run) -> None:
    thread, limits = run.thread, run.limits
    deadline = time.monotonic() + limits.timeout if limits.timeout else None
    next_stop = None
    while True:
        try:
            if run.done.acquire(timeout=WAIT_STEP):
                break
        except KeyboardInterrupt:
            forward_interrupt()
            continue
        if deadline is None:
            continue
        now = time.monotonic()
        if now >= deadline and (next_stop is None or now >= next_stop):
            frame = sys._current_frames().get(thread.ident)
            if frame is None or in_critical_code(frame):
                continue  # ipycap's own state change (or no capsule code yet): right after it
            run.stopping = True
            if not run.tracing:  # once the trace runs, it stops every capsule line itself
                _async_raise(thread.ident, CellStopped)
            next_stop = now + REDELIVER_SECONDS


def _finish(run: _Run) -> None:
    """Turn limit hits into refusals, record them, and say how much output was dropped."""
    limits, registry = run.limits, run.context.registry
    error = run.error
    if run.stopping and (error is None or isinstance(error, (CellStopped, KeyboardInterrupt))):
        run.error = CellTimeout(
            f"the cell ran longer than its time limit of {limits.timeout:g}s, so it was stopped",
            "limits",
            "a larger --timeout (up to c.CapsulePolicy.timeout)",
        )
        registry.refuse(run.error, kind="limits", target="timeout")
    elif run.memory_hit and isinstance(error, MemoryError):
        run.error = CellMemoryLimit(
            f"the cell went over its memory limit of {format_size(limits.max_memory)}",
            "limits",
            "a larger --max-memory (up to c.CapsulePolicy.max_memory)",
        )
        registry.refuse(run.error, kind="limits", target="max_memory")
    elif run.memory_hit:  # caught inside the capsule: still a hit, for the audit log
        registry.note(
            "limit",
            kind="limits",
            target="max_memory",
            detail=f"an allocation over {format_size(limits.max_memory)} failed (caught)",
        )
    if error is not None and run.error is not error:
        run.error.__traceback__ = error.__traceback__
    used = [limits.describe()]
    if limits.max_memory:
        used.append(f"peak memory {format_size(run.memory_peak)}")
    if limits.max_output:
        used.append(f"output {format_size(run.output_used)}")
    if run.error is not None and isinstance(run.error, (CellTimeout, CellMemoryLimit)):
        used.append(f"stopped: {type(run.error).__name__}")
    if not run.after:
        registry.note(
            "limits",
            kind="limits",
            target=run.context.label or "cell",
            detail="; ".join(used),
            audit=False,  # every cell has one: the view shows them, the log keeps the hits
        )
    if run.output_dropped:
        note = (
            f"[ipycap: {run.output_dropped:,} more characters of output were dropped: this "
            f"cell may show {format_size(limits.max_output)} (--max-output)]\n"
        )
        registry.note("limit", kind="limits", target="max_output", detail=note.strip("[]\n"))
        try:
            sys.stderr.write(note)
        except Exception:  # noqa: BLE001 - a closed stream must not hide the cell's result
            pass


def _wrap_streams(run: _Run) -> list:
    saved = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            continue
        wrapped = _CellStream(stream, run)
        setattr(sys, name, wrapped)
        saved.append((name, stream, wrapped))
    return saved


def _unwrap_streams(saved: list) -> None:
    for name, stream, wrapped in saved:
        if getattr(sys, name) is wrapped:  # someone replaced it meanwhile: leave theirs
            setattr(sys, name, stream)


#: Interpreter-wide hooks of ``sys`` that trusted code calls with its own data: whatever a
#: granted deputy (a stdlib function writing the raw ``sys``) left there during a capsule
#: cell is put back after it, so no capsule object stays in trusted state (I3).
SYS_HOOKS = ("stdout", "stderr", "stdin", "displayhook", "excepthook", "unraisablehook",
             "breakpointhook", "__stdout__", "__stderr__", "__stdin__")  # fmt: skip


def _snapshot_sys() -> list:
    return [(name, sys.__dict__[name]) for name in SYS_HOOKS if name in sys.__dict__]


def _restore_sys(saved: list) -> None:
    for name, value in saved:
        if sys.__dict__.get(name) is not value:
            setattr(sys, name, value)


#: Values whose freeing cannot recurse or need the cyclic collector.
_FLAT = frozenset({int, float, complex, bool, str, bytes, type(None)})


def release_namespace(capsule) -> None:
    """Drop ``capsule``'s reference to its namespace on a thread with a capsule-sized stack.

    Freeing a deep structure (a million nested ``map``s) recurses in C as deep as using it,
    and the main thread's stack is small.  If the namespace is still referenced elsewhere,
    the cyclic garbage collector runs on that thread too, for the usual case of a cycle through
    the cell's own functions (``ns -> f -> f.__globals__ is ns``); a namespace kept alive
    by an exported function or a traceback is freed later, where that reference dies."""
    ns = capsule.namespace
    capsule.namespace = {}
    if all(type(v) in _FLAT or v is capsule.builtins_module for v in dict.values(ns)):
        return  # nothing in it can be deep or in a cycle: freed here, at once (no hand-off)
    box = [ns]
    del ns

    def release():
        cycle = sys.getrefcount(box[0]) > 2  # the list's reference and getrefcount's own
        box.clear()
        if cycle:
            gc.collect()

    # Freeing runs the cell's finalizers (__del__, a generator's finally): capsule code, so
    # under the cell's limits and output sanitiser, like the cell (run_after).
    try:
        run_after(release, capsule.context, capsule.limits)
    except CapabilityError:
        pass  # a limit hit while freeing: recorded by the registry, nothing to return


__all__ = [
    "CellMemoryLimit",
    "CellStopped",
    "CellTimeout",
    "Limits",
    "charge_display",
    "format_size",
    "parse_seconds",
    "parse_size",
    "release_namespace",
    "run_after",
    "run_limited",
]
