"""Intake: layouts, names, repairs and rejections, each with a reason."""

import json
import shutil
import stat
import zipfile
from pathlib import Path

import nbformat

from grader import assignments, intake

W4 = assignments.find("W4")
W5 = assignments.find("W5")
SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


def collect(folder: Path, assignment=W4):
    return intake.collect(folder, assignment, folder.parent / "scratch")


def test_flat_files_name_the_student(tmp_path):
    found, rejected = collect(SUBMISSIONS)
    assert sorted(s.student for s in found) == ["alice", "bob", "carol", "dave", "erin"]
    assert rejected == []


def test_aliases_map_to_the_notebook(tmp_path):
    found, _ = collect(SUBMISSIONS, W5)
    names = {(s.student, s.notebook.name) for s in found}
    assert ("bob", "W5_Save_Model.ipynb") in names  # handed in as W6_Save_Model


def test_folder_per_student_takes_its_files_along(tmp_path):
    folder = tmp_path / "class" / "zoe"
    folder.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "alice_W4_Homework.ipynb", folder / "W4_Homework.ipynb")
    (folder / "notes.txt").write_text("hi")
    found, _ = collect(tmp_path / "class")
    assert found[0].student == "zoe" and [f.name for f in found[0].files] == ["notes.txt"]


def zip_with(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/shadow")
    return path


def test_zip_archives(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    notebook = (SUBMISSIONS / "alice_W4_Homework.ipynb").read_bytes()
    zip_with(folder / "yan.zip", {"yan/W4_Homework.ipynb": notebook})
    zip_with(folder / "evil1.zip", {"../W4_Homework.ipynb": notebook})
    zip_with(folder / "evil2.zip", {"/abs/W4_Homework.ipynb": notebook})
    zip_with(folder / "evil3.zip", {"W4_Homework.ipynb": notebook}, symlink="link")
    (folder / "junk.zip").write_bytes(b"not a zip")
    found, rejected = collect(folder)
    assert [s.student for s in found] == ["yan"]
    reasons = {r.student: r.reason for r in rejected}
    assert "unsafe path" in reasons["evil1"] and "unsafe path" in reasons["evil2"]
    assert "symlink" in reasons["evil3"] and "archive rejected" in reasons["junk"]


def test_bad_notebooks_are_rejected_with_a_reason(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a_W4_Homework.ipynb").write_text("{ not json")
    r_notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "ir", "language": "R", "display_name": "R"}})
    nbformat.write(r_notebook, folder / "b_W4_Homework.ipynb")
    (folder / "c_W4_Homework.ipynb").symlink_to(SUBMISSIONS / "alice_W4_Homework.ipynb")
    found, rejected = collect(folder)
    reasons = {r.student: r.reason for r in rejected}
    assert found == []
    assert "not a readable notebook" in reasons["a"]
    assert "R notebook" in reasons["b"]
    assert "symlink" in reasons["c_W4_Homework"]


def test_old_notebooks_are_repaired(tmp_path):
    raw = json.loads((SUBMISSIONS / "alice_W4_Homework.ipynb").read_text())
    raw["nbformat_minor"] = 2
    for cell in raw["cells"]:
        cell.pop("id", None)
    old = tmp_path / "old_W4_Homework.ipynb"
    old.write_text(json.dumps(raw))
    assert intake.problem_with(old) == ""
    intake.repaired_copy(old, tmp_path / "fixed.ipynb")
    fixed = nbformat.read(tmp_path / "fixed.ipynb", as_version=4)
    nbformat.validate(fixed)
    assert all("id" in cell for cell in fixed.cells)
