"""How long the HTML takes: 50 really graded W4 submissions, each page rendered from the
gradebook, and the whole site published.

    python bench/report_render.py [--grades FOLDER]

The 50 submissions are the five W4 examples ten times over, each copy with its own comment so
that it is a distinct submission. They are graded once (`grade --jobs 2`) into FOLDER (a
temporary folder unless given; an existing gradebook there is reused).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.gradebook import Gradebook
from grader.report import pages, publish

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["alice", "bob", "carol", "dave", "erin"]
GRADE = str(Path(sys.executable).parent / "grade")


def make_class(folder: Path, copies: int = 10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for name in EXAMPLES:
            nb = nbformat.read(ROOT / "submissions" / f"{name}_W4_Homework.ipynb", 4)
            nb.cells.append(nbformat.v4.new_code_cell(f"# submission {k} of {name}"))
            nbformat.write(nb, folder / f"{name}{k:02d}_W4_Homework.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grades", type=Path, help="gradebook folder to reuse or fill")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="torchgrade-bench-"))
    grades = args.grades or scratch / "grades"
    try:
        if not (grades / "gradebook.sqlite").exists():
            make_class(scratch / "class")
            started = time.perf_counter()
            subprocess.run([GRADE, str(scratch / "class"), "--hw", "W4", "--jobs", "2",
                            "--out", str(grades)], check=True, capture_output=True)
            print(f"graded 50 W4 submissions in {time.perf_counter() - started:.0f} s "
                  "(--jobs 2)")
        book = Gradebook(grades / "gradebook.sqlite")
        rows = book.results("W4")
        pages.environment()
        times = []
        for row in rows:
            started = time.perf_counter()
            section = pages.notebook_section(row, book.attachment(row.key, "notebook"))
            pages.student_page(row.student, "W4", "W4", [section])
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        done = publish(book, scratch / "site")
        whole = time.perf_counter() - started
        book.close()
        print(f"{len(rows)} student pages from the gradebook: median {statistics.median(times):.3f}"
              f" s per page, slowest {max(times):.3f} s")
        print(f"whole site (grade publish: {done.student_pages} student pages, class page, "
              f"similarity over all pairs, {done.pairs} pair pages): {whole:.1f} s = "
              f"{whole / done.student_pages:.3f} s per student page")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
