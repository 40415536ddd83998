"""Finding a notebook's final MNIST model, and measuring its accuracy here, in the judge.

The notebook's contract comes first (its `contract` in assignment.toml, `["model"]` when it
names none; the rubric hands it over as `models.find(student, notebook.contract)`); else
any nn.Module in the namespace that maps a (k, 1, 28, 28) batch to (k, 10) (the last one
defined wins, as a notebook's last model is usually its best); else a whole saved model file
(`*.pth`, `*.pt`, `*.pkl`), unpickled inside the sandbox. The sandbox returns logits; the
argmax and the comparison with the labels happen here, so nothing the notebook prints or
patches can move the figure. This is the grader's only accuracy: `fraction_correct`.

Its layers are judged the same way (`verify_layers`): a class name is only a claim. The sandbox
records what each claimed convolution, batch norm and dropout layer received and returned on
the judge's batch, with its weights and settings, and the judge recomputes each layer here with
torch.nn.functional; only a layer that does what its name says counts.

The W4 and W5 regression nets are found the same way, whatever the notebook called them
(`regression_fit`): real notebooks keep the course tutorial's `net` of `class Net` with
hidden/predict, an `nn.Sequential`, or `w1, b1, w2, b2`, not the template's names. Every
candidate is judged on points drawn here, and the weights' sigmoid net is computed here.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import nbformat
import numpy as np
import torch
import torch.nn.functional as F

from grader.assignments import DEFAULT_CONTRACT
from grader.i18n import N_, Words, say
from grader.sandbox import ProbeError
from grader.sandbox.protocol import Packed, pack_array

CHUNK = 2000  # images per question: 2000 x 784 float32 is 6 MB on the wire
SAVED = (".pth", ".pt", ".pkl")
PREPARED_KEPT = 4  # image sets whose questions stay packed: test and hold-out, with room


#: The kinds of layer the judge verifies, in a student's words (message ids of the catalogs:
#: a Chinese page says them in Chinese).
KINDS = {"conv": N_("convolutions"), "batchnorm": N_("batch norm"), "dropout": N_("dropout")}
#: Two notes, or two alternatives, said as one.
_AND = N_("{first} and {second}")
_OR = N_("{first} or {second}")
#: A note in brackets after a sentence.
_ASIDE = N_(" ({note})")


@dataclass(frozen=True)
class LayerCheck:
    """One layer whose class name claims a kind, and what the judge found it to do."""
    path: str       # where it sits in the model, e.g. `conv1.0`
    name: str       # its class name: the claim
    kind: str       # a key of KINDS, read from the name
    verified: bool
    finding: str = ""  # in a student's words, what it does instead; empty when verified


@dataclass(frozen=True)
class Found:
    name: str = ""                 # a variable name, or a file name when `from_file`
    from_file: bool = False
    layers: frozenset[str] = field(default_factory=frozenset)       # defined in the model
    used_layers: frozenset[str] = field(default_factory=frozenset)  # run by its forward()
    feedback: str = ""
    verified_layers: frozenset[str] = field(default_factory=frozenset)  # kinds, by verify_layers
    layer_checks: tuple[LayerCheck, ...] = ()
    layers_note: str = ""          # why layers could not be checked at all, in words


def find(student: Any, contract: tuple[str, ...] | list[str] = DEFAULT_CONTRACT,
         batch: int = 2) -> Found:
    """The notebook's MNIST classifier: the first of the `contract` names that is one, else
    the last classifier defined, else a saved whole model. Never raises for what the notebook
    did; a Found without a name carries the reason as feedback."""
    names = tuple(contract) or DEFAULT_CONTRACT
    modules = student.modules((batch, 1, 28, 28))
    classifiers = [m for m in modules if m.get("output_shape") == [batch, 10]]
    by_name = {entry["name"]: entry for entry in classifiers}
    for name in names:
        if name in by_name:
            return _found(by_name[name])
    if classifiers:
        wanted = _either([f"`{n}`" for n in names])
        note = say(N_("no {wanted} variable; graded `{name}` instead"), wanted=wanted,
                   name=classifiers[-1]["name"])
        return _found(classifiers[-1], note)
    probe = np.zeros((batch, 1, 28, 28), np.float32)
    for name in _saved_files(student):
        try:
            if student.load_and_forward(name, probe).shape == (batch, 10):
                return Found(name, True, feedback=say(
                    N_("no model in the notebook; graded {name}"), name=name))
        except ProbeError:
            continue
    tried = [f"{m['name']} ({m.get('error') or m.get('output_shape')})" for m in modules]
    if not tried:
        return Found(feedback=say(N_("no model maps a (k, 1, 28, 28) batch to (k, 10) scores; "
                                     "modules found: none")))
    return Found(feedback=say(N_("no model maps a (k, 1, 28, 28) batch to (k, 10) scores; "
                                 "modules found: {modules}"), modules=Words.join(tried, ", ")))


def _either(names: list[str]) -> str:
    """`a` or `b` or `c`: the names (already in backticks) said as alternatives."""
    said = names[0] if names else ""
    for name in names[1:]:
        said = say(_OR, first=said, second=name)
    return said


def _found(entry: dict[str, Any], note: str = "") -> Found:
    return Found(entry["name"], False, frozenset(entry.get("layers", [])),
                 frozenset(entry.get("used_layers", [])), note)


def _saved_files(student: Any) -> list[str]:
    try:
        return [name for name in student.files() if name.endswith(SAVED)]
    except ProbeError:
        return []


def predictions(found: Found, student: Any, images: np.ndarray) -> np.ndarray:
    """The predicted class of each of `images` (uint8, N x 28 x 28): the argmax of the logits
    the model returns, taken here."""
    predicted = []
    for count, x in questions(images):
        logits = (student.load_and_forward(found.name, x) if found.from_file
                  else student.forward(found.name, x))
        if logits.shape != (count, 10):
            raise ProbeError(f"{found.name} returned shape {list(logits.shape)}", "malformed")
        predicted.append(logits.argmax(1))
    return np.concatenate(predicted) if predicted else np.zeros(0, np.int64)


_prepared: OrderedDict[int, tuple[np.ndarray, list[tuple[int, Packed]]]] = OrderedDict()


def questions(images: np.ndarray) -> list[tuple[int, Packed]]:
    """`images` as the judge asks about them: chunks of CHUNK, scaled to [0, 1] float32 with a
    channel axis, packed for the wire. Every submission of a batch is asked about the same
    test and hold-out images, so this is done once per grading process, not per notebook (the
    cache holds the array itself, so an id is never reused while its entry lives)."""
    key = id(images)
    cached = _prepared.get(key)
    if cached is not None and cached[0] is images:
        _prepared.move_to_end(key)
        return cached[1]
    chunks = []
    for start in range(0, len(images), CHUNK):
        x = (np.asarray(images[start:start + CHUNK], dtype=np.float32) / 255.0)[:, None]
        chunks.append((len(x), Packed(pack_array(x))))
    _prepared[key] = (images, chunks)
    while len(_prepared) > PREPARED_KEPT:
        _prepared.popitem(last=False)
    return chunks


def fraction_correct(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy: the fraction of predicted classes equal to their labels (0 for no images).
    The one place the grader turns predictions into a figure."""
    predicted, labels = np.asarray(predicted).reshape(-1), np.asarray(labels).reshape(-1)
    if predicted.shape != labels.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    return float((predicted == labels).mean()) if len(labels) else 0.0


def accuracy(found: Found, student: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of `images` (uint8, N x 28 x 28) whose argmax logit is the label."""
    return fraction_correct(predictions(found, student, images), labels)


def confusion(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """counts[true, predicted] over the ten digits."""
    counts = np.zeros((10, 10), np.int64)
    np.add.at(counts, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return counts


def misclassified(predicted: np.ndarray, labels: np.ndarray, images: np.ndarray,
                  limit: int = 24) -> list[dict[str, Any]]:
    """The first `limit` wrongly classified images, with what the model said and the truth."""
    wrong = np.flatnonzero(predicted != labels)[:limit]
    return [{"index": int(i), "predicted": int(predicted[i]), "label": int(labels[i]),
             "image": np.asarray(images[i], np.uint8).tolist()} for i in wrong]


# ------------------------------------------------------------------ layers, verified here

LAYER_BATCH = 8           # the judge's batch: dropout on 8 x 10 scores still drops something
LAYER_TIMEOUT = 120
MAX_LAYER_ANSWERS = 64    # layer entries read from one answer
MAX_MACS = 500_000_000    # the largest convolution recomputed here (multiply-adds)
MAX_SETTING = 256         # the largest stride, padding or dilation believed
RTOL = 1e-2               # of the largest expected value: GPU convolutions round (TF32)
MODES = ("eval", "train")
_WORDS = (("BatchNorm", "batchnorm"), ("Dropout", "dropout"), ("Conv", "conv"))


class NotVerified(Exception):
    """A layer that does not do what its name says; the message is for the student: raised
    with a template of the catalogs (and its fields as keywords), said as `finding`."""

    def __init__(self, template: str, **fields: Any) -> None:
        super().__init__(say(template, **fields))

    @property
    def finding(self) -> str:
        """What the layer does instead, in words (a Words)."""
        return self.args[0]


_RECORD_UNREADABLE = N_("its record could not be read")


def layer_kind(class_name: str) -> str | None:
    """The kind a class name claims (the sandbox hooks the same names), or None."""
    for word, kind in _WORDS:
        if word in class_name:
            return kind
    return None


def verify_layers(student: Any, found: Found, batch: int = LAYER_BATCH,
                  seed: int | None = None) -> Found:
    """`found` with the kinds of layer its model was seen to have: a fresh random batch goes
    through a copy of the model in eval and train mode, and each claimed layer is recomputed
    here from its own recorded input, weights and settings. Never raises: an answer that
    cannot be read verifies nothing."""
    if not found.name:
        return found
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    target = {"file": found.name} if found.from_file else {"name": found.name}
    try:
        fields, arrays = student.ask("layers", x, timeout=LAYER_TIMEOUT,
                                     seed=int(rng.integers(2**31)), **target)
    except ProbeError:
        return replace(found, layers_note=say(N_("the grader could not run the model layer by "
                                                 "layer on a batch of its own")))
    checks = check_layers(fields, arrays)
    return replace(found, layer_checks=checks, layers_note=_errors_note(fields),
                   verified_layers=frozenset(c.kind for c in checks if c.verified))


def _errors_note(fields: dict[str, Any]) -> str:
    errors = fields.get("errors")
    failed = [say(_FAILED_IN[m]) for m in MODES if isinstance(errors, dict) and errors.get(m)]
    note = failed[0] if failed else ""
    for more in failed[1:]:
        note = say(_AND, first=note, second=more)
    return note


_FAILED_IN = {"eval": N_("the model failed in evaluation mode"),
              "train": N_("the model failed in training mode")}


def check_layers(fields: dict[str, Any], arrays: list[np.ndarray]) -> tuple[LayerCheck, ...]:
    """Every layer in an answer to the "layers" question, checked; and those that ran but were
    not recorded (too many or too large), unverified."""
    entries = fields.get("layers") if isinstance(fields, dict) else None
    entries = entries[:MAX_LAYER_ANSWERS] if isinstance(entries, list) else []
    checks = [check_layer(entry, arrays) for entry in entries]
    seen = {c.path for c in checks}
    ran = fields.get("ran") if isinstance(fields, dict) else None
    for item in ran[:MAX_LAYER_ANSWERS] if isinstance(ran, list) else []:
        if (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)
                and item[0] not in seen and layer_kind(item[1])):
            checks.append(LayerCheck(item[0][:200], item[1][:100], str(layer_kind(item[1])),
                                     False, say(N_("the grader could not record what it did "
                                                   "(too many or too large layers, or not one "
                                                   "tensor in and one out)"))))
    return tuple(checks)


def check_layer(entry: Any, arrays: list[np.ndarray]) -> LayerCheck:
    """One recorded layer, recomputed from its own input, weights and settings."""
    if not isinstance(entry, dict):
        return LayerCheck("", "", "", False, say(_RECORD_UNREADABLE))
    path, name = _text(entry.get("path")), _text(entry.get("class"))
    kind = layer_kind(name)
    if kind is None:
        return LayerCheck(path, name, "", False,
                          say(N_("its name claims no layer the grader checks")))
    try:
        CHECKS[kind](Recorded(entry, arrays))
    except NotVerified as exc:
        return LayerCheck(path, name, kind, False, exc.finding)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, ArithmeticError):
        return LayerCheck(path, name, kind, False,
                          say(N_("the grader could not recompute it from what it recorded")))
    return LayerCheck(path, name, kind, True)


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


class Recorded:
    """One layer's record, every part checked as it is read: a missing, misshapen or
    non-finite part ends the check with a sentence for the student."""

    def __init__(self, entry: dict[str, Any], arrays: list[np.ndarray]) -> None:
        self.entry, self.arrays = entry, arrays

    def array(self, index: Any) -> torch.Tensor:
        if (not isinstance(index, int) or isinstance(index, bool)
                or not 0 <= index < len(self.arrays)):
            raise NotVerified(_RECORD_UNREADABLE)
        value = self.arrays[index]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise NotVerified(N_("its record holds something other than numbers"))
        if not np.isfinite(value).all():
            raise NotVerified(N_("its input, output or weights are not finite numbers"))
        return torch.from_numpy(value.astype(np.float64))

    def tensor(self, name: str) -> torch.Tensor | None:
        """A parameter or buffer (weight, bias, running_mean, running_var), None if absent."""
        tensors = self.entry.get("tensors")
        if not isinstance(tensors, dict) or tensors.get(name) is None:
            return None
        return self.array(tensors[name])

    def call(self, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's input and output on the judge's batch in `mode`."""
        calls = self.entry.get("calls")
        call = calls.get(mode) if isinstance(calls, dict) else None
        if not isinstance(call, dict):
            raise NotVerified(_DID_NOT_RUN[mode])
        return self.array(call.get("input")), self.array(call.get("output"))

    def setting(self, name: str, default: Any = None) -> Any:
        settings = self.entry.get("settings")
        return settings.get(name, default) if isinstance(settings, dict) else default

    def number(self, name: str) -> float | None:
        value = self.setting(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    def ints(self, name: str, count: int, low: int) -> list[int]:
        """A per-dimension setting (stride, padding, dilation) as `count` whole numbers."""
        value = self.setting(name)
        value = [value] * count if isinstance(value, int) else value
        if (not isinstance(value, list) or len(value) != count or not all(
                isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_SETTING
                for v in value)):
            raise NotVerified(N_("its {setting} could not be read"), setting=name)
        return value


_DID_NOT_RUN = {"eval": N_("it did not run in evaluation mode on the grader's batch"),
                "train": N_("it did not run in training mode on the grader's batch")}


def close(expected: torch.Tensor, got: torch.Tensor) -> bool:
    """Whether a recorded output is the recomputed one, up to float32 and TF32 rounding."""
    if expected.shape != got.shape:
        return False
    if expected.numel() == 0:
        return True
    scale = float(expected.abs().max())
    return float((expected - got).abs().max()) <= RTOL * scale + 1e-5


def check_conv(layer: Recorded) -> None:
    """A convolution: its output is F.conv{1,2,3}d of its input with its own weight, bias,
    stride, padding, dilation and groups, in both modes."""
    weight, bias = layer.tensor("weight"), layer.tensor("bias")
    if weight is None or weight.ndim not in (3, 4, 5):
        raise NotVerified(N_("it has no convolution weights"))
    dims = weight.ndim - 2
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise NotVerified(N_("its bias does not fit its weights"))
    convolve = _convolution(layer, weight, bias, dims)
    for mode in MODES:
        given, output = layer.call(mode)
        if not close(convolve(given), output):
            raise NotVerified(N_("its output is not a convolution of its input with its "
                                 "weights"))


def _convolution(layer: Recorded, weight: torch.Tensor, bias: torch.Tensor | None,
                 dims: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The layer's declared convolution, as a function of an input, checked for size first."""
    stride, dilation = layer.ints("stride", dims, 1), layer.ints("dilation", dims, 1)
    groups, mode = layer.setting("groups", 1), layer.setting("padding_mode", "zeros")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 \
            or weight.shape[0] % groups:
        raise NotVerified(N_("its groups could not be read"))
    if mode not in ("zeros", "reflect", "replicate", "circular"):
        raise NotVerified(N_("its padding mode could not be read"))
    padding = layer.setting("padding", 0)
    if padding not in ("same", "valid"):
        padding = layer.ints("padding", dims, 0)
    pad = _padding_before(padding, weight, dilation)
    function = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]

    def convolve(given: torch.Tensor) -> torch.Tensor:
        if given.ndim != dims + 2 or given.shape[1] != weight.shape[1] * groups:
            raise NotVerified(_UNFIT)
        padded = [s + pad[2 * i] + pad[2 * i + 1] for i, s in enumerate(given.shape[:1:-1])]
        if given.shape[0] * weight.numel() * math.prod(padded) > MAX_MACS:
            raise NotVerified(N_("it is too large for the grader to recompute"))
        if mode != "zeros":
            return function(F.pad(given, pad, mode=mode), weight, bias, stride, 0, dilation,
                            groups)
        return function(given, weight, bias, stride, padding, dilation, groups)
    return convolve


def _padding_before(padding: str | list[int], weight: torch.Tensor,
                    dilation: list[int]) -> list[int]:
    """The padding a convolution adds, as F.pad takes it (last dimension first, each side)."""
    if padding == "valid":
        return [0] * (2 * len(dilation))
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:], strict=True)]
        return [p for t in reversed(totals) for p in (t // 2, t - t // 2)]
    return [p for p in reversed(padding) for _ in range(2)]


def check_batchnorm(layer: Recorded) -> None:
    """Batch norm: in train mode its input normalised with the batch's own mean and variance,
    in eval mode with its running statistics, then scaled and shifted by its weight and bias."""
    weight, bias = layer.tensor("weight"), layer.tensor("bias")
    mean, var = layer.tensor("running_mean"), layer.tensor("running_var")
    eps = layer.number("eps")
    if eps is None or not 0 < eps < 1:
        raise NotVerified(N_("it declares no eps, the small number batch norm adds to the "
                             "variance"))
    if (mean is None) != (var is None) or (var is not None and bool((var < 0).any())):
        raise NotVerified(N_("its running statistics could not be read"))
    for mode in MODES:
        given, output = layer.call(mode)
        channels = given.shape[1] if given.ndim >= 2 else -1
        if any(t is not None and tuple(t.shape) != (channels,)
               for t in (weight, bias, mean, var)):
            raise NotVerified(_UNFIT)
        training = mode == "train" or mean is None
        expected = F.batch_norm(given, None if training else mean, None if training else var,
                                weight, bias, training, 0.0, eps)
        if not close(expected, output):
            raise NotVerified(_BATCHNORM_WRONG[mode])


_UNFIT = N_("its weights do not fit its input")
_BATCHNORM_WRONG = {
    "train": N_("in training mode its output is not its input normalised with the batch's own "
                "mean and variance"),
    "eval": N_("in evaluation mode its output is not its input normalised with its running "
               "mean and variance"),
}


def check_dropout(layer: Recorded) -> None:
    """Dropout: the identity in eval mode; in train mode some elements zeroed and the others
    scaled by 1/(1-p), for its declared p strictly between 0 and 1. A dropout that changes
    nothing in train mode is not dropout."""
    p = layer.number("p")
    if p is None or not 0 < p < 1:
        raise NotVerified(N_("its drop probability p is 0, so it drops nothing") if p == 0 else
                          N_("it declares no drop probability p between 0 and 1"))
    given, output = layer.call("eval")
    if given.shape != output.shape or not torch.allclose(output, given, rtol=1e-6, atol=0):
        raise NotVerified(N_("in evaluation mode it changed its input"))
    given, output = layer.call("train")
    if given.shape != output.shape:
        raise NotVerified(N_("in training mode its output is not shaped like its input"))
    live, dropped = given != 0, output == 0
    kept = live & ~dropped
    if torch.allclose(output, given, rtol=1e-6, atol=0):
        raise NotVerified(N_("in training mode it changed nothing, so it is not dropout"))
    if bool((output[~live] != 0).any()) or not torch.allclose(
            output[kept], given[kept] / (1 - p), rtol=1e-3, atol=1e-6):
        raise NotVerified(N_("in training mode its output is not its input with some "
                             "elements zeroed and the others scaled by 1/(1-p)"))
    if not bool((live & dropped).any()):
        raise NotVerified(N_("in training mode it dropped no element"))
    if not bool(kept.any()):
        raise NotVerified(N_("in training mode it dropped every element"))


CHECKS: dict[str, Callable[[Recorded], None]] = {
    "conv": check_conv, "batchnorm": check_batchnorm, "dropout": check_dropout}


def architecture_notes(found: Found) -> dict[str, str]:
    """For each kind of layer not verified, what the grader looked for and found instead, in
    a student's words (for the rubric's feedback)."""
    notes = {}
    for kind, what in KINDS.items():
        if kind in found.verified_layers:
            continue
        failed = [c for c in found.layer_checks if c.kind == kind]
        named = {n for n in found.layers if layer_kind(n) == kind}
        used = {n for n in found.used_layers if layer_kind(n) == kind}
        if failed:
            # a path in backticks is code, never a word to translate
            where = f"`{failed[0].path}`" if failed[0].path else say(N_("the model itself"))
            also = say(_ASIDE, note=found.layers_note) if found.layers_note else ""
            notes[kind] = say(N_("{what}: a layer named {name} ({where}) was used, but "
                                 "{finding}{also}"), what=what, name=failed[0].name,
                              where=where, finding=failed[0].finding, also=also)
        elif used and found.layers_note:
            notes[kind] = say(N_("{what}: not checked, as {note}"), what=what,
                              note=found.layers_note)
        elif used:
            notes[kind] = say(N_("{what}: a layer named {name} is in the model, but did not "
                                 "run when the grader checked its layers"), what=what,
                              name=min(used))
        elif named:
            notes[kind] = say(N_("{what}: a {name} is defined but never used in forward()"),
                              what=what, name=min(named))
        else:
            notes[kind] = say(N_("{what}: missing"), what=what)
    return notes


# ------------------------------------------------------------------ a regression model (W4, W5)

#: The contract names that are called with x alone and return the fit (W5's `predict`).
PREDICTORS = ("predict",)
#: The trained weights of the course's two-layer net, as the templates name them.
WEIGHTS = ("W1", "b1", "W2", "b2")
FIT_POINTS = 20_000
MAX_CANDIDATES = 8     # models of one notebook judged at most (each is a question)
SHOWN_POINTS = 300     # points of the fit drawn in the report
_WEIGHT_NAME = re.compile(r"^(?:(w|weights?)|(b|bias(?:es)?))_?([12])$", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Fit:
    """How well the notebook's trained model fits points the judge drew: `judged` says which
    model in words ("" when none could be judged, and then `feedback` says what was looked
    for); `x`, `y` and `prediction` are the points, the truth and the model's answers."""
    judged: str = ""
    mse: float = math.inf
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    y: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    prediction: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float64))
    feedback: str = ""

    def evidence(self, noise_floor: float) -> dict[str, Any]:
        """`evidence["fit"]` for the report: a few hundred of the points, sorted, with the
        model's curve through them."""
        x, y = self.x[:SHOWN_POINTS, 0], self.y[:SHOWN_POINTS, 0]
        shown = np.argsort(x)
        return {"x": x[shown], "y": y[shown],
                "prediction": self.prediction.reshape(-1)[:SHOWN_POINTS][shown],
                "mse": self.mse, "noise_floor": noise_floor}


def regression_fit(student: Any, run: Any, rng: np.random.Generator | None = None,
                   contract: tuple[str, ...] | list[str] = (),
                   points: int = FIT_POINTS) -> Fit:
    """The notebook's trained model mapping one input to one output, whatever its names,
    judged on fresh points of the slide's curve (y = x² + 0.2·U(0, 1), x in [-1, 1]) drawn
    here: the contract's `predict`, every nn.Module of the notebook that maps (k, 1) to
    (k, 1), and the two-layer net's weights (W1, b1, W2, b2, or the names the notebook's code
    gave them: w1, weight_1, ...), whose sigmoid net is computed here, not by the notebook.
    The best fit is the one judged; the notebook only answers questions. Never raises for
    what the notebook did: a Fit without `judged` says in words what was looked for."""
    rng = rng if rng is not None else np.random.default_rng()
    x = rng.uniform(-1, 1, (points, 1)).astype(np.float32)
    y = (x**2 + 0.2 * rng.uniform(0, 1, x.shape)).astype(np.float32)
    tried: list[str] = []
    fits = [*_function_fits(student, contract, x, y, tried),
            *_module_fits(student, contract, x, y, tried),
            *_weight_fits(student, run, rng, x, y, tried)]
    if fits:  # the best, and of equally good ones (the same model) the first found
        best = min(f.mse for f in fits)
        return next(f for f in fits if f.mse <= best * (1 + 1e-4) + 1e-12)
    functions = [f"`{n}`" for n in contract if n in PREDICTORS]
    also = say(_ASIDE, note=Words.join(tried)) if tried else ""
    if functions:
        return Fit(feedback=say(N_("no trained model mapping one input to one output was "
                                   "found: looked for {functions}, any nn.Module in the "
                                   "notebook and for {weights}{also}"),
                                functions=Words.join(functions, ", "),
                                weights=", ".join(WEIGHTS), also=also))
    return Fit(feedback=say(N_("no trained model mapping one input to one output was found: "
                               "looked for any nn.Module in the notebook and for "
                               "{weights}{also}"), weights=", ".join(WEIGHTS), also=also))


def _scored(judged: str, x: np.ndarray, y: np.ndarray, prediction: Any,
            tried: list[str]) -> list[Fit]:
    """A Fit of `prediction` against `y`, or none (and the reason in `tried`) when the
    answer is not one finite number per point."""
    answer = np.asarray(prediction)
    if answer.dtype.kind not in "biuf" or answer.size != y.size:
        tried.append(say(N_("{model} returned shape {shape} for {count} points"), model=judged,
                         shape=list(answer.shape), count=len(x)))
        return []
    answer = answer.astype(np.float64).reshape(y.shape)
    if not np.isfinite(answer).all():
        tried.append(say(N_("{model} returned numbers that are not finite"), model=judged))
        return []
    mse = float(np.mean((answer - y.astype(np.float64)) ** 2))
    return [Fit(judged, mse, x, y, answer)]


def _function_fits(student: Any, contract: tuple[str, ...] | list[str], x: np.ndarray,
                   y: np.ndarray, tried: list[str]) -> list[Fit]:
    fits = []
    for name in [n for n in contract if n in PREDICTORS]:
        try:
            answer = student.call(name, x)
        except ProbeError:  # not there, or not callable on x: the others are tried
            tried.append(say(N_("`{name}` could not be called on the grader's points"),
                             name=name))
            continue
        if len(answer) != 1:
            tried.append(say(N_("`{name}` returned {count} values, not one prediction per "
                                "point"), name=name, count=len(answer)))
            continue
        fits += _scored(f"`{name}`", x, y, answer[0], tried)
    return fits


def _module_fits(student: Any, contract: tuple[str, ...] | list[str], x: np.ndarray,
                 y: np.ndarray, tried: list[str]) -> list[Fit]:
    fits = []
    for name in regressors(student, contract)[:MAX_CANDIDATES]:
        try:
            answer = student.forward(name, x)
        except ProbeError:
            tried.append(say(N_("the nn.Module `{name}` could not be run on {count} points"),
                             name=name, count=len(x)))
            continue
        fits += _scored(say(N_("the nn.Module `{name}`"), name=name), x, y, answer, tried)
    return fits


def regressors(student: Any, first: tuple[str, ...] | list[str] = (), batch: int = 2) -> list[
        str]:
    """The names of the notebook's nn.Modules that map a (k, 1) batch to (k, 1): those named
    in `first` in that order, then the others as the notebook defined them. [] when the
    modules cannot be listed."""
    try:
        modules = student.modules((batch, 1))
    except ProbeError:
        return []
    found = [m["name"] for m in modules
             if m.get("output_shape") == [batch, 1] and isinstance(m.get("name"), str)]
    return [n for n in first if n in found] + [n for n in found if n not in first]


def _weight_fits(student: Any, run: Any, rng: np.random.Generator, x: np.ndarray,
                 y: np.ndarray, tried: list[str]) -> list[Fit]:
    fits = []
    for names in weight_names(run):
        weights = []
        for name in names:
            try:
                weights.append(np.asarray(student.value(name), dtype=np.float64))
            except (ProbeError, ValueError, TypeError):
                break
        if len(weights) < len(names):
            continue  # not all four are there: nothing to judge under these names
        shown: str = ", ".join(names)
        net = two_layer(*weights)
        if isinstance(net, str):
            tried.append(say(N_("{name} {why}"), name=shown, why=net))
            continue
        w1, b1, w2, b2 = net
        at, truth = x.astype(np.float64), y
        rows = max(b1.shape[0], b2.shape[0])
        if rows > 1:  # one bias row per training point: judged at those points
            at = np.linspace(-1, 1, rows).reshape(-1, 1)
            truth = (at**2 + 0.2 * rng.uniform(0, 1, at.shape)).astype(np.float32)
            shown = say(N_("{names} (one bias row per point: judged at the slide's {count} "
                           "points)"), names=shown, count=len(at))
        with np.errstate(over="ignore", invalid="ignore"):
            answer = 1 / (1 + np.exp(-(at @ w1 + b1))) @ w2 + b2
        fits += _scored(shown, at.astype(np.float32), truth, answer, tried)
    return fits


def two_layer(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray,
              b2: np.ndarray) -> tuple[np.ndarray, ...] | str:
    """The weights of a one input → H → one output net as `x @ W1 + b1` and `h @ W2 + b2`
    take them (W1 1 x H, b1 1 x H or one row per point, W2 H x 1, b2 1 x 1 or one row per
    point), whichever way the notebook wrote them (W1 as H x 1, vectors, scalars); or why
    they are not such a net, in words."""
    shapes = ", ".join(str(list(w.shape)) for w in (W1, b1, W2, b2))
    wrong = say(N_("do not fit together as one input → hidden → one output (shapes {shapes})"),
                shapes=shapes)
    if W1.ndim not in (1, 2) or W2.ndim not in (1, 2) or b1.ndim > 2 or b2.ndim > 2:
        return wrong
    hidden = W1.size
    w1 = W1.reshape(1, hidden) if 1 in W1.shape or W1.ndim == 1 else None
    w2 = W2.reshape(hidden, 1) if W2.size == hidden and (1 in W2.shape or W2.ndim == 1) \
        else None
    if w1 is None or w2 is None:
        return wrong
    if b1.size == hidden:
        bias1 = b1.reshape(1, hidden)
    elif b1.ndim == 2 and b1.shape[1] == hidden:
        bias1 = b1
    else:
        return wrong
    if b2.size != 1 and (b2.ndim == 2 and b2.shape[1] != 1
                         or bias1.shape[0] not in (1, b2.size)):
        return wrong
    return w1, bias1, w2, b2.reshape(-1, 1)


def weight_names(run: Any) -> list[tuple[str, str, str, str]]:
    """The names the notebook may keep its trained weights under: the template's W1, b1, W2,
    b2 first, then, read from its code (never run), the names it assigned that look like
    them (w1, B_1, weight1, bias2, ...), the first of each not already tried."""
    groups = [WEIGHTS]
    slots: dict[str, list[str]] = {w: [] for w in WEIGHTS}
    for tree in code_trees(run):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                match = _WEIGHT_NAME.match(node.id)
                if match:
                    slot = f"{'W' if match.group(1) else 'b'}{match.group(3)}"
                    if node.id not in slots[slot]:
                        slots[slot].append(node.id)
    other = tuple(next((n for n in slots[w] if n != w), w) for w in WEIGHTS)
    if other != WEIGHTS:
        groups.append(other)  # type: ignore[arg-type]
    return groups  # type: ignore[return-value]


def code_trees(run: Any) -> list[ast.Module]:
    """The syntax trees of the run's code cells, read as text and never run (IPython's `%`
    and `!` lines left out, a cell indented as a whole dedented); a cell that does not parse
    is left out."""
    text = getattr(run, "notebook", None)
    if not isinstance(text, str):
        return []
    try:
        cells = nbformat.reads(text, as_version=4).cells
    except Exception:  # noqa: BLE001  a notebook nbformat cannot read has no code to read
        return []
    trees = []
    for cell in cells:
        if cell.get("cell_type") != "code" or not isinstance(cell.get("source"), str):
            continue
        lines = [line for line in cell.source.splitlines()
                 if not line.lstrip().startswith(("%", "!"))]
        try:
            trees.append(ast.parse(textwrap.dedent("\n".join(lines))))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees
