"""Every sentence the judge and the bundled rubrics say to a student can be said in Chinese.

(a) each bundled rubric item's title, and each literal message a rubric asserts or credits, is
    translated in its assignment's catalog (assignments/<hw>/locale/zh.po);
(b) real verdicts of each judge module, made by calling it on small inputs, render in Chinese
    with the same numbers and no English word left but code and a few technical names;
(c) every template marked in grader/judge/*.py (judge.po) and in the rubric files (their
    assignment's catalog) has a translation with the same fields and format specs.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import json
import re
import string
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import numpy as np
import pytest
import torch
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from grader import i18n
from grader.i18n import N_, Words, say
from grader.judge import (
    derived,
    grade,
    gradients,
    latex,
    loops,
    mistakes,
    models,
    rubric,
    saved,
)
from grader.judge.mistakes import Mistake, Verdict
from grader.sandbox import ProbeError
from reference import twolayer
from tests.test_loops import Kernel as Evaluates

ROOT = Path(__file__).resolve().parent.parent
JUDGE = sorted((ROOT / "grader" / "judge").glob("*.py"))
RUBRICS = sorted(ROOT.glob("assignments/*/*/test_*.py"))
JUDGE_PO = ROOT / "grader" / "locale" / "zh" / "judge.po"


def po(path: Path) -> dict[str, str]:
    """A .po file's translations by message id (the header left out)."""
    with path.open("rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id}


def course_po(path: Path) -> dict[str, str]:
    """The catalog of the assignment a rubric file belongs to."""
    return po(path.parent.parent / "locale" / "zh.po")


def extracted(path: Path) -> list[str]:
    """The templates a file marks, as Babel extracts them (`N_` and `say`)."""
    return [message for _, message, _, _ in extract_from_file(
        "python", str(path), keywords={"N_": (1,), "say": (1,)}, comment_tags=())]


def specs(template: str) -> Counter:
    """Each field of a template with its conversion and format spec (`{error:.2g}`)."""
    return Counter((name, spec, conversion) for _, name, spec, conversion in
                   string.Formatter().parse(template) if name is not None)


def zh(words: str, catalogs: tuple = ()) -> str:
    assert isinstance(words, Words), f"not a Words: {words!r}"
    return words.render("zh", catalogs)


# ----------------------------------------------------------------- (c) templates


@pytest.mark.parametrize("path", JUDGE + RUBRICS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_template_has_a_translation_with_the_same_fields(path):
    catalog = po(JUDGE_PO) if path in JUDGE else course_po(path)
    untranslated, unlike = [], []
    for template in extracted(path):
        translated = catalog.get(template)
        if not translated:
            untranslated.append(template)
        elif i18n.fields(translated) != i18n.fields(template) or \
                specs(translated) != specs(template):
            unlike.append((template, translated))
    assert untranslated == [] and unlike == []


def test_the_judge_catalog_is_a_proper_po_file():
    with JUDGE_PO.open("rb") as handle:
        catalog = read_po(handle)
    assert str(catalog.locale) == "zh_Hans"
    header = JUDGE_PO.read_text(encoding="utf-8").split("\n\n")[0]
    assert '"Content-Type: text/plain; charset=UTF-8\\n"' in header.splitlines()
    assert '"Language: zh_Hans\\n"' in header.splitlines()
    assert all(m.string for m in catalog if m.id)
    assert i18n.translations("zh").gettext("{name} right") == "{name} 正确"


# ----------------------------------------------------------------- (a) titles and literals


def _rubric_module(path: Path) -> Any:
    name = "_words_" + "_".join(path.relative_to(ROOT).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rubric_modules(pytestconfig: pytest.Config) -> dict[Path, Any]:
    """The bundled rubric files, imported (their `points` marker registered, as the rubric
    runner does)."""
    pytestconfig.addinivalue_line("markers", "points(n): what the rubric item is worth")
    return {path: _rubric_module(path) for path in RUBRICS}


@pytest.mark.parametrize("path", RUBRICS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rubric_title_is_translated(path, rubric_modules):
    catalog = course_po(path)
    tests = [f for name, f in inspect.getmembers(rubric_modules[path], inspect.isfunction)
             if name.startswith("test")]
    assert tests
    titles = [rubric.title(f) for f in tests]
    assert all(titles)
    assert [t for t in titles if not catalog.get(t)] == []
    course = i18n.course_catalogs(path.parent.parent, "zh")
    assert all(i18n.text(t, "zh", course) == catalog[t] for t in titles)


@pytest.mark.parametrize("hw", sorted({p.parent.parent.name for p in RUBRICS}))
def test_every_assignment_title_is_translated(hw):
    folder = ROOT / "assignments" / hw
    title = tomllib.loads((folder / "assignment.toml").read_text(encoding="utf-8"))[
        "assignment"]["title"]
    assert po(folder / "locale" / "zh.po").get(title)


def literal_messages(path: Path) -> list[str]:
    """The plain strings a rubric file asserts, credits or fails with (a say() template is a
    template, checked above); a module constant used so is read too."""
    tree = ast.parse(path.read_text())
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}
    found: list[str] = []

    def said(node: ast.AST) -> None:
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say":
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
            found.append(node.value)
        elif isinstance(node, ast.Name) and node.id in constants:
            found.append(constants[node.id])
        for child in ast.iter_child_nodes(node):
            said(child)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.msg is not None:
            said(node.msg)
        elif isinstance(node, ast.Call):
            called = getattr(node.func, "id", "") or getattr(node.func, "attr", "")
            if called == "credit" and len(node.args) > 1:
                said(node.args[1])
            elif called == "fail" and node.args:
                said(node.args[0])
    return found


@pytest.mark.parametrize("path", RUBRICS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_literal_rubric_message_is_translated(path):
    catalog = course_po(path)
    assert [m for m in literal_messages(path) if not catalog.get(m)] == []


# ----------------------------------------------------------------- (b) real verdicts, in Chinese

#: English a Chinese sentence may keep: code and names from the notebook, and the technical
#: names a Chinese deep-learning course writes in English too.
KEPT = {
    # technical names
    "sigmoid", "NaN", "Frobenius", "MSE", "autograd", "notebook", "torch", "pickle", "ReLU",
    "DataLoader", "lambda", "eps",
    # code the templates write
    "h_sigmoid", "Y_pred", "dY_pred", "save", "state_dict", "pkl", "pth", "Module", "forward",
    "shuffle", "True", "drop_last", "range", "data_size", "batch_size", "mean", "Loss",
    "reduction", "optimizer", "zero_grad", "grad", "zero_", "hat", "return",
    # names the samples below give (a class, a file, a symbol, a setting, a device)
    "net", "net_params", "net_all", "Sequential", "Conv2d", "BatchNorm2d", "Dropout", "cpu",
    "gone", "delta_9", "stride", "mlp", "wide", "junk",
}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def english_left(text: str) -> list[str]:
    """The ASCII words of 3+ letters in TEXT outside `code` spans that are not KEPT."""
    outside = re.sub(r"`[^`]*`", " ", text)
    return [w for w in WORD.findall(outside)
            if sum(c.isalpha() for c in w) >= 3 and w not in KEPT]


def said_in_chinese(english: Words, catalogs: tuple = ()) -> list[str]:
    """What is wrong with ENGLISH said in Chinese: [] when it is translated, keeps its numbers,
    leaves no English word but code and KEPT, and says the same once stored as JSON."""
    chinese = zh(english, catalogs)
    problems = []
    if not english or chinese == english or not re.search(r"[\u4e00-\u9fff]", chinese):
        problems.append("not translated")
    if Counter(NUMBER.findall(chinese)) != Counter(NUMBER.findall(english)):
        problems.append("other numbers")
    if english_left(chinese):
        problems.append(f"English left: {english_left(chinese)}")
    stored = Words.from_json(json.loads(json.dumps(english.to_json())))
    if stored is None or str(stored) != english or zh(stored, catalogs) != chinese:
        problems.append("not the same once stored in the gradebook")
    return [f"{english!r} -> {chinese!r}: {', '.join(problems)}"] if problems else []


BUILDERS: dict[str, Callable[[], list[tuple[str, Words]]]] = {}


def builder(function: Callable[[], list[tuple[str, Words]]]) -> Callable:
    BUILDERS[function.__name__.strip("_")] = function
    return function


@builder
def _gradients() -> list[tuple[str, Words]]:
    rng = np.random.default_rng(1)
    problem = gradients.random_problem(rng, 5, 3)
    tensors = [torch.from_numpy(a) for a in problem]
    right = [g.numpy() for g in twolayer.gradients(*tensors)]
    per_sample = 2 * (twolayer.forward(*[tensors[0], *tensors[2:]])[1] - tensors[1]).numpy()
    answers = [right[0] / 2, right[1] / 2, right[2] * 1.3, per_sample]
    verdicts = gradients.judge(answers, *tensors)
    shared = [Verdict(n, 0.5, Mistake.OFF_BY_N, 5) for n in ("dW1", "db1")] + [
        Verdict("dW2", np.inf, Mistake.NOT_FINITE, 5),
        Verdict("db2", np.inf, Mistake.SHAPE, 5, (5, 3), (1,)),
        Verdict("dW1", 2.0, Mistake.SIGN, 5), Verdict("db1", 0.4, Mistake.SIGMOID_DERIVATIVE, 5),
        Verdict("dW1", np.inf, Mistake.TRANSPOSED, 5, (3, 1), (1, 3))]
    count = gradients.judge([right[0]], *tensors)
    session = rubric.Asked(SimpleNamespace(call=lambda *a, **k: None,
                                           modules=lambda *a, **k: None))
    session.call("gradients", 1)
    calling = session.last
    session.modules((2, 1))
    return [("gradients.summarize", mistakes.summarize(gradients.first_wrong(verdicts).values())),
            ("gradients.describe", mistakes.describe(verdicts[3])),
            ("gradients.shared", mistakes.summarize(shared)),
            ("gradients.count", mistakes.summarize(count)),
            ("gradients.right", mistakes.describe(Verdict("dW1", 0.0, n=5))),
            ("rubric.unanswered", mistakes.unanswered(calling, "raised", "NameError")),
            ("rubric.unanswered.timeout", mistakes.unanswered(session.last, "timeout", "")),
            ("rubric.unanswered.closed", mistakes.unanswered("", "closed", "")),
            ("rubric.unanswered.type", mistakes.unanswered(calling, "raised", "TypeError")),
            ("rubric.unanswered.other", mistakes.unanswered(calling, "raised", "OSError")),
            ("rubric.unfinished", mistakes.unfinished())]


@builder
def _latex() -> list[tuple[str, Words]]:
    cells = [r"$\frac{\partial f}{\partial W_2} = Z^T G$", r"$dW_1 = X^3 G$",
             r"$dW_2 = @#$", r"$db_2 = 2(Y_{pred} - Y) / W_2$",
             r"$dW_2 = h_{sigmoid}^T (Y_{pred} - Y$", r"$dW_1 = X^T [2(Y_{pred}-Y) W_2^T]$",
             r"$db_1 = 2(Y_{pred}-Y)W_2^T \odot \sigma'(h)$", r"$db_1 = \delta_9$",
             r"$dW_2 = h_{sigmoid}^T (Y_{pred} - Y) )$", r"$dW_1 = \hat{Z} G$",
             r"$dW_1 = \sigma X$"]
    readings = latex.read_markdown(cells, np.random.default_rng(2))
    rows = latex.evidence(readings)
    said = [(f"latex.{i}", row["feedback"]) for i, row in enumerate(rows)]
    best = {"dW1": readings[5], "db1": readings[6], "db2": readings[3]}
    return [*said, ("latex.summary", mistakes.summarize_readings(best))]


class EvaluatesNothing:
    """A sandbox whose notebook has X, W1, b1 and b2 of these shapes, and evaluates nothing."""

    shapes = {"x": (5, 1), "w1": (1, 3), "b1": (1, 3), "b2": (5, 1)}

    def value(self, name: str, timeout: float = 0) -> np.ndarray:
        if name not in self.shapes:
            raise ProbeError(f"KeyError: {name}", "raised")
        return np.zeros(self.shapes[name])

    def evaluate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise ProbeError("NameError: name 'q' is not defined", "raised")


#: A W4 notebook's data and forward pass, its b1 a row and its b2 one row per sample.
DATA = ("import torch\nx = torch.randn(5, 1)\ny = x ** 2\nw1 = torch.randn(1, 3)\n"
        "b1 = torch.randn(1, 3)\nw2 = torch.randn(3, 1)\nb2 = torch.randn(5, 1)\n"
        "hs = torch.sigmoid(x.mm(w1) + b1)\nyp = hs.mm(w2) + b2\n")
RIGHT_DW2 = "dw2 = 2 * hs.t().mm(yp - y)"


@builder
def _derived() -> list[tuple[str, Words]]:
    data = DATA
    found = derived.find([data, "def helper(v):\n    for i in range(2):\n        v = v\n"
                          "    return v\n", "dw2 = sum(hs[i] for i in range(3))",
                          "db2 = helper(yp)", "dw1 = zzz * yp + qqq", "db1 = w1.grad"])
    assert len(found.found) == 4
    many = derived.find([data, "dw1 = f(yp)", "def f(a, b):\n    return a\n",
                         "dw2 = f(yp)", "db2 = f(yp, b=1, c=2)", "db1 = f(*yp)",
                         "import os\ndw2 = os.sep"])
    judged = derived.check(EvaluatesNothing(), derived.find([data, RIGHT_DW2,
                                                             "db2 = 2 * (yp - y)"]),
                           np.random.default_rng(3))
    readings = {name: derived._reading(f, [], (5, 3)) for name, f in found.found.items()}
    return [("derived.summary", derived.summarize_code(readings)),
            ("derived.many", derived.summarize_code(
                {n: derived._reading(f, [], (5, 3)) for n, f in many.found.items()})),
            ("derived.unevaluated", derived.summarize_code(judged.readings)),
            ("derived.bias", judged.bias)]


def _loop(body: str, before: str = "") -> str:
    return ("import numpy as np\nimport torch\ndata_size, batch_size = 100, 10\n"
            "x = torch.rand(100, 1)\ny = x ** 2\n" + before + "for epoch in range(3):\n"
            + "".join(f"    {line}\n" for line in body.strip("\n").split("\n")))


class Refuses:
    def evaluate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise ProbeError("ValueError: no", "raised")


@builder
def _loops() -> list[tuple[str, Words]]:
    summed = _loop("""
order = np.random.permutation(data_size)
for i in range(data_size // batch_size):
    idx = order[i*batch_size:(i+1)*batch_size]
    loss = ((net(x[idx]) - y[idx]) ** 2).sum()
    loss.backward()
    opt.step()""")
    once = _loop("""
for i in range(0, data_size, batch_size):
    idx = order[i:i + batch_size]
    loss = crit(net(x[idx]), y[idx])
    loss.backward()
    opt.step()""", before="order = np.random.permutation(data_size)\nopt.zero_grad()\n")
    good = _loop("""
order = torch.randperm(data_size)
for i in range(0, data_size, batch_size):
    idx = order[i:i + batch_size]
    loss = ((net(x[idx]) - y[idx]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()""")
    fixed = _loop("""
order = np.arange(n_points)
np.random.shuffle(order)
for i in range(data_size // batch_size + k):
    idx = order[i*batch_size:(i+1)*batch_size]""")
    loader = ("from torch.utils.data import DataLoader\n"
              "loader = DataLoader(ds, batch_size=10, drop_last=True)\n")
    said = []
    for name, cells, student in (("summed", [summed], Evaluates()), ("once", [once], Refuses()),
                                 ("good", [good], Evaluates()), ("fixed", [fixed], Evaluates()),
                                 ("loader", [loader], Evaluates()), ("none", [], Evaluates())):
        loop = loops.find_loop(cells)
        said.append((f"loops.batching.{name}", loops.check_batching(student, loop).feedback))
        said.append((f"loops.loss.{name}", loops.judge_batch_loss(loop).feedback))
    same = loops.find_loop([_loop("""
order = np.random.permutation(data_size)
for i in range(data_size // batch_size):
    idx = order[i*batch_size:(i+1)*batch_size]
    loss = ((net(x[idx]) - y[idx]) ** 2).mean()
    loss.backward()""")])
    repeated = SimpleNamespace(evaluate=lambda expression, *a, **k: np.arange(
        loops.DATA_SIZE) if "permutation" in expression else Evaluates().evaluate(
        expression, *a, **k))
    said.append(("loops.batching.same", loops.check_batching(repeated, same).feedback))
    short = loops.find_loop([_loop("""
order = np.random.permutation(data_size - 3)
for i in range(0, data_size, batch_size):
    idx = order[i:i + 5]""")])
    unbound = loops.find_loop([_loop("""
order = np.random.permutation(len(x) + k)
for i in range(0, data_size, batch_size):
    idx = order[i:i + batch_size]""")])
    said += [("loops.batching.short", loops.check_batching(Evaluates(), short).feedback),
             ("loops.batching.unbound", loops.check_batching(Evaluates(), unbound).feedback)]
    return said


class Classifiers:
    """A sandbox with these modules, no saved files, and no layer-by-layer run."""

    def __init__(self, modules: list[dict[str, Any]]) -> None:
        self.found = modules

    def modules(self, shape: tuple[int, ...]) -> list[dict[str, Any]]:
        return self.found

    def files(self) -> dict[str, int]:
        raise ProbeError("no", "closed")

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        raise ProbeError("no", "timeout")

    def value(self, name: str) -> Any:
        raise ProbeError(f"NameError: {name}", "raised")


class NoRegression:
    """A notebook whose `predict` cannot be called, whose one module answers the wrong shape
    and whose weights do not fit together."""

    def call(self, name: str, *args: Any) -> Any:
        if name == "predict":
            raise ProbeError("TypeError: no", "raised")
        return [np.zeros(3), np.zeros(3)]

    def modules(self, shape: tuple[int, ...]) -> list[dict[str, Any]]:
        return [{"name": "net", "output_shape": [2, 1]}, {"name": "bad", "output_shape": [2, 1]}]

    def forward(self, name: str, x: np.ndarray) -> np.ndarray:
        if name == "bad":
            raise ProbeError("RuntimeError: no", "raised")
        return np.full((len(x), 2), np.nan)

    def value(self, name: str) -> np.ndarray:
        return np.zeros((3, 3))


@builder
def _models() -> list[tuple[str, Words]]:
    net = {"name": "net", "output_shape": [2, 10]}
    broken = {"name": "mlp", "output_shape": [2, 5]}
    said = [("models.find.instead", models.find(Classifiers([net]), ("model",)).feedback),
            ("models.find.or", models.find(Classifiers([net]), ("model", "clf")).feedback),
            ("models.find.none", models.find(Classifiers([]), ("model",)).feedback),
            ("models.find.found", models.find(Classifiers([broken]), ("model",)).feedback),
            ("models.verify", models.verify_layers(Classifiers([]),
                                                   models.Found("net")).layers_note)]
    entries: list[Any] = [
        "?", {"path": "d", "class": "Dropout", "settings": {"p": 0}},
        {"path": "l", "class": "Linear"},
        {"path": "d", "class": "Dropout", "settings": {"p": 0.5}, "calls": {}},
        {"path": "c", "class": "Conv2d", "tensors": {}},
        {"path": "b", "class": "BatchNorm2d", "settings": {}},
        {"path": "d", "class": "Dropout", "settings": {"p": 2}},
        {"path": "c", "class": "Conv2d", "tensors": {"weight": 0}}]
    arrays = [np.zeros((2, 1, 3, 3), np.float32)]
    checks = models.check_layers({"layers": entries, "ran": [["conv9", "Conv2d"]],
                                  "errors": {"eval": "x", "train": "y"}}, arrays)
    said += [(f"models.layer.{i}", check.finding) for i, check in enumerate(checks)]
    note = models._errors_note({"errors": {"eval": "x", "train": "y"}})
    found = models.Found("model", layers=frozenset({"Conv2d", "BatchNorm2d", "Dropout"}),
                         used_layers=frozenset({"Conv2d", "Dropout"}), layer_checks=checks[-1:],
                         layers_note=note)
    said += [(f"models.notes.{k}", v) for k, v in models.architecture_notes(found).items()]
    plain = models.Found("model", layers=frozenset({"Dropout"}),
                         used_layers=frozenset({"Dropout"}))
    said += [(f"models.plain.{k}", v) for k, v in models.architecture_notes(plain).items()]
    fit = models.regression_fit(NoRegression(), SimpleNamespace(notebook=None),
                                np.random.default_rng(4), ("predict",), points=40)
    said.append(("models.fit", fit.feedback))
    alone = models.regression_fit(Classifiers([]), SimpleNamespace(notebook=None),
                                  np.random.default_rng(4), (), points=40)
    said.append(("models.fit.alone", alone.feedback))
    per_point = models._weight_fits(
        SimpleNamespace(value=lambda name: {"W1": np.ones((1, 3)), "b1": np.ones((4, 3)),
                                            "W2": np.ones((3, 1)), "b2": np.ones((4, 1))}[name]),
        SimpleNamespace(notebook=None), np.random.default_rng(5),
        np.zeros((6, 1), np.float32), np.zeros((6, 1), np.float32), [])
    said.append(("models.fit.per_point", per_point[0].judged))
    return said


def _bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


class SavedFolder:
    """A folder with a state_dict, a whole net that takes too long to load, and a notebook
    whose trained `net` predicts PREDICT."""

    def __init__(self, files: dict[str, bytes], predict: Callable[[np.ndarray], np.ndarray],
                 load: str = "timeout") -> None:
        self.stored, self.predict, self.load = files, predict, load

    def files(self) -> dict[str, int]:
        return {name: len(data) for name, data in self.stored.items()}

    def read_file(self, name: str, max_bytes: int = 0) -> bytes:
        return self.stored[name]

    def modules(self, shape: tuple[int, ...]) -> list[dict[str, Any]]:
        return [{"name": "net", "output_shape": [2, 1]}]

    def forward(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.predict(x)

    def load_and_forward(self, name: str, x: np.ndarray) -> np.ndarray:
        if self.load == "wrong":
            return np.zeros((len(x), 3))
        if self.load == "same":
            return self.predict(x)
        raise ProbeError("slow", self.load)


@builder
def _saved() -> list[tuple[str, Words]]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 1))

    def trained(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    files = {"net_params.pkl": _bytes(net.state_dict()), "net.pkl": _bytes(net),
             "junk.pt": b"not a pickle", "other.pt": _bytes({"epoch": 3}),
             "wide.pt": _bytes(torch.nn.Linear(2, 1).state_dict())}
    run = SimpleNamespace(notebook=None)
    said = []
    for name, student in (("timeout", SavedFolder(files, lambda x: trained(x) + 1)),
                          ("raised", SavedFolder(files, trained, "raised")),
                          ("wrong", SavedFolder(files, trained, "wrong")),
                          ("same", SavedFolder(files, trained, "same")),
                          ("differs", SavedFolder(files, lambda x: trained(x) + 1, "same"))):
        judged = saved.judge_saving(student, run, rng=np.random.default_rng(6))
        said += [(f"saved.parameters.{name}", judged.parameters.feedback),
                 (f"saved.whole.{name}", judged.whole.feedback)]
    found = saved.saved_files(SavedFolder(files, trained), run)
    lone = saved.Saved((saved.classify("junk.pt", b"x"),), missing=("gone.pt",))
    said += [("saved.both", found.both()), ("saved.no_parameters", lone.no_parameters()),
             ("saved.no_whole", lone.no_whole()),
             ("saved.nothing", saved.Saved().no_whole())]
    chain = saved.linear_chain(net.state_dict())
    *_, (plain, _) = saved.restorations(chain, np.zeros((2, 1)))
    two = saved.linear_chain(torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.Linear(2, 2),
                                                 torch.nn.Linear(2, 1)).state_dict())
    mixed = next(words for words, _ in saved.restorations(two, np.zeros((2, 1)))
                 if "no activation" in words and "," in words)
    said += [("saved.restoration.plain", plain), ("saved.restoration.mixed", mixed)]
    alone = SavedFolder({"net_params.pkl": files["net_params.pkl"]}, trained)
    alone.modules = lambda shape: []  # type: ignore[method-assign]
    judged = saved.judge_saving(alone, run, rng=np.random.default_rng(7))
    said.append(("saved.unchecked", judged.parameters.feedback))
    return said


@builder
def _files_item() -> list[tuple[str, Words]]:
    notebook = SimpleNamespace(files=["net.pkl", "net_params.pkl"], files_points=1.0)
    missing = grade.files_item(notebook, SimpleNamespace(files=lambda: {"net_params.pkl": 3}))
    unlisted = grade.files_item(notebook, SimpleNamespace(
        files=lambda: (_ for _ in ()).throw(ProbeError("gone", "closed"))))
    assert missing is not None and unlisted is not None
    return [("grade.missing", Words.from_json(missing.said)),
            ("grade.unlisted", Words.from_json(unlisted.said)),
            ("grade.title", Words("The notebook saved {files}",
                                  {"files": ", ".join(notebook.files)}))]


def _rubric_samples(rubric_modules: dict[Path, Any]) -> list[tuple[str, Words, str]]:
    """Sentences the bundled rubric tests say, from calling them on stand-ins."""
    def module(part: str) -> Any:
        return rubric_modules[ROOT / "assignments" / part]

    said: list[tuple[str, Words, str]] = []
    notes: list[str] = []
    credit = lambda fraction, why="": notes.append(why)  # noqa: E731
    w6 = module("W6/hidden/test_W6_MNIST_FC.py")
    run = SimpleNamespace(cells=[SimpleNamespace(index=3, seconds=12.5, synced_seconds=None)])
    w6.test_training_time_and_device(run, SimpleNamespace(environment=lambda: {}), credit)
    with pytest.raises(AssertionError) as failed:
        w6.test_architecture((models.Found("net"), 0.9, 0.9), Classifiers([]), {}, credit)
    said += [("w6.time", notes[-1], "W6"), ("w6.architecture", failed.value.args[0], "W6")]
    curve = SimpleNamespace(earned=lambda accuracy: 0.5, target=0.99, baseline=0.9, max_gap=0.01)
    w6.test_accuracy_on_digits_it_never_saw((None, 0.9731, 0.9512), curve, credit)
    said.append(("w6.accuracy", notes[-1], "W6"))
    with pytest.raises(AssertionError) as failed:
        w6.test_holdout_agrees_with_test((None, 0.9731, 0.9512), curve)
    said.append(("w6.gap", failed.value.args[0], "W6"))
    w4 = module("W4/hidden/test_W4_Homework.py")
    run = notebook_run("import torch\nx = torch.randn(5, 1)\nw1 = torch.randn(1, 3)\n"
                       "dw1 = w1.grad\ndw2 = 2 * x\n")
    w4.test_gradients_are_derived_not_autograd(None, run, credit)
    said.append(("w4.derived", notes[-1], "W4"))
    bias = derived.check(EvaluatesNothing(), derived.find([DATA, RIGHT_DW2]),
                         np.random.default_rng(3)).bias
    for convention in (bias, "row"):  # the words the W4 public rubric credits with
        said.append(("w4.biases", say("all four gradients right ({bias} biases)",
                                      bias=convention), "W4"))
    w5 = module("W5/public/test_W5_Regression_Batch.py")
    batches = [np.arange(i, min(i + 10, 100)) for i in range(0, 100, 10)]
    student = SimpleNamespace(call=lambda name, *args, **kwargs: batches)
    with pytest.raises(AssertionError) as failed:
        w5.test_each_index_once_per_epoch(student, notebook_run("def minibatches(n, b):\n    "
                                                                "pass"), credit, {})
    said.append(("w5.missing", failed.value.args[0], "W5"))
    said.append(("w5.shape", say("{name} has shape {shape}, expected {expected}", name="dW1",
                                 shape=[3, 4], expected=[4, 3]), "W5"))
    return said


def notebook_run(*cells: str) -> SimpleNamespace:
    """A run whose notebook holds these code cells."""
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return SimpleNamespace(notebook=nbformat.writes(book))


@pytest.mark.parametrize("module", list(BUILDERS))
def test_a_modules_verdicts_render_in_chinese_with_the_same_numbers(module):
    made = BUILDERS[module]()
    assert len(made) >= 3
    assert [p for _, words in made for p in said_in_chinese(words)] == []


def test_a_rubrics_sentences_render_in_chinese_with_the_same_numbers(rubric_modules):
    made = _rubric_samples(rubric_modules)
    assert {hw for _, _, hw in made} == {"W4", "W5", "W6"}
    assert [p for _, words, hw in made for p in said_in_chinese(
        words, i18n.course_catalogs(ROOT / "assignments" / hw, "zh"))] == []


def test_a_bare_word_argument_is_said_in_chinese_and_a_name_is_not():
    kinds = Words.join([models.KINDS["conv"], models.KINDS["dropout"]], ", ")
    assert kinds.render("zh") == "卷积、随机失活"
    assert say(N_("{name} right"), name="dW1").render("zh") == "dW1 正确"
