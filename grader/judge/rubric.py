"""Rubric tests are ordinary pytest files; this module runs them against one submission.

A rubric test asks for fixtures and declares its worth with a marker:

    @pytest.mark.points(3)
    def test_gradients(student, reference, credit):
        ...
        assert ok, "dW1 is off by a factor of n: the loss is a sum, not a mean"

Passing earns the points; failing earns nothing, and the assertion's message is the student's
feedback. `credit(fraction, why)` grants part of the points from a test that then passes.
The first line of a test's docstring is the item's title, what a student reads above the
feedback; without one the report shows the test's name made readable.
Fixtures: `student` (the sandbox session: call, modules, forward, ...), `run` (the RunRecord),
`reference` (the `reference` package), `mnist` (the split, hold-out included; None if MNIST is
not provisioned), `assignment` (typed: `assignment.accuracy` is the [accuracy] table),
`notebook` (the graded notebook's settings: `contract`, `files`, `points`), `settings` (any
other assignment.toml table, untyped), `credit`, and `evidence`: a dict whose
JSON-serialisable entries the HTML report draws (see docs/RUBRICS.md).
Everything runs in the trusted process; hidden tests never enter the sandbox.
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.results import HIDDEN_EVIDENCE, Item
from grader.sandbox import ProbeError


@dataclass
class Context:
    """What the fixtures hand to rubric tests."""

    student: Any
    run: Any
    assignment: Any
    mnist: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    notebook: Any = None


class Credit:
    """Partial credit: `credit(0.5, "why")` inside a test; the test must still pass."""

    def __init__(self) -> None:
        self.fraction: float | None = None
        self.notes: list[str] = []

    def __call__(self, fraction: float, why: str = "") -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
        if why:
            self.notes.append(why)


class _Plugin:
    def __init__(self, context: Context, hidden: set[Path]) -> None:
        self.context = context
        self.hidden = hidden
        self.items: dict[str, Item] = {}
        self.credits: dict[str, Credit] = {}

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): what the rubric item is worth")

    @pytest.fixture
    def credit(self, request: pytest.FixtureRequest) -> Credit:
        return self.credits.setdefault(request.node.nodeid, Credit())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            name = Path(str(report.nodeid)).name or str(report.nodeid)
            self.items[report.nodeid] = Item(name, 0.0, 0.0, f"rubric file broken: "
                                             f"{_message(report)}", False, "error")

    def _record(self, report: pytest.TestReport) -> None:
        points = float(getattr(report, "points", 1.0))
        credit = self.credits.get(report.nodeid)
        name = report.nodeid.split("::")[-1]
        hidden = bool(getattr(report, "hidden", False))
        title = str(getattr(report, "title", ""))
        if report.passed:
            fraction = credit.fraction if credit and credit.fraction is not None else 1.0
            feedback = "; ".join(credit.notes) if credit else ""
            status = "passed" if fraction == 1.0 else "partial"
            self.items[report.nodeid] = Item(name, round(points * fraction, 4), points,
                                             feedback, hidden, status, title)
        else:
            status = "failed" if report.when == "call" else "error"
            self.items[report.nodeid] = Item(name, 0.0, points, _message(report), hidden,
                                             status, title)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        """Notes the evidence a hidden test (or a fixture it set up) wrote, so the students'
        site can withhold it with the hidden items until the TA releases them."""
        before = set(self.context.evidence)
        yield
        if Path(item.path).resolve() in self.hidden:
            written = set(self.context.evidence) - before - {HIDDEN_EVIDENCE}
            if written:
                known = self.context.evidence.setdefault(HIDDEN_EVIDENCE, [])
                known.extend(sorted(written - set(known)))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        marker = item.get_closest_marker("points")
        report = outcome.get_result()
        report.points = float(marker.args[0]) if marker and marker.args else 1.0
        report.hidden = Path(item.path).resolve() in self.hidden
        report.title = title(getattr(item, "obj", None))


def title(test: Any) -> str:
    """A rubric item's title: the first line of its test's docstring, or "" (then the report
    shows the test's name made readable). Only the test's own docstring counts, never one it
    inherits from a class or a builtin."""
    doc = getattr(test, "__doc__", None) if inspect.isfunction(test) or inspect.ismethod(
        test) else None
    lines = inspect.cleandoc(doc).splitlines() if isinstance(doc, str) else []
    return lines[0].strip() if lines else ""


def _fixtures(context: Context) -> types.ModuleType:
    """A plugin module of session-scoped fixtures (one pytest session is one submission)."""
    module = types.ModuleType("torchgrade_rubric_fixtures")
    values = {"student": context.student, "run": context.run, "assignment": context.assignment,
              "mnist": context.mnist, "settings": context.settings,
              "evidence": context.evidence, "notebook": context.notebook,
              "reference": importlib.import_module("reference")}
    for name, value in values.items():
        def fixture(value: Any = value) -> Any:
            return value
        setattr(module, name, pytest.fixture(scope="session", name=name)(fixture))
    return module


def _message(report: Any) -> str:
    """The assertion's own message when there is one, else the exception's last line."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    for prefix in ("AssertionError: ", "Failed: ", f"{ProbeError.__module__}.ProbeError: "):
        first = first.removeprefix(prefix)
    return first.removeprefix("assert ")[:500] if first.startswith("assert ") else first[:500]


def run_rubric(public: list[Path], hidden: list[Path], context: Context) -> list[Item]:
    """Run the rubric files against one submission; one Item per test, in file order."""
    files = [p.resolve() for p in [*public, *hidden]]
    if not files:
        return []
    plugin = _Plugin(context, {p.resolve() for p in hidden})
    with tempfile.TemporaryDirectory() as scratch:
        ini = Path(scratch) / "pytest.ini"
        ini.write_text("[pytest]\n")
        # no:unraisableexception and no:threadexception: each runs gc.collect() after every
        # test, which is slow with torch loaded (0.3 s of a 0.35 s rubric run)
        args = ["-c", str(ini), "--rootdir", scratch, "-p", "no:cacheprovider", "-p",
                "no:terminal", "-p", "no:warnings", "-p", "no:unraisableexception", "-p",
                "no:threadexception", "--import-mode=importlib",
                "-o", "python_files=*.py", *map(str, files)]
        pytest.main(args, plugins=[plugin, _fixtures(context)])
    return list(plugin.items.values())
