"""README's "A first session" is replayed cell by cell, so the transcript cannot go stale.

Each ``In [n]:`` cell runs in a real InteractiveShell (in a folder holding the transcript's
``data/marks.csv``); every line of the transcript's output must appear, in order, in what the
cell printed or displayed.  Whitespace runs compare equal, ``...`` in a line matches anything,
a line that is only ``...`` skips any number of lines, and ruler lines (``-----``) match any
ruler."""

from __future__ import annotations

import pathlib
import re

from tests import test_magics as shared
from tests.test_magics import plain

# The shared shell fixtures (one InteractiveShell per session, reset per test).
_shell = shared._shell
ip = shared.ip

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
_IN = re.compile(r"^In \[\d+\]: ?(.*)$")
_MORE = re.compile(r"^\s+\.\.\.: ?(.*)$")
_OUT = re.compile(r"^Out\[\d+\]: ?")


def transcript() -> list[tuple[str, list[str]]]:
    """The (source, expected output lines) of every cell in the README section."""
    text = README.read_text()
    start = text.index("## A first session")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    block = re.search(r"```ipython\n(.*?)```", section, re.S)
    assert block, "README's 'A first session' has no ```ipython transcript"
    cells: list[tuple[list[str], list[str]]] = []
    for line in block.group(1).splitlines():
        if m := _IN.match(line):
            cells.append(([m.group(1)], []))
        elif (m := _MORE.match(line)) and cells and not cells[-1][1]:
            cells[-1][0].append(m.group(1))
        elif cells:
            cells[-1][1].append(_OUT.sub("", line))
    return [("\n".join(src), [x for x in out if x.strip()]) for src, out in cells]


def _pattern(expected: str) -> re.Pattern:
    if set(expected.strip()) <= {"-", " "}:
        return re.compile(r"^[- ]+$")
    words = [re.escape(w).replace(r"\.\.\.", ".*") for w in expected.split()]
    return re.compile(r"^\s*" + r"\s+".join(words) + r"\s*$")


def assert_transcript_output(expected: list[str], actual: list[str], source: str) -> None:
    pos = 0
    for line in expected:
        if line.strip() == "...":
            continue
        pattern = _pattern(line)
        while pos < len(actual) and not pattern.match(actual[pos]):
            pos += 1
        assert pos < len(actual), (
            f"README cell:\n{source}\nexpected line not found in order:\n{line}\n"
            "actual output:\n" + "\n".join(actual)
        )
        pos += 1


def test_transcript_has_the_promised_steps():
    sources = [src for src, _ in transcript()]
    assert sources[0] == "%load_ext ipycap"
    assert any(s.startswith("%%capsule") for s in sources)
    assert any(s.startswith("%capsule grant") for s in sources)
    assert sources[-1] in ("%capsule", "%capsule list")
    assert any("Error" in line for _, out in transcript() for line in out)  # a refusal


def test_readme_first_session_replays(ip, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "marks.csv").write_text("ada,91\ngrace,88\n")
    ip.ok("%unload_ext ipycap")  # the transcript loads it itself
    for source, expected in transcript():
        ip.formatted.clear()
        ip.shell.run_cell(source, store_history=True)
        captured = capsys.readouterr()
        shown = [d.get("text/plain", "") for d in ip.formatted]
        actual = plain(captured.out + captured.err + "\n" + "\n".join(shown)).splitlines()
        assert_transcript_output(expected, actual, source)
