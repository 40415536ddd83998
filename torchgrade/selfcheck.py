"""`torchgrade.check("W4")`: a homework's public rubric, run in the student's own kernel.

The TA grades a notebook by running it in a sandbox and asking it questions (`grade`, and
`grade check` for a student's file). A student wants the same verdicts while still working, in
the notebook itself. So this runs the same public rubric files through the same runner
(`grader.judge.rubric.run_rubric`), with the kernel they are working in as the `student`
(`grader.sandbox.live.Live`, which answers every question by the sandbox's own code) and the
notebook's file as the run's record: on the same code, the public items score what the TA's run
will give them. There is no sandbox: it is the student's code on the student's machine.

Which homework notebook the file is, is decided as `grade check` decides it (intake: by its
name, else by what it holds). Every failure the student can fix is a `CheckError` of one line;
a failure of the check itself says so without the exception's text.
"""

from __future__ import annotations

import ast
import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader import assignments as assignments_
from grader import i18n, intake
from grader.assignments import Assignment, Notebook
from grader.errors import AssignmentError
from grader.i18n import N_, say
from grader.judge import grade
from grader.judge.rubric import Context, run_rubric
from grader.results import Item, Match, readable
from grader.sandbox import live
from grader.text import one_line
from torchgrade.result import Check
from torchgrade.texts import language, words

#: What a student reads when the check itself failed (never the exception's text).
FAILED = N_("the check itself failed, which is torchgrade's fault, not your notebook's: run "
            "it again, and tell your TA if it fails again")
#: The rubric's helpers that read the notebook's markdown cells: a test that names one cannot
#: judge a notebook rebuilt from the input history, which has none.
MARKDOWN_READERS = frozenset({"markdown_cells", "read_markdown", "judge_markdown"})


class CheckError(Exception):
    """The check could not run: the message says what to do about it. IPython shows it as
    that one line rather than a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"torchgrade: {self}"]


def check(hw: str, item: str | None = None, *, notebook: str | os.PathLike[str] | None = None,
          lang: str | None = None, assignments: str | os.PathLike[str] | None = None) -> Check:
    """Run the public rubric of homework `hw` (W4, W5, W6, or a notebook's name) against this
    kernel and its notebook. `item` keeps only the items whose name or title contains it
    (case set aside); `notebook` is the notebook's path when it cannot be found; `lang` the
    language of titles and feedback; `assignments` a folder of assignments other than the
    bundled one. In a notebook the result shows itself as a table."""
    try:
        shown = language(lang)  # a language without a catalog is said before anything runs
    except i18n.LanguageError as exc:
        raise CheckError(str(exc)) from None
    try:
        return _check(hw, item, notebook, lang, Path(
            assignments) if assignments is not None else assignments_.BUNDLED)
    except CheckError:
        raise
    except (live.LiveError, AssignmentError) as exc:  # their messages are written for people
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise CheckError(one_line(words(said, shown), 1000)) from None
    except Exception:  # noqa: BLE001 - a bug of the check's own, shown without its text
        raise CheckError(words(FAILED, shown)) from None


def _check(hw: str, wanted: str | None, notebook: str | os.PathLike[str] | None,
           lang: str | None, root: Path) -> Check:
    assignment = assignments_.find(hw, root)
    shown = language(lang, assignment.lang)
    catalogs = i18n.course_catalogs(assignment.folder, shown)
    namespace = live.namespace_of_kernel()
    source = live.find_notebook(namespace, notebook)
    with tempfile.TemporaryDirectory(prefix="torchgrade-check-") as scratch:
        submission = _submission(source, assignment, Path(scratch), shown)
        run = live.record(_text(submission, Path(scratch)), _notes(source, submission))
    nb = submission.notebook
    with live.kept_random_state():
        items, notes = _items(assignment, nb, live.Live(namespace, run), run, wanted,
                              source.from_history, shown, catalogs)
    return Check(assignment.name, nb.name, items, [*run.notes, *notes], shown, catalogs)


def _submission(source: live.Source, assignment: Assignment, scratch: Path,
                lang: str) -> intake.Submission:
    """The notebook as intake sees it: which of the homework's notebooks it is, by its name or
    what it holds; a CheckError when it is not one of them."""
    path = scratch / "notebook" / source.name
    path.parent.mkdir()
    path.write_text(source.text, encoding="utf-8")
    found, rejected = intake.collect(path, assignment, scratch)
    if rejected or not found:
        reason = rejected[0].reason if rejected else say(N_("not a notebook of {hw}"),
                                                         hw=assignment.name)
        raise CheckError(one_line(f"{source.name}: {words(reason, lang)}", 1000))
    return found[0]


def _text(submission: intake.Submission, scratch: Path) -> str:
    """The notebook's text as the sandbox would run it (old formats and missing ids
    repaired)."""
    repaired = scratch / "repaired.ipynb"
    intake.repaired_copy(submission.path, repaired)
    return repaired.read_text(encoding="utf-8")


def _notes(source: live.Source, submission: intake.Submission) -> list[str]:
    """Where the cells were read from, and how the file was matched to the homework."""
    name = submission.notebook.name
    if source.from_history:
        return [say(N_("{how}: the cells are the code this kernel ran, without markdown (save "
                       'the notebook, then pass notebook="{name}" to check it all)'),
                    how=source.how, name=name)]
    where = say(N_("{path} ({how})"), path=source.path, how=source.how) if source.path \
        else source.how
    matched = submission.handin.notes(name) if submission.handin.match is not Match.ONLY else []
    return [say(N_("the cells were read from {where}, as last saved: save the notebook before "
                   "checking"), where=where), *matched]


@dataclass(frozen=True)
class RubricTest:
    """A test of a rubric file, read without running it: its name and title (as its item will
    carry them), the fixtures it asks for, and whether it reads the notebook's markdown."""

    file: Path
    name: str
    title: str
    fixtures: frozenset[str]
    reads_markdown: bool

    def matches(self, wanted: str) -> bool:
        return _matches(wanted, self.name, self.title)


def _matches(wanted: str, *texts: str) -> bool:
    return any(wanted.casefold() in text.casefold() for text in texts)


def rubric_tests(files: Sequence[Path]) -> list[RubricTest]:
    """Every test of these rubric files, in order: a file that does not parse has none here
    (running it reports it broken)."""
    found = []
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, OSError, ValueError):
            continue
        found += [_test(file, node) for node in _defined(tree.body)
                  if node.name.startswith("test")]
    return found


def _defined(body: list[ast.stmt]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions a module defines, and those of its classes (where pytest looks)."""
    found = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node)
        elif isinstance(node, ast.ClassDef):
            found += _defined(node.body)
    return found


def _test(file: Path, node: ast.FunctionDef | ast.AsyncFunctionDef) -> RubricTest:
    doc = (ast.get_docstring(node) or "").strip()
    named = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    named |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    return RubricTest(file, node.name, doc.splitlines()[0].strip() if doc else readable(
        node.name), frozenset(a.arg for a in node.args.args), bool(named & MARKDOWN_READERS))


def _items(assignment: Assignment, nb: Notebook, student: live.Live, run: Any,
           wanted: str | None, from_history: bool, lang: str,
           catalogs: tuple[Any, ...]) -> tuple[list[Item], list[str]]:
    """The public items asked for, in the rubric's order with the built-in files item last
    (as `grade` has them), and a note for any that did not run."""
    public, _ = grade.rubric_files(assignment, nb.name, public_only=True)
    tests = [t for t in rubric_tests(public) if wanted is None or t.matches(wanted)]
    written = grade.files_item(nb, student)  # asked first, shown last, as grade() does
    if written is not None and wanted is not None and not _matches(
            wanted, written.name, written.heading):
        written = None
    if wanted is not None and not tests and written is None:
        raise CheckError(_nothing_matches(wanted, nb, public, lang, catalogs))
    files = public if wanted is None else [f for f in public if f in {t.file for t in tests}]
    context = Context(student=student, run=run, assignment=assignment,
                      mnist=_mnist() if any("mnist" in t.fixtures for t in tests) else None,
                      settings=assignment.settings, notebook=nb)
    items = run_rubric(files, [], context) if files else []
    if wanted is not None:
        names = {t.name for t in tests}
        items = [i for i in items if i.name.split("[")[0] in names or i.name.endswith(".py")]
    if from_history:
        items = _without_markdown(items, tests, nb)
    ran = {i.name.split("[")[0] for i in items}
    missing = [t.title for t in tests if t.name not in ran]
    notes = [say(N_("not run (was the check interrupted?): {titles}"),
                 titles=i18n.Words.join(missing, ", "))] if missing else []
    return items + ([written] if written is not None else []), notes


def _nothing_matches(wanted: str, nb: Notebook, public: Sequence[Path], lang: str,
                     catalogs: tuple[Any, ...]) -> str:
    titles = i18n.Words.join([t.title for t in rubric_tests(public)]) or N_("none")
    return i18n.text(say(N_("no public item of {name} has {wanted} in its name or title (its "
                            "items: {titles})"), name=nb.name, wanted=repr(wanted),
                         titles=titles), lang, catalogs)


def _without_markdown(items: list[Item], tests: Sequence[RubricTest], nb: Notebook) -> list[Item]:
    """The items of tests that read markdown, told why they found none: the notebook was
    rebuilt from the input history, which holds only code."""
    reading = {t.name for t in tests if t.reads_markdown}
    said = say(N_("your notebook's file was not found, so its markdown could not be read: save "
                  'it and pass its path, as in notebook="{name}"'), name=nb.name)
    return [replace(i, feedback=said, said=said.to_json()) if i.name.split("[")[0] in reading
            else i for i in items]


def _mnist() -> Any:
    """MNIST as `grade check` loads it (the cache `grade data fetch` fills), or None: an item
    that needs it then says so itself."""
    from grader.cli import _mnist as load

    with contextlib.suppress(Exception):
        return load()
    return None
