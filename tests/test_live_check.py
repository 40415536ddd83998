"""`torchgrade.check` in a student's own kernel: the live student answers as the sandbox's
kernel answers (the same kernel_probe code, the same checks and errors), notebooks are found
where the front ends leave them, and the public items score what the TA's sandboxed grading
gives them, for every example submission.

The slow tests run our own example notebooks in plain nbclient kernels (no sandbox), each
saved with a last cell that calls `torchgrade.check`, and read the points from what that cell
showed, as a student would see them.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from grader import assignments, data, intake
from grader.judge import code_cells, function_source, markdown_cells
from grader.judge.rubric import Asked
from grader.results import Item, ItemStatus, Result
from grader.sandbox import bwrap, kernel_probe, live, protocol
from grader.sandbox.probes import ProbeError
from grader.sandbox.session import Session
from torchgrade import Check, CheckError, check
from torchgrade.selfcheck import rubric_tests
from torchgrade.texts import LANG_VARIABLE, language, texts

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
W4_PUBLIC = assignments.rubric_files(assignments.find("W4").folder, "W4_Homework.ipynb",
                                     "public")


# ------------------------------------------------------------------ the live student

def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                               torch.nn.Dropout(0.5), torch.nn.Flatten(),
                               torch.nn.Linear(2 * 26 * 26, 10))


def kernel_namespace() -> dict:
    """A notebook's namespace, as the kernel's `user_ns` would hold it."""
    torch.manual_seed(0)

    def refuses(x):
        raise ValueError("no")

    return {"double": lambda x: x * 2, "W1": torch.ones(2, 3), "cnn": cnn(),
            "fc": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
            "refuses": refuses, "words": "not numbers"}


def student(namespace: dict, folder: Path) -> live.Live:
    return live.Live(namespace, live.record(nbformat.writes(nbformat.v4.new_notebook())),
                     folder)


def directly(namespace: dict, folder: Path, op: str, arrays: list, fields: dict
             ) -> tuple[dict, list[np.ndarray]]:
    """kernel_probe's own answer to a request, asked as the agent asks it."""
    request = protocol.request(op, arrays, **fields)
    found = kernel_probe.probe(kernel_probe.stage(request, str(folder)), str(folder), namespace)
    outputs = [np.load(p, allow_pickle=False) for p in found.pop("outputs", [])]
    return found, outputs


IMAGES = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
QUESTIONS = [
    ("call", [np.arange(6.0).reshape(2, 3)], {"name": "double", "torch": False}),
    ("call", [np.arange(3.0)], {"name": "double", "no_grad": True}),
    ("value", [], {"name": "W1"}),
    ("evaluate", [np.arange(4.0).reshape(2, 2)], {"expression": "X.T @ X", "names": ["X"]}),
    ("forward", [IMAGES], {"name": "fc"}),
    ("modules", [], {"shape": [2, 1, 28, 28]}),
    ("layers", [IMAGES], {"name": "cnn", "seed": 3}),
    ("env", [], {}),
]


@pytest.mark.parametrize(("op", "arrays", "fields"), QUESTIONS,
                         ids=[f"{q[0]}-{i}" for i, q in enumerate(QUESTIONS)])
def test_the_live_student_answers_what_kernel_probe_answers(tmp_path, op, arrays, fields):
    (tmp_path / "direct").mkdir()
    expected, expected_arrays = directly(kernel_namespace(), tmp_path / "direct", op, arrays,
                                         fields)
    found, found_arrays = student(kernel_namespace(), tmp_path).ask(op, *arrays, **fields)
    assert found == expected
    assert len(found_arrays) == len(expected_arrays)
    for mine, theirs in zip(found_arrays, expected_arrays, strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_the_live_student_has_every_question_of_the_sessions_with_its_signature():
    questions = ["call", "value", "modules", "forward", "load_and_forward", "environment",
                 "evaluate", "files", "read_file", "ask"]
    for name in questions:
        assert inspect.signature(getattr(live.Live, name)) == inspect.signature(
            getattr(Session, name)), name


def test_a_failing_question_is_the_same_probe_error_as_in_the_sandbox(tmp_path):
    asked = student(kernel_namespace(), tmp_path)
    with pytest.raises(ProbeError) as missing:
        asked.call("gradients", np.ones(2))
    assert missing.value.kind == "raised" and str(missing.value) == "KeyError: 'gradients'"
    with pytest.raises(ProbeError) as raised:
        asked.call("refuses", np.ones(2))
    assert raised.value.kind == "raised" and str(raised.value) == "ValueError: no"
    with pytest.raises(ProbeError) as malformed:
        asked.value("words")  # text is no answer: only numbers cross the boundary
    assert malformed.value.kind == "malformed"
    with pytest.raises(protocol.ProtocolError):
        asked.ask("freeze")  # the agent's own question: refused before it is asked
    assert asked.reply({"op": "freeze"})["error"] == live.REFUSED


def test_the_rubrics_wrapper_names_what_the_live_student_was_asked(tmp_path):
    asked = Asked(student(kernel_namespace(), tmp_path))
    assert asked.value("W1").tolist() == [[1.0, 1.0, 1.0]] * 2
    with pytest.raises(ProbeError):
        asked.call("gradients")
    assert asked.last == "calling `gradients`"


def test_files_are_listed_read_and_loaded_in_the_kernels_folder(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
               tmp_path / "net.pkl")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "big.bin").write_bytes(b"0" * 10)  # a data folder, never listed
    asked = student({}, tmp_path)
    assert asked.files() == {name: size for name, size in kernel_probe.list_files(
        str(tmp_path), set(bwrap.DATA_ROOTS))}
    assert set(asked.files()) == {"net.pkl", "notes.txt"}
    assert asked.read_file("notes.txt") == b"hello"
    with pytest.raises(ProbeError, match="FileNotFoundError"):
        asked.read_file("../outside.txt")
    assert asked.load_and_forward("net.pkl", IMAGES).shape == (3, 10)


def test_the_environment_is_this_kernels():
    found = student({}, Path.cwd()).environment()
    assert found == {"torch": torch.__version__[:40], "cuda": torch.cuda.is_available(),
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def test_a_check_leaves_the_notebooks_random_numbers_as_they_were():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with live.kept_random_state():
        random.random(), np.random.permutation(10), torch.rand(5)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


# ------------------------------------------------------------------ finding the notebook

def saved(path: Path, *cells: str, markdown: str = "") -> Path:
    made = [nbformat.v4.new_code_cell(c) for c in cells]
    if markdown:
        made.append(nbformat.v4.new_markdown_cell(markdown))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=made), path)
    return path


def test_the_notebook_given_comes_first(tmp_path):
    given = saved(tmp_path / "mine.ipynb", "x = 1")
    saved(tmp_path / "other.ipynb", "y = 2")
    found = live.find_notebook({"__vsc_ipynb_file__": str(tmp_path / "other.ipynb")}, "mine.ipynb",
                               env={}, cwd=tmp_path, history=[])
    assert (found.name, found.path, found.from_history) == ("mine.ipynb", str(given), False)
    with pytest.raises(live.LiveError, match="there is no notebook at"):
        live.find_notebook({}, "missing.ipynb", env={}, cwd=tmp_path, history=[])


def test_jupyter_servers_session_name_then_vs_codes_file(tmp_path):
    elsewhere = saved(tmp_path / "work" / "W4_Homework.ipynb", "x = 1")
    vscode = saved(tmp_path / "vs.ipynb", "y = 2")
    namespace = {"__vsc_ipynb_file__": str(vscode)}
    by_path = live.find_notebook(namespace, env={"JPY_SESSION_NAME": str(elsewhere)},
                                 cwd=tmp_path, history=[])
    assert by_path.path == str(elsewhere) and "Jupyter" in by_path.how
    # an API path relative to the server's root: the file in the kernel's folder
    relative = live.find_notebook(namespace, env={"JPY_SESSION_NAME": "course/W4_Homework.ipynb"},
                                  cwd=tmp_path / "work", history=[])
    assert relative.path == str(elsewhere)
    by_kernel = live.find_notebook({**namespace, "__session__": str(elsewhere)}, env={},
                                   cwd=tmp_path, history=[])
    assert by_kernel.path == str(elsewhere)
    assert live.find_notebook(namespace, env={"JPY_SESSION_NAME": "console-1"},
                              cwd=tmp_path, history=[]).path == str(vscode)


def colab(monkeypatch: pytest.MonkeyPatch, reply: object) -> list[tuple]:
    """A stand-in for Colab's frontend (there is no Colab here): `google.colab._message`
    whose `blocking_request` answers REPLY, as Colab answers "get_ipynb"; the requests made."""
    import types

    asked: list[tuple] = []

    def blocking_request(kind: str, request: str = "", timeout_sec: float = 5) -> object:
        asked.append((kind, request, timeout_sec))
        if isinstance(reply, Exception):
            raise reply
        return reply

    package = types.ModuleType("google.colab")
    message = types.ModuleType("google.colab._message")
    message.blocking_request = blocking_request  # type: ignore[attr-defined]
    package._message = message  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    return asked


def test_in_colab_the_frontends_notebook(tmp_path, monkeypatch):
    """Colab's notebook is not on the kernel's disk: the frontend's copy is read, before a
    notebook that happens to sit in the working folder; a frontend that does not answer (or
    answers something else) is passed over, never an error."""
    saved(tmp_path / "sample.ipynb", "z = 0")
    held = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def gradients(X):\n    return X")])))
    asked = colab(monkeypatch, {"ipynb": held})
    found = live.find_notebook({}, env={}, cwd=tmp_path, history=[])
    assert asked and asked[0][0] == "get_ipynb"
    assert "Colab" in found.how and not found.from_history
    assert function_source(live.record(found.text, []), "gradients").startswith("def gradients")
    for reply in (TimeoutError("no answer"), {"ipynb": None}, None):
        colab(monkeypatch, reply)
        assert live.find_notebook({}, env={}, cwd=tmp_path, history=[]).path == \
            str(tmp_path / "sample.ipynb")


def test_in_the_folder_the_only_notebook_or_the_one_that_ran(tmp_path):
    only = saved(tmp_path / "hw.ipynb", "a = 1")
    assert live.find_notebook({}, env={}, cwd=tmp_path, history=[]).path == str(only)
    ran = saved(tmp_path / "hw (1).ipynb", "import torch\nb = torch.ones(2)", "c = b * 2")
    found = live.find_notebook({}, env={}, cwd=tmp_path,
                               history=["", "import torch\nb = torch.ones(2)", "c = b * 2"])
    assert found.path == str(ran) and "ran" in found.how


def test_without_a_file_the_code_that_ran_is_the_notebook(tmp_path):
    history = ["", "def f():\n    return 1", "x = f()", "def f():\n    return 1", "  "]
    found = live.find_notebook({"In": history}, env={}, cwd=tmp_path)
    assert found.from_history and found.path == ""
    cells = nbformat.reads(found.text, as_version=4).cells
    assert [c.source for c in cells] == ["x = f()", "def f():\n    return 1"]
    with pytest.raises(live.LiveError, match="could not find your notebook"):
        live.find_notebook({}, env={}, cwd=tmp_path, history=[])


def test_the_record_reads_as_a_sandboxed_runs_record():
    run = live.record(saved_text(), ["read from here"])
    assert run.outcome == "completed" and not run.sandboxed and run.cells == []
    assert run.notes[:2] == [live.IN_THIS_KERNEL, "read from here"]
    assert function_source(run, "gradients").startswith("def gradients")
    assert code_cells(run) == ["def gradients(X):\n    return X"]
    assert markdown_cells(run) == ["$x$"]


def saved_text() -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def gradients(X):\n    return X"),
        nbformat.v4.new_markdown_cell("$x$")]))


# ------------------------------------------------------------------ what a check shows

def test_the_table_escapes_every_text_and_the_text_ends_with_the_total():
    shown = Check("W4", "W4_Homework.ipynb", [
        Item("test_a", 1.5, 2, "<script>alert(1)</script>", False, ItemStatus.PARTIAL,
             "The <b>title</b>"),
        Item("test_b", 0, 3, "", False, ItemStatus.FAILED)], ["a note & more"])
    page = shown._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "The &lt;b&gt;title&lt;/b&gt;" in page and "a note &amp; more" in page
    assert '<th class="total">1.5/5</th>' in page
    assert str(shown).splitlines() == [
        "W4_Homework.ipynb: the public items of W4",
        "  1.5/2  The <b>title</b>  <script>alert(1)</script>",
        "  0/3  B",
        "  note: a note & more",
        "W4: 1.5/5 points"]
    assert repr(shown) == str(shown) and (shown.score, shown.max) == (1.5, 5)


def test_titles_and_feedback_come_from_one_function_and_the_language_from_its_order(
        monkeypatch):
    item = Item("test_fit", 1, 1, "fine", False, ItemStatus.PASSED)
    assert texts(item, "en") == ("Fit", "fine")
    monkeypatch.delenv(LANG_VARIABLE, raising=False)
    assert language(None) == "en"
    monkeypatch.setenv(LANG_VARIABLE, "zh")
    assert language(None) == "zh" and language("en") == "en" and language(None, "en") == "zh"
    monkeypatch.delenv(LANG_VARIABLE)
    assert language(None, "zh") == "zh"  # the course's setting, when the student has none


def test_the_rubric_is_read_for_its_tests_without_running_it():
    tests = rubric_tests(W4_PUBLIC)
    assert [(t.name, t.title, t.reads_markdown) for t in tests] == [
        ("test_gradients_match_the_derivation", "The four gradients are right on fresh inputs",
         False),
        ("test_derivative_expressions", "The derivatives written in markdown are right", True)]
    assert [t.name for t in tests if t.matches("GRADIENTS")] == [
        "test_gradients_match_the_derivation"]
    assert [t.name for t in tests if t.matches("written in markdown")] == [
        "test_derivative_expressions"]


def test_what_a_student_can_fix_is_one_line_never_a_traceback(tmp_path):
    with pytest.raises(CheckError, match="no assignment or notebook named 'W9'") as unknown:
        check("W9")
    assert unknown.value._render_traceback_() == [f"torchgrade: {unknown.value}"]
    with pytest.raises(CheckError, match="there is no notebook at"):
        check("W4", notebook=tmp_path / "missing.ipynb")
    elsewhere = tmp_path / "alice_W6_MNIST_FC.ipynb"
    elsewhere.write_bytes((SUBMISSIONS / "alice_W6_MNIST_FC.ipynb").read_bytes())
    with pytest.raises(CheckError, match="not this homework") as other:
        check("W4", notebook=elsewhere)
    assert "\n" not in str(other.value)
    with pytest.raises(CheckError, match="no public item of W4_Homework.ipynb has 'nothing'"):
        check("W4", "nothing", notebook=SUBMISSIONS / "alice_W4_Homework.ipynb")
    with pytest.raises(CheckError, match="没有名为 'W9' 的作业或 notebook（已有：W4、W5、W6）"):
        check("W9", lang="zh")


# ------------------------------------------------------------------ in a real kernel

@dataclass(frozen=True)
class Shown:
    """What the check's cell showed: the plain text, and the table's rows and total."""

    text: str
    rows: list[tuple[str, float, float, str]]  # title, score, max, status
    total: tuple[float, float]

    @property
    def scores(self) -> dict[str, float]:
        return {title: score for title, score, _, _ in self.rows}


def points(text: str) -> tuple[float, float]:
    score, top = text.split("/")
    return float(score), float(top)


def shown(cell: nbformat.NotebookNode) -> Shown:
    """The points of a check's result, as the notebook shows them (text/plain and text/html,
    which must agree)."""
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    text, page = results[0].data["text/plain"], results[0].data["text/html"]
    total = re.fullmatch(r"\S+: (\S+) points", text.splitlines()[-1])
    assert total, text
    rows = [tuple(html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row))
            for row in re.findall(r"<tr class=\"\w+\">(.*?)</tr>", page)]
    table = [(title, *points(pts), status) for title, pts, status, _ in rows]
    html_total = re.search(r'<th class="total">(.*?)</th>', page)
    assert html_total and points(html_total.group(1)) == points(total.group(1))
    lines = [line for line in text.splitlines()[1:-1] if not line.startswith("  note:")]
    assert [points(line.split()[0]) for line in lines] == [(s, m) for _, s, m, _ in table]
    return Shown(text, table, points(total.group(1)))


def kernel_env() -> dict[str, str]:
    """The test's environment, without what a front end would set: the kernel must find its
    notebook the way a plain kernel does."""
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME",)}
    return {**env, "MPLBACKEND": "Agg"}


def run_in_kernel(cells: list[nbformat.NotebookNode], folder: Path,
                  timeout: int = 600) -> list[nbformat.NotebookNode]:
    nb = nbformat.v4.new_notebook(cells=cells)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env=kernel_env())
    return nb.cells


def checked_in_kernel(notebook: Path, folder: Path, call: str, *, before: tuple[str, ...] = (),
                      replace: tuple[tuple[str, str], ...] = (),
                      after: tuple[str, ...] = ()) -> list[nbformat.NotebookNode]:
    """A copy of `notebook` saved in `folder` with a last cell that calls the check (as a
    student would have it), run in a plain kernel started there; `before` runs first and
    `after` last, neither saved (`before`: what the grader's own kernel runs before the first
    cell). The cells as they ran, `before` left out."""
    nb = nbformat.read(notebook, as_version=4)
    for old, new in replace:
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
    nb.cells.append(nbformat.v4.new_code_cell(f"import torchgrade\n{call}"))
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / notebook.name)
    ran = run_in_kernel([*map(nbformat.v4.new_code_cell, before), *nb.cells,
                         *map(nbformat.v4.new_code_cell, after)], folder)
    return ran[len(before):]


#: The kernel of the TA's grader without a GPU: `.cuda()` runs on the CPU (kernel_prelude).
CPU_GRADER = "__import__('grader.sandbox.kernel_prelude', fromlist=['_']).cpu_fallback()"
#: W5's 10,000,000 points take minutes to train (carol's per-sample loop, ten); its public
#: items ask `minibatches` and `batch_gradients` on the judge's own inputs, whatever the size.
FEWER_POINTS = (("data_size = 10000000", "data_size = 20000"),)


@dataclass(frozen=True)
class Example:
    file: str
    hw: str
    replace: tuple[tuple[str, str], ...] = ()
    mnist: bool = False

    def __str__(self) -> str:
        return self.file.removesuffix(".ipynb")


W4_EXAMPLES = [Example(f"{s}_W4_Homework.ipynb", "W4") for s in
               ("alice", "bob", "carol", "dave", "erin")]
W5_EXAMPLES = [
    *(Example(f"{s}_W5_Regression_Batch.ipynb", "W5", FEWER_POINTS) for s in
      ("alice", "bob", "carol")),
    *(Example(f, "W5") for f in ("alice_W5_Save_Model.ipynb", "bob_W6_Save_Model.ipynb",
                                 "carol_W5_Save_Model.ipynb"))]
W6_EXAMPLES = [Example(f"{s}_W6_MNIST_FC.ipynb", "W6", mnist=True) for s in
               ("alice", "bob", "carol", "dave")]


@pytest.fixture(scope="module")
def synthetic_view(tmp_path_factory, idx_folder_module, synthetic_md5) -> Path:
    """The public view of a small synthetic MNIST, as the sandbox mounts it at ./mnist."""
    cache = tmp_path_factory.mktemp("mnist") / "cache"
    data.import_dir(idx_folder_module, cache, expected=synthetic_md5)
    return data.public_view(cache)


@pytest.fixture(scope="module")
def idx_folder_module(tmp_path_factory, synthetic_files) -> Path:
    folder = tmp_path_factory.mktemp("placed")
    for name, raw in synthetic_files.items():
        (folder / name).write_bytes(raw)
    return folder


@pytest.fixture(scope="module")
def live_check(tmp_path_factory, synthetic_view):
    """Each example's check in its own kernel, run once for every test that reads it."""

    @cache
    def run(example: Example) -> Shown:
        folder = tmp_path_factory.mktemp(str(example))
        if example.mnist:
            for root in ("mnist", "data"):
                (folder / root).symlink_to(synthetic_view)
        cuda = "".join(c.source for c in nbformat.read(SUBMISSIONS / example.file, 4).cells)
        before = (CPU_GRADER,) if ".cuda(" in cuda and not torch.cuda.is_available() else ()
        cells = checked_in_kernel(SUBMISSIONS / example.file, folder,
                                  f'torchgrade.check("{example.hw}")', before=before,
                                  replace=example.replace)
        return shown(cells[-1])

    return run


#: The public items of the W4 examples (tests/test_grading.py pins their whole scores).
W4_PUBLIC_SCORES = {
    "alice": [6, 4], "bob": [3, 4], "carol": [0, 0], "dave": [0, 4], "erin": [0, 4]}


@pytest.mark.slow
@pytest.mark.parametrize("example", W4_EXAMPLES, ids=str)
def test_a_w4_example_checks_itself_in_a_plain_kernel(live_check, example):
    found = live_check(example)
    assert [score for _, score, _, _ in found.rows] == W4_PUBLIC_SCORES[str(example).split("_")[0]]
    assert [top for _, _, top, _ in found.rows] == [6, 4]
    assert found.total == (sum(W4_PUBLIC_SCORES[str(example).split("_")[0]]), 10)
    assert "Traceback" not in found.text and "Error:" not in found.text


@pytest.mark.slow
def test_a_check_in_chinese(tmp_path):
    """`check("W4", lang="zh")`: titles, bob's diagnosis (the sigmoid's derivative left out),
    notes and the total in Chinese; the points as in English."""
    cells = checked_in_kernel(SUBMISSIONS / "bob_W4_Homework.ipynb", tmp_path,
                              'torchgrade.check("W4", lang="zh")')
    result = [o for o in cells[-1].outputs if o.output_type == "execute_result"][0]
    text, page = result.data["text/plain"], result.data["text/html"]
    assert text.splitlines()[-1] == "W4：7/10 分"
    assert "链式法则" in text and "h_sigmoid ⊙ (1 − h_sigmoid)" in text
    assert "四个梯度" in page and "反馈" in page
    english = {w for w in re.findall(r"[A-Za-z]{3,}", text.replace(str(tmp_path), ""))} - {
        "ipynb", "Homework", "bob", "sigmoid", "h_sigmoid", "notebook", "Markdown"}
    assert not english, text


@pytest.mark.slow
def test_w6s_public_item_checks_itself_in_a_plain_kernel(live_check):
    found = live_check(W6_EXAMPLES[0])
    assert found.rows == [("The notebook has a model that classifies digits", 2, 2, "passed")]
    assert found.text.splitlines()[-1] == "W6: 2/2 points"


def ta_public_scores(example: Example, folder: Path, monkeypatch, view: Path) -> Result:
    """The example graded as `grade check` grades it: in the sandbox (or, without bubblewrap,
    the local agent), the public items only."""
    from grader.cli import _config
    from grader.judge.grade import grade

    nb = nbformat.read(SUBMISSIONS / example.file, as_version=4)
    for old, new in example.replace:
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / example.file)
    if example.mnist:
        monkeypatch.setenv("TORCHGRADE_DATA", str(view.parent))
    assignment = assignments.find(example.hw)
    config = _config(assignment, None, bwrap.executable() is not None, cpu_fallback=True)
    found, rejected = intake.collect(folder / example.file, assignment, folder)
    assert found and not rejected
    return grade(found[0], assignment, config, public_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("example", [*W4_EXAMPLES, *W5_EXAMPLES, *W6_EXAMPLES], ids=str)
def test_the_public_items_score_as_the_tas_sandboxed_grading_scores_them(
        live_check, example, tmp_path, monkeypatch, synthetic_view):
    mine = live_check(example)
    theirs = ta_public_scores(example, tmp_path / "ta", monkeypatch, synthetic_view)
    assert mine.rows == [(i.heading, i.score, i.max, str(i.status)) for i in theirs.items]
    assert mine.total == (theirs.total, theirs.max)


@pytest.mark.slow
def test_one_item_by_its_name_or_title_and_a_kernel_left_as_it_was(tmp_path):
    """`check("W4", "gradients")` shows that item alone; a title's words pick too, case set
    aside; a word that picks nothing, or an unknown homework, is one line; the notebook's
    random numbers are drawn as if no check had run."""
    after = ('import numpy as np\n_state = np.random.get_state()[1].copy()\n'
             'torchgrade.check("W4", "gradients")',
             'assert (np.random.get_state()[1] == _state).all(), "the random state moved"',
             'torchgrade.check("W4", "WRITTEN IN MARKDOWN")',
             'torchgrade.check("W4", "nothing-like-this")',
             'torchgrade.check("W9")')
    cells = checked_in_kernel(SUBMISSIONS / "alice_W4_Homework.ipynb", tmp_path,
                              'torchgrade.check("W4", "gradients")', after=after)
    saved_check, again, state, by_title, nothing, unknown = cells[-6:]
    one = shown(saved_check)
    assert one.rows == [("The four gradients are right on fresh inputs", 6, 6, "passed")]
    assert one.total == (6, 6)
    assert shown(again).rows == one.rows
    assert state.outputs == []
    assert [title for title, *_ in shown(by_title).rows] == [
        "The derivatives written in markdown are right"]
    for cell, said in ((nothing, "no public item of W4_Homework.ipynb has"),
                       (unknown, "no assignment or notebook named 'W9'")):
        (error,) = cell.outputs
        assert error.output_type == "error" and error.ename == "CheckError"
        assert len(error.traceback) == 1 and error.traceback[0].startswith(f"torchgrade: {said}")


@pytest.mark.slow
def test_without_a_notebook_file_the_code_that_ran_is_checked_and_markdown_is_asked_for(
        tmp_path):
    nb = nbformat.read(SUBMISSIONS / "alice_W4_Homework.ipynb", as_version=4)
    cells = run_in_kernel([*nb.cells, nbformat.v4.new_code_cell(
        'import torchgrade\ntorchgrade.check("W4")')], tmp_path)  # no file in its folder
    found = shown(cells[-1])
    assert [(score, top) for _, score, top, _ in found.rows] == [(6, 6), (0, 4)]
    assert 'your notebook\'s file was not found, so its markdown could not be read: save it ' \
        'and pass its path, as in notebook="W4_Homework.ipynb"' in found.text
    assert "no notebook file was found" in found.text


#: A script, not a kernel: the check returns its result and prints nothing.
SCRIPT = """
import json, sys, torch, torchgrade
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
found = torchgrade.check("W6", notebook=sys.argv[1])
sys.stderr.write(json.dumps([found.score, found.max, str(found).splitlines()[-1]]))
"""


@pytest.mark.slow
def test_outside_ipython_the_check_prints_nothing(tmp_path):
    notebook = saved(tmp_path / "W6_MNIST_FC.ipynb",
                     "import torch\nmodel = torch.nn.Sequential(torch.nn.Flatten(), "
                     "torch.nn.Linear(784, 10))")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(notebook)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env=kernel_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [2, 2, "W6: 2/2 points"]
