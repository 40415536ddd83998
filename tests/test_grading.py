"""End to end: the `grade` command on the example submissions, with real bubblewrap, real
kernels and a real SQLite gradebook. Each example gets its expected score and feedback."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import nbformat
import pytest

from grader import assignments, data
from grader.sandbox import bwrap
from tests import notebooks

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
GRADE = str(Path(sys.executable).parent / "grade")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap.executable() is None,
                       reason="bubblewrap is not installed (apt-get install bubblewrap)"),
]


def grade(*args: str, env: dict | None = None, check: bool = True) -> str:
    result = subprocess.run([GRADE, *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout + result.stderr


#: What no student-facing feedback may ever be: an exception's text or a traceback.
RAW = re.compile(r"Error:|Traceback|KeyError")


def rows(out: Path) -> dict[tuple[str, str], dict]:
    """Every current result of a gradebook, with its items; and, for every grading these tests
    do, the check that no item's feedback is an exception's text."""
    db = sqlite3.connect(out / "gradebook.sqlite")
    db.row_factory = sqlite3.Row
    found = {}
    for row in db.execute("SELECT r.* FROM latest l JOIN results r ON r.key = l.key"):
        items = db.execute("SELECT * FROM items WHERE key = ? ORDER BY position", (row["key"],))
        found[(row["student"], row["notebook"])] = {**dict(row), "items": [dict(i) for i in items]}
    db.close()
    raw = [(key, i["feedback"]) for key, row in found.items() for i in row["items"]
           if RAW.search(i["feedback"])]
    assert raw == [], raw
    return found


def feedback(row: dict) -> str:
    return " | ".join(item["feedback"] for item in row["items"])


def copy_examples(target: Path, *names: str) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SUBMISSIONS / name, target / name)
    return target


W4_EXAMPLES = [f"{s}_W4_Homework.ipynb" for s in ("alice", "bob", "carol", "dave", "erin")]


def test_w4_examples_get_their_scores_and_diagnoses(tmp_path):
    folder = copy_examples(tmp_path / "class", *W4_EXAMPLES)
    out = tmp_path / "out"
    first = grade(str(folder), "--hw", "W4", "--out", str(out), "--jobs", "2")
    assert "5 graded, 0 unchanged, 0 rejected" in first
    book = rows(out)
    score = {student: book[(student, "W4_Homework.ipynb")]["total"]
             for student in ("alice", "bob", "carol", "dave", "erin")}
    assert score == {"alice": 14, "bob": 11, "carol": 4, "dave": 4, "erin": 6.5}
    assert "sigmoid derivative" in feedback(book[("bob", "W4_Homework.ipynb")])
    assert "factor of n" in feedback(book[("carol", "W4_Homework.ipynb")])
    dave = book[("dave", "W4_Homework.ipynb")]
    assert dave["outcome"] == "error" and "NameError" in dave["reason"]
    again = grade(str(folder), "--hw", "W4", "--out", str(out))  # one job at a time now
    assert "0 graded, 5 unchanged" in again
    assert len(rows(out)) == 5
    report = grade("report", "--out", str(out))
    assert "bob" in report and "11/14" in report
    assert "test_gradients_match_the_derivation" in report and "1 of 5 errored" in report


def test_a_cold_start_grades_the_w4_examples_as_the_warm_start_does(tmp_path):
    folder = copy_examples(tmp_path / "class", *W4_EXAMPLES)
    scores = {}
    for how in ("warm", "cold"):
        flags = ["--cold-start"] if how == "cold" else []
        grade(str(folder), "--hw", "W4", "--out", str(tmp_path / how), "--jobs", "2", *flags)
        scores[how] = {key: [(i["name"], i["score"]) for i in row["items"]]
                       for key, row in rows(tmp_path / how).items()}
    assert len(scores["warm"]) == 5
    assert scores["warm"] == scores["cold"]


def test_save_model_examples_and_the_w6_alias(tmp_path):
    folder = copy_examples(tmp_path / "class", "alice_W5_Save_Model.ipynb",
                           "bob_W6_Save_Model.ipynb", "carol_W5_Save_Model.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W6_Save_Model", "--out", str(out))
    book = rows(out)
    assert book[("alice", "W5_Save_Model.ipynb")]["total"] == 5
    assert book[("bob", "W5_Save_Model.ipynb")]["total"] == 5
    carol = book[("carol", "W5_Save_Model.ipynb")]
    assert carol["total"] == 2 and "net_all.pkl was not saved" in feedback(carol)


@pytest.fixture
def synthetic_mnist(tmp_path, idx_folder, synthetic_md5):
    cache = tmp_path / "data"
    data.import_dir(idx_folder, cache, expected=synthetic_md5)
    return {"TORCHGRADE_DATA": str(cache)}


notebook = notebooks.write


def test_a_printed_accuracy_is_not_believed(tmp_path, synthetic_mnist):
    notebook(tmp_path / "class" / "liar_W6_MNIST_FC.ipynb",
             "import torch\nmodel = torch.nn.Sequential(torch.nn.Flatten(), "
             "torch.nn.Linear(784, 10))\n"
             "torch.nn.init.zeros_(model[1].weight); torch.nn.init.zeros_(model[1].bias)",
             "print('test accuracy: 0.999')")
    out = tmp_path / "out"
    grade(str(tmp_path / "class"), "--hw", "W6", "--out", str(out), env=synthetic_mnist)
    row = rows(out)[("liar", "W6_MNIST_FC.ipynb")]
    # all-zero logits predict class 0; 2 of the 12 synthetic test labels are 0
    assert "0.1667 on the test set" in feedback(row)
    assert "0.999" not in feedback(row)
    assert row["total"] < row["max"] / 2


def test_broken_timed_out_and_malicious_submissions_each_get_a_row(tmp_path):
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb",
                           "dave_W4_Homework.ipynb")
    notebook(folder / "tim_W4_Homework.ipynb", "while True:\n    pass")
    notebook(folder / "mal_W4_Homework.ipynb",
             "import os\nfor _ in range(10000):\n    os.fork() if os.getpid() else None",
             "open('/etc/passwd', 'a').write('x')")
    (folder / "bad_W4_Homework.ipynb").write_text("not a notebook")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W4", "--out", str(out), "--timeout", "20")
    book = rows(out)
    assert book[("alice", "W4_Homework.ipynb")]["total"] == 14
    assert book[("dave", "W4_Homework.ipynb")]["outcome"] == "error"
    assert book[("tim", "W4_Homework.ipynb")]["outcome"] == "timeout"
    # the fork bomb is held by the pids limit; it ends as an error, a kill or a timeout
    assert book[("mal", "W4_Homework.ipynb")]["outcome"] in ("error", "killed", "timeout")
    assert all(book[(s, "W4_Homework.ipynb")]["reason"] for s in ("dave", "tim", "mal"))
    bad = book[("bad", "W4_Homework.ipynb")]
    assert bad["outcome"] == "rejected" and "not a readable notebook" in bad["reason"]


def test_kill_9_mid_batch_then_rerun_loses_and_duplicates_nothing(tmp_path):
    folder = copy_examples(tmp_path / "class", *W4_EXAMPLES)
    out = tmp_path / "out"
    db_path = out / "gradebook.sqlite"
    proc = subprocess.Popen([GRADE, str(folder), "--hw", "W4", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if db_path.exists() and len(rows(out)) >= 2:
                break
        except sqlite3.OperationalError:  # the file exists, its tables not yet
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(rows(out))
    assert 2 <= done_before < 5
    second = grade(str(folder), "--hw", "W4", "--out", str(out))
    assert f"{5 - done_before} graded, {done_before} unchanged" in second
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 5
    assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 20
    db.close()


def test_check_prints_one_json_object(tmp_path):
    output = grade("check", str(SUBMISSIONS / "bob_W4_Homework.ipynb"), "--hw", "W4", "--json")
    result = json.loads(output)
    assert (result["total"], result["max"]) == (7, 10)  # the public part only
    assert [i["name"] for i in result["items"]] == ["test_gradients_match_the_derivation",
                                                    "test_derivative_expressions"]
    assert "sigmoid derivative" in result["items"][0]["feedback"]
    assert result["run"]["outcome"] == "completed" and result["run"]["device"] == "cpu"


def test_exports(tmp_path):
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb",
                           "bob_W4_Homework.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W4", "--out", str(out))
    for fmt in ("csv", "gradescope", "canvas"):
        grade("export", "--out", str(out), "--format", fmt)
    assert "sigmoid derivative" in (out / "gradebook.csv").read_text()
    bob = json.loads((out / "gradescope" / "bob_W4_Homework.results.json").read_text())
    assert bob["score"] == 11
    visibility = {t["name"]: t["visibility"] for t in bob["tests"]}
    assert visibility["The four gradients are right on fresh inputs"] == "visible"
    assert visibility["The trained net fits the slide's curve on fresh points"] == "hidden"
    assert "bob,,,bob,,11" in (out / "canvas.csv").read_text()


def test_w6_examples_on_synthetic_digits(tmp_path, synthetic_mnist):
    folder = copy_examples(tmp_path / "class", "alice_W6_MNIST_FC.ipynb",
                           "bob_W6_MNIST_FC.ipynb", "dave_W6_MNIST_FC.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W6", "--out", str(out), "--no-gpus", env=synthetic_mnist)
    book = rows(out)
    items = {s: {i["name"]: i for i in book[(s, "W6_MNIST_FC.ipynb")]["items"]}
             for s in ("alice", "bob", "dave")}
    assert items["alice"]["test_architecture"]["score"] == 3      # conv, batch norm, dropout
    assert items["bob"]["test_architecture"]["score"] == 0        # the slide's FC
    assert "no convolutions" in items["bob"]["test_architecture"]["feedback"]
    assert "s on cpu" in items["alice"]["test_training_time_and_device"]["feedback"]
    dave = book[("dave", "W6_MNIST_FC.ipynb")]
    assert dave["outcome"] == "error" and "loss_func" in dave["reason"]
    assert dave["total"] == 0


def test_without_bubblewrap_ta_grading_refuses_and_check_says_so(tmp_path):
    no_bwrap = {"PATH": str(Path(sys.executable).parent)}  # nothing else on the PATH
    result = subprocess.run([GRADE, str(SUBMISSIONS), "--hw", "W4", "--out", str(tmp_path)],
                            capture_output=True, text=True, env={**os.environ, **no_bwrap})
    assert result.returncode == 4
    assert "bubblewrap (bwrap) is not installed" in result.stderr
    assert "--no-sandbox" in result.stderr and result.stderr.count("\n") == 1
    output = grade("check", str(SUBMISSIONS / "alice_W4_Homework.ipynb"), "--hw", "W4",
                   env=no_bwrap)
    assert output.splitlines()[0].startswith(
        "note: bubblewrap not found; not sandboxed: resource limits only. On Linux, limited: "
        "time (")
    assert "completed 10/10" in output and "not sandboxed: resource limits only" in output


def test_markdown_only_derivations_are_read_and_diagnosed(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        r"$\frac{\partial f}{\partial W_2} = h_{sigmoid}^T 2(Y_{pred} - Y)$" "\n\n"
        r"$\frac{\partial f}{\partial b_2} = \mathbf{1}^T 2(Y_{pred} - Y)$" "\n\n"
        r"$\frac{\partial f}{\partial W_1} = X^T [2(Y_{pred} - Y) W_2^T]$" "\n\n"
        r"$\frac{\partial f}{\partial b_1} = \mathbf{1}^T [2(Y_{pred} - Y) W_2^T]$")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "W4_Homework.ipynb"
    nbformat.write(nb, path)
    report = tmp_path / "report.html"
    result = json.loads(grade("check", str(path), "--hw", "W4", "--json", "--html", str(report)))
    item = {i["name"]: i for i in result["items"]}["test_derivative_expressions"]
    assert item["score"] == 2  # dW2 and db2 right, 1 point each
    assert "dW1, db1" not in item["feedback"]
    assert "dW1: the sigmoid derivative" in item["feedback"]
    assert "db1: the sigmoid derivative" in item["feedback"]
    # the report draws each expression as MathML beside its verdict, in the order written
    html = report.read_text()
    verdicts = re.findall(r'class="derivation"><span class="pill (\w+)">\w+</span> <math', html)
    assert verdicts == ["right", "right", "wrong", "wrong"]
    assert "<msub><mi>W</mi><mn>1</mn></msub>" in html and "sigmoid derivative" in html


def test_w5_regression_examples(tmp_path):
    # carol's per-sample loop is right but takes about ten minutes here: tests/test_notebooks.py
    # checks it on 2,000 points instead
    names = [f"{s}_W5_Regression_Batch.ipynb" for s in ("alice", "bob")]
    folder = copy_examples(tmp_path / "class", *names)
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W5_Regression_Batch", "--out", str(out), "--jobs", "2")
    book = rows(out)
    alice, bob = (book[(s, "W5_Regression_Batch.ipynb")] for s in ("alice", "bob"))
    assert alice["total"] == 10 and "x the noise floor" in feedback(alice)
    assert bob["total"] == 5
    assert "leaves out 3 points" in feedback(bob)
    assert "the batch sum, not the batch mean" in feedback(bob)


def test_the_slow_w5_example_times_out_yet_keeps_its_semantics_points(tmp_path):
    folder = copy_examples(tmp_path / "class", "carol_W5_Regression_Batch.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W5_Regression_Batch", "--out", str(out), "--timeout", "45")
    carol = rows(out)[("carol", "W5_Regression_Batch.ipynb")]
    items = {i["name"]: i["score"] for i in carol["items"]}
    assert carol["outcome"] == "timeout"
    assert items["test_each_index_once_per_epoch"] == 2
    assert items["test_batch_gradient_is_the_mean"] == 3


@pytest.mark.skipif(__import__("torch").cuda.is_available(),
                    reason="on a GPU machine carol's .cuda() simply works")
def test_course_era_cuda_example_runs_on_a_cpu_grader_unless_the_ta_wants_the_error(
        tmp_path, synthetic_mnist):
    """By default a `.cuda()` notebook runs on a grader without a GPU, and its report says it
    was moved to the CPU; a TA who sets `cpu_fallback = false` gets the driver's error."""
    folder = copy_examples(tmp_path / "class", "carol_W6_MNIST_FC.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W6", "--out", str(out), "--no-gpus", env=synthetic_mnist)
    carol = rows(out)[("carol", "W6_MNIST_FC.ipynb")]
    assert "NVIDIA" not in carol["reason"]
    notes = json.loads(carol["record"])["notes"]
    assert any(".cuda() calls ran on the CPU" in note for note in notes), notes
    rubrics = tmp_path / "assignments"
    shutil.copytree(SUBMISSIONS.parent / "assignments", rubrics)
    toml = rubrics / "W6" / "assignment.toml"
    toml.write_text(toml.read_text().replace("[limits]\n", "[limits]\ncpu_fallback = false\n"))
    strict = tmp_path / "strict"
    grade(str(folder), "--hw", "W6", "--out", str(strict), "--no-gpus", "--assignments",
          str(rubrics), env=synthetic_mnist)
    carol = rows(strict)[("carol", "W6_MNIST_FC.ipynb")]
    assert carol["outcome"] == "error" and "NVIDIA" in carol["reason"]
    assert carol["total"] == 0


# ----------------------------------------------------------------------------- hostile submissions

HOST_SECRET = "HOST-ONLY 5d41402abc4b2a76"
READ_EVERYTHING = ("import os\nfor name in sorted(os.listdir('.')):\n"
                   "    print(name, open(name).read() if os.path.isfile(name) else '')")


def everything_stored(out: Path) -> str:
    """Every text of the gradebook (attachments unpacked) and of the files exported beside it."""
    db = sqlite3.connect(out / "gradebook.sqlite")
    texts = [" ".join(map(str, row)) for table in ("results", "items")
             for row in db.execute(f"SELECT * FROM {table}")]
    texts += [zlib.decompress(body).decode() for (body,) in
              db.execute("SELECT body FROM attachments")]
    db.close()
    texts += [p.read_text() for p in out.rglob("*") if p.is_file() and p.suffix != ".sqlite"
              and "sqlite" not in p.name]
    return "\n".join(texts)


def test_links_in_submissions_are_rejected_never_followed(tmp_path):
    host = tmp_path / "host"
    (host / "hidden").mkdir(parents=True)
    (host / "secret.txt").write_text(HOST_SECRET)
    (host / "hidden" / "test_W4_Homework.py").write_text(f"# {HOST_SECRET}")
    notebook(host / "W4_Homework.ipynb", f"print({HOST_SECRET!r})")
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb")

    def student(name: str) -> Path:
        return notebook(folder / name / "W4_Homework.ipynb", READ_EVERYTHING).parent

    (student("filelink") / "train.gz").symlink_to(host / "secret.txt")
    (student("dirlink") / "rubric").symlink_to(host / "hidden")
    (student("shadow") / "shadow").symlink_to("/etc/shadow")
    os.link(host / "secret.txt", student("hardlink") / "notes.txt")
    (folder / "nblink").mkdir()
    (folder / "nblink" / "W4_Homework.ipynb").symlink_to(host / "W4_Homework.ipynb")
    (folder / "flat_W4_Homework.ipynb").symlink_to(host / "W4_Homework.ipynb")
    out = tmp_path / "out"
    printed = grade(str(folder), "--hw", "W4", "--out", str(out))
    assert "1 graded, 0 unchanged, 6 rejected" in printed
    book = rows(out)
    assert book[("alice", "W4_Homework.ipynb")]["total"] == 14
    expected = {"filelink": "train.gz is a symbolic link", "dirlink": "rubric is a symbolic link",
                "shadow": "shadow is a symbolic link", "hardlink": "notes.txt is a hard link",
                "nblink": "W4_Homework.ipynb is a symbolic link",
                "flat": "flat_W4_Homework.ipynb is a symbolic link"}
    for name, reason in expected.items():
        row = book[(name, "W4_Homework.ipynb")]
        assert row["outcome"] == "rejected" and row["reason"].startswith(reason), row
    for fmt in ("csv", "gradescope", "canvas"):
        grade("export", "--out", str(out), "--format", fmt)
    stored = everything_stored(out) + printed + grade("report", "--out", str(out))
    assert HOST_SECRET not in stored
    shadow = [line for line in Path("/etc/shadow").read_text().splitlines() if ":" in line]
    assert not any(line in stored for line in shadow)


def test_identical_notebooks_of_two_students_are_two_results(tmp_path):
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb", "bob_W4_Homework.ipynb")
    shutil.copy(folder / "alice_W4_Homework.ipynb", folder / "zed_W4_Homework.ipynb")
    out = tmp_path / "out"
    assert "3 graded, 0 unchanged" in grade(str(folder), "--hw", "W4", "--out", str(out),
                                            "--jobs", "2")
    book = rows(out)
    assert {s: row["total"] for (s, _), row in book.items()} == {"alice": 14, "bob": 11,
                                                                  "zed": 14}
    for fmt in ("csv", "gradescope", "canvas"):
        grade("export", "--out", str(out), "--format", fmt)
    canvas = (out / "canvas.csv").read_text().splitlines()
    assert canvas[1] == "    Points Possible,,,,,14"
    assert sorted(canvas[2:]) == ["alice,,,alice,,14", "bob,,,bob,,11", "zed,,,zed,,14"]
    with (out / "gradebook.csv").open() as handle:
        students = [line[1] for line in list(csv.reader(handle))[1:]]
    items = len(book[("alice", "W4_Homework.ipynb")]["items"])
    assert sorted(students) == ["alice"] * items + ["bob"] * items + ["zed"] * items
    assert sorted(p.name for p in (out / "gradescope").iterdir()) == [
        f"{s}_W4_Homework.results.json" for s in ("alice", "bob", "zed")]
    assert "0 graded, 3 unchanged" in grade(str(folder), "--hw", "W4", "--out", str(out))


def test_one_hostile_submission_fails_alone_and_the_batch_goes_on(tmp_path, synthetic_mnist):
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb")
    surrogates = {"cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "source": "x = '\ud800'",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "\udcff"}]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "print('out ' + chr(0xD800))"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "raise ValueError('bad ' + chr(0xDFFF))"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}
    (folder / "sur_W4_Homework.ipynb").write_text(json.dumps(surrogates))  # \ud800 escaped
    notebook(folder / "gpu_W4_Homework.ipynb",
             "import torch\ntorch.cuda.is_available = lambda: True\n"
             "torch.cuda.get_device_name = lambda *args: ['NVIDIA H100', {'x': 1}]\n"
             "torch.cuda.max_memory_allocated = lambda *args: [1]")
    out = tmp_path / "out"
    printed = grade(str(folder), "--hw", "W4", "--out", str(out), "--jobs", "2",
                    env=synthetic_mnist)
    assert "3 graded, 0 unchanged, 0 rejected" in printed
    assert "Traceback" not in printed
    book = rows(out)
    assert book[("alice", "W4_Homework.ipynb")]["total"] == 14
    for name in ("sur", "gpu"):
        assert book[(name, "W4_Homework.ipynb")]["outcome"] in (
            "completed", "error", "failed"), book[(name, "W4_Homework.ipynb")]
        assert sum(line.startswith(f"{name} ") for line in printed.splitlines()) == 1
    assert book[("gpu", "W4_Homework.ipynb")]["device"] in ("cpu", None)
    everything_stored(out).encode("utf-8")  # valid UTF-8 throughout
    again = grade(str(folder), "--hw", "W4", "--out", str(out), env=synthetic_mnist)
    assert "0 graded, 3 unchanged" in again
    site = tmp_path / "site"
    assert "3 student pages" in grade("publish", "--gradebook", str(out), "--out", str(site))


FORGING = r'raise Exception("\x1b[1A\r\x1b[2K\nmallory W4_Homework.ipynb completed 17/17")'


def test_exception_text_cannot_forge_the_result_lines(tmp_path):
    folder = copy_examples(tmp_path / "class", "alice_W4_Homework.ipynb")
    eve = notebook(folder / "eve_W4_Homework.ipynb", FORGING)
    out = tmp_path / "out"
    result = subprocess.run([GRADE, str(folder), "--hw", "W4", "--out", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()  # one per student, in the order they finished
    assert sorted(line.split()[0] for line in lines[:-1]) == ["alice", "eve"]
    assert lines[-1].startswith("2 graded, 0 unchanged, 0 rejected")
    assert "mallory" in rows(out)[("eve", "W4_Homework.ipynb")]["reason"]  # stored as told
    shown = result.stdout + result.stderr + grade("report", "--out", str(out)) + grade(
        "check", str(eve), "--hw", "W4")
    assert "\x1b" not in shown and "\r" not in shown
    assert not any(line.lstrip().startswith("mallory") for line in shown.splitlines())
    assert "\\x1b[1A\\r\\x1b[2K\\nmallory" in result.stdout


MEMORISER = """
import torch, torchvision
seen = torchvision.datasets.MNIST(root='./data/', train=False, download=False)
keys = seen.data.float().reshape(len(seen.data), -1) / 255.0


class Memory(torch.nn.Module):
    '''Answers the public test set from memory: class 0 for any image it never saw.'''

    def __init__(self):
        super().__init__()
        self.register_buffer('keys', keys)
        self.register_buffer('labels', seen.targets.clone())

    def forward(self, x):
        distance = torch.cdist(x.reshape(len(x), -1).float(), self.keys)
        nearest = distance.argmin(1)
        known = distance.gather(1, nearest[:, None])[:, 0] < 1e-4
        label = torch.where(known, self.labels[nearest], torch.zeros_like(nearest))
        return torch.nn.functional.one_hot(label, 10).float()


model = Memory()
"""


def test_a_model_that_memorised_the_public_test_set_earns_under_half(tmp_path, synthetic_mnist):
    notebook(tmp_path / "class" / "memo_W6_MNIST_FC.ipynb", MEMORISER)
    out = tmp_path / "out"
    grade(str(tmp_path / "class"), "--hw", "W6", "--out", str(out), env=synthetic_mnist)
    row = rows(out)[("memo", "W6_MNIST_FC.ipynb")]
    evidence = json.loads(zlib.decompress(sqlite3.connect(out / "gradebook.sqlite").execute(
        "SELECT body FROM attachments WHERE key = ? AND name = 'evidence'",
        (row["key"],)).fetchone()[0]))
    assert evidence["accuracy"]["test"] == 1.0 and evidence["accuracy"]["holdout"] < 0.5
    scores = {i["name"]: i["score"] for i in row["items"]}
    assert scores["test_accuracy_on_digits_it_never_saw"] == 0
    assert row["total"] < row["max"] / 2, row
    assert not re.search(r"Error:|Traceback|KeyError", feedback(row))


@pytest.mark.skipif(not data.is_cached(), reason="MNIST is not provisioned (grade data fetch)")
def test_an_honest_models_accuracy_points_move_by_no_more_than_its_gap(tmp_path):
    """alice's example trains on the public images: scored on the hold-out, its points differ
    from a test-set score by at most what the gap between the two is worth."""
    folder = copy_examples(tmp_path / "class", "alice_W6_MNIST_FC.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W6", "--out", str(out))
    row = rows(out)[("alice", "W6_MNIST_FC.ipynb")]
    evidence = json.loads(zlib.decompress(sqlite3.connect(out / "gradebook.sqlite").execute(
        "SELECT body FROM attachments WHERE key = ? AND name = 'evidence'",
        (row["key"],)).fetchone()[0]))
    test, holdout = evidence["accuracy"]["test"], evidence["accuracy"]["holdout"]
    curve = assignments.find("W6").accuracy
    scored = {i["name"]: i["score"] for i in row["items"]}["test_accuracy_on_digits_it_never_saw"]
    assert scored == pytest.approx(10 * curve.earned(min(test, holdout)), abs=1e-3)
    assert abs(scored - 10 * curve.earned(test)) <= 10 * abs(test - holdout) / (
        curve.target - curve.baseline) + 1e-3
