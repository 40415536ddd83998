"""The layering of docs/ARCHITECTURE.md, checked on the source: no import cycle between any two
modules of grader/, the shared records depend on nothing, and what reads stored results (the
gradebook, the reports, the exports) never imports the judge or the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grader"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str) -> set[str]:
    """The grader modules `name` imports anywhere in its source (a function's deferred import
    counts too; only `if TYPE_CHECKING:` blocks do not). `from package import x` is an import
    of the submodule `package.x` when there is one, else of the package itself."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    found.add(sub)
                elif base in MODULES:
                    found.add(base)
    found.discard(name)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    """A shortest import path from `start` back to itself, if any."""
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for nxt in sorted(GRAPH[path[-1]]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return None


def test_the_walk_sees_imports():
    """The walk itself: the CLI imports the gradebook, a package's module its siblings."""
    assert "grader.gradebook" in GRAPH["grader.cli"]
    assert "grader.results" in GRAPH["grader.gradebook"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_one_that_imports_it_back(name: str):
    cycle = _cycle_from(name)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_shared_records_import_nothing_of_grader():
    assert GRAPH["grader.results"] == set()


@pytest.mark.parametrize("reader", ["grader.gradebook", "grader.exports", "grader.report",
                                    "grader.report.pages", "grader.report.site"])
def test_what_reads_stored_results_never_imports_the_judge_or_the_sandbox(reader: str):
    below = {m for m in _reachable(reader) if m.startswith(("grader.judge", "grader.sandbox"))}
    assert not below, f"{reader} reaches {sorted(below)}"


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_backends_import_the_core_never_each_other():
    backends = {"grader.run.inline", "grader.run.pool", "grader.run.dask"}
    for backend in backends:
        assert not _reachable(backend) & backends, backend
