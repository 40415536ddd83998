"""How grader/sandbox/ is laid out across the trust boundary, read from its source: the kernel
is sent no module as a code string, the sandbox holds every module its agent imports, and
imports point down the layers without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

from grader.sandbox import session

REPO = Path(__file__).resolve().parent.parent
GRADER = REPO / "grader"
SANDBOX = GRADER / "sandbox"
#: What runs inside the sandbox (and the fork server outside it): importing siblings by their
#: bare names, never `grader`.
INSIDE = {path.stem for path in session.AGENT_FILES} | {"forkserver"}
#: The layers above the sandbox (docs/ARCHITECTURE.md): nothing of grader/sandbox/ imports them.
ABOVE = ("grader.judge", "grader.run", "grader.cli", "grader.gradebook", "grader.report",
         "grader.exports")
MOST_LINES = 20


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and its functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                        ast.Constant):
                found.add(id(body[0].value))
    return found


def long_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = docstrings(tree)
    return [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip and node.value.count("\n") + 1 > MOST_LINES]


def test_no_long_code_string_is_sent_to_a_kernel():
    """Kernel-side code lives in modules (kernel_prelude.py, kernel_probe.py) that are linted
    and tested; what the agent executes in the kernel is a short statement that loads them."""
    found = [spot for path in sorted(SANDBOX.glob("*.py")) for spot in long_strings(path)]
    assert found == []


def test_the_agent_runs_only_short_statements_in_the_kernel():
    tree = ast.parse((SANDBOX / "agent.py").read_text(encoding="utf-8"))
    constants = {target.id: node.value.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "run_silently":
            code = node.args[0]
            if isinstance(code, ast.Name):
                assert constants[code.id].count("\n") <= MOST_LINES
            elif isinstance(code, ast.Call):
                assert getattr(code.func, "id", "").endswith("_statement"), ast.dump(code)
            else:
                assert isinstance(code, ast.Constant) and "\n" not in code.value


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (a lazy import is still a dependency);
    `from package import module` counts as the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_path(sub) is not None else node.module)
    return found


def module_path(name: str) -> Path | None:
    if not name.startswith("grader"):
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_the_sandbox_holds_every_module_its_agent_imports():
    siblings = {path.stem for path in SANDBOX.glob("*.py")}
    for name in INSIDE:
        found = imports(SANDBOX / f"{name}.py")
        assert not {m for m in found if m.split(".")[0] == "grader"}, name
        assert {m for m in found if m in siblings} <= INSIDE, name


def test_the_trusted_side_of_the_sandbox_imports_nothing_above_it():
    for path in sorted(SANDBOX.glob("*.py")):
        if path.stem in INSIDE:
            continue
        found = imports(path)
        assert not [m for m in found if m.startswith(ABOVE)], path.name


def test_no_import_cycles_in_the_sandbox():
    """Among grader/sandbox/'s modules, counting the bare sibling imports of those that run
    inside it as the modules they name."""
    siblings = {path.stem for path in SANDBOX.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in siblings:
        found = {m.removeprefix("grader.sandbox.") for m in imports(SANDBOX / f"{name}.py")}
        graph[name] = (found & siblings) - {name}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
    assert "probes" in graph["session"] and "session" not in graph["probes"]
