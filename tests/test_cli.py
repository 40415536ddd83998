"""The `grade` command: help that teaches, one-line errors, documented exit codes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import data
from grader.cli import _line, main
from grader.gradebook import Gradebook
from grader.results import Result, RunRecord
from grader.text import one_line


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "list" in result.output and "data" in result.output


def test_list_shows_every_notebook_and_alias():
    result = run("list")
    assert result.exit_code == 0
    for name in ("W4_Homework.ipynb", "W5_Regression_Batch.ipynb", "W6_Save_Model.ipynb",
                 "W6_MNIST_FC.ipynb", "CNN.ipynb"):
        assert name in result.output


def test_list_of_a_broken_assignments_folder_is_one_line_and_exit_2(tmp_path: Path):
    (tmp_path / "W9").mkdir()
    (tmp_path / "W9" / "assignment.toml").write_text("[assignment]\nname = 'W9'\n")
    result = run("list", "--assignments", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:")


def test_data_import_then_path(tmp_path: Path, idx_folder, synthetic_md5, monkeypatch):
    monkeypatch.setattr(data.idx, "PUBLISHED_MD5", synthetic_md5)  # synthetic files' checksums
    env = {"TORCHGRADE_DATA": str(tmp_path / "cache")}
    assert "empty" in run("data", "path", env=env).output
    result = run("data", "import", str(idx_folder), env=env)
    assert result.exit_code == 0, result.output
    assert "ready" in run("data", "path", env=env).output


def test_data_import_of_wrong_files_exits_3_and_keeps_nothing(tmp_path: Path, idx_folder):
    env = {"TORCHGRADE_DATA": str(tmp_path / "cache")}
    result = run("data", "import", str(idx_folder), env=env)  # synthetic: wrong MD5s
    assert result.exit_code == 3
    assert "MD5" in result.output and result.output.count("\n") == 1
    assert not any(p.is_file() and p.name != ".lock" for p in (tmp_path / "cache").rglob("*"))


def test_the_console_script_is_installed():
    grade = Path(sys.executable).parent / "grade"
    result = subprocess.run([str(grade), "--version"], capture_output=True, text=True, check=True)
    assert "torchgrade" in result.stdout


def test_grade_with_an_unknown_homework_is_one_line_and_exit_2(tmp_path: Path):
    result = run(str(tmp_path), "--hw", "W9")
    assert result.exit_code == 2
    assert result.output.startswith("error: no assignment or notebook named 'W9'")
    assert result.output.count("\n") == 1


def test_grade_of_a_missing_folder_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(main, [str(tmp_path / "nope"), "--hw", "W4"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_export_without_a_gradebook_says_so(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no gradebook" in result.output


FORGED = "\x1b[1A\r\x1b[2K\nmallory          W4_Homework.ipynb            completed 17/17"


def test_text_from_a_submission_is_printed_as_one_line():
    shown = one_line(f"cell 3: Exception: {FORGED}\u202e\ud800\t")
    assert shown == ("cell 3: Exception: \\x1b[1A\\r\\x1b[2K\\nmallory          "
                     "W4_Homework.ipynb            completed 17/17\\u202e\\ud800\\t")
    assert shown.isprintable() and len(one_line("x" * 10_000)) == 301


def test_a_result_line_cannot_be_forged():
    run_record = RunRecord("error", f"cell 1: Exception: {FORGED}")
    line = _line(Result("eve\n\x1b[31m", "W4_Homework.ipynb", "h", run_record))
    assert "\n" not in line and "\x1b" not in line and "\r" not in line
    assert line.startswith("eve\\n\\x1b[31m    W4_Homework.ipynb            error     0/0  (")


def test_report_of_hostile_rows_is_one_line_each(tmp_path: Path):
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store_rejected("W4", f"eve{FORGED}", "W4_Homework.ipynb", FORGED)
    book.close()
    result = run("report", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert not any(line.startswith("mallory") for line in result.output.splitlines())


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader needs the sandbox user")
def test_doctor_says_which_check_failed_and_how_to_fix_it():
    result = run("doctor", env={"TORCHGRADE_SANDBOX_USER": "no-such-torchgrade-user"})
    assert result.exit_code == 4
    failed = [line for line in result.output.splitlines() if "FAIL" in line]
    assert len(failed) == 1 and "sandbox user" in failed[0] and "useradd" in failed[0]


SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
GRADE = str(Path(sys.executable).parent / "grade")


@pytest.mark.parametrize("lang, said", [
    ("en", ["error: there is no notebook file at {missing}",
            "error: no assignment or notebook named 'W9' in {rubrics} (known: W4, W5, W6)",
            "error: {other}: not this homework: W6 homework (final).ipynb resembles "
            "W4_Homework.ipynb (W4), not W6_MNIST_FC.ipynb"]),
    ("zh", ["错误：{missing} 处没有 notebook 文件",
            "错误：{rubrics} 中没有名为 'W9' 的作业或 notebook（已有：W4、W5、W6）",
            "错误：{other}：不是本次作业：W6 homework (final).ipynb 与 W4_Homework.ipynb (W4) "
            "相似，而不是 W6_MNIST_FC.ipynb"])])
def test_a_check_that_cannot_start_says_why_in_one_line_in_the_students_language(
        tmp_path: Path, lang: str, said: list[str]):
    """No such file, no such homework, another homework's notebook: each is one line on
    stderr (no usage text), in the language asked, and exit 2."""
    from grader import assignments

    other = tmp_path / "W6 homework (final).ipynb"
    other.write_bytes((SUBMISSIONS / "alice_W4_Homework.ipynb").read_bytes())
    missing = tmp_path / "nope.ipynb"
    places = {"missing": missing, "rubrics": assignments.BUNDLED, "other": other}
    for args, expected in zip([[str(missing), "--hw", "W4"],
                               [str(SUBMISSIONS / "bob_W4_Homework.ipynb"), "--hw", "W9"],
                               [str(other), "--hw", "W6"]], said, strict=True):
        done = CliRunner().invoke(main, ["check", *args, "--lang", lang],
                                  env={"TORCHGRADE_LANG": ""})
        assert (done.exit_code, done.stdout) == (2, ""), done.output
        assert done.stderr == expected.format(**places) + "\n"


@pytest.mark.slow
def test_check_takes_a_notebook_named_anything(tmp_path: Path):
    notebook = tmp_path / "作业4 (1).ipynb"
    notebook.write_bytes((SUBMISSIONS / "alice_W4_Homework.ipynb").read_bytes())
    done = subprocess.run([GRADE, "check", str(notebook), "--hw", "W4"], capture_output=True,
                          text=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    assert "note: 作业4 (1).ipynb was matched by content to W4_Homework.ipynb" in done.stdout
    assert "W4_Homework.ipynb" in done.stdout.splitlines()[0]


CANVAS_ROSTER = ('\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Homework 4 (88)\r\n'
                 '    Points Possible,,,,,14\r\n'
                 '"Smith, John",1001,S1001,jsmith,Lab A,\r\n'
                 '"Núñez, José",1002,S1002,jnunez,Lab B,\r\n'
                 '"Zhang, Wei",1003,S1003,wzhang,Lab A,\r\n'
                 '"Student, Test",9999,,,Lab A,\r\n')


@pytest.mark.slow
def test_a_canvas_download_graded_with_its_roster(tmp_path: Path):
    """Canvas's names, LATE and a roster: identities, names, lateness and who is missing."""
    download = tmp_path / "download"
    download.mkdir()
    for name, example in [("smithjohn_LATE_1001_5001_W4_Homework (1).ipynb", "alice"),
                          ("núñezjosé_1002_5002_作业.ipynb", "bob"),
                          ("strangerdan_1077_5077_W4_Homework.ipynb", "carol")]:
        (download / name).write_bytes((SUBMISSIONS / f"{example}_W4_Homework.ipynb").read_bytes())
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8", newline="")
    grades = tmp_path / "grades"
    done = subprocess.run([GRADE, str(download), "--hw", "W4", "--out", str(grades),
                           "--roster", str(roster)], capture_output=True, text=True,
                          encoding="utf-8")
    assert done.returncode == 0, done.stderr
    assert "note: 1077 handed in but matches no one on the roster" in done.stderr
    assert "note: nothing handed in by Zhang, Wei (1003)" in done.stderr
    assert "Test" not in done.stderr
    book = Gradebook(grades / "gradebook.sqlite")
    results = {r.student: r for r in book.results("W4")}
    book.close()
    assert sorted(results) == ["1001", "1002", "1077"]
    smith, nunez = results["1001"], results["1002"]
    assert (smith.handin.display_name, smith.handin.section, smith.handin.late) == (
        "Smith, John", "Lab A", True)
    assert (nunez.handin.file, nunez.handin.late, nunez.handin.match.value) == (
        "作业.ipynb", False, "content")
    assert smith.total > 0 and nunez.total > 0


@pytest.mark.slow
def test_a_save_model_class_named_its_own_way_is_graded_and_told_how(tmp_path: Path):
    """`save.ipynb` and `W6_Save_Model (2).ipynb` graded as W5's save-model notebook; each
    student's page says how the file was matched."""
    for student, name, example in [("alice", "save.ipynb", "alice_W5_Save_Model"),
                                   ("bob", "W6_Save_Model (2).ipynb", "bob_W6_Save_Model")]:
        (tmp_path / "class" / student).mkdir(parents=True)
        (tmp_path / "class" / student / name).write_bytes(
            (SUBMISSIONS / f"{example}.ipynb").read_bytes())
    grades = tmp_path / "grades"
    done = subprocess.run([GRADE, str(tmp_path / "class"), "--hw", "W5_Save_Model", "--out",
                           str(grades)], capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    book = Gradebook(grades / "gradebook.sqlite")
    results = {r.student: r for r in book.results("W5")}
    book.close()
    assert {s: (r.notebook, r.outcome.value) for s, r in results.items()} == {
        "alice": ("W5_Save_Model.ipynb", "completed"), "bob": ("W5_Save_Model.ipynb", "completed")}
    pages = "".join(p.read_text(encoding="utf-8") for p in (grades / "report" / "s").glob("*.html"))
    assert "save.ipynb was matched by content to W5_Save_Model.ipynb" in pages
    assert "W6_Save_Model (2).ipynb was matched by its name to W5_Save_Model.ipynb" in pages


def _results(grades: Path, hw: str) -> dict:
    book = Gradebook(grades / "gradebook.sqlite")
    try:
        return {r.student: r for r in book.results(hw)}
    finally:
        book.close()


@pytest.mark.slow
def test_only_force_and_an_override_that_survives_regrades(tmp_path: Path):
    """`--only` grades exactly the named student; a TA's override survives a `--force`
    regrade and a rubric change, and `grade report` says when the machine's score moved."""
    import shutil

    rubrics = tmp_path / "assignments"
    shutil.copytree(Path(__file__).resolve().parent.parent / "assignments", rubrics)
    submissions = tmp_path / "class"
    submissions.mkdir()
    for student in ("alice", "bob", "carol"):
        shutil.copy(SUBMISSIONS / f"{student}_W4_Homework.ipynb", submissions)
    grades = tmp_path / "grades"
    common = ["--hw", "W4", "--out", str(grades), "--assignments", str(rubrics)]

    def grade(*extra: str) -> str:
        done = subprocess.run([GRADE, str(submissions), *common, *extra], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    grade("--only", "BOB")
    assert sorted(_results(grades, "W4")) == ["bob"]
    machine = next(i for i in _results(grades, "W4")["bob"].items
                   if i.name == "test_gradients_match_the_derivation")
    assert machine.score < machine.max
    assert run("override", "bob", "W4_Homework", "test_gradients_match_the_derivation",
               str(machine.max), "--reason", "right on paper", "--by", "ta1",
               "--out", str(grades)).exit_code == 0
    assert "bob              W4_Homework.ipynb            completed" in grade("--only", "bob",
                                                                              "--force")
    rubric = rubrics / "W4" / "public" / "test_W4_Homework.py"
    rubric.write_text(rubric.read_text() + "\n# a TA's edit: the digest changes\n")
    assert "1 graded, 0 unchanged" in grade("--only", "bob")  # the rubric changed
    item = next(i for i in _results(grades, "W4")["bob"].items
                if i.name == "test_gradients_match_the_derivation")
    assert (item.score, item.machine, item.override.reason) == (
        machine.max, machine.score, "right on paper")
    listed = run("overrides", "--out", str(grades))
    assert "W4 bob W4_Homework.ipynb test_gradients_match_the_derivation" in listed.output
    log = run("overrides", "--log", "--out", str(grades)).output
    assert f"ta1  W4 bob W4_Homework.ipynb test_gradients_match_the_derivation: " \
           f"{machine.score:g} -> {machine.max:g}  (right on paper)" in log
    with (grades / "gradebook.csv").open(encoding="utf-8") as handle:
        assert "right on paper" in handle.read()


def test_report_lists_overrides_a_regrade_questioned(tmp_path: Path):
    from grader.gradebook import result_key
    from grader.results import Item

    def graded(score: float, *, dropped: bool = False) -> Result:
        items = [] if dropped else [Item("test_gradients", score, 3.0, "", False, "failed")]
        return Result("alice", "W4_Homework.ipynb", "bytes", RunRecord("completed"), items)

    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store("W4", result_key("alice", "W4_Homework.ipynb", "bytes", "1", "d1"), graded(0))
    book.set_override("W4", "alice", "W4_Homework.ipynb", "test_gradients", 2, "ok", "ta")
    book.store("W4", result_key("alice", "W4_Homework.ipynb", "bytes", "1", "d2"), graded(1))
    book.close()
    report = run("report", "--out", str(tmp_path)).output
    assert ("override under a changed machine score: W4 alice W4_Homework.ipynb test_gradients:"
            " the TA gave 2 when the machine gave 0; it now gives 1") in report
    book = Gradebook(tmp_path / "gradebook.sqlite")
    book.store("W4", result_key("alice", "W4_Homework.ipynb", "bytes", "1", "d3"),
               graded(0, dropped=True))
    book.close()
    report = run("report", "--out", str(tmp_path)).output
    assert ("override not applied (its item or result is gone): W4 alice W4_Homework.ipynb "
            "test_gradients = 2") in report


def test_publish_in_chinese_and_a_language_without_a_catalog(tmp_path: Path):
    """`--lang zh` reaches every student page; `--lang fr` is refused in one line, exit 2."""
    from grader.results import Item, ItemStatus

    book = Gradebook(tmp_path / "grades" / "gradebook.sqlite")
    item = Item("test_gradients_match_the_derivation", 6, 6, "", False, ItemStatus.PASSED,
                "The four gradients are right on fresh inputs")
    book.store("W4", "k1", Result("ann", "W4_Homework.ipynb", "h", RunRecord("completed"),
                                  [item]))
    book.close()
    site = tmp_path / "site"
    result = run("publish", "--gradebook", str(tmp_path / "grades"), "--out", str(site),
                 "--lang", "zh")
    assert result.exit_code == 0, result.output
    page = next((site / "s").glob("*.html")).read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in page and "四个梯度" in page
    refused = CliRunner().invoke(main, ["publish", "--gradebook", str(tmp_path / "grades"),
                                        "--out", str(site), "--lang", "fr"])
    assert refused.exit_code == 2 and "'fr' is not one of 'en', 'zh'" in refused.output
