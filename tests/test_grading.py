"""End to end: the `grade` command on the example submissions, with real bubblewrap, real
kernels and a real SQLite gradebook. Each example gets its expected score and feedback."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader import data
from grader.sandbox import bwrap

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


def rows(out: Path) -> dict[tuple[str, str], dict]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    db.row_factory = sqlite3.Row
    found = {}
    for row in db.execute("SELECT r.* FROM latest l JOIN results r ON r.key = l.key"):
        items = db.execute("SELECT * FROM items WHERE key = ? ORDER BY position", (row["key"],))
        found[(row["student"], row["notebook"])] = {**dict(row), "items": [dict(i) for i in items]}
    db.close()
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
    assert score == {"alice": 14, "bob": 11, "carol": 4, "dave": 4, "erin": 4}
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


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


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
    assert "test accuracy 0.1667" in feedback(row)
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
    assert visibility["test_gradients_match_the_derivation"] == "visible"
    assert visibility["test_trained_net_fits_the_slide_data"] == "after_published"
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
    assert output.splitlines()[0] == ("note: bubblewrap not found; running with resource "
                                      "limits only")
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
def test_course_era_cuda_example_fails_on_a_cpu_grader_with_the_reason(tmp_path, synthetic_mnist):
    folder = copy_examples(tmp_path / "class", "carol_W6_MNIST_FC.ipynb")
    out = tmp_path / "out"
    grade(str(folder), "--hw", "W6", "--out", str(out), "--no-gpus", env=synthetic_mnist)
    carol = rows(out)[("carol", "W6_MNIST_FC.ipynb")]
    assert carol["outcome"] == "error" and "NVIDIA" in carol["reason"]
    assert carol["total"] == 0
