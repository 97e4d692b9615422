"""ipycap: capability-restricted cells for IPython and Jupyter.

Public API: :class:`Capsule` (the engine), :class:`CapsulePolicy` (the ceiling, configured
with traitlets), :class:`Registry` (grants, uses, refusals), the refusal exceptions, and the
IPython extension hooks ``load_ipython_extension`` / ``unload_ipython_extension``.
"""

from .engine.capsule import Capsule
from .engine.errors import (
    CapabilityError,
    CapsuleAttributeError,
    CapsuleImportError,
    CapsulePermissionError,
    CapsulePolicyError,
    CapsuleRequestRefused,
    CapsuleRevokedError,
    CapsuleSyntaxError,
    CapsuleTypeError,
)
from .engine.membrane import export
from .engine.policy import CapsulePolicy
from .engine.registry import Capability, Registry

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext ipycap``: register %%capsule, %capsule and the output filter."""
    from .ipython.magics import load

    load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext ipycap``: remove magics, hooks and configurables; the hook goes inert."""
    from .ipython.magics import unload

    unload(ipython)


def _jupyter_labextension_paths():
    """The prebuilt JupyterLab extension (for ``jupyter labextension develop``; a wheel
    installs it as data files in share/jupyter/labextensions/ipycap)."""
    return [{"src": "labextension", "dest": "ipycap"}]


def explain(obj, *, name: str | None = None):
    """A table of what each introspection feature gives on ``obj``, its proxy, and in rexec
    mode."""
    from .explore import explain as _explain

    return _explain(obj, name=name)


__all__ = [
    "Capsule",
    "CapsulePolicy",
    "Registry",
    "Capability",
    "CapabilityError",
    "CapsuleAttributeError",
    "CapsuleImportError",
    "CapsulePermissionError",
    "CapsuleRequestRefused",
    "CapsuleSyntaxError",
    "CapsuleTypeError",
    "CapsulePolicyError",
    "CapsuleRevokedError",
    "export",
    "explain",
    "load_ipython_extension",
    "unload_ipython_extension",
]

# The boundary auditor's test mode (IPYCAP_AUDIT=1): set by the test suite's audit pass,
# inherited by the kernels it starts.
from .engine import auditor as _auditor  # noqa: E402

if _auditor.enabled():
    _auditor.install()
