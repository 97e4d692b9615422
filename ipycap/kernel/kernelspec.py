"""``python -m ipycap.kernel install``: write the capsule kernel's kernelspec.

Like ``python -m ipykernel install``: ``--user``, ``--sys-prefix`` or ``--prefix P`` choose
where, ``--name``/``--display-name`` what it is called (default ``capsule``, "Python 3
(capsule)").  ``--config FILE`` and ``--confine on|require`` go into the kernelspec's argv, as
does any ``--Class.trait=value`` option given after them (e.g.
``--CapsulePolicy.readable_paths=['/data']``): the person who installs the kernel sets its
policy, not the notebook's author.  The kernelspec's metadata says it has no debugger.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from traitlets.config import Application

KERNEL_NAME = "capsule"
DISPLAY_NAME = "Python 3 (capsule)"
RESOURCES = Path(__file__).parent / "resources"


def kernel_argv(config: str | None = None, confine: str | None = None, extra=()) -> list[str]:
    """The kernelspec's argv: this interpreter, ``-m ipycap.kernel``, the connection file."""
    argv = [sys.executable, "-m", "ipycap.kernel", "-f", "{connection_file}"]
    if config:
        argv.append(f"--config={os.path.abspath(config)}")
    if confine and confine != "off":
        argv.append(f"--CapsuleKernelApp.confine={confine}")
    argv.extend(extra)
    return argv


def install(
    *,
    user: bool = False,
    prefix: str | None = None,
    kernel_name: str = KERNEL_NAME,
    display_name: str = DISPLAY_NAME,
    config: str | None = None,
    confine: str | None = None,
    extra_arguments=(),
    env: dict | None = None,
) -> str:
    """Install the kernelspec; returns the folder it was written to."""
    spec = {
        "argv": kernel_argv(config, confine, extra_arguments),
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }
    if env:
        spec["env"] = dict(env)
    tmp = tempfile.mkdtemp(prefix="ipycap-kernelspec-")
    try:
        for logo in RESOURCES.glob("logo-*"):
            shutil.copy(logo, tmp)
        with open(os.path.join(tmp, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=1)
        return KernelSpecManager().install_kernel_spec(
            tmp, kernel_name=kernel_name, user=user, prefix=prefix
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class InstallCapsuleKernelSpecApp(Application):
    """``python -m ipycap.kernel install [options]`` (argparse, as ipykernel's installer)."""

    name = "ipycap-kernel-install"
    description = "Install the capsule kernel's kernelspec."

    def initialize(self, argv=None) -> None:
        self.argv = sys.argv[1:] if argv is None else list(argv)

    def start(self) -> None:
        parser = argparse.ArgumentParser(
            prog="python -m ipycap.kernel install", description=__doc__
        )
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="install for the current user")
        where.add_argument(
            "--sys-prefix",
            action="store_const",
            const=sys.prefix,
            dest="prefix",
            help=f"install into sys.prefix ({sys.prefix})",
        )
        where.add_argument("--prefix", help="install into PREFIX/share/jupyter/kernels")
        parser.add_argument("--name", default=KERNEL_NAME, help="kernelspec name")
        parser.add_argument("--display-name", default=DISPLAY_NAME, help="name shown in menus")
        parser.add_argument("--config", help="a traitlets config file the kernel loads at start")
        parser.add_argument(
            "--confine",
            choices=["off", "on", "require"],
            help="OS confinement of the kernel process (Linux)",
        )
        parser.add_argument(
            "--env",
            nargs=2,
            action="append",
            metavar=("NAME", "VALUE"),
            help="an environment variable for the kernel",
        )
        opts, extra = parser.parse_known_args(self.argv)
        bad = [a for a in extra if not (a.startswith("--") and "=" in a and "." in a.split("=")[0])]
        if bad:
            parser.error(
                f"unrecognised arguments {bad}; kernel options look like "
                "--CapsulePolicy.readable_paths=\"['/data']\""
            )
        if opts.config and not os.path.isfile(opts.config):
            parser.error(f"--config {opts.config}: no such file")
        dest = install(
            user=opts.user,
            prefix=opts.prefix,
            kernel_name=opts.name,
            display_name=opts.display_name,
            config=opts.config,
            confine=opts.confine,
            extra_arguments=extra,
            env=dict(opts.env) if opts.env else None,
        )
        print(f"Installed kernelspec {opts.name} in {dest}")
