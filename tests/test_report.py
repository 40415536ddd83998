"""The HTML reports and `grade publish`: what each page shows, that a student's output cannot
run or fetch anything, and that the site's student links are unguessable and stable."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.gradebook import Gradebook
from grader.report import publish
from tests import reports

GRADE = str(Path(sys.executable).parent / "grade")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    grades = reports.build(tmp_path / "grades")
    book = Gradebook(grades / "gradebook.sqlite")
    try:
        publish(book, tmp_path / "site", release_hidden=True)
    finally:
        book.close()
    return tmp_path / "site"


def links(site: Path) -> dict[tuple[str, str], Path]:
    with (site / "ta" / "links.csv").open() as handle:
        return {(r["student"], r["hw"]): site / r["page"] for r in csv.DictReader(handle)}


def test_student_pages_have_unguessable_names_that_survive_republishing(tmp_path, site):
    pages = links(site)
    assert set(pages) == {("alice", "W4"), ("bob", "W4"), ("dave", "W4"), ("mallory", "W4"),
                          ("carol", "W5"), ("alice", "W6"), ("bob", "W6")}
    for (student, _), page in pages.items():
        assert page.exists() and page.parent.name == "s"
        assert student not in page.name and len(page.stem) >= 24
    assert len({p.name for p in pages.values()}) == len(pages)
    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    publish(book, tmp_path / "again", release_hidden=True)
    book.close()
    assert {k: p.name for k, p in links(tmp_path / "again").items()} == \
        {k: p.name for k, p in pages.items()}


def test_no_page_carries_a_script_a_handler_or_a_fetch(site):
    for page in site.rglob("*.html"):
        html = page.read_text()
        assert "<script" not in html.lower(), page
        assert not re.search(r"\son[a-z]+\s*=", html), page
        assert "127.0.0.1" not in html and "javascript:" not in html, page
        assert "<iframe" not in html and 'http-equiv="Content-Security-Policy"' in html, page
        assert "default-src &#39;none&#39;" in html


def test_w4_page_shows_points_reasons_gradient_errors_and_derivations(site):
    html = links(site)[("bob", "W4")].read_text()
    assert "3 / 8" in html  # total
    assert "the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid) is missing" in html
    assert 'class="gradient-errors"' in html and "7.3e-01" in html
    assert "<math" in html and "<mfrac>" in html  # the derivation drawn as MathML
    assert "hidden test" in html
    assert 'class="planted"' in html  # harmless formatting from the output survives
    assert 'tr class="training"' in html and "for epoch in range(3):" in html
    assert "300 MB" in html  # peak memory


def test_failing_cell_traceback_and_rejected_submission(site):
    dave = links(site)[("dave", "W4")].read_text()
    assert 'class="traceback"' in dave and "NameError: name &#39;h_sig&#39; is not defined" in dave
    assert "\x1b[" not in dave
    mallory = links(site)[("mallory", "W4")].read_text()
    assert "zip holds a symlink" in mallory and "rejected" in mallory


def test_w5_fit_plot_and_w6_confusion_digits_and_holdout(site):
    carol = links(site)[("carol", "W5")].read_text()
    assert '<polyline class="curve"' in carol and "1.02 × the noise floor" in carol
    bob = links(site)[("bob", "W6")].read_text()
    assert 'class="confusion"' in bob and bob.count('<img src="data:image/png;base64,') == 6
    assert "0.9990" in bob and "0.9284" in bob and "+0.0706" in bob


def test_class_page(site):
    w4 = (site / "ta" / "W4.html").read_text()
    assert w4.count('class="student-link"') == 4 and 'class="chart"' in w4
    assert "zip holds a symlink" in w4 and "NameError" in w4  # flags
    assert "test_gradients_match_the_derivation" in w4 and "33%" in w4  # 1 of 3 full points
    w6 = (site / "ta" / "W6.html").read_text()
    board = re.findall(r'<td class="num">(0\.\d{4})</td><td class="num">', w6)
    assert board == ["0.9990", "0.9822"]  # the leaderboard, best test accuracy first
    assert "gap 0.0706" in w6  # the suspicious public/hold-out gap is flagged
    index = (site / "index.html").read_text()
    assert all(f'href="ta/{hw}.html"' in index for hw in ("W4", "W5", "W6"))


def test_anonymised_class_page_names_nobody(tmp_path):
    grades = reports.build(tmp_path / "grades")
    book = Gradebook(grades / "gradebook.sqlite")
    publish(book, tmp_path / "site", hw="W6", anonymise=True)
    book.close()
    w6 = (tmp_path / "site" / "ta" / "W6.html").read_text()
    assert "student 001" in w6 and "alice" not in w6 and "bob" not in w6
    assert not (tmp_path / "site" / "ta" / "W4.html").exists()


def test_empty_gradebook_is_a_clear_error(tmp_path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    with pytest.raises(GraderError, match="nothing to publish"):
        publish(book, tmp_path / "site")
    book.close()


def test_publish_command(tmp_path):
    grades = reports.build(tmp_path / "grades")
    done = subprocess.run([GRADE, "publish", "--gradebook", str(grades), "--out",
                           str(tmp_path / "site")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "7 student pages, 3 class pages" in done.stdout
    missing = subprocess.run([GRADE, "publish", "--gradebook", str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no gradebook at" in missing.stderr


def _with_hidden(tmp_path: Path) -> Gradebook:
    """A W6 result with one public and one hidden item; the hidden test wrote the accuracy."""
    from grader.gradebook import result_key
    from grader.results import HIDDEN_EVIDENCE, Item, Result, RunRecord

    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    items = [Item("test_runs", 2, 2, "", False, "passed", "The notebook runs"),
             Item("test_holdout_accuracy", 5, 10, "hold-out 0.61", True, "partial",
                  "The model classifies digits it never saw")]
    evidence = {"accuracy": {"test": 0.62, "holdout": 0.61}, HIDDEN_EVIDENCE: ["accuracy"],
                "public_note": 1}
    book.store("W6", result_key("zoe", "W6_MNIST_FC.ipynb", "h", "1", "d"),
               Result("zoe", "W6_MNIST_FC.ipynb", "h", RunRecord("completed"), items,
                      evidence=evidence))
    return book


def test_hidden_items_stay_off_the_students_pages_until_released(tmp_path: Path):
    book = _with_hidden(tmp_path)
    try:
        publish(book, tmp_path / "before")
        publish(book, tmp_path / "after", release_hidden=True)
    finally:
        book.close()
    (before,) = (tmp_path / "before" / "s").glob("*.html")
    (after,) = (tmp_path / "after" / "s").glob("*.html")
    withheld, released = before.read_text(), after.read_text()
    assert 'id="total">2 / 2<' in withheld and "1 hidden test graded too" in withheld
    assert "never saw" not in withheld and "0.61" not in withheld and "public_note" in withheld
    assert 'id="total">7 / 12<' in released and "never saw" in released and "0.61" in released
    assert "never saw" in (tmp_path / "before" / "ta" / "W6.html").read_text()


def test_release_after_due_shows_hidden_items_once_every_due_date_passed(tmp_path: Path):
    import shutil

    rubrics = tmp_path / "assignments"
    shutil.copytree(Path(__file__).resolve().parent.parent / "assignments", rubrics)
    toml = rubrics / "W6" / "assignment.toml"
    base = toml.read_text(encoding="utf-8")
    book = _with_hidden(tmp_path)
    try:
        for due, shown in (("2020-01-01T00:00:00+08:00", True),
                           ("2999-01-01T00:00:00+08:00", False)):
            toml.write_text(base.replace("[assignment]\n", "[assignment]\nrelease = "
                                         '"after_due"\n', 1) + f"\n[due]\nat = {due}\n",
                            encoding="utf-8")
            publish(book, tmp_path / due[:4], assignments_dir=rubrics)
            (page,) = (tmp_path / due[:4] / "s").glob("*.html")
            assert ("never saw" in page.read_text()) is shown, due
    finally:
        book.close()


def test_the_class_page_flags_a_model_loaded_from_weights_handed_in(tmp_path: Path):
    from grader.gradebook import result_key
    from grader.results import Item, Result, RunRecord

    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    book.store("W6", result_key("zoe", "W6_MNIST_FC.ipynb", "h", "1", "d"),
               Result("zoe", "W6_MNIST_FC.ipynb", "h", RunRecord("completed"),
                      [Item("test_runs", 2, 2, "", False, "passed")],
                      evidence={"loaded_weights": ["best.pt"]}))
    try:
        publish(book, tmp_path / "site")
    finally:
        book.close()
    page = (tmp_path / "site" / "ta" / "W6.html").read_text()
    assert "the model&#39;s weights were loaded from best.pt" in page or \
        "the model's weights were loaded from best.pt" in page


def test_training_time_is_shown_as_a_multiple_of_the_solutions(tmp_path: Path):
    import json as _json

    from grader.gradebook import result_key
    from grader.results import CellRecord, Item, Result, RunRecord

    text = _json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": 1,
         "source": "import torch"},
        {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "execution_count": 2,
         "source": "for epoch in range(3):\n    loss.backward()"}]})

    def run(train: float) -> RunRecord:
        return RunRecord("completed", cells=[CellRecord(0, 1.0, None, False, None),
                                             CellRecord(1, train, None, False, None)],
                         notebook=text)

    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    for student, train in (("zoe", 12.0), ("yan", 3.0)):
        book.store("W6", result_key(student, "W6_MNIST_FC.ipynb", "h", "1", "d"),
                   Result(student, "W6_MNIST_FC.ipynb", "h", run(train),
                          [Item("test_runs", 2, 2, "", False, "passed")]))
    book.store("W6", "baseline:W6", Result("(solution)", "W6_MNIST_FC.ipynb", "s", run(4.0)),
               baseline=True)
    try:
        publish(book, tmp_path / "site")
        assert [r.student for r in book.results()] == ["yan", "zoe"]  # the solution is none
    finally:
        book.close()
    zoe = next(text for text in (p.read_text() for p in (tmp_path / "site" / "s").glob(
        "*.html")) if "zoe" in text)
    assert "3.0× the solution&#39;s" in zoe or "3.0× the solution's" in zoe
    assert 'id="training"' in (tmp_path / "site" / "ta" / "W6.html").read_text()
