"""`grade publish`: the gradebook as a static site.

    site/
      index.html              TA index: every homework's class page          (staff only)
      ta/<hw>.html            the class page; ta/<hw>-pair-<k>.html similar code (staff only)
      ta/links.csv            student, homework, page: for mailing each student their link
      s/<token>.html          one page per student and homework                (publishable)

A student's page name is a random token kept in the gradebook, so republishing after a regrade
keeps every link that was sent, and no student can guess another's page. Only `s/` is meant
for students; `index.html` and `ta/` name everyone.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from grader import assignments, i18n, late
from grader.errors import GraderError
from grader.gradebook import Gradebook
from grader.report import pages, similarity
from grader.results import StoredResult

STUDENT_DIR, TA_DIR = "s", "ta"
MAX_PAIRS = 50  # per homework; more than that is a template or slide problem, not fifty cases


@dataclass(frozen=True)
class Published:
    index: Path
    student_pages: int
    class_pages: int
    pairs: int


def publish(book: Gradebook, out: Path, *, hw: str | None = None, anonymise: bool = False,
            threshold: float = 0.5, assignments_dir: Path = assignments.BUNDLED,
            release_hidden: bool = False, lang: str | None = None) -> Published:
    """Write the site for HW (every homework in the gradebook when None) into OUT. Hidden
    items reach the students' pages only when released: `release_hidden`, or `release =
    "after_due"` once every due date has passed; the class pages always show them. The pages
    are in LANG ("en", "zh"); when None, each homework's in its assignment.toml's `lang`, else
    in TORCHGRADE_LANG's, else in English."""
    results = late.penalised(book.results(hw), assignments.dues(assignments_dir))
    if not results:
        raise GraderError(f"nothing to publish: the gradebook {book.path} has no results"
                          + (f" for {hw}" if hw else ""))
    by_hw: dict[str, list[StoredResult]] = defaultdict(list)
    for result in results:
        by_hw[result.hw].append(result)
    (out / STUDENT_DIR).mkdir(parents=True, exist_ok=True)
    (out / TA_DIR).mkdir(parents=True, exist_ok=True)
    links, count, pair_count = [], 0, 0
    langs = set()
    for name, hw_results in sorted(by_hw.items()):
        found = _assignment(name, assignments_dir)
        title, folder = (found.title, found.folder) if found else (name, None)
        said = i18n.chosen(lang, found.lang if found else None)
        langs.add(said)
        catalogs = i18n.course_catalogs(folder, said)
        released = release_hidden or bool(found and found.releases_hidden(
            datetime.now(UTC)))
        students = _group(hw_results)
        shown = _names(students, anonymise)
        view = pages.ClassView(hw=name, title=title, students=[], max_gap=_max_gap(found))
        notebooks = {r.key: book.attachment(r.key, "notebook") for r in hw_results}
        baselines = _baselines(book, name, {r.notebook for r in hw_results})
        for student, own in students.items():
            token = book.token(name, student)
            sections = [pages.notebook_section(r if released else r.without_hidden(),
                                               notebooks[r.key], baselines.get(r.notebook),
                                               lang=said)
                        for r in own]
            view.training += [s.training["times"] for s in sections
                              if s.training and s.training["times"] is not None]
            own_name = _named(student, own)
            _write(out / STUDENT_DIR / f"{token}.html",
                   pages.student_page(own_name, name, title, sections, lang=said,
                                      catalogs=catalogs))
            link = f"../{STUDENT_DIR}/{token}.html"
            view.students.append(pages.ClassStudent(shown[student], link, own))
            links.append((student, name, f"{STUDENT_DIR}/{token}.html"))
            count += 1
        pairs = _similar(notebooks, students, shown, folder, threshold)
        view.pairs, view.more_pairs = pairs[:MAX_PAIRS], max(0, len(pairs) - MAX_PAIRS)
        view.pair_link = lambda k, name=name: f"{name}-pair-{k}.html"
        for k, pair in enumerate(view.pairs):
            _write(out / TA_DIR / view.pair_link(k),
                   pages.pair_page(name, pair, f"{name}.html", lang=said))
        pair_count += len(view.pairs)
        _write(out / TA_DIR / f"{name}.html", pages.class_page(view, lang=said,
                                                              catalogs=catalogs))
    _write_links(out / TA_DIR / "links.csv", links)
    index = out / "index.html"
    _write(index, pages.environment(langs.pop() if len(langs) == 1 else i18n.chosen(lang))
           .get_template("index.html").render(homeworks=sorted(by_hw), ta_dir=TA_DIR,
                                               generated=time.time()))
    return Published(index, count, len(by_hw), pair_count)


def _assignment(hw: str, root: Path) -> assignments.Assignment | None:
    """The homework's folder, for its title, template and settings; a gradebook may outlive it."""
    try:
        return assignments.find(hw, root)
    except GraderError:
        return None


def _max_gap(found: assignments.Assignment | None) -> float:
    """The public/hold-out accuracy gap above which a result is flagged."""
    return found.accuracy.max_gap if found and found.accuracy else assignments.MAX_GAP


def _group(results: Iterable[StoredResult]) -> dict[str, list[StoredResult]]:
    students: dict[str, list[StoredResult]] = defaultdict(list)
    for result in results:
        students[result.student].append(result)
    return dict(sorted(students.items()))


def _names(students: dict[str, list[StoredResult]], anonymise: bool) -> dict[str, str]:
    """How the class page names each student: the LMS's or the roster's name beside the
    identity the gradebook keys them by, or a number when anonymised."""
    if not anonymise:
        return {s: _named(s, own) for s, own in students.items()}
    return {s: f"student {k + 1:03d}" for k, s in enumerate(students)}


def _baselines(book: Gradebook, hw: str, notebooks: set[str]) -> dict[str, pages.Timing]:
    """The solution's training time per notebook, where a batch timed it."""
    found = {}
    for name in notebooks:
        solution = book.baseline(hw, name)
        timing = solution and pages.training_time(solution, book.attachment(solution.key,
                                                                             "notebook"))
        if timing:
            found[name] = timing
    return found


def _named(student: str, own: list[StoredResult]) -> str:
    shown = next((r.handin.display_name for r in own if r.handin.display_name), "")
    return f"{shown} ({student})" if shown and shown != student else student


def _similar(notebooks: dict[str, str | None], students: dict[str, list[StoredResult]],
             shown: dict[str, str], folder: Path | None,
             threshold: float) -> list[similarity.Pair]:
    """Similar pairs per notebook, from the notebooks as they were run (by result key)."""
    by_notebook: dict[str, dict[str, str]] = defaultdict(dict)
    for student, own in students.items():
        for result in own:
            text = notebooks[result.key]
            if not text:
                continue
            template = folder / result.notebook if folder else None
            code = similarity.student_code(
                io.StringIO(text), template if template and template.exists() else None)
            if code.strip():
                by_notebook[result.notebook][shown[student]] = code
    pairs = [p for codes in by_notebook.values()
             for p in similarity.similar_pairs(codes, threshold)]
    return sorted(pairs, key=lambda p: -p.score)


def _write(path: Path, text: str) -> None:
    """Write through a temporary file, so a page is either the old one or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_links(path: Path, links: list[tuple[str, str, str]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["student", "hw", "page"])
    writer.writerows(links)
    _write(path, text.getvalue())
