"""A gradebook of stored results for the report tests: what a grading run writes, with the
evidence the rubrics record and executed notebooks that carry hostile outputs.

The results are built here rather than graded, so the report tests stay fast; the browser tests
also publish a notebook that really ran in the sandbox.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np

from grader.gradebook import Gradebook, result_key
from grader.results import CellRecord, Item, Result, RunRecord

HOSTILE_HTML = ("<script>window.__pwned = 'html'; document.title = 'pwned'</script>"
                "<img src=x onerror=\"window.__pwned = 'onerror'\">"
                "<img src=\"http://127.0.0.1:9/beacon.png\">"
                "<iframe src=\"http://127.0.0.1:9/\"></iframe>"
                "<b class=\"planted\">bold output</b>")
HOSTILE_MARKDOWN = ("Derivation: $\\frac{\\partial f}{\\partial W_2} = h^T G$\n\n"
                    "<script>window.__pwned = 'markdown'</script>"
                    "<a href=\"javascript:window.__pwned='link'\">click me</a>")


def executed_notebook(*, error: bool = False, hostile: bool = True) -> str:
    """The JSON of an executed notebook as the sandbox returns it."""
    nb = nbformat.v4.new_notebook()
    train = nbformat.v4.new_code_cell("for epoch in range(3):\n    loss.backward()\n    opt.step()")
    show = nbformat.v4.new_code_cell("display(HTML(payload))")
    if hostile:
        show.outputs = [
            nbformat.v4.new_output("display_data", data={"text/html": HOSTILE_HTML,
                                                         "text/plain": "<HTML>"}),
            nbformat.v4.new_output("display_data", data={
                "application/javascript": "window.__pwned = 'javascript'"}),
            nbformat.v4.new_output("stream", name="stdout", text="<script>x</script> printed\n")]
    cells = [nbformat.v4.new_markdown_cell(HOSTILE_MARKDOWN if hostile else "# W4"),
             nbformat.v4.new_code_cell("import torch"), train, show]
    if error:
        broken = nbformat.v4.new_code_cell("h_sig + 1")
        broken.outputs = [nbformat.v4.new_output(
            "error", ename="NameError", evalue="name 'h_sig' is not defined",
            traceback=["\x1b[0;31mNameError\x1b[0m                 Traceback",
                       "Cell In[5], line 1\n----> 1 h_sig + 1",
                       "\x1b[0;31mNameError\x1b[0m: name 'h_sig' is not defined"])]
        cells.append(broken)
    nb.cells = cells
    return nbformat.writes(nb)


def _run(outcome: str, notebook: str, wall: float, reason: str = "") -> RunRecord:
    nb = json.loads(notebook)
    cells = [CellRecord(i, 0.5 + i, None, False, None) for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code"]
    if outcome == "error":
        cells[-1] = CellRecord(cells[-1].index, 0.1, "NameError: name 'h_sig' is not defined",
                               False, None)
    return RunRecord(outcome, reason, cells, notebook, wall, True, [], [], 300 << 20)


def w4_result(student: str, score: float, *, error: bool = False) -> Result:
    notebook = executed_notebook(error=error)
    run = _run("error" if error else "completed", notebook, 3.0 + score / 4,
               "cell 5: NameError: name 'h_sig' is not defined" if error else "")
    right = score >= 6
    items = [Item("test_gradients_match_the_derivation", score, 6.0,
                  "" if right else "dW1, db1: the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid)"
                  " is missing from the chain rule", False, "passed" if right else "partial"),
             Item("test_trained_net_fits_the_slide_data", 2.0 if right else 0.0, 2.0,
                  "" if right else "the trained W1, b1, W2, b2 fit the slide data with MSE 0.2",
                  True, "passed" if right else "failed")]
    errors = [{"batch": n, "hidden": h, "parameter": p, "correct": right or p in ("dW2", "db2"),
               "relative_error": 1e-16 if right or p in ("dW2", "db2") else 0.73}
              for n, h in ((1, 3), (7, 10)) for p in ("dW1", "db1", "dW2", "db2")]
    evidence = {"gradient_errors": errors, "derivations": [
        {"target": "dW2", "latex": "h^T G", "verdict": "right", "feedback": "dW2 right"},
        {"target": "dW1", "latex": "X^T (G W_2^T)", "verdict": "wrong",
         "feedback": "the sigmoid derivative is missing"}]}
    return Result(student, "W4_Homework.ipynb", f"hash-{student}", run, items, {}, evidence)


def w6_result(student: str, test: float, holdout: float) -> Result:
    notebook = executed_notebook(hostile=False)
    run = _run("completed", notebook, 42.0)
    rng = np.random.default_rng(len(student))
    confusion = np.diag(rng.integers(900, 1100, 10)) + rng.integers(0, 5, (10, 10))
    wrong = [{"index": k, "predicted": (k + 1) % 10, "label": k % 10,
              "image": rng.integers(0, 256, (28, 28)).tolist()} for k in range(6)]
    items = [Item("test_test_accuracy", round(10 * test, 2), 10.0,
                  f"test accuracy {test:.4f}", True, "partial")]
    evidence = {"accuracy": {"model": "model", "test": test, "holdout": holdout},
                "confusion": confusion, "misclassified": wrong}
    return Result(student, "W6_MNIST_FC.ipynb", f"hash6-{student}", run, items,
                  {"gpu": None}, evidence)


def w5_result(student: str) -> Result:
    notebook = executed_notebook(hostile=False)
    x = np.sort(np.random.default_rng(1).uniform(-1, 1, 300))
    evidence = {"fit": {"x": x, "y": x**2 + 0.1, "prediction": x**2 + 0.1, "mse": 0.0034,
                        "noise_floor": 0.04 / 12}}
    return Result(student, "W5_Regression_Batch.ipynb", f"hash5-{student}",
                  _run("completed", notebook, 20.0), [Item("test_fit", 5.0, 5.0, "", True,
                                                           "passed")], {}, evidence)


def build(folder: Path) -> Path:
    """A gradebook with a small class of W4, W5 and W6 results; returns its folder."""
    book = Gradebook(folder / "gradebook.sqlite")
    for hw, result in [("W4", w4_result("alice", 6.0)), ("W4", w4_result("bob", 3.0)),
                       ("W4", w4_result("dave", 3.0, error=True)),
                       ("W5", w5_result("carol")),
                       ("W6", w6_result("alice", 0.9822, 0.9809)),
                       ("W6", w6_result("bob", 0.999, 0.9284))]:
        book.store(hw, result_key(result.student, result.notebook, result.content_hash, "1",
                                  "d"), result)
    book.store_rejected("W4", "mallory", "W4_Homework.ipynb", "zip holds a symlink")
    book.close()
    return folder


ROOT = Path(__file__).resolve().parent.parent


def late_course(folder: Path) -> Path:
    """A copy of the bundled assignments in FOLDER, W4 due 2026-10-05 23:59 (+08:00) at 10% of
    its points a day late; returns the copy."""
    rubrics = folder / "assignments"
    shutil.copytree(ROOT / "assignments", rubrics)
    toml = rubrics / "W4" / "assignment.toml"
    toml.write_text(toml.read_text(encoding="utf-8").split("\n[due]")[0]
                    + '\n[due]\nat = 2026-10-05T23:59:00+08:00\n[late]\nper = "day"\n'
                      "penalty = 0.1\n", encoding="utf-8")
    return rubrics
