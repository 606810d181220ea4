"""The layered layout, enforced: imports point down only, and no module cycle.

Layers, bottom to top (a package may import its own modules and any lower layer; siblings
of one layer do not import each other):

    foundation (errors, limits, units, safeload, output, supervise, resources)
    <- model <- {simulation, evaluation, formulations, report, profile}
    <- optimisation <- analysis <- commands <- sweep <- cli

Every import is walked, at module level and inside functions alike (a deferred import is
still a dependency). ``rtgen_opt/__init__`` (the lazy public API) and
``rtgen_opt/policies`` (a compatibility alias) sit outside the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION = {"errors", "limits", "units", "safeload", "output", "supervise", "resources"}
RANK = {"foundation": 0, "model": 1, "simulation": 2, "evaluation": 2, "formulations": 2,
        "report": 2, "profile": 2, "optimisation": 3, "analysis": 4, "commands": 5,
        "sweep": 6, "cli": 7}
OUTSIDE = {"rtgen_opt", "rtgen_opt.policies"}  # the public API and the alias


def _modules() -> dict[str, Path]:
    found = {}
    for base, package in ((ROOT / "rtgen_opt", "rtgen_opt"),
                          (ROOT / "formulations", "rtgen_opt.formulations")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every rtgen_opt module ``name`` imports, resolved to a module of the tree."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("rtgen_opt"):
                out.add(target)
    return out


def _layer(module: str) -> str | None:
    if module in OUTSIDE:
        return None
    parts = module.split(".")
    if parts[1] in FOUNDATION:
        return "foundation"
    return parts[1]


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    """The package a module belongs to, for the sibling rule."""
    layer = _layer(module)
    return layer if layer == "foundation" else ".".join(module.split(".")[:2])


def test_every_package_has_a_layer():
    unknown = {m for m in MODULES if m not in OUTSIDE and _layer(m) not in RANK}
    assert not unknown, f"modules outside the layers (add them to RANK): {sorted(unknown)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in OUTSIDE))
def test_imports_point_down(module):
    mine = RANK[_layer(module)]
    for target in sorted(GRAPH[module]):
        if target == "rtgen_opt":
            continue  # the root package: its __version__ (it imports nothing eagerly)
        assert target not in OUTSIDE, f"{module} imports the compatibility alias {target}"
        theirs = RANK[_layer(target)]
        same_unit = _unit(target) == _unit(module)
        assert theirs < mine or same_unit, (
            f"{module} ({_layer(module)}) imports {target} ({_layer(target)}): "
            + ("a sibling of its layer" if theirs == mine else "an upward import"))


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt in OUTSIDE:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state and module not in OUTSIDE:
            visit(module)


def test_the_root_package_imports_nothing_eagerly():
    """``import rtgen_opt`` stays cheap and below every layer: its API is lazy."""
    tree = ast.parse((ROOT / "rtgen_opt" / "__init__.py").read_text())
    eager = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
             and any(a.name.startswith("rtgen_opt") for a in n.names)
             | ((getattr(n, "module", None) or "").startswith("rtgen_opt"))]
    assert not eager


def test_the_top_level_holds_packages_and_few_modules():
    modules = {p.stem for p in (ROOT / "rtgen_opt").glob("*.py")} - {"__init__", "policies"}
    assert modules <= FOUNDATION and len(modules) <= 8, sorted(modules)


def test_no_source_file_is_longer_than_600_lines_but_the_executor():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > 600
            and p.name != "executor.py"}
    assert not long, f"split these: {long}"
