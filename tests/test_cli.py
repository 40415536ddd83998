"""The `grade` command: help that teaches, one-line errors, documented exit codes."""

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from grader import data
from grader.cli import main


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
