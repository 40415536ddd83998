"""Intake: what students handed in, read without trusting it, and matched to the assignment's
notebooks.

    files.py     reading safely: plain files only, never through a link, archives member by member
    layouts.py   the folder given to `grade`: every student's attempts, in any layout
    lms.py       the downloads of Canvas, Moodle, Blackboard, Gradescope and nbgrader
    choose.py    which file of a student's is which notebook: by name, else by content
    matching.py  names set free of copy suffixes; a notebook's resemblance to each template
    roster.py    the class list: who the LMS's names are, who handed in nothing
    records.py   Submission and Rejected, what intake hands on
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
from grader.intake.layouts import collect
from grader.intake.records import Rejected, Submission

__all__ = [
    "MAX_ARCHIVE_BYTES", "MAX_NOTEBOOK_BYTES", "PLAIN_FILES_ONLY", "RefusedFile", "Rejected",
    "Submission", "collect", "copy_regular", "open_regular", "problem_with", "read_regular",
    "repaired_copy", "scratch_dir", "student_name",
]
