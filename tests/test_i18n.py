"""Feedback in English and Chinese: `Words`, the catalogs, and `grade check --lang zh`.

A sentence keeps its template and arguments, so the gradebook stores English and the page says
the same diagnosis in Chinese; a stored sentence without its structure is recognised by its
template; a catalog's mistake (a translation that lost a field) shows English, never an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from grader import assignments, i18n
from grader.gradebook import Gradebook
from grader.judge import mistakes
from grader.judge.mistakes import Mistake, Verdict
from grader.results import Item, ItemStatus, Result, RunRecord

REPO = Path(__file__).resolve().parent.parent
GRADE = str(Path(sys.executable).parent / "grade")
#: ASCII words a Chinese line may keep: code, math and names the student wrote or reads as
#: code, never an English sentence.
CODE_WORDS = {"dW1", "db1", "dW2", "db2", "h_sigmoid", "Y_pred", "MSE", "NaN", "CPU", "GPU",
              "gradients", "cgroup", "notebook", "bubblewrap", "Linux", "MB", "torch", "W4",
              "W4_Homework", "ipynb", "bob_W4_Homework", "bob", "Frobenius", "sigmoid",
              "Markdown"}


def _english_words(text: str) -> set[str]:
    """The ASCII words of 3+ letters in TEXT that are not code or names."""
    return {w for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]{2,}", text) if w not in CODE_WORDS}


def _catalog(folder: Path, entries: dict[str, str]) -> Path:
    """A course's catalog (assignments/<hw>/locale/zh.po) holding ENTRIES."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(locale="zh_Hans")
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    (folder / "locale").mkdir(parents=True, exist_ok=True)
    with (folder / "locale" / "zh.po").open("wb") as handle:
        write_po(handle, catalog)
    i18n.catalog.cache_clear()
    i18n.patterns.cache_clear()
    return folder


def test_words_are_their_english_and_keep_their_structure():
    words = i18n.say("{name} has shape {shape}, expected {expected}", name="dW1",
                     shape=[3, 4], expected=[4, 3])
    assert words == "dW1 has shape [3, 4], expected [4, 3]"
    again = i18n.Words.from_json(json.loads(json.dumps(words.to_json())))
    assert again == words and again.template == words.template


def test_a_course_catalog_translates_its_templates_and_the_grader_its_own(tmp_path):
    folder = _catalog(tmp_path, {"{name} is off by {k}": "{name} 差了 {k} 倍"})
    catalogs = i18n.course_catalogs(folder, "zh")
    inner = i18n.say("{name} is off by {k}", name="dW2", k=7)
    joined = i18n.Words.join([inner, i18n.say("{name} right", name="db2")])
    assert inner.render("zh", catalogs) == "dW2 差了 7 倍"
    assert joined.render("zh", catalogs).startswith("dW2 差了 7 倍；")
    assert joined.render("en", catalogs) == "dW2 is off by 7; db2 right"


def test_a_translation_that_lost_a_field_shows_english(tmp_path):
    folder = _catalog(tmp_path, {"{name} is off by {k}": "{name} 错了 {missing}"})
    words = i18n.say("{name} is off by {k}", name="dW2", k=7)
    assert words.render("zh", i18n.course_catalogs(folder, "zh")) == "dW2 is off by 7"


def test_a_template_cannot_reach_an_attribute_of_its_arguments():
    stored = {"t": "{name.__class__}", "a": {"name": "dW1"}}
    assert i18n.Words.from_json(stored) is None


def test_a_stored_sentence_is_recognised_by_its_template(tmp_path):
    folder = _catalog(tmp_path, {"{name} is off by {k}": "{name} 差了 {k} 倍",
                                 "took {seconds} s": "用了 {seconds} 秒"})
    catalogs = i18n.course_catalogs(folder, "zh")
    assert i18n.text("dW2 is off by 7", "zh", catalogs) == "dW2 差了 7 倍"
    assert i18n.text("nothing like it", "zh", catalogs) == "nothing like it"


@pytest.mark.parametrize("value,expected", [("zh-CN", "zh"), ("ZH_Hans", "zh"), (None, "en"),
                                            ("en_US", "en")])
def test_language_names(value, expected):
    assert i18n.language(value) == expected


def test_an_unknown_language_is_a_clear_error():
    with pytest.raises(i18n.LanguageError, match="no catalog for the language 'fr'"):
        i18n.language("fr")


def test_the_course_language_comes_from_assignment_toml(tmp_path):
    import shutil

    folder = tmp_path / "W4"
    shutil.copytree(assignments.BUNDLED / "W4", folder)
    toml = folder / "assignment.toml"
    text = toml.read_text(encoding="utf-8")
    before = assignments.load(folder).digest()
    toml.write_text(text.replace("[assignment]\n", "[assignment]\nlang = \"zh\"\n", 1),
                    encoding="utf-8")
    loaded = assignments.load(folder)
    assert loaded.lang == "zh"
    assert loaded.digest() == before  # the language shown is no reason to regrade
    toml.write_text(text.replace("[assignment]\n", "[assignment]\nlang = \"fr\"\n", 1),
                    encoding="utf-8")
    with pytest.raises(assignments.AssignmentError, match="lang"):
        assignments.load(folder)


def test_the_gradebook_keeps_the_structure_of_the_feedback(tmp_path):
    wrong = [Verdict("dW1", 1.0, Mistake.SIGN), Verdict("dW2", 0.3, Mistake.MISMATCH)]
    feedback = mistakes.summarize(wrong)
    cut = i18n.say("{text}", text="x" * 6000)  # longer than the gradebook keeps
    items = [Item("test_gradients", 0, 6, feedback, False, ItemStatus.FAILED,
                  said=feedback.to_json()),
             Item("test_long", 0, 1, cut, False, ItemStatus.FAILED, said=cut.to_json())]
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store("W4", "k1", Result("bob", "W4_Homework.ipynb", "h", RunRecord("completed"),
                                  items))
    stored = book.results("W4")[0].items
    assert i18n.Words.from_json(stored[0].said) == feedback
    assert stored[1].said is None  # cut to length: shown as the text it is


def test_every_message_of_the_grader_has_a_chinese_translation_with_the_same_fields():
    """Extracted as `make messages` does: N_() and say() in grader/, _() and {% trans %} in
    the report's templates; each has a Chinese text using exactly its {fields}."""
    zh = i18n.translations("zh")
    method_map = [("grader/**.py", "python"), ("torchgrade/**.py", "python"),
                  ("grader/report/templates/**.html", "jinja2")]
    missing, unfit = [], []
    for _, _, message, _, _ in extract_from_dir(
            str(REPO), method_map, keywords={"N_": None, "say": None, "_": None,
                                            "gettext": None}):
        if not isinstance(message, str) or not message:
            continue
        translated = zh.gettext(message)
        if translated == message and _english_words(re.sub(r"\{[^{}]*\}", "", message)):
            missing.append(message)
        elif i18n.fields(translated) != i18n.fields(message):
            unfit.append(message)
    assert not missing, f"{len(missing)} messages without Chinese, e.g. {missing[:5]}"
    assert not unfit, f"translations whose fields differ: {unfit[:5]}"


def test_a_w4_diagnosis_in_chinese():
    wrong = [Verdict("dW1", 1.0, Mistake.SIGMOID_DERIVATIVE, n=7),
             Verdict("db1", 1.0, Mistake.SIGMOID_DERIVATIVE, n=7),
             Verdict("dW2", 1.0, Mistake.TRANSPOSED, shape=(3, 4), expected=(4, 3))]
    said = mistakes.summarize(wrong).render("zh")
    assert said.startswith("dW1、db1：")
    assert "h_sigmoid ⊙ (1 − h_sigmoid)" in said and "[3, 4]" in said and "[4, 3]" in said
    assert not _english_words(said), said


@pytest.mark.slow
def test_grade_check_in_chinese(tmp_path):
    """A student's `grade check --lang zh`: every line Chinese but code and names, the
    diagnosis of bob's W4 (the sigmoid's derivative left out) included."""
    out = subprocess.run([GRADE, "check", str(REPO / "submissions" / "bob_W4_Homework.ipynb"),
                          "--hw", "W4", "--lang", "zh"], capture_output=True, text=True,
                         encoding="utf-8", timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("h_sigmoid" in line and "链式法则" in line for line in lines), out.stdout
    for line in lines:
        assert not _english_words(line.replace("bob_W4_Homework.ipynb", "")), line


def test_words_cross_a_process_boundary_whatever_their_english_holds():
    """A grading worker sends its results back pickled: a reason that quotes LaTeX braces
    must arrive whole."""
    import pickle

    reason = i18n.say("could not read: {reason}", reason="from ')\\frac{a}{b}'")
    joined = i18n.Words.join([reason, i18n.say("{name} right", name="dW1")])
    for words in (reason, joined):
        again = pickle.loads(pickle.dumps(words))
        assert again == words and again.to_json() == words.to_json()


def test_a_catalog_message_with_latex_braces_is_no_template(tmp_path):
    latex = "such as \\frac{\\partial f}{\\partial W_1} = ..."
    folder = _catalog(tmp_path, {latex: "例如 \\frac{\\partial f}{\\partial W_1} = ...",
                                 "{name} is off by {k}": "{name} 差了 {k} 倍"})
    catalogs = i18n.course_catalogs(folder, "zh")
    assert i18n.text(latex, "zh", catalogs).startswith("例如")
    assert i18n.text("dW2 is off by 7", "zh", catalogs) == "dW2 差了 7 倍"
