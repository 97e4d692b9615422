"""Runs cells in a fresh IPython InteractiveShell with ipycap loaded, in its own process.

``python tests/shell_driver.py CELLS.json`` -- CELLS.json is a list of {"source": ...,
optional "interrupt_after": seconds (a trusted timer sends this process SIGINT)}.  Prints one
JSON line per cell: the error's type and text (or null), the Out value's repr, the captured
stdout/stderr and the process's resident memory after the cell; then "alive" and exit 0.  A
crash of the interpreter shows as a missing line and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(path: str) -> int:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    cells = json.load(open(path))
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    shell.run_line_magic("load_ext", "ipycap")
    for cell in cells:
        timer = None
        if cell.get("interrupt_after"):
            timer = threading.Timer(cell["interrupt_after"], os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
        with capture_output(display=False) as cap:
            result = shell.run_cell(cell["source"], store_history=True)
        if timer is not None:
            timer.cancel()
        err = result.error_in_exec or result.error_before_exec
        line = {
            "error": type(err).__name__ if err is not None else None,
            "message": str(err) if err is not None else None,
            "result": repr(result.result) if result.result is not None else None,
            "stdout": cap.stdout,
            "stderr": cap.stderr,
            "rss": rss(),
        }
        print(json.dumps(line), flush=True)
    print("alive", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
