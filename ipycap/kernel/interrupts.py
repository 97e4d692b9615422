"""Interrupts that never land inside ipycap's own code.

A frontend's interrupt is SIGINT, and Python raises ``KeyboardInterrupt`` at whatever bytecode
the main thread is running.  Inside capsule code that is what the user wants.  Inside ipycap's
own code (a registry update, the membrane wrapping a result, the kernel storing history) it
would leave half-done state: a capability recorded without its event, a proxy cached without
its grant.  So while a cell runs, the handler looks at the interrupted stack: if one of
ipycap's state changes (:func:`critical_code`) is running nearer the interrupt than any capsule
frame, or no capsule code is running at all, the interrupt is *deferred* and re-checked every
few milliseconds (SIGALRM) until the stack is out of it, or the cell
ends (an interrupt that arrives after the capsule code finished is dropped, as the cell is
done).  An interrupt stays pending until the cell ends: a ``KeyboardInterrupt`` raised inside a
finalizer is reported and dropped by Python, so if the cell still runs a quarter of a second
later it is raised again (capsule code that catches ``KeyboardInterrupt`` and keeps running
for longer gets it again too).  Outside a cell the default behaviour stays.
"""

from __future__ import annotations

import signal

from ..engine import limits

RECHECK_SECONDS = 0.005
REDELIVER_SECONDS = 0.25


# Which frames are ipycap's own state changes is the engine's knowledge (it also times out
# capsule threads without landing in them).
critical_code = limits.critical_code
in_critical_code = limits.in_critical_code


class InterruptGuard:
    """The SIGINT handler of the capsule kernel while a cell runs."""

    def __init__(self):
        self.armed = False  # a shell request is being handled (its cell may not have begun)
        self.active = False
        self.pending = False
        self.deferred = 0  # how many times an interrupt had to wait (for tests and the log)
        self.redelivered = 0

    def install_alarm(self) -> None:
        """Install the re-check handler (main thread, once)."""
        signal.signal(signal.SIGALRM, self._on_alarm)

    def handler(self, signum, frame) -> None:
        if self.armed and not self.active:
            # The request's cell has not begun yet (a loaded machine): raising here would
            # land in ipykernel's dispatch, and the cell would still run afterwards.  It is
            # delivered when the cell begins (or dropped if the request runs no cell).
            self.pending = True
            self.deferred += 1
            return
        # While the main thread waits for a capsule thread, that thread's frame is the one
        # interrupted, and the interrupt is forwarded to it.
        frame = limits.running_frame(frame)
        if self.active and frame is not None and in_critical_code(frame):
            self.pending = True
            self.deferred += 1
            signal.setitimer(signal.ITIMER_REAL, RECHECK_SECONDS)
            return
        if self.active:
            # Stay pending: if the cell still runs a moment later, this KeyboardInterrupt was
            # lost (raised inside a finalizer, e.g. a __del__ run by the garbage collector,
            # where Python reports and drops it), so it is delivered again.
            self.pending = True
            signal.setitimer(signal.ITIMER_REAL, REDELIVER_SECONDS)
        raise KeyboardInterrupt

    def _on_alarm(self, signum, frame) -> None:
        if self.pending:
            self.redelivered += 1
            self.handler(signum, frame)

    def arm(self) -> None:
        """A shell request is being handled (called before its handler)."""
        self.pending = False
        self.armed = True

    def disarm(self) -> None:
        """The request is done: an interrupt still pending found no cell to stop."""
        self.armed = False
        if self.pending and not self.active:
            self.pending = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def begin(self) -> None:
        """A cell (or user expression) begins: an interrupt that arrived while its request
        was being dispatched is delivered now, inside it."""
        self.active = True
        if self.pending:
            signal.setitimer(signal.ITIMER_REAL, RECHECK_SECONDS)

    def end(self) -> None:
        """The cell is over: a deferred interrupt that never found capsule code is dropped."""
        self.active = False
        if self.pending:
            self.pending = False
            signal.setitimer(signal.ITIMER_REAL, 0)
