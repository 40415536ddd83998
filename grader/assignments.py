"""Assignment folders: what `assignments/<HW>/assignment.toml` says, checked as it is read.

    assignments/W6/
        assignment.toml          names, aliases, points, limits, GPU wanted or not, due date
        extensions.csv           optional, named by [due]: students given a later due date
        W6_MNIST_FC.ipynb        the student template
        solution/                the solution notebooks (never shown to students)
        public/, hidden/         the rubric files, `test_<notebook>*.py`

`find("W6")`, `find("W6_MNIST_FC")` and `find("CNN.ipynb")` all name the same assignment: a TA
may type the homework or any notebook name a student hands in.

Every setting is typed and checked when the folder loads, so a mistake stops `grade` before the
first submission runs instead of surfacing as a wrong score: a notebook's `points` must equal
what its rubric's `@pytest.mark.points` markers (read with `ast`, never imported) add up to,
plus `files_points`.

The due date, the late policy, `release` and the extensions file are not part of the digest
that keys the gradebook: a penalty is applied when results are exported or shown, never stored
into a score, so moving a deadline or granting an extension must not cause a regrade.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from grader import i18n, late
from grader.errors import AssignmentError
from grader.i18n import N_, say

#: The assignments shipped with torchgrade; a TA points `--assignments DIR` at a private copy.
BUNDLED = Path(__file__).resolve().parent.parent / "assignments"

#: The public/hold-out accuracy gap above which a result is flagged, unless [accuracy] says.
MAX_GAP = 0.02

#: The names the W6 judge asks about when a notebook's `contract` is empty.
DEFAULT_CONTRACT = ("model",)

#: What a [[notebook]] entry may say; anything else is a typo that would be silently ignored.
NOTEBOOK_FIELDS = ("name", "aliases", "solution", "points", "contract", "files", "files_points")

#: Tables with a typed home of their own; any other table reaches rubrics as `settings`.
TYPED_TABLES = ("assignment", "limits", "accuracy", "due", "late")

#: What [due] and [late] may say; as in [accuracy], anything else is refused as a typo.
DUE_FIELDS = ("at", "extensions")
LATE_FIELDS = ("per", "penalty", "cap", "grace_minutes", "zero_after_days")

#: When hidden items reach the students' site: on `grade publish --release-hidden`, or once the
#: due date has passed.
RELEASES = ("manual", "after_due")

#: What the digest leaves out of assignment.toml: settings export reads, grading never does.
EXPORT_TABLES = ("due", "late")
EXPORT_FIELDS = ("release", "lang")  # of [assignment]
EXTENSIONS = "extensions.csv"  # left out of the digest even when [due] no longer names it


@dataclass(frozen=True)
class Limits:
    notebook_seconds: int
    cell_seconds: int
    memory_mb: int
    cpu_fallback: bool


@dataclass(frozen=True)
class Accuracy:
    """[accuracy]: how an accuracy item scores, and when the report flags a result.

    Points grow linearly from nothing at `baseline` to all at `target`; a test accuracy more
    than `max_gap` above the private hold-out's suggests training on the test set."""

    baseline: float
    target: float
    max_gap: float = MAX_GAP

    def earned(self, accuracy: float) -> float:
        """The fraction of the accuracy item's points that `accuracy` earns."""
        return min(1.0, max(0.0, (accuracy - self.baseline) / (self.target - self.baseline)))


@dataclass(frozen=True)
class Notebook:
    name: str
    aliases: tuple[str, ...]
    template: Path
    solution: Path
    points: float
    contract: tuple[str, ...]
    files: tuple[str, ...]
    files_points: float = 0.0

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
    accuracy: Accuracy | None = None
    due: late.Due | None = None
    release: str = "manual"
    lang: str | None = None  # the course's language for students' pages and `grade check`

    @property
    def points(self) -> float:
        return sum(n.points for n in self.notebooks)

    def releases_hidden(self, now: datetime) -> bool:
        """True when `release = "after_due"` and every student's due date, extensions
        included, has passed: the hidden items reach the students' site by themselves."""
        if self.release != "after_due" or self.due is None:
            return False
        return now >= max([self.due.at, *self.due.extensions.values()])

    def notebook(self, name: str) -> Notebook | None:
        """The notebook entry named exactly `name` (a submission's canonical notebook name)."""
        return next((nb for nb in self.notebooks if nb.name == name), None)

    def digest(self) -> str:
        """A hash of everything in the folder that grading reads, so a changed rubric, template
        or limit means a regrade. assignment.toml is hashed as its parsed settings without
        [due], [late] and `release`, and the extensions file not at all (the one [due] names,
        and `extensions.csv` always, so that dropping the `extensions` line is no regrade
        either): those only change what export makes of a stored score, and a moved deadline
        must not regrade a class."""
        toml = self.folder / "assignment.toml"
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
        skipped = {toml, self.folder / EXTENSIONS,
                   _extensions_path(self.folder, data.get("due") or {})}
        h = hashlib.sha256()
        h.update(b"assignment.toml\0" + _canonical(data).encode())
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            if path not in skipped:
                h.update(str(path.relative_to(self.folder)).encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


def _canonical(data: dict[str, Any]) -> str:
    """assignment.toml's settings without those grading never reads, as one JSON text: key
    order, spacing and comments in the file change nothing."""
    kept = {key: value for key, value in data.items() if key not in EXPORT_TABLES}
    if isinstance(kept.get("assignment"), dict):
        kept["assignment"] = {key: value for key, value in kept["assignment"].items()
                              if key not in EXPORT_FIELDS}
    return json.dumps(kept, sort_keys=True, default=str, ensure_ascii=False)


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
    entries = data.get("notebook", [])
    if not isinstance(entries, list):
        raise AssignmentError(f"{path}: `notebook` must be [[notebook]] entries")
    notebooks = tuple(_notebook(folder, entry, path) for entry in entries)
    if not notebooks:
        raise AssignmentError(f"{path}: no [[notebook]] entry")
    for nb in notebooks:
        check_points(folder, nb, path)
    accuracy = data.get("accuracy")
    if accuracy is not None and not isinstance(accuracy, dict):
        raise AssignmentError(f"{path}: `accuracy` must be an [accuracy] table")
    due = _due(folder, data, path)
    return Assignment(
        name=str(_field(head, "name", str, f"{path} [assignment]")),
        title=str(head.get("title", "")),
        version=str(head.get("version", "1")),
        folder=folder,
        gpu=bool(head.get("gpu", False)),
        limits=limits,
        notebooks=notebooks,
        settings={k: v for k, v in data.items() if isinstance(v, dict)
                  and k not in TYPED_TABLES},
        accuracy=None if accuracy is None else _accuracy(accuracy, f"{path} [accuracy]"),
        due=due,
        release=_release(head, due, f"{path} [assignment]"),
        lang=_lang(head, f"{path} [assignment]"),
    )


def _lang(head: dict, where: str) -> str | None:
    """`lang`, the language the students read (a --lang flag overrides it), or None."""
    if "lang" not in head:
        return None
    try:
        return i18n.language(str(head["lang"]))
    except i18n.LanguageError as exc:
        raise AssignmentError(f"{where}: {exc}") from exc


def _number(table: dict, key: str, where: str, default: float | None = None) -> float:
    """A finite number from the table; `default` when the key is absent and one is given."""
    if key not in table and default is not None:
        return default
    value = float(_field(table, key, (int, float), where))  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise AssignmentError(f"{where}: `{key}` = {value} is not a finite number")
    return value


def _accuracy(table: dict, where: str) -> Accuracy:
    _known(table, ("baseline", "target", "max_gap"), where)
    accuracy = Accuracy(baseline=_number(table, "baseline", where),
                        target=_number(table, "target", where),
                        max_gap=_number(table, "max_gap", where, MAX_GAP))
    if not 0 <= accuracy.baseline < accuracy.target <= 1:
        raise AssignmentError(f"{where}: `baseline` = {accuracy.baseline} and `target` = "
                              f"{accuracy.target} must satisfy 0 <= baseline < target <= 1")
    if not 0 <= accuracy.max_gap <= 1:
        raise AssignmentError(f"{where}: `max_gap` = {accuracy.max_gap} is not between 0 and 1")
    return accuracy


def _known(table: dict, fields: tuple[str, ...], where: str) -> None:
    """Refuse a field the table does not have: a typo would otherwise be silently ignored."""
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise AssignmentError(f"{where}: unknown field `{unknown[0]}` (known: "
                              f"{', '.join(fields)})")


def _limits(table: dict, where: str) -> Limits:
    return Limits(
        notebook_seconds=int(_field(table, "notebook_seconds", int, where)),
        cell_seconds=int(_field(table, "cell_seconds", int, where)),
        memory_mb=int(_field(table, "memory_mb", int, where)),
        cpu_fallback=bool(table.get("cpu_fallback", True)),  # a GPU notebook still runs
    )


# ------------------------------------------------------------------ due date and late policy


def _due(folder: Path, data: dict, path: Path) -> late.Due | None:
    """[due] and [late], typed; None when the homework has no due date."""
    table, policy = data.get("due"), data.get("late")
    if table is None:
        if policy is not None:
            raise AssignmentError(f"{path} [late]: a late policy needs a [due] table giving "
                                  "the due date, as in at = 2026-10-05T23:59:00+08:00")
        return None
    where = f"{path} [due]"
    if not isinstance(table, dict):
        raise AssignmentError(f"{path}: `due` must be a [due] table")
    if policy is not None and not isinstance(policy, dict):
        raise AssignmentError(f"{path}: `late` must be a [late] table")
    _known(table, DUE_FIELDS, where)
    return late.Due(at=_due_at(table, where),
                    policy=None if policy is None else _policy(policy, f"{path} [late]"),
                    extensions=_extensions(folder, table, where))


def _due_at(table: dict, where: str) -> datetime:
    """`at`, a TOML date-time with its offset (or the same written as a string)."""
    if "at" not in table:
        raise AssignmentError(f"{where}: missing `at`, the due date, as in "
                              "at = 2026-10-05T23:59:00+08:00")
    value = table["at"]
    parsed = late.parse_time(value) if isinstance(value, str) else value
    shown = repr(value) if isinstance(value, str) else str(value)
    if not isinstance(parsed, datetime):
        raise AssignmentError(f"{where}: `at` = {shown} is not a date and time, as in "
                              "at = 2026-10-05T23:59:00+08:00")
    if parsed.tzinfo is None:  # read where the grader runs, it would move with the machine
        raise AssignmentError(f"{where}: `at` = {shown} has no time zone; add the course's "
                              f"UTC offset, as in at = {parsed.isoformat()}+08:00")
    return parsed


def _policy(table: dict, where: str) -> late.LatePolicy:
    _known(table, LATE_FIELDS, where)
    per = _field(table, "per", str, where)
    if per not in late.PERIODS:
        raise AssignmentError(f"{where}: `per` = {per!r} is not \"day\" or \"hour\"")
    grace = timedelta(minutes=_number(table, "grace_minutes", where, 0.0))
    if grace < timedelta(0):
        raise AssignmentError(f"{where}: `grace_minutes` = {table['grace_minutes']} is negative")
    return late.LatePolicy(per=str(per), penalty=_share(table, "penalty", where),
                           cap=_share(table, "cap", where, 1.0), grace=grace,
                           zero_after=_zero_after(table, grace, where))


def _share(table: dict, key: str, where: str, default: float | None = None) -> float:
    """A fraction of the points, between 0 and 1."""
    value = _number(table, key, where, default)
    if not 0 <= value <= 1:
        raise AssignmentError(f"{where}: `{key}` = {value:g} is not between 0 and 1 (a fraction "
                              "of the notebook's points: 0.1 is 10%)")
    return value


def _zero_after(table: dict, grace: timedelta, where: str) -> timedelta | None:
    if "zero_after_days" not in table:
        return None
    days = _number(table, "zero_after_days", where)
    if days <= 0 or timedelta(days=days) <= grace:
        raise AssignmentError(f"{where}: `zero_after_days` = {days:g} must be longer than the "
                              f"grace period ({grace.total_seconds() / 60:g} minutes)")
    return timedelta(days=days)


def _extensions_path(folder: Path, due: dict) -> Path | None:
    name = due.get("extensions")
    return None if name is None else folder / str(name)


def _extensions(folder: Path, due: dict, where: str) -> dict[str, datetime]:
    """The extensions file [due] names, read now so that a bad row stops `grade` at once. It
    must be inside the folder: the folder is what a cluster ships to its workers."""
    name = due.get("extensions")
    if name is None:
        return {}
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in Path(name).parts:
        raise AssignmentError(f"{where}: `extensions` = {name!r} must name a CSV file inside "
                              "the assignment's folder, as in extensions = \"extensions.csv\"")
    path = _extensions_path(folder, due)
    if path is None or not path.is_file():
        raise AssignmentError(f"{where}: `extensions` = {name!r}: {path} does not exist")
    try:
        return late.read_extensions(path)
    except late.LateError as exc:
        raise AssignmentError(str(exc)) from None


def _release(head: dict, due: late.Due | None, where: str) -> str:
    release = head.get("release", "manual")
    if release not in RELEASES:
        raise AssignmentError(f"{where}: `release` = {release!r} is not \"manual\" or "
                              "\"after_due\"")
    if release == "after_due" and due is None:
        raise AssignmentError(f"{where}: `release` = \"after_due\" needs a [due] table giving "
                              "the due date")
    return str(release)


# ------------------------------------------------------------------------------ notebooks


def _notebook(folder: Path, entry: object, path: Path) -> Notebook:
    if not isinstance(entry, dict):
        raise AssignmentError(f"{path}: a [[notebook]] entry must be a table")
    name = str(_field(entry, "name", str, f"{path} [[notebook]]"))
    where = f"{path} [[notebook]] {name}"
    _known(entry, NOTEBOOK_FIELDS, where)
    template, solution = folder / name, folder / str(_field(entry, "solution", str, where))
    for required in (template, solution):
        if not required.is_file():
            raise AssignmentError(f"{where}: {required} does not exist")
    files = _names(entry, "files", where)
    for file in files:
        if file.startswith("/") or ".." in Path(file).parts or file in (".", ""):
            raise AssignmentError(f"{where}: `files` entry {file!r} must be a path inside the "
                                  "notebook's folder")
    contract = _names(entry, "contract", where)
    for word in contract:
        if not word.isidentifier():
            raise AssignmentError(f"{where}: `contract` entry {word!r} is not a Python name")
    files_points = _number(entry, "files_points", where, 0.0)
    if files_points < 0 or (files_points and not files):
        raise AssignmentError(f"{where}: `files_points` = {files_points} needs a non-negative "
                              "number and a non-empty `files` list")
    points = _number(entry, "points", where)
    if points < 0:
        raise AssignmentError(f"{where}: `points` = {points} is negative")
    return Notebook(
        name=name,
        aliases=_names(entry, "aliases", where),
        template=template,
        solution=solution,
        points=points,
        contract=contract,
        files=files,
        files_points=files_points,
    )


def _names(entry: dict, key: str, where: str) -> tuple[str, ...]:
    """A list of non-empty strings, or () when the key is absent."""
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AssignmentError(f"{where}: `{key}` = {value!r} is not a list of names")
    return tuple(value)


# ------------------------------------------------------------------ rubric points, read with ast


def rubric_files(folder: Path, notebook: str, kind: str) -> list[Path]:
    """One notebook's rubric files of one kind (`public` or `hidden`): `test_<stem>*.py`."""
    stem = notebook.removesuffix(".ipynb")
    return sorted((folder / kind).glob(f"test_{stem}*.py"))


def check_points(folder: Path, nb: Notebook, path: Path) -> None:
    """The toml's `points` must be what grading can award: the rubric's markers plus
    `files_points`. Two numbers kept in step by hand drift apart, and a drift shows up only as
    a wrong total in a student's report."""
    files = [*rubric_files(folder, nb.name, "public"), *rubric_files(folder, nb.name, "hidden")]
    per_file = {f: rubric_points(f) for f in files}
    marked = sum(per_file.values()) + nb.files_points
    if not math.isclose(marked, nb.points, abs_tol=1e-9):
        shown = ", ".join(f"{f.relative_to(folder)}: {p:g}" for f, p in per_file.items())
        extra = f" + files_points {nb.files_points:g}" if nb.files_points else ""
        raise AssignmentError(
            f"{path} [[notebook]] {nb.name}: `points` = {nb.points:g}, but the rubric's "
            f"@pytest.mark.points markers add up to {marked:g} ({shown or 'no rubric files'}"
            f"{extra}); make them agree")


def rubric_points(path: Path) -> float:
    """What one rubric file can award: each test's `@pytest.mark.points(n)` (1 without it),
    times its parametrized cases, as the rubric runner counts them."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise AssignmentError(f"{path}: the rubric file cannot be parsed ({exc})") from None
    total = 0.0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_test(node.name):
            total += _test_points(node, node.decorator_list, path)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            total += sum(_test_points(m, [*node.decorator_list, *m.decorator_list], path)
                         for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                         and _is_test(m.name))
    return total


def _is_test(name: str) -> bool:
    return name.startswith("test")


def _test_points(node: ast.AST, decorators: list[ast.expr], path: Path) -> float:
    where = f"{path}:{getattr(node, 'lineno', '?')}"
    points, cases = 1.0, 1
    for decorator in decorators:
        marker = _marker_name(decorator)
        if marker == "points":
            points = _literal_points(decorator, where)
        elif marker == "parametrize":
            cases *= _literal_cases(decorator, where)
    return points * cases


def _marker_name(decorator: ast.expr) -> str | None:
    """`points` for `@pytest.mark.points(...)` or `@mark.points(...)`, and so on."""
    func = decorator.func if isinstance(decorator, ast.Call) else decorator
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value
    is_mark = (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark")
    return func.attr if is_mark else None


def _literal_points(decorator: ast.expr, where: str) -> float:
    args = decorator.args if isinstance(decorator, ast.Call) else []
    try:
        value = ast.literal_eval(args[0]) if len(args) == 1 else None
    except ValueError:
        value = None
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise AssignmentError(f"{where}: @pytest.mark.points needs one non-negative number "
                              "written out, so the points can be checked without running it")
    return float(value)


def _literal_cases(decorator: ast.expr, where: str) -> int:
    args = decorator.args if isinstance(decorator, ast.Call) else []
    try:
        cases = ast.literal_eval(args[1]) if len(args) >= 2 else None
    except ValueError:
        cases = None
    if not isinstance(cases, list | tuple):
        raise AssignmentError(f"{where}: @pytest.mark.parametrize needs its cases written out "
                              "as a list, so the rubric's points can be counted")
    return len(cases)


def all_assignments(root: Path = BUNDLED) -> list[Assignment]:
    if not root.is_dir():
        raise AssignmentError(say(N_("{root}: no such assignments folder"), root=str(root)))
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
    known = i18n.Words.join([a.name for a in candidates], ", ") if candidates else N_("none")
    raise AssignmentError(say(N_("no assignment or notebook named {hw} in {root} (known: "
                                 "{known})"), hw=repr(hw), root=str(root), known=known))


def dues(root: Path = BUNDLED) -> dict[str, late.Due | None]:
    """Each assignment's due date and late policy as the toml says now, by homework name: what
    exports and pages apply to stored results (a homework no longer in the folder has none)."""
    return {a.name: a.due for a in all_assignments(root)}
