"""A trained model and a saved model judged whatever the notebook called them (issue #18).

Fast tests run the course-era notebooks of tests/course_saved.py in this process (they are
ours, so trusted) behind a stand-in for the sandbox that answers the judge's questions as the
kernel would; slow tests grade the same notebooks through the real sandbox and the bundled
rubrics, asserting what a TA would give.
"""

from __future__ import annotations

import io
import os
import re
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib
import nbformat
import numpy as np
import pytest
import torch

from grader.judge import judge_saving, models, regression_fit, saved, saved_files
from grader.sandbox import ProbeError
from tests import course_saved

matplotlib.use("Agg")

#: What no feedback may read like: an exception's text instead of words.
EXCEPTION_TEXT = re.compile(r"Traceback|\w+Error\b|KeyError|: '")


class Kernel:
    """Answers the judge's questions as the sandbox's kernel would, about a notebook of ours
    run in this process: the same operations, the same errors (ProbeError)."""

    def __init__(self, scope: dict[str, Any], folder: Path) -> None:
        self.scope, self.folder = scope, folder
        self.loaded: list[str] = []

    def _get(self, name: str) -> Any:
        if name not in self.scope:
            raise ProbeError(f"KeyError: '{name}'", "raised")
        return self.scope[name]

    def modules(self, shape: tuple[int, ...]) -> list[dict[str, Any]]:
        found = []
        for name, module in self.scope.items():
            if isinstance(module, torch.nn.Module) and not name.startswith("_"):
                try:
                    with torch.no_grad():
                        found.append({"name": name, "output_shape": list(
                            module(torch.rand(*shape)).shape)})
                except Exception as exc:  # noqa: BLE001  as the kernel reports it
                    found.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
        return found

    def forward(self, name: str, x: np.ndarray) -> np.ndarray:
        module = self._get(name)
        if not isinstance(module, torch.nn.Module):
            raise ProbeError(f"KeyError: '{name}'", "raised")
        module.eval()
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    def call(self, name: str, *arrays: np.ndarray, **_: Any) -> list[np.ndarray]:
        function = self._get(name)
        try:
            answer = function(*(torch.from_numpy(a) for a in arrays))
        except Exception as exc:  # noqa: BLE001  as the kernel reports it
            raise ProbeError(f"{type(exc).__name__}: {exc}", "raised") from None
        answer = answer if isinstance(answer, tuple | list) else [answer]
        return [np.asarray(a.detach() if hasattr(a, "detach") else a) for a in answer]

    def value(self, name: str) -> np.ndarray:
        found = self._get(name)
        return np.asarray(found.detach() if hasattr(found, "detach") else found)

    def files(self) -> dict[str, int]:
        return {str(p.relative_to(self.folder)): p.stat().st_size
                for p in sorted(self.folder.rglob("*")) if p.is_file()}

    def read_file(self, name: str, max_bytes: int = 16 << 20) -> bytes:
        path = self.folder / name
        if not path.is_file():
            raise ProbeError(f"FileNotFoundError: {name}", "raised")
        return path.read_bytes()[:max_bytes]

    def load_and_forward(self, file: str, x: np.ndarray) -> np.ndarray:
        """Our own test files only: the grader itself never unpickles outside the sandbox."""
        self.loaded.append(file)
        try:
            model = torch.load(self.folder / file, weights_only=False)
        except Exception as exc:  # noqa: BLE001  as the kernel reports it
            raise ProbeError(f"{type(exc).__name__}: {exc}", "raised") from None
        if not isinstance(model, torch.nn.Module):
            raise ProbeError(f"TypeError: {file} holds a {type(model).__name__}", "raised")
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()


def executed(build: Any, folder: Path, monkeypatch: pytest.MonkeyPatch,
             *extra: str) -> tuple[Kernel, SimpleNamespace]:
    """One of course_saved's notebooks run here (ours: trusted), then the stand-in kernel
    over its namespace and folder, and the run record the judge reads its code from."""
    path = build(folder / "nb.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in extra]
    path.unlink()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the sandbox's setting
    main = types.ModuleType("__main__")  # its classes pickle by name, as in a kernel
    monkeypatch.setitem(sys.modules, "__main__", main)
    scope = main.__dict__
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "<cell>", "exec"), scope)  # noqa: S102  our notebook
    return Kernel(scope, folder), SimpleNamespace(notebook=nbformat.writes(nb))


def words_only(*feedback: str) -> None:
    for text in feedback:
        assert text and not EXCEPTION_TEXT.search(text), text


# ----------------------------------------------------------------------------- the code, read


def run_of(*cells: str) -> SimpleNamespace:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return SimpleNamespace(notebook=nbformat.writes(nb))


def test_torch_save_targets_are_read_from_the_code_never_run():
    run = run_of(*course_saved.TUTORIAL, "import torch as T\nT.save(m, f='a.pt')",
                 "from torch import save as keep\nPATH = './b.pth'\nkeep(m.state_dict(), PATH)",
                 "%matplotlib inline\n torch.save(model, 'c.pkl')",
                 "torch.save(net, f'{name}.pkl')")
    assert saved.save_calls(run) == [
        saved.SaveCall("net.pkl", "net1", False), saved.SaveCall("net_params.pkl", "net1", True),
        saved.SaveCall("a.pt", "m", False), saved.SaveCall("b.pth", "m", True),
        saved.SaveCall("c.pkl", "model", False)]


def test_weight_names_are_the_templates_then_the_notebooks_own():
    run = run_of("w1, b1 = torch.randn(1, 10), torch.zeros(10)\nw2 = 0\nB_2 = 1\nweight3 = 2")
    assert models.weight_names(run) == [("W1", "b1", "W2", "b2"), ("w1", "b1", "w2", "B_2")]
    assert models.weight_names(run_of("W1 = 1")) == [("W1", "b1", "W2", "b2")]


# ----------------------------------------------------------------------------- files, classified


def saved_bytes(value: Any, **options: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer, **options)
    return buffer.getvalue()


def sequential() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_whole_net_is_told_from_a_state_dict_by_a_weights_only_load(legacy):
    net, options = sequential(), {"_use_new_zipfile_serialization": not legacy}
    whole = saved.classify("net.pkl", saved_bytes(net, **options))
    assert whole.kind == "whole" and whole.state is None
    assert whole.classes[0] == "torch.nn.modules.container.Sequential"
    params = saved.classify("p.pkl", saved_bytes(net.state_dict(), **options))
    assert params.kind == "state_dict" and params.note == "a state_dict of a 1 → 10 → 1 net"
    checkpoint = saved.classify("c.pth", saved_bytes({"model_state_dict": net.state_dict(),
                                                      "epoch": 3}))
    assert checkpoint.kind == "state_dict"
    assert saved.classify("t.pt", saved_bytes(torch.ones(3))).kind == "other"
    assert saved.classify("x.pkl", b"not a pickle at all").kind == "unreadable"


class Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_classifying_a_hostile_pickle_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = saved.classify("evil.pkl", saved_bytes({"hidden.weight": Payload()}))
    assert found.kind in ("whole", "unreadable") and found.state is None
    assert not (tmp_path / "PWNED").exists()


def test_a_state_dict_is_restored_here_with_the_activation_that_reproduces_the_net():
    net = sequential()
    chain = saved.linear_chain(net.state_dict())
    assert chain is not None and saved.layer_sizes(chain) == [1, 10, 1]
    x = np.linspace(-1.5, 1.5, 101, dtype=np.float32).reshape(-1, 1)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    matching = [a for a, p in saved.restorations(chain, x) if saved.agree(p, expected)]
    assert "ReLU" in matching and "sigmoid" not in matching
    conv = torch.nn.Conv2d(1, 2, 3).state_dict()
    assert saved.linear_chain(conv) is None
    assert saved.linear_chain(torch.nn.BatchNorm1d(3).state_dict()) is None


# ----------------------------------------------------------------------------- judged, in process


def test_the_tutorial_is_judged_by_its_files_whatever_their_names(tmp_path, monkeypatch):
    kernel, run = executed(course_saved.tutorial, tmp_path, monkeypatch)
    found = saved_files(kernel, run)
    assert [(f.name, f.kind) for f in found.files] == [("net.pkl", "whole"),
                                                       ("net_params.pkl", "state_dict")]
    judged = judge_saving(kernel, run, ("Net", "net"), np.random.default_rng(0))
    assert (judged.parameters.fraction, judged.whole.fraction) == (1.0, 1.0)
    assert "the whole net saved in net.pkl" in judged.parameters.feedback
    assert "net_params.pkl" in judged.whole.feedback
    assert kernel.loaded == ["net.pkl"]  # the whole net loaded in the "sandbox" only
    words_only(judged.parameters.feedback, judged.whole.feedback, found.both())


def test_a_live_net1_is_the_trained_net_the_files_are_compared_with(tmp_path, monkeypatch):
    kernel, run = executed(course_saved.net1_with_a_class, tmp_path, monkeypatch)
    judged = judge_saving(kernel, run, ("Net", "net"))
    assert (judged.parameters.fraction, judged.whole.fraction) == (1.0, 1.0)
    assert "the notebook's `net1`" in judged.parameters.feedback
    assert {r["file"] for r in judged.rows} == {"net1.pt", "net1_params.pth"}


def test_a_file_that_does_not_hold_the_trained_net_earns_nothing(tmp_path, monkeypatch):
    kernel, run = executed(course_saved.net1_with_a_class, tmp_path, monkeypatch,
                           "with torch.no_grad():\n    net1.predict.bias += 1")
    judged = judge_saving(kernel, run, ("Net", "net"))
    assert (judged.parameters.fraction, judged.whole.fraction) == (0.0, 0.0)
    assert "does not predict what the notebook's `net1` predicts" in judged.parameters.feedback
    words_only(judged.parameters.feedback, judged.whole.feedback)


def test_a_state_dict_alone_earns_the_parameters_and_names_what_is_missing(tmp_path,
                                                                            monkeypatch):
    kernel, run = executed(course_saved.state_dict_only, tmp_path, monkeypatch)
    judged = judge_saving(kernel, run, ("Net", "net"))
    assert (judged.parameters.fraction, judged.whole.fraction) == (1.0, 0.0)
    missing = saved_files(kernel, run).no_whole()
    assert judged.whole.feedback == missing
    assert "net_all.pkl was not saved" in missing and "params.pkl (a state_dict" in missing
    words_only(missing)


def test_nothing_saved_is_said_in_words(tmp_path):
    kernel = Kernel({}, tmp_path)
    judged = judge_saving(kernel, run_of("x = 1"), ("Net", "net"))
    assert (judged.parameters.fraction, judged.whole.fraction) == (0.0, 0.0)
    assert judged.parameters.feedback.startswith("no parameters were saved: net_params.pkl")
    words_only(judged.parameters.feedback, judged.whole.feedback)


def test_a_module_net_with_hidden_and_predict_is_the_trained_model(tmp_path, monkeypatch):
    kernel, run = executed(course_saved.w4_module_net, tmp_path, monkeypatch)
    fit = regression_fit(kernel, run, np.random.default_rng(0), ("forward", "W1", "b1"))
    assert fit.judged == "the nn.Module `net`" and fit.mse < 0.01
    assert set(fit.evidence(0.0033)) == {"x", "y", "prediction", "mse", "noise_floor"}


def test_the_best_of_the_notebooks_models_is_judged(tmp_path):
    torch.manual_seed(0)
    W1, W2 = torch.randn(1, 10), torch.randn(10, 1)
    kernel = Kernel({"untrained": torch.nn.Linear(1, 1),
                     "w1": W1, "b_1": torch.zeros(10), "w2": W2, "b2": torch.zeros(1),
                     "predict": lambda t: t**2 + 0.1}, tmp_path)
    run = run_of("w1, b_1, w2, b2 = 1, 2, 3, 4")
    fit = regression_fit(kernel, run, np.random.default_rng(0), ("predict",))
    assert fit.judged == "`predict`" and fit.mse < 0.005
    del kernel.scope["predict"]
    fit = regression_fit(kernel, run, np.random.default_rng(0), ("predict",))
    assert fit.judged in ("the nn.Module `untrained`", "w1, b_1, w2, b2")


def test_per_sample_biases_are_judged_at_the_points_they_belong_to(tmp_path):
    from reference import twolayer

    x, y = twolayer.slide_data()
    W1, W2 = torch.randn(1, 4, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    b1 = torch.zeros(100, 4, dtype=torch.float64)
    # a per-sample b2 that makes the fit exact at the slide's points
    b2 = x.double() ** 2 + 0.1 - torch.sigmoid(x.double() @ W1 + b1) @ W2
    kernel = Kernel({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, tmp_path)
    fit = regression_fit(kernel, run_of(""), np.random.default_rng(0))
    assert fit.judged.startswith("W1, b1, W2, b2 (one bias row per point")
    assert len(fit.x) == 100 and fit.mse < 0.0045


def test_no_model_found_says_what_was_looked_for(tmp_path):
    kernel = Kernel({"W1": torch.zeros(3, 3), "b1": torch.zeros(3), "W2": torch.zeros(3),
                     "b2": torch.zeros(1)}, tmp_path)
    fit = regression_fit(kernel, run_of(""), np.random.default_rng(0), ("predict",))
    assert fit.judged == ""
    assert fit.feedback.startswith("no trained model mapping one input to one output was "
                                   "found: looked for `predict`, any nn.Module in the "
                                   "notebook and for W1, b1, W2, b2")
    assert "do not fit together" in fit.feedback
    words_only(fit.feedback)


# ----------------------------------------------------------------------------- the real sandbox


def _grade(tmp_path: Path, homework: str, notebook: str, build: Any) -> dict[str, Any]:
    """One course notebook graded by the bundled rubric in a real sandbox: its items."""
    from grader import assignments, intake
    from grader.judge.grade import grade
    from grader.sandbox import ResourceLimits, SandboxConfig

    assignment = assignments.find(homework)
    entry = next(nb for nb in assignment.notebooks if nb.name == notebook)
    handed_in = build(tmp_path / "class" / f"zoe_{notebook}")
    submission = intake.Submission("zoe", entry, handed_in, (), "hash")
    config = SandboxConfig(resources=ResourceLimits(memory_mb=2048, pids=64, disk_mb=64),
                           cell_seconds=120, notebook_seconds=240)
    result = grade(submission, assignment, config)
    assert result.run.outcome == "completed", result.run.reason
    return {i.name: i for i in result.items}


def _sandboxed() -> bool:
    from grader.sandbox import bwrap

    return bwrap.executable() is not None and os.name == "posix"


sandboxed = pytest.mark.skipif(not _sandboxed(), reason="bubblewrap is not installed")
SAVE_ITEMS = ("test_model_saved_both_ways", "test_state_dict_restores_the_net",
              "test_whole_net_restores_the_net")


@pytest.mark.slow
@sandboxed
@pytest.mark.parametrize(("build", "scores"), [
    (course_saved.tutorial, (1, 2, 2)),
    (course_saved.net1_with_a_class, (1, 2, 2)),
    (course_saved.state_dict_only, (0, 2, 0)),
], ids=["tutorial", "net1", "state_dict_only"])
def test_course_save_model_notebooks_get_what_a_ta_gives(tmp_path, build, scores):
    items = _grade(tmp_path, "W5", "W5_Save_Model.ipynb", build)
    assert tuple(items[name].score for name in SAVE_ITEMS) == scores
    assert "files_written" not in items  # saving is judged by content, whatever the names
    assert sum(i.score for i in items.values()) == sum(scores)
    words_only(*(i.feedback for i in items.values() if i.score < i.max))


@pytest.mark.slow
@sandboxed
def test_a_w4_module_net_earns_the_trained_net_item(tmp_path):
    items = _grade(tmp_path, "W4", "W4_Homework.ipynb", course_saved.w4_module_net)
    fits = items["test_trained_net_fits_the_slide_data"]
    assert (fits.score, fits.max) == (2, 2)
    assert fits.feedback.startswith("the nn.Module `net`: MSE")
