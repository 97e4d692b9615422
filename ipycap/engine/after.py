"""Capsule code the host runs for a cell after the cell returned, under the cell's limits.

The host formats the cell's last value (the value's ``_repr_*_``/``__repr__`` are capsule
code), and the capsule kernel's ``%capsule explain`` calls the cell's own object's methods;
both ran on the main thread with no timeout, no memory limit, raw output and no output count.
:func:`host_bundle` formats on a capsule thread under the cell's limits
(:func:`ipycap.engine.limits.run_after`) and charges the bundle -- data and metadata --
against the cell's ``--max-output``, which it continues: over it, a note is shown instead.
"""

from __future__ import annotations

from . import limits
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
