"""The published pages in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): they load from file:// with no console error and no request, a script planted in a
student's output never runs, and every element the report promises is on the page.

Screenshots of a student page and a class page are saved in $TORCHGRADE_ARTIFACTS (default
tests/artifacts/).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader.gradebook import Gradebook
from grader.report import publish
from tests import reports

CHROMIUM = os.environ.get("TORCHGRADE_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TORCHGRADE_ARTIFACTS", ROOT / "tests" / "artifacts"))
GRADE = str(Path(sys.executable).parent / "grade")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"
                                " (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Visit:
    """One page load, with everything the page tried to do."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context(viewport={"width": 1200, "height": 900},
                                           java_script_enabled=True)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_timeout(200)

    def assert_quiet(self) -> None:
        errors = [m for m in self.console if not m.startswith(("log:", "info:", "debug:"))]
        assert errors == [], errors
        assert [u for u in self.requests if u not in (self.url, self.page.url)] == []
        assert self.dialogs == []
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.page.title() != "pwned"

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    book = Gradebook(reports.build(folder / "grades") / "gradebook.sqlite")
    publish(book, folder / "site", release_hidden=True)
    book.close()
    return folder / "site"


def page_of(site: Path, student: str, hw: str) -> Path:
    with (site / "ta" / "links.csv").open() as handle:
        return next(site / r["page"] for r in csv.DictReader(handle)
                    if r["student"] == student and r["hw"] == hw)


def test_every_page_loads_offline_quietly_and_runs_no_planted_script(browser, site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 11
    for path in pages:
        visit = Visit(browser, path)
        try:
            visit.assert_quiet()
        finally:
            visit.close()


def test_student_page_elements(browser, site):
    visit = Visit(browser, page_of(site, "bob", "W4"))
    try:
        assert visit.page.locator("#total").inner_text() == "3 / 8"
        assert visit.count("table.items tbody tr") == 2
        assert visit.count("table.gradient-errors td.bad") == 4
        assert visit.count("math") == 2
        assert visit.count("table.timings tr.training") == 1
        assert visit.page.locator("#peak-memory").inner_text() == "300 MB"
        visit.page.locator("details.executed summary").click()
        assert visit.page.locator(".planted").is_visible()  # the output, harmless, is shown
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "student-page.png"), full_page=True)
    finally:
        visit.close()
    dave = Visit(browser, page_of(site, "dave", "W4"))
    try:
        assert "NameError" in dave.page.locator("pre.traceback").inner_text()
    finally:
        dave.close()


def test_w5_and_w6_pages_draw_their_plots(browser, site):
    carol = Visit(browser, page_of(site, "carol", "W5"))
    try:
        assert carol.count("svg.chart polyline.curve") == 1
        assert carol.count("svg.chart circle.dot") == 300
    finally:
        carol.close()
    bob = Visit(browser, page_of(site, "bob", "W6"))
    try:
        assert bob.count("table.confusion tbody tr") == 10
        widths = bob.page.eval_on_selector_all(".digits img", "imgs => imgs.map(i => "
                                               "i.naturalWidth)")
        assert widths == [28] * 6  # each misclassified digit decodes as a 28x28 PNG
        assert "0.9284" in bob.page.locator("table.accuracy").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob.page.screenshot(path=str(ARTIFACTS / "student-page-w6.png"), full_page=True)
    finally:
        bob.close()


def test_class_page_elements_and_links(browser, site):
    visit = Visit(browser, site / "ta" / "W6.html")
    try:
        assert visit.count("#scores svg.chart rect.bar") >= 1
        assert visit.count("#runtimes svg.chart") == 1
        rows = visit.page.locator("table.leaderboard tbody tr").all_inner_texts()
        assert rows[0].split("\t")[1] == "bob" and len(rows) == 2
        assert "gap" in visit.page.locator("table.flags").inner_text()
        assert visit.count("table.rates tbody tr") == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "class-page.png"), full_page=True)
        visit.page.locator("a.student-link", has_text="alice").click()
        visit.page.wait_for_load_state("load")
        assert visit.page.locator("#total").inner_text() == "9.82 / 10"
        visit.assert_quiet()
    finally:
        visit.close()


@pytest.mark.slow
def test_a_notebook_that_really_ran_cannot_script_its_report(browser, tmp_path):
    """Graded in the real sandbox: HTML, JavaScript and markdown outputs aimed at the reader."""
    nb = nbformat.read(ROOT / "assignments" / "W4" / "solution" / "W4_Homework.ipynb", 4)
    nb.cells.append(nbformat.v4.new_markdown_cell(reports.HOSTILE_MARKDOWN))
    nb.cells.append(nbformat.v4.new_code_cell(
        "from IPython.display import HTML, Javascript, display\n"
        f"display(HTML({reports.HOSTILE_HTML!r}))\n"
        "display(Javascript(\"window.__pwned = 'javascript'\"))\n"
        "print('<script>window.__pwned = 1</script>')"))
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(nb, submissions / "mallory_W4_Homework.ipynb")
    subprocess.run([GRADE, str(submissions), "--hw", "W4", "--out", str(tmp_path / "grades")],
                   check=True, capture_output=True, text=True)
    subprocess.run([GRADE, "publish", "--gradebook", str(tmp_path / "grades"), "--out",
                    str(tmp_path / "site"), "--release-hidden"], check=True,
                   capture_output=True, text=True)
    visit = Visit(browser, page_of(tmp_path / "site", "mallory", "W4"))
    try:
        visit.page.locator("details.executed summary").click()
        visit.page.wait_for_timeout(200)
        visit.assert_quiet()
        assert visit.page.locator(".planted").is_visible()
        assert visit.page.locator("#total").inner_text() == "14 / 14"
        assert "<script>window.__pwned = 1</script>" in visit.page.locator(
            ".rendered-notebook").inner_text()  # printed text is shown as text
    finally:
        visit.close()
    shutil.rmtree(tmp_path / "site", ignore_errors=True)


@pytest.mark.slow
def test_one_grade_command_leaves_the_csv_and_the_report_a_ta_opens(browser, tmp_path):
    """`grade submissions/ --hw W6 --out grades`, on the bundled examples and a W4 notebook
    handed in by mistake: the gradebook, the CSV and the report, every page quiet offline."""
    submissions = tmp_path / "submissions"
    shutil.copytree(ROOT / "submissions", submissions)
    (submissions / "frank").mkdir()
    shutil.copy(ROOT / "submissions" / "alice_W4_Homework.ipynb",
                submissions / "frank" / "my homework.ipynb")
    grades = tmp_path / "grades"
    done = subprocess.run([GRADE, str(submissions), "--hw", "W6", "--out", str(grades)],
                          check=True, capture_output=True, text=True)
    index = grades / "report" / "index.html"
    assert {p.name for p in grades.iterdir()} >= {"gradebook.sqlite", "gradebook.csv", "report"}
    assert done.stdout.splitlines()[-1].endswith(f"report: {index.resolve().as_uri()}")
    with (grades / "gradebook.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["student"] for r in rows} == {"alice", "bob", "carol", "dave", "frank"}
    frank = next(r for r in rows if r["student"] == "frank")
    assert frank["outcome"] == "rejected" and frank["file"] == "my homework.ipynb"
    for path in sorted((grades / "report").rglob("*.html")):
        visit = Visit(browser, path)
        try:
            visit.assert_quiet()
        finally:
            visit.close()
    visit = Visit(browser, index)
    try:
        visit.page.locator("a", has_text="W6").click()
        visit.page.wait_for_load_state("load")
        visit.page.locator("a.student-link", has_text="frank").click()
        visit.page.wait_for_load_state("load")
        assert visit.page.locator("#total").inner_text() == "0 / 0"
        reason = visit.page.locator("p.reason").inner_text()
        assert "not this homework: my homework.ipynb resembles W4_Homework.ipynb" in reason
    finally:
        visit.close()
