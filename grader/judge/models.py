"""Finding a notebook's final MNIST model, and measuring its accuracy here, in the judge.

The contract's `model` comes first; else any nn.Module in the namespace that maps a
(k, 1, 28, 28) batch to (k, 10) (the last one defined wins, as a notebook's last model is
usually its best); else a whole saved model file (`*.pth`, `*.pt`, `*.pkl`), unpickled inside
the sandbox. The sandbox returns logits; the argmax and the comparison with the labels happen
here, so nothing the notebook prints or patches can move the figure.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.sandbox import ProbeError
from grader.sandbox.protocol import Packed, pack_array

CONTRACT = "model"
CHUNK = 2000  # images per question: 2000 x 784 float32 is 6 MB on the wire
SAVED = (".pth", ".pt", ".pkl")
PREPARED_KEPT = 4  # image sets whose questions stay packed: test and hold-out, with room


@dataclass(frozen=True)
class Found:
    name: str = ""                 # a variable name, or a file name when `from_file`
    from_file: bool = False
    layers: frozenset[str] = field(default_factory=frozenset)       # defined in the model
    used_layers: frozenset[str] = field(default_factory=frozenset)  # run by its forward()
    feedback: str = ""


def find(student: Any, batch: int = 2) -> Found:
    modules = student.modules((batch, 1, 28, 28))
    classifiers = [m for m in modules if m.get("output_shape") == [batch, 10]]
    for entry in classifiers:
        if entry["name"] == CONTRACT:
            return _found(entry)
    if classifiers:
        note = f"no `{CONTRACT}` variable; graded `{classifiers[-1]['name']}` instead"
        return _found(classifiers[-1], note)
    probe = np.zeros((batch, 1, 28, 28), np.float32)
    for name in _saved_files(student):
        try:
            if student.load_and_forward(name, probe).shape == (batch, 10):
                return Found(name, True, feedback=f"no model in the notebook; graded {name}")
        except ProbeError:
            continue
    tried = ", ".join(f"{m['name']} ({m.get('error') or m.get('output_shape')})"
                      for m in modules) or "none"
    return Found(feedback="no model maps a (k, 1, 28, 28) batch to (k, 10) scores; "
                          f"modules found: {tried}")


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


def accuracy(found: Found, student: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of `images` (uint8, N x 28 x 28) whose argmax logit is the label."""
    return float((predictions(found, student, images) == labels).mean())


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
