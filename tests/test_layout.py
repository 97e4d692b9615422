"""The shape of the code: the engine's modules import one another in one direction only,
and the engine never imports IPython (DESIGN.md, "Shape of the code")."""

from __future__ import annotations

import ast
import pathlib

ENGINE = pathlib.Path(__file__).resolve().parent.parent / "ipycap" / "engine"


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ENGINE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _imports(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(engine modules imported, top-level packages imported), lazy imports included."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    engine, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                outside.add((node.module or "").partition(".")[0])
                continue
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if node.module is None:
                for alias in node.names:
                    engine.add(".".join([*base, alias.name]))
            else:
                engine.add(mod)
                # `from .libraries import blocks` imports the module libraries.blocks too
                engine.update(f"{mod}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            outside.update(a.name.partition(".")[0] for a in node.names)
    known = {_module_name(p) for p in ENGINE.rglob("*.py")}
    resolved = set()
    for m in engine:
        if m not in known and m.rpartition(".")[0] in known:
            m = m.rpartition(".")[0]  # a name imported from a module, not a submodule
        while m and m not in known:
            m = m.rpartition(".")[0]
        if m:
            resolved.add(m)
    return resolved, outside


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in ENGINE.rglob("*.py"):
        name = _module_name(path)
        deps, _ = _imports(path)
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_engine_modules_form_no_import_circle():
    cycles = _cycles(_graph())
    assert not cycles, f"import circles in ipycap/engine: {cycles}"


def test_the_engine_never_imports_ipython_or_jupyter():
    for path in ENGINE.rglob("*.py"):
        _, outside = _imports(path)
        bad = outside & {"IPython", "ipykernel", "jupyter_client", "ipycap"}
        assert not bad, f"{path.relative_to(ENGINE)} imports {bad}"


def test_the_checker_sees_circles_and_the_real_edges():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    graph = _graph()
    assert {"membrane", "modules", "codeexec"} <= graph["builtins"]
    assert "tripwire" in graph["registry"]
    assert "libraries.blocks" in graph["limits"]  # `from .libraries import blocks`
