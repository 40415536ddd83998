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

from grader import i18n
from grader.judge import mistakes
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
        self.student = Asked(context.student) if context.student is not None else None
        self.hidden = hidden
        self.items: dict[str, Item] = {}
        self.credits: dict[str, Credit] = {}
        self.heard: dict[str, i18n.Words] = {}  # the Words made by the current test

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
            feedback = i18n.Words.join(credit.notes) if credit else ""
            status = "passed" if fraction == 1.0 else "partial"
            self.items[report.nodeid] = Item(name, round(points * fraction, 4), points,
                                             feedback, hidden, status, title,
                                             said=self._said(feedback))
        else:
            status = "failed" if report.when == "call" else "error"
            words = getattr(report, "words", "") or _message(report)
            self.items[report.nodeid] = Item(name, 0.0, points, str(words), hidden, status,
                                             title, said=self._said(words))

    def _said(self, feedback: str) -> Any:
        """The structure of FEEDBACK, when it is a sentence the judge or the rubric made with
        `say` (pytest hands an assertion's message on as plain text): the report says it
        again in the student's language. None for a plain string."""
        words = i18n.heard(feedback, self.heard)
        return words.to_json() if words else None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        """Notes the evidence a hidden test (or a fixture it set up) wrote, so the students'
        site can withhold it with the hidden items until the TA releases them."""
        before = set(self.context.evidence)
        with i18n.Listening() as heard:
            self.heard = heard
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
        with i18n.Listening() as words_heard:
            report.words = _words(call.excinfo, self.student)
        self.heard.update(words_heard)
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


def _fixtures(context: Context, student: Asked | None) -> types.ModuleType:
    """A plugin module of session-scoped fixtures (one pytest session is one submission)."""
    module = types.ModuleType("torchgrade_rubric_fixtures")
    values = {"student": student, "run": context.run, "assignment": context.assignment,
              "mnist": context.mnist, "settings": context.settings,
              "evidence": context.evidence, "notebook": context.notebook,
              "reference": importlib.import_module("reference")}
    for name, value in values.items():
        def fixture(value: Any = value) -> Any:
            return value
        setattr(module, name, pytest.fixture(scope="session", name=name)(fixture))
    return module


class Asked:
    """The sandbox session as rubric tests see it: every question passes through unchanged,
    and the last one asked is remembered, so that a question the notebook could not answer
    is reported in words ("while the grader was calling `gradients`")."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.last = ""

    def __eq__(self, other: object) -> bool:
        return bool(self._session == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._session)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._session, name)
        if name.startswith("_") or not callable(found):
            return found

        def asked(*args: Any, **kwargs: Any) -> Any:
            target = next((a for a in args if isinstance(a, str)), "")
            self.last = i18n.say(i18n.N_("{verb} `{target}`"), verb=ASKING.get(
                name, ASKING_SOMETHING), target=target) if target else i18n.say(ASKING.get(
                    name, ASKING_ABOUT))
            return found(*args, **kwargs)

        return asked


#: A question's method, as the words that say what the grader was doing.
N_ = i18n.N_
ASKING = {"call": N_("calling"), "value": N_("reading"), "forward": N_("running the model"),
          "load_and_forward": N_("loading and running"),
          "modules": N_("looking for the models"), "read_file": N_("reading the file"),
          "files": N_("listing the files"), "environment": N_("asking for the torch version")}
ASKING_SOMETHING, ASKING_ABOUT = N_("asking"), N_("asking about the notebook")


def _words(excinfo: Any, student: Asked | None) -> str:
    """A check that ended in an exception other than its own verdict (an assertion or
    pytest.fail), said in words: never the exception's text."""
    if excinfo is None or excinfo.errisinstance((AssertionError, pytest.fail.Exception,
                                                 pytest.skip.Exception)):
        return ""
    error = excinfo.value
    if isinstance(error, ProbeError):
        if error.kind not in ("raised", "malformed"):
            return ""  # the grader's own words: a time limit, an ended run, a judge's reason
        raised = str(error).split(":", 1)[0] if error.kind == "raised" else ""
        asked = student.last if student is not None else ""
        return mistakes.unanswered(asked, error.kind, raised)
    return mistakes.unfinished()


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
        pytest.main(args, plugins=[plugin, _fixtures(context, plugin.student)])
    return list(plugin.items.values())
