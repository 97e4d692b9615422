"""``bench/run.py --json``: every table of the report serialises and reads back.

A table with a ``fmt`` function (bench_protocol's memory table shows bytes) once made
``json.dumps`` fail at the very end of a full run, after minutes of measuring.
"""

from __future__ import annotations

import json
import pathlib
import sys
import types

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench_run(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("run", "common"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import common
    import run

    yield run, common
    for name in ("run", "common", "bench_tiny"):
        sys.modules.pop(name, None)


def _tiny_tables(common):
    settings = common.Settings(repeats=3, sample_ms=0.2)
    timed = common.compare(
        "tiny: sum vs len",
        {"len": lambda n: [len("ab") for _ in range(n)], "sum": lambda n: sum(range(n))},
        settings,
        inner=50,
    )
    common.check(timed, "sum", at_most=1e9, target="anything")
    memory = common.Table(
        "tiny: memory",
        "object",
        "plain",
        rows=[common.Row("plain", 56.0, 1.0, 1.0, 1.0), common.Row("proxy", 112.0, 2.0, 2.0, 2.0)],
        fmt=lambda b: f"{b:.0f} B",
    )
    memory.notes.append("bytes per object")
    return [timed, memory]


def test_json_report_of_tiny_tables_reads_back(bench_run, tmp_path):
    run, common = bench_run
    tables = _tiny_tables(common)
    out = tmp_path / "report.json"
    run.write_json(tables, str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [t["title"] for t in data] == ["tiny: sum vs len", "tiny: memory"]
    timed, memory = data
    assert {r["name"] for r in timed["rows"]} == {"len", "sum"}
    assert timed["target"] == "anything" and "MET" in timed["verdict"]
    assert all(r["median_ns"] > 0 and r["shown"].endswith("s") for r in timed["rows"])
    assert memory["rows"][1]["shown"] == "112 B" and memory["rows"][1]["ratio"] == 2.0
    assert memory["notes"] == ["bytes per object"] and "fmt" not in memory


def test_main_writes_the_json_of_every_module_it_ran(bench_run, tmp_path, monkeypatch, capsys):
    """The whole report path of ``main`` (render, targets, --json) on a tiny module."""
    run, common = bench_run
    tiny = types.ModuleType("bench_tiny")
    tiny.run = lambda settings: _tiny_tables(common)
    monkeypatch.setitem(sys.modules, "bench_tiny", tiny)
    monkeypatch.setattr(run, "modules", lambda only: ["bench_tiny"])
    out = tmp_path / "main.json"
    assert run.main(["--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## tiny: memory" in printed and "112 B" in printed and "# Targets" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [t["title"] for t in data] == ["tiny: sum vs len", "tiny: memory"]


def test_scoped_bench_runs_and_serialises(bench_run, tmp_path, monkeypatch):
    """bench_scoped (capsule-scoped answers trusted code pays for) runs its tables on a
    smoke setting, and they serialise."""
    run, common = bench_run
    monkeypatch.delitem(sys.modules, "bench_scoped", raising=False)
    import bench_scoped

    got = bench_scoped.run(common.Settings(repeats=1, sample_ms=0.2))
    assert len(got) == 5 and all(len(t.rows) >= 3 for t in got)
    run.write_json(got, str(tmp_path / "scoped.json"))
    assert len(json.loads((tmp_path / "scoped.json").read_text(encoding="utf-8"))) == 5
    sys.modules.pop("bench_scoped", None)
