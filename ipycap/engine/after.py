"""Capsule code the host runs for a cell after the cell returned, under the cell's limits.

The host formats the cell's last value (the value's ``_repr_*_``/``__repr__`` are capsule
code), and the capsule kernel's ``%capsule explain`` calls the cell's own object's methods;
both ran on the main thread with no timeout, no memory limit, raw output and no output count.
:func:`host_bundle` formats on a capsule thread under the cell's limits
(:func:`ipycap.engine.limits.run_after`) and charges the bundle -- data and metadata --
against the cell's ``--max-output``, which it continues: over it, a note is shown instead.
"""

from __future__ import annotations

from . import limits, stubframes
from .membrane import is_plain
from .membrane.scrub import _is_ipycap_refusal, is_builtin_class
from .output import bundle_for


def host_bundle(value, context):
    """``bundle_for(value, context)``, run and charged as the cell's own output."""

    def format_value():
        data, metadata = bundle_for(value, context)
        if not limits.charge_display(data, metadata):
            size = limits.bundle_size(data, metadata)
            note = (
                f"[ipycap: the cell's value ({size:,} characters) was not shown: over this "
                "cell's --max-output]"
            )
            return {"text/plain": note}, {}
        return data, metadata

    return limits.run_after(format_value, context)


def host_error(exc: BaseException, context) -> BaseException:
    """The host's copy of a capsule's exception (``capsule.error_for_host``), made as the
    cell's own code when that runs capsule code: a capsule exception class's ``__str__`` (and
    a refusal's capsule-made message) run on a capsule thread under the cell's limits, not on
    the main thread with none.  A limit hit or an interrupt there is what the host gets.

    The copy's traceback holds stand-ins of the capsule's frames; the capsule's own frames
    are then cleared and its exception's tracebacks dropped (``stubframes.retire``), on that
    thread too: the failed cell's objects are freed, and their finalizers run, under the
    cell's limits -- not on the main thread whenever the host lets go of the error."""
    from .capsule import error_for_host  # the capsule module imports this one's users

    if context is None:
        return error_for_host(exc)
    try:
        if _plain_exception(exc):
            copy = error_for_host(exc)
        else:
            copy = limits.run_after(lambda: error_for_host(exc), context)
    except BaseException as hit:  # noqa: BLE001 - a limit, an interrupt: ipycap's own
        copy = error_for_host(hit) if _plain_exception(hit) else None
        if copy is None:
            copy = RuntimeError("the capsule raised an exception that cannot be shown")
    try:  # a finalizer's limit hit is recorded by the registry; the cell's error stands
        limits.run_after(lambda: stubframes.retire(exc, _is_capsule_frame), context)
    except BaseException:  # noqa: BLE001, S110
        pass
    return copy


def _is_capsule_frame(frame) -> bool:
    return frame.f_code.co_filename.startswith("<capsule-")


def _plain_exception(exc) -> bool:
    """Whether making the host's copy of ``exc`` runs no capsule code: a builtin exception
    with plain arguments, or one of ipycap's refusals with text fields."""
    tp = type(exc)
    if tp is limits.CellTimeout or tp is limits.CellMemoryLimit:
        return True
    if is_builtin_class(tp):
        return is_plain(exc.args)
    if _is_ipycap_refusal(tp):
        fields = ("what", "layer", "how", "hint", "text", "filename")
        return all(type(exc.__dict__.get(f)) in (str, type(None)) for f in fields)
    return False
