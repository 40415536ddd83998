"""Grading one submission: run it in the sandbox, then run its rubric against the live run.

A grading fails only alone: whatever goes wrong while one submission is graded (a file swapped
for a link, an answer the grader cannot handle, a bug of the grader's own) becomes that
submission's result, outcome "failed" with the reason, and the batch goes on.

Besides the rubric's own tests, the grader adds one item itself: when a notebook's settings
name `files` it must write (a saved model), `files_written` says whether the sandbox's folder
holds them, worth the notebook's `files_points` (0, shown but not counted, when unset).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from grader import assignments, intake
from grader.assignments import Assignment, Notebook
from grader.i18n import N_, Words, say
from grader.judge.rubric import Context, run_rubric
from grader.results import Item, ItemStatus, Result
from grader.sandbox import ProbeError, Sandbox, SandboxConfig, SandboxError
from grader.text import clean_text

GRADED_AGAIN = "it is graded again on the next run"

#: The built-in item's name: rubric tests are named test_*, so it never clashes with one.
FILES_ITEM = "files_written"


def rubric_files(assignment: Assignment, notebook: str, public_only: bool) -> tuple[
        list[Path], list[Path]]:
    """The rubric files for one notebook: `public/test_<stem>*.py` and `hidden/test_<stem>*.py`
    (the same files whose points `assignments.load` checked)."""
    public = assignments.rubric_files(assignment.folder, notebook, "public")
    return public, [] if public_only else assignments.rubric_files(
        assignment.folder, notebook, "hidden")


def files_item(notebook: Notebook, student: Any) -> Item | None:
    """The built-in item for a notebook that must leave `files` in its folder, or None when
    its settings name none. Public: `grade check` shows it too, so a student can fix it."""
    if not notebook.files:
        return None
    points = notebook.files_points
    # the title is stored as text: a Chinese page finds its template in the catalog
    title = str(say(N_("The notebook saved {files}"), files=", ".join(notebook.files)))
    try:
        present = {str(PurePosixPath(name)) for name in student.files()}
    except ProbeError as exc:
        said = say(N_("the grader could not list the notebook's files ({error})"),
                   error=clean_text(exc, 300))
        return Item(FILES_ITEM, 0.0, points, str(said), False, ItemStatus.FAILED, title,
                    said=said.to_json())
    missing = [f for f in notebook.files if str(PurePosixPath(f)) not in present]
    if missing:
        said = Words.join([say(N_("{file} was not saved in the notebook's folder"), file=f)
                           for f in missing])
        return Item(FILES_ITEM, 0.0, points, str(said), False, ItemStatus.FAILED, title,
                    said=said.to_json())
    return Item(FILES_ITEM, points, points, "", False, ItemStatus.PASSED, title)


def grade(submission: intake.Submission, assignment: Assignment, config: SandboxConfig, *,
          public_only: bool = False, mnist: Any = None) -> Result:
    """Run one submission and score it. Never raises for what the student did, nor for one
    submission the grader fails on: that is a "failed" result of its own. Only a sandbox that
    cannot be set up at all (the machine's problem, the same for every submission) raises."""
    try:
        return _grade(submission, assignment, config, public_only=public_only, mnist=mnist)
    except SandboxError:
        raise
    except intake.RefusedFile as exc:  # changed since intake: the next run's intake says why
        return Result.failed(submission.student, submission.notebook.name,
                             submission.content_hash,
                             f"{exc}; {intake.PLAIN_FILES_ONLY}; {GRADED_AGAIN}")
    except Exception as exc:  # noqa: BLE001 - one submission's failure is recorded, not raised
        return Result.failed(submission.student, submission.notebook.name,
                             submission.content_hash, failure_reason(exc))


def failure_reason(exc: BaseException) -> str:
    """What a TA reads when the grader failed on a submission."""
    return (f"the grader failed on this submission ({type(exc).__name__}: "
            f"{clean_text(exc, 300)}); {GRADED_AGAIN}")


def _grade(submission: intake.Submission, assignment: Assignment, config: SandboxConfig, *,
           public_only: bool, mnist: Any) -> Result:
    name = submission.notebook.name
    with tempfile.TemporaryDirectory(prefix="torchgrade-sub-") as folder:
        staging = Path(folder)
        intake.repaired_copy(submission.path, staging / name)
        for extra in submission.files:
            intake.copy_regular(extra, staging / extra.name)  # a link is refused, not followed
        with Sandbox(config).open(staging, name) as session:
            run = session.execute()
            public, hidden = rubric_files(assignment, name, public_only)
            context = Context(student=session, run=run, assignment=assignment, mnist=mnist,
                              settings=assignment.settings, notebook=submission.notebook)
            # asked first, shown last: the cheapest question, so a slow rubric question that
            # spends the probe budget cannot cost it
            written = files_item(submission.notebook, session)
            items = run_rubric(public, hidden, context)
            if written is not None:
                items.append(written)
            try:
                environment = session.environment()
            except ProbeError:
                environment = {}
        loaded = loaded_weights(submission, run.notebook)
        if loaded:
            context.evidence["loaded_weights"] = loaded
        return Result(submission.student, name, submission.content_hash, run, items,
                      environment, context.evidence)


#: Files that hold a model's weights, when handed in beside the notebook.
WEIGHT_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt", ".bin", ".safetensors", ".npz", ".h5")
_LOADS = re.compile(r"torch\.load|load_state_dict|pickle\.load|joblib\.load|np\.load|"
                    r"safetensors|from_pretrained")


def loaded_weights(submission: intake.Submission, notebook_text: str | None) -> list[str]:
    """The weight files handed in with the notebook that one of its code cells loads: such a
    model was not trained in the run, so its accuracy on the private hold-out says nothing
    of what the notebook did (the class page flags it)."""
    names = [f.name for f in submission.files if f.name.lower().endswith(WEIGHT_SUFFIXES)]
    if not names or not notebook_text:
        return []
    try:
        cells = json.loads(notebook_text).get("cells", [])
    except (ValueError, AttributeError):
        return []
    sources = ["".join(c.get("source", "")) if isinstance(c.get("source"), list)
               else str(c.get("source", "")) for c in cells
               if isinstance(c, dict) and c.get("cell_type") == "code"]
    return sorted({n for n in names for src in sources if _LOADS.search(src) and n in src})
