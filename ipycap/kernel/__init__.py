"""The capsule kernel: a Jupyter kernel in which every cell runs as a capsule.

For shared teaching notebooks: the person who runs the kernel configures it (traitlets config,
frozen at start), not the notebook's author.  ``python -m ipycap.kernel install`` writes the
kernelspec; ``python -m ipycap.kernel -f CONNECTION_FILE`` runs it.

Public names: :class:`CapsuleKernel` (the kernel), :class:`CapsuleShell` (its shell),
:class:`CapsuleKernelApp` (the application, with the ``confine`` setting) and :func:`install`.
They are imported lazily, so ``import ipycap.kernel`` does not import ipykernel.
"""

from __future__ import annotations

__all__ = ["CapsuleKernel", "CapsuleShell", "CapsuleKernelApp", "install"]


def __getattr__(name: str):
    if name == "CapsuleKernel":
        from .kernel import CapsuleKernel

        return CapsuleKernel
    if name == "CapsuleShell":
        from .shell import CapsuleShell

        return CapsuleShell
    if name == "CapsuleKernelApp":
        from .app import CapsuleKernelApp

        return CapsuleKernelApp
    if name == "install":
        from .kernelspec import install

        return install
    raise AttributeError(f"module 'ipycap.kernel' has no attribute {name!r}")
