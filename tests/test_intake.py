"""Intake: layouts, names, repairs and rejections, each with a reason."""

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest

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
    assert "c_W4_Homework.ipynb is a symbolic link" in reasons["c"]


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


# ------------------------------------------------------------------------ links, never followed

HOST_SECRET = "HOST-ONLY 5d41402abc4b2a76"


def student_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "alice_W4_Homework.ipynb", folder / "W4_Homework.ipynb")
    return folder


def test_links_anywhere_in_a_folder_reject_it_with_the_path(tmp_path):
    host = tmp_path / "host"
    (host / "hidden").mkdir(parents=True)
    (host / "secret.txt").write_text(HOST_SECRET)
    (host / "hidden" / "test_W4_Homework.py").write_text(HOST_SECRET)
    root = tmp_path / "class"
    student_folder(root, "ok")
    (student_folder(root, "filelink") / "data").mkdir()
    (root / "filelink" / "data" / "train.gz").symlink_to(host / "secret.txt")
    (student_folder(root, "dirlink") / "rubric").symlink_to(host / "hidden")
    (student_folder(root, "shadow") / "shadow").symlink_to("/etc/shadow")
    os.link(host / "secret.txt", student_folder(root, "hardlink") / "notes.txt")
    (root / "nblink").mkdir()
    (root / "nblink" / "W4_Homework.ipynb").symlink_to(SUBMISSIONS / "bob_W4_Homework.ipynb")
    found, rejected = collect(root)
    assert [s.student for s in found] == ["ok"]
    reasons = {r.student: (r.notebook, r.reason) for r in rejected}
    assert reasons["filelink"][1].startswith("data/train.gz is a symbolic link")
    assert reasons["dirlink"][1].startswith("rubric is a symbolic link")
    assert reasons["shadow"][1].startswith("shadow is a symbolic link")
    assert reasons["hardlink"][1].startswith("notes.txt is a hard link (one file with 2 names)")
    assert reasons["nblink"][1].startswith("W4_Homework.ipynb is a symbolic link")
    assert {notebook for notebook, _ in reasons.values()} == {"W4_Homework.ipynb"}
    assert all("\n" not in reason and HOST_SECRET not in reason
               for _, reason in reasons.values())


def test_flat_links_hard_links_and_pipes_are_rejected(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    (root / "sym_W4_Homework.ipynb").symlink_to(SUBMISSIONS / "alice_W4_Homework.ipynb")
    shutil.copy(SUBMISSIONS / "alice_W4_Homework.ipynb", tmp_path / "original.ipynb")
    os.link(tmp_path / "original.ipynb", root / "hard_W4_Homework.ipynb")
    os.mkfifo(root / "pipe_W4_Homework.ipynb")  # read, it would block the grader for ever
    student_folder(root, "fifo")
    os.mkfifo(root / "fifo" / "data.bin")
    (root / "zip.zip").symlink_to(tmp_path / "elsewhere.zip")
    found, rejected = collect(root)
    assert found == []
    reasons = {r.student: r.reason for r in rejected}
    assert reasons["sym"].startswith("sym_W4_Homework.ipynb is a symbolic link")
    assert reasons["hard"].startswith("hard_W4_Homework.ipynb is a hard link")
    assert reasons["pipe"].startswith("pipe_W4_Homework.ipynb is not a plain file")
    assert reasons["fifo"].startswith("data.bin is not a plain file")
    assert reasons["zip"].startswith("zip.zip is a symbolic link")


def test_a_single_notebook_that_is_a_link_is_rejected(tmp_path):
    link = tmp_path / "W4_Homework.ipynb"
    link.symlink_to(SUBMISSIONS / "alice_W4_Homework.ipynb")
    found, rejected = collect(link)
    assert found == [] and "W4_Homework.ipynb is a symbolic link" in rejected[0].reason


def test_a_file_swapped_for_a_link_after_intake_is_never_read(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_text(HOST_SECRET)
    root = tmp_path / "class"
    folder = student_folder(root, "zoe")
    (folder / "sub").mkdir()
    (folder / "sub" / "notes.txt").write_text("mine")
    (found,), _ = collect(root)
    (folder / "sub" / "notes.txt").unlink()
    (folder / "sub" / "notes.txt").symlink_to(host / "secret.txt")
    with pytest.raises(intake.RefusedFile, match="notes.txt is a symbolic link"):
        intake.copy_regular(found.files[0], tmp_path / "copy")
    shutil.rmtree(folder / "sub")
    (folder / "sub").symlink_to(host)  # a folder on the way becomes a link
    (host / "notes.txt").write_text(HOST_SECRET)
    with pytest.raises(intake.RefusedFile, match="reached through a symbolic link"):
        intake.copy_regular(found.files[0], tmp_path / "copy")
    (folder / "W4_Homework.ipynb").unlink()
    (folder / "W4_Homework.ipynb").symlink_to(SUBMISSIONS / "bob_W4_Homework.ipynb")
    with pytest.raises(intake.RefusedFile, match="symbolic link"):
        intake.repaired_copy(found.path, tmp_path / "run.ipynb")
    assert not (tmp_path / "copy").exists() or HOST_SECRET not in (tmp_path / "copy").read_text()


def test_names_that_are_not_utf8_can_be_stored_and_printed(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    name = os.fsdecode(b"j\xf6rg_W4_Homework.ipynb")  # Latin-1 bytes in a file name
    shutil.copy(SUBMISSIONS / "alice_W4_Homework.ipynb", root / name)
    (found,), _ = collect(root)
    assert found.student == "j\\xf6rg"
    found.student.encode("utf-8")


def test_a_lone_surrogate_in_the_source_is_written_as_utf8(tmp_path):
    raw = json.loads((SUBMISSIONS / "alice_W4_Homework.ipynb").read_text())
    raw["cells"][0]["source"] = ["x = '\ud800'\n"]
    path = tmp_path / "sur_W4_Homework.ipynb"
    path.write_text(json.dumps(raw))  # ensure_ascii: the file holds the escape \\ud800
    assert intake.problem_with(path) == ""
    intake.repaired_copy(path, tmp_path / "run.ipynb")
    assert "x = '\ufffd'" in (tmp_path / "run.ipynb").read_text(encoding="utf-8")
