"""Assignment folders: what `assignments/<HW>/assignment.toml` says, checked as it is read.

    assignments/W6/
        assignment.toml          names, aliases, points, limits, GPU wanted or not
        W6_MNIST_FC.ipynb        the student template
        solution/                the solution notebooks (never shown to students)

`find("W6")`, `find("W6_MNIST_FC")` and `find("CNN.ipynb")` all name the same assignment: a TA
may type the homework or any notebook name a student hands in.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.errors import AssignmentError

#: The assignments shipped with torchgrade; a TA points `--assignments DIR` at a private copy.
BUNDLED = Path(__file__).resolve().parent.parent / "assignments"


@dataclass(frozen=True)
class Limits:
    notebook_seconds: int
    cell_seconds: int
    memory_mb: int
    cpu_fallback: bool


@dataclass(frozen=True)
class Notebook:
    name: str
    aliases: tuple[str, ...]
    template: Path
    solution: Path
    points: float
    contract: tuple[str, ...]
    files: tuple[str, ...]

    def matches(self, filename: str) -> bool:
        """True when a handed-in file name ends with this notebook's name or an alias."""
        return any(filename.endswith(n) for n in (self.name, *self.aliases))


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    version: str
    folder: Path
    gpu: bool
    limits: Limits
    notebooks: tuple[Notebook, ...]
    settings: dict[str, dict[str, object]]

    @property
    def points(self) -> float:
        return sum(n.points for n in self.notebooks)

    def digest(self) -> str:
        """A hash of everything in the folder, so a changed rubric means a regrade."""
        h = hashlib.sha256()
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(self.folder)).encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


def _table(data: dict, key: str, where: Path) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise AssignmentError(f"{where}: missing the [{key}] table")
    return value


def _field(table: dict, key: str, kind: type | tuple[type, ...], where: str) -> object:
    if key not in table:
        raise AssignmentError(f"{where}: missing `{key}`")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise AssignmentError(f"{where}: `{key}` = {value!r} is not a {expected}")
    return value


def load(folder: Path) -> Assignment:
    """Read and check one assignment folder."""
    path = folder / "assignment.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssignmentError(f"{folder}: no assignment.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssignmentError(f"{path}: {exc}") from None
    head = _table(data, "assignment", path)
    limits = _limits(_table(data, "limits", path), f"{path} [limits]")
    notebooks = tuple(_notebook(folder, entry, path) for entry in data.get("notebook", []))
    if not notebooks:
        raise AssignmentError(f"{path}: no [[notebook]] entry")
    return Assignment(
        name=str(_field(head, "name", str, f"{path} [assignment]")),
        title=str(head.get("title", "")),
        version=str(head.get("version", "1")),
        folder=folder,
        gpu=bool(head.get("gpu", False)),
        limits=limits,
        notebooks=notebooks,
        settings={k: v for k, v in data.items() if isinstance(v, dict)
                  and k not in ("assignment", "limits")},
    )


def _limits(table: dict, where: str) -> Limits:
    return Limits(
        notebook_seconds=int(_field(table, "notebook_seconds", int, where)),
        cell_seconds=int(_field(table, "cell_seconds", int, where)),
        memory_mb=int(_field(table, "memory_mb", int, where)),
        cpu_fallback=bool(table.get("cpu_fallback", False)),
    )


def _notebook(folder: Path, entry: dict, path: Path) -> Notebook:
    where = f"{path} [[notebook]]"
    name = str(_field(entry, "name", str, where))
    template, solution = folder / name, folder / str(_field(entry, "solution", str, where))
    for required in (template, solution):
        if not required.is_file():
            raise AssignmentError(f"{where} {name}: {required} does not exist")
    return Notebook(
        name=name,
        aliases=tuple(entry.get("aliases", [])),
        template=template,
        solution=solution,
        points=float(_field(entry, "points", (int, float), where)),
        contract=tuple(entry.get("contract", [])),
        files=tuple(entry.get("files", [])),
    )


def all_assignments(root: Path = BUNDLED) -> list[Assignment]:
    if not root.is_dir():
        raise AssignmentError(f"{root}: no such assignments folder")
    return [load(p.parent) for p in sorted(root.glob("*/assignment.toml"))]


def notebook_named(hw: str, assignment: Assignment) -> Notebook | None:
    """The notebook `hw` names when it names one (W6_Save_Model), None for the whole homework."""
    wanted = hw.removesuffix(".ipynb").lower()
    for nb in assignment.notebooks:
        if wanted in [n.removesuffix(".ipynb").lower() for n in (nb.name, *nb.aliases)]:
            return nb
    return None


def find(hw: str, root: Path = BUNDLED) -> Assignment:
    """The assignment named `hw`, or the one owning a notebook (or alias) named `hw`."""
    wanted = hw.removesuffix(".ipynb").lower()
    candidates = all_assignments(root)
    for assignment in candidates:
        names = [n.removesuffix(".ipynb").lower() for nb in assignment.notebooks
                 for n in (nb.name, *nb.aliases)]
        if wanted == assignment.name.lower() or wanted in names:
            return assignment
    known = ", ".join(a.name for a in candidates) or "none"
    raise AssignmentError(f"no assignment or notebook named {hw!r} in {root} (known: {known})")
