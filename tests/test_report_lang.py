"""The students' pages in Chinese: `publish(..., lang="zh")`, a course's `lang = "zh"`, and
`render_student(..., lang="zh")` say every text a student reads in Chinese, but code, math,
numbers and names; the English pages stay as they were (tests/test_report.py).

A page is read as a student sees it (tests/test_browser.py loads it in Chromium): its visible
text, without <code>, <pre>, <math>, the rendered notebook (the student's own words) and the
names of the student, the notebook and the homework; what is left may hold no English word of
three letters or more but the few technical names in ALLOWED.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from grader import i18n, late
from grader.gradebook import Gradebook, as_stored, result_key
from grader.intake.files import PLAIN_FILES_ONLY
from grader.judge.grade import GRADED_AGAIN, failure_reason
from grader.report import publish, render_student, said
from grader.results import Handin, Item, Match, Result, RunRecord
from grader.sandbox import bwrap, limits
from tests import reports
from tests.test_report import links

ROOT = Path(__file__).resolve().parent.parent
#: English a Chinese page may keep: technical names a student reads as such.
ALLOWED = {"CPU", "GPU", "MSE", "NaN", "MNIST", "LaTeX", "markdown", "notebook", "torch",
           "torchgrade", "autograd", "sigmoid", "gradients", "Frobenius", "cuda", "SIGKILL",
           "Markdown"}
#: A rejection's reason tests/reports.py makes up: no intake says it, so no catalog has it.
MADE_UP = "zip holds a symlink"
#: What a student's page shows as it was written, never in words of the grader's.
UNSAID = ("code", "pre", "math", "script", "style")


class Visible(HTMLParser):
    """A page's visible text (and its images' alt and title texts), without the elements
    that show code, math or the student's notebook, nor those SKIP names (a tag, or a tag's
    class)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, skip: tuple[str, ...] = ()) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = {*UNSAID, "executed", *skip}
        self.open: list[tuple[str, bool]] = []
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        said_by = [found[k] or "" for k in ("alt", "title") if found.get(k)]
        if tag in self.VOID:
            self.parts += [] if self.hidden else said_by
            return
        skipped = bool({tag, *(found.get("class") or "").split()} & self.skip)
        self.open.append((tag, skipped))
        self.hidden += skipped
        self.parts += [] if self.hidden else said_by

    def handle_endtag(self, tag: str) -> None:
        while tag not in self.VOID and self.open:
            name, skipped = self.open.pop()
            self.hidden -= skipped
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(data)


def visible(html: str, *names: str, skip: tuple[str, ...] = ()) -> str:
    """HTML's visible text, without NAMES (the student's, the notebook's, the homework's)."""
    reader = Visible(skip)
    reader.feed(html)
    reader.close()
    text = "\n".join(reader.parts)
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    return text


def english(text: str) -> set[str]:
    """The English words of TEXT: runs of 3+ ASCII letters that are not in ALLOWED, code in
    backticks, an identifier (dW1, h_sigmoid) or a dotted name (nn.Module)."""
    text = re.sub(r"`[^`\n]*`", " ", text)
    words = (w.rstrip(".") for w in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", text))
    return {w for w in words if re.fullmatch(r"[A-Za-z]{3,}", w) and w not in ALLOWED}


def published(tmp_path: Path, grades: Path, **options: object) -> Path:
    book = Gradebook(grades / "gradebook.sqlite")
    try:
        publish(book, tmp_path / "site", release_hidden=True, **options)  # type: ignore[arg-type]
    finally:
        book.close()
    return tmp_path / "site"


@pytest.fixture
def no_env_lang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(i18n.ENV, raising=False)


@pytest.fixture
def zh_site(tmp_path: Path, no_env_lang: None) -> Path:
    return published(tmp_path, reports.build(tmp_path / "grades"), lang="zh")


# ---------------------------------------------------------------------------- the report's own


def test_every_word_of_the_report_has_its_chinese_with_the_same_fields():
    """Every message of the templates, grader/report and the late policy's sentence is in
    grader/locale/zh/report.po, its fields kept."""
    catalog = i18n.catalog(ROOT / "grader" / "locale" / "zh" / "report.po")
    method_map = [("grader/report/**.py", "python"), ("grader/late.py", "python"),
                  ("grader/report/templates/**.html", "jinja2")]
    found = [message for _, _, message, _, _ in extract_from_dir(
        str(ROOT), method_map, keywords={"N_": None, "say": None, "_": None})
        if isinstance(message, str) and message]
    assert len(found) > 150
    missing = [m for m in found if catalog.gettext(m) == m and m != "notebook"]
    assert missing == []
    unfit = [m for m in found if i18n.fields(catalog.gettext(m)) != i18n.fields(m)
             or set(re.findall(r"%\(\w+\)s", catalog.gettext(m)))
             != set(re.findall(r"%\(\w+\)s", m))]
    assert unfit == []
    for message in found:  # Chinese punctuation in Chinese text
        translated = catalog.gettext(message)
        assert not re.search(r"[\u4e00-\u9fff][,;:?!()]|[,;:?!(][\u4e00-\u9fff]",
                             re.sub(r"<[^>]+>|%\(\w+\)s|\{\w+\}", "X", translated)), translated


def test_a_chinese_page_says_its_own_words_in_chinese(zh_site: Path):
    """Every page of a class published in Chinese: the report's own words, the run's reasons,
    the hand-in's notes, units and pills (the rubric's titles and feedback, which these
    results make up in English, are the next test's)."""
    pages = links(zh_site)
    for (student, hw), page in pages.items():
        html = page.read_text(encoding="utf-8")
        assert '<html lang="zh-Hans">' in html
        text = visible(html, student, hw, *_notebooks(html), skip=("h1", "title", "why"))
        assert not english(text.replace(MADE_UP, "")), (student, hw, english(text), text)
    bob = pages[("bob", "W4")].read_text(encoding="utf-8")
    assert "得分" in bob and "部分得分" in bob and "隐藏测试" in bob
    assert "300 MB" in bob and "梯度的数值检验" in bob and "7.3e-01" in bob
    assert "噪声下限" in pages[("carol", "W5")].read_text(encoding="utf-8")
    dave = pages[("dave", "W4")].read_text(encoding="utf-8")
    assert "单元格 5：<code>NameError: name &#39;h_sig&#39; is not defined</code>" in dave
    assert "出错" in dave
    w6 = pages[("bob", "W6")].read_text(encoding="utf-8")
    assert "混淆矩阵" in w6 and "保留集（不公开）" in w6 and "0.9284" in w6
    for staff in ("index.html", "ta/W4.html", "ta/W6.html"):
        html = (zh_site / staff).read_text(encoding="utf-8")
        text = visible(html, "alice", "bob", "dave", "mallory", "W4", "W5", "W6",
                       *_notebooks(html), skip=("h1", "rates"))
        assert not english(text.replace(MADE_UP, "")), (staff, english(text))


def _notebooks(html: str) -> set[str]:
    return set(re.findall(r"\bW\d_[A-Za-z_]+\.ipynb", html))


def test_the_english_page_is_the_english_it_was(tmp_path: Path, no_env_lang: None):
    site = published(tmp_path, reports.build(tmp_path / "grades"))
    bob = links(site)[("bob", "W4")].read_text(encoding="utf-8")
    assert '<html lang="en">' in bob
    for english_text in ("rubric item", "partial", "Gradients checked numerically",
                         "Derivations written in markdown", "Cell timings", "Points",
                         "the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid) is missing",
                         "peak memory"):
        assert english_text in bob
    assert not re.search(r"[\u4e00-\u9fff]", bob)


@pytest.mark.parametrize("stored", [
    *Handin(file="hw4 (1).ipynb", match=Match.CONTENT, late=True, source="canvas",
            submitted_at="2026-10-06T01:00:00+08:00", others=("old.ipynb",),
            skipped=("url.txt",)).notes("W4_Homework.ipynb"),
    *Handin(file="only.ipynb", match=Match.ONLY, late=True).notes("W4_Homework.ipynb"),
    *Handin(file="w4.ipynb", match=Match.LOOSE).notes("W4_Homework.ipynb"),
    "cell 5: NameError: name 'h_sig' is not defined",  # grader/sandbox/session.py
    "the kernel was killed in cell 3: over the memory limit",
    "the kernel died", "ran over 600 s", "a cell ran over its time limit",
    "the grader has no GPU: .cuda() calls ran on the CPU (the run took 42 s)",
    "left out symlink data/link", limits.NOT_SANDBOXED,
    "the sandbox could not be built: bwrap: Can't mount proc on /newroot/proc",
    "time ran out calling `gradients`: no answer within 60 s; the run was ended",  # probes
    failure_reason(KeyError("W1")),  # grader/judge/grade.py
    f"the grading process died (killed by signal 9) (SIGKILL: perhaps the machine ran out of "
    f"memory); {GRADED_AGAIN}",  # grader/run/pool.py
    f"big.bin is a symbolic link; {PLAIN_FILES_ONLY}; {GRADED_AGAIN}",  # grader/run/dask.py
])
def test_a_stored_sentence_is_said_in_chinese_what_it_carries_as_code(stored: str):
    """A run's reason or note, or a hand-in's note, as the sandbox, the runner or intake
    stored it: recognised, said in Chinese, its names and exception texts shown as code."""
    html = str(said.html(stored, "zh"))
    assert re.search(r"[\u4e00-\u9fff]", html), html
    assert not english(visible(html)), html
    assert said.html(stored, "en") == stored.replace("'", "&#39;")


def test_a_sentence_no_template_makes_stays_as_it_was_stored():
    assert said.html("zip holds a symlink", "zh") == "zip holds a symlink"
    assert said.html("NameError: name 'x' is not defined", "zh") == \
        "NameError: name &#39;x&#39; is not defined"  # not "NameError：name ..."


def test_the_lateness_line_in_chinese(tmp_path: Path, no_env_lang: None):
    """A hand-in a day and three hours late under a 10% a day policy: the student's page says
    how late, by when, and what it cost, in Chinese; the date stays as the TA wrote it."""
    rubrics = reports.late_course(tmp_path)
    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    book.store("W4", result_key("amy", "W4_Homework.ipynb", "h", "1", "d"),
               Result("amy", "W4_Homework.ipynb", "h", RunRecord("completed"),
                      [Item("test_gradients", 6, 10, "", False, "partial")]))
    book.record_handin("W4", "amy", "W4_Homework.ipynb",
                       Handin(submitted_at="2026-10-07T03:00:00+08:00"))
    book.close()
    site = published(tmp_path, tmp_path / "grades", lang="zh", assignments_dir=rubrics)
    page = links(site)[("amy", "W4")].read_text(encoding="utf-8")
    lateness = re.search(r'<p class="lateness">(.*?)</p>', page).group(1)
    assert lateness == ("迟交 1 天 3 小时（截止时间 2026-10-05 23:59 +08:00），"
                        "扣除 20%（按 2 天计，每期扣除 10%）（扣 2 分）")
    assert late.describe(late.lateness(
        late.Due(at=late.parse_time("2026-10-05T23:59:00+08:00")), "amy",
        late.parse_time("2026-10-05T23:59:30+08:00"), None)).render("zh") == \
        "迟交 30 秒（截止时间 2026-10-05 23:59 +08:00）"


def test_the_course_language_is_the_pages_unless_publish_is_told(tmp_path: Path,
                                                                  no_env_lang: None):
    """`lang = "zh"` in W6's assignment.toml: publish without a language writes W6's pages in
    Chinese and W4's in English; told `lang="en"`, every page is English."""
    rubrics = tmp_path / "assignments"
    shutil.copytree(ROOT / "assignments", rubrics)
    toml = rubrics / "W6" / "assignment.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(
        "[assignment]\n", '[assignment]\nlang = "zh"\n', 1), encoding="utf-8")
    grades = reports.build(tmp_path / "grades")
    pages = links(published(tmp_path / "default", grades, assignments_dir=rubrics))
    assert '<html lang="zh-Hans">' in pages[("bob", "W6")].read_text(encoding="utf-8")
    assert "混淆矩阵" in pages[("bob", "W6")].read_text(encoding="utf-8")
    assert '<html lang="en">' in pages[("bob", "W4")].read_text(encoding="utf-8")
    told = links(published(tmp_path / "told", grades, assignments_dir=rubrics, lang="en"))
    assert "Confusion matrix" in told[("bob", "W6")].read_text(encoding="utf-8")


def test_grade_check_html_in_chinese(tmp_path: Path):
    """`grade check --html` draws the page with `render_student`: in Chinese when told."""
    book = Gradebook(reports.build(tmp_path / "grades") / "gradebook.sqlite")
    try:
        stored = next(r for r in book.results("W4") if r.student == "dave")
        notebook = book.attachment(stored.key, "notebook")
    finally:
        book.close()
    page = render_student(stored, notebook, "Two-layer net", lang="zh")
    assert '<html lang="zh-Hans">' in page and "出错的单元格" in page
    assert "Cell timings" in render_student(stored, notebook, "Two-layer net")
    fresh = as_stored(Result("eve", "W4_Homework.ipynb", "h", RunRecord(
        "failed", "the sandbox ended without answering")), "W4")
    assert "沙箱没有应答就结束了" in render_student(fresh, None, lang="zh")


# ---------------------------------------------------------------------- a class really graded


@pytest.fixture(scope="module")
def graded_zh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The W4 examples graded by `grade` in the sandbox, published in Chinese."""
    from tests.test_grading import copy_examples, grade

    folder = tmp_path_factory.mktemp("w4zh")
    examples = copy_examples(folder / "class", *(f"{s}_W4_Homework.ipynb" for s in (
        "alice", "bob", "carol", "dave", "erin")))
    grade(str(examples), "--hw", "W4", "--out", str(folder / "grades"), "--jobs", "2")
    return published(folder, folder / "grades", lang="zh")


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_a_really_graded_class_reads_in_chinese(graded_zh: Path):
    """Every student's W4 page, graded for real: no English but code, math, numbers and
    names, the homework's title, the rubric's titles and feedback included (those come from
    assignments/W4/locale/zh.po, which must hold assignment.toml's title too, and
    grader/locale/zh/judge.po)."""
    pages = links(graded_zh)
    assert {student for student, _ in pages} == {"alice", "bob", "carol", "dave", "erin"}
    for (student, hw), page in pages.items():
        html = page.read_text(encoding="utf-8")
        text = visible(html, student, hw, *_notebooks(html))
        assert not english(text), (student, english(text), text)


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_a_really_graded_diagnosis_reads_in_chinese(graded_zh: Path):
    """bob left the sigmoid's derivative out of the chain rule: his page says so in Chinese;
    dave's notebook stopped at a NameError: his says which cell, the error shown as code."""
    pages = links(graded_zh)
    dave = pages[("dave", "W4")].read_text(encoding="utf-8")
    assert re.search(r"单元格 \d+：<code>NameError: name &#39;h_sig&#39; is not defined</code>",
                     dave)
    bob = pages[("bob", "W4")].read_text(encoding="utf-8")
    assert "h_sigmoid ⊙ (1 − h_sigmoid)" in bob and "链式法则" in bob  # judge.po's Chinese


def test_a_course_catalog_says_its_titles_and_the_feedback_kept_as_structure(
        tmp_path: Path, no_env_lang: None):
    """assignments/W4/locale/zh.po translates the homework's title and an item's title; the
    gradebook's structure of a feedback (and of a derivation's, when its evidence row keeps
    one) is said from the catalogs, its arguments as they were."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    rubrics = tmp_path / "assignments"
    shutil.copytree(ROOT / "assignments", rubrics)
    title = _toml_title(rubrics / "W4" / "assignment.toml")
    catalog = Catalog(locale="zh_Hans")
    for msgid, msgstr in {title: "手推梯度的两层网络", "The gradients are right": "梯度正确",
                          "{name} is off by {k}": "{name} 差了 {k} 倍"}.items():
        catalog.add(msgid, msgstr)
    (rubrics / "W4" / "locale").mkdir(exist_ok=True)
    with (rubrics / "W4" / "locale" / "zh.po").open("wb") as handle:
        write_po(handle, catalog)
    words = i18n.say("{name} is off by {k}", name="dW2", k=7)
    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    book.store("W4", result_key("amy", "W4_Homework.ipynb", "h", "1", "d"),
               Result("amy", "W4_Homework.ipynb", "h", RunRecord("completed"),
                      [Item("test_gradients", 3, 6, words, False, "partial",
                            "The gradients are right", said=words.to_json())],
                      evidence={"derivations": [{"target": "dW2", "latex": "h^T G",
                                                 "verdict": "wrong", "feedback": str(words),
                                                 "said": words.to_json()}]}))
    book.close()
    site = published(tmp_path, tmp_path / "grades", lang="zh", assignments_dir=rubrics)
    page = links(site)[("amy", "W4")].read_text(encoding="utf-8")
    assert "W4：手推梯度的两层网络" in page and '<span class="title">梯度正确</span>' in page
    assert '<td class="why">dW2 差了 7 倍</td>' in page
    assert '<span class="muted why">dW2 差了 7 倍</span>' in page and ">错误</span>" in page
    assert "梯度正确" in (site / "ta" / "W4.html").read_text(encoding="utf-8")


def _toml_title(path: Path) -> str:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))["assignment"]["title"]
