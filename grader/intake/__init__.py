"""Intake: what students handed in, read without trusting it, and matched to the assignment's
notebooks.

    files.py     reading safely: plain files only, never through a link, archives member by member
    layouts.py   the folder given to `grade`: who handed in which file for which notebook
"""

from grader.intake.files import (
    MAX_ARCHIVE_BYTES,
    MAX_NOTEBOOK_BYTES,
    PLAIN_FILES_ONLY,
    RefusedFile,
    copy_regular,
    open_regular,
    problem_with,
    read_regular,
    repaired_copy,
    scratch_dir,
    student_name,
)
from grader.intake.layouts import Rejected, Submission, collect

__all__ = [
    "MAX_ARCHIVE_BYTES", "MAX_NOTEBOOK_BYTES", "PLAIN_FILES_ONLY", "RefusedFile", "Rejected",
    "Submission", "collect", "copy_regular", "open_regular", "problem_with", "read_regular",
    "repaired_copy", "scratch_dir", "student_name",
]
