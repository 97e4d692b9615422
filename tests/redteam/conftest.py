"""Prints the corpus' coverage per ESCAPES.md row at the end of a run that included it."""

from __future__ import annotations

from collections import Counter


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not any("redteam" in str(a) for a in config.args) and not terminalreporter.stats.get(
        "passed"
    ):
        return
    from .payloads import PAYLOADS, ROWS

    counts = Counter(p.row for p in PAYLOADS)
    groups = Counter(p.group for p in PAYLOADS)
    tr = terminalreporter
    tr.write_sep("-", f"red-team corpus: {len(PAYLOADS)} payloads")
    for row in ROWS:
        tr.write_line(f"  {counts.get(row, 0):4d}  {row}")
    tr.write_line("  by group: " + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())))
