"""Judging a saved model whatever its files are called (W5's save-and-restore).

The course's tutorial saves `torch.save(net1, 'net.pkl')` and
`torch.save(net1.state_dict(), 'net_params.pkl')` from a net that lives only inside its
`save()` function; the template says `net_all.pkl` and `net`. So the files are found by
what the notebook did, not by their names: every target of a `torch.save` in its code (read
as text, never run) and every `.pkl`, `.pt` or `.pth` in its folder. Each is read here as
bytes and opened only with `torch.load(weights_only=True)`, which builds tensors and nothing
else: a state_dict loads, and a whole pickled net is refused, which is how the two are told
apart (the pickle's opcodes, read without running them, name the classes it would build).
A whole net is only ever unpickled inside the sandbox (`load_and_forward`).

A state_dict of Linear layers is then restored here, outside, and its predictions on the
judge's points compared with those of the notebook's trained model (asked of the live
kernel); a whole net's, loaded inside the sandbox, likewise. When the notebook kept no model
(the tutorial's net is a local of `save()`), the two saved files are compared with each other.
"""

from __future__ import annotations

import ast
import contextlib
import io
import itertools
import pickletools
import weakref
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grader.i18n import N_, Words, say
from grader.judge.models import code_trees, regressors
from grader.sandbox import ProbeError

#: What a saved model's file is called in the template (the names the feedback falls back on).
TEMPLATE_WHOLE, TEMPLATE_PARAMS = "net_all.pkl", "net_params.pkl"
SUFFIXES = (".pkl", ".pt", ".pth")
MAX_FILES = 8              # saved files read at most
MAX_BYTES = 16 << 20       # the largest file read (a 1 → 10 → 1 net is 2 kB)
POINTS = 101               # the judge's inputs, drawn in [-1.5, 1.5] for every run
LOOKED = N_("looked at every file torch.save wrote and every .pkl, .pt and .pth in the "
            "notebook's folder")

#: What a chain of Linear layers restored without an activation between them is said to use.
NO_ACTIVATION = N_("no activation")
#: The activations a chain of Linear layers is tried with, restored outside (the state_dict
#: does not say which the notebook's forward used).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ReLU": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "LeakyReLU": F.leaky_relu,
    "ELU": F.elu, "softplus": F.softplus, "GELU": F.gelu, "SiLU": F.silu, "ReLU6": F.relu6,
    "SELU": F.selu, "CELU": F.celu, "Mish": F.mish, "Hardtanh": F.hardtanh,
    "Hardswish": F.hardswish, "Hardsigmoid": F.hardsigmoid, "Softsign": F.softsign,
    NO_ACTIVATION: lambda t: t}
#: Hidden layers up to which every combination of activations is tried (else one for all).
COMBINED_UP_TO = 2
#: A file and what it holds; a subject and what is said of it.
_ASIDE = N_("{name} ({note})")
_WHY = N_("{name} {why}")


@dataclass(frozen=True)
class SaveCall:
    """One `torch.save(obj, target)` in the notebook's code, as written (never run)."""
    target: str       # the file, as the code names it
    owner: str = ""   # the variable saved, or whose state_dict() was saved ("" if neither)
    state_dict: bool = False


@dataclass(frozen=True, eq=False)
class SavedFile:
    """One file the notebook saved, as the judge read it. `kind`: "state_dict" (tensors
    only, read here), "whole" (a pickled object: weights_only refused it; `classes` are what
    its pickle names), "other" (tensors, but no parameters by name) or "unreadable"."""
    name: str
    kind: str
    classes: tuple[str, ...] = ()
    state: Mapping[str, torch.Tensor] | None = field(default=None, repr=False)
    note: str = ""    # what it holds, in words

    def words(self) -> str:
        """The file and what it holds, as feedback names it."""
        return say(_ASIDE, name=self.name, note=self.note) if self.note else self.name


@dataclass(frozen=True)
class Saved:
    """The files a notebook saved and what each holds; `calls` are its torch.save calls."""
    files: tuple[SavedFile, ...] = ()
    calls: tuple[SaveCall, ...] = ()
    missing: tuple[str, ...] = ()   # torch.save targets not in the folder

    @property
    def state_dicts(self) -> list[SavedFile]:
        """The files that hold parameters by name (read here, weights only)."""
        return [f for f in self.files if f.kind == "state_dict"]

    @property
    def wholes(self) -> list[SavedFile]:
        """The files that hold a pickled object, a whole net by the classes it names (only
        ever unpickled inside the sandbox)."""
        return [f for f in self.files if f.kind == "whole"]

    def found(self) -> str:
        """What was found, in words, for feedback."""
        said = [f.words() for f in self.files] + [
            say(N_("torch.save wrote {name}, but it is not in the notebook's folder"), name=m)
            for m in self.missing]
        return Words.join(said) if said else say(N_("no saved file"))

    def no_parameters(self) -> str:
        """Feedback when no state_dict was found: the template's name and what was seen."""
        return say(N_("no parameters were saved: {template} was not saved, nor any other file "
                      "holding a state_dict ({looked}: {found})"), template=TEMPLATE_PARAMS,
                   looked=say(LOOKED), found=self.found())

    def no_whole(self) -> str:
        """Feedback when no whole net was found: the template's name and what was seen."""
        return say(N_("no whole net was saved: {template} was not saved, nor any other file "
                      "holding a pickled model ({looked}: {found})"), template=TEMPLATE_WHOLE,
                   looked=say(LOOKED), found=self.found())

    def both(self) -> str:
        """Feedback when both were found: the first of each."""
        return say(N_("saved both ways: {whole} and {parameters}"),
                   whole=self.wholes[0].words(), parameters=self.state_dicts[0].words())


# ------------------------------------------------------------------ which files, read how


def save_calls(run: Any) -> list[SaveCall]:
    """The `torch.save` calls in the notebook's code whose target is a file name written
    out (a string, or a name assigned one anywhere in the notebook), in the order they are
    written. `import torch as T` and `from torch import save` are followed across cells,
    as the notebook's one namespace would."""
    trees = code_trees(run)
    torch_names, save_names, strings = {"torch"}, set(), {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                torch_names |= {a.asname or a.name for a in node.names if a.name == "torch"}
            elif isinstance(node, ast.ImportFrom) and node.module == "torch":
                save_names |= {a.asname or a.name for a in node.names if a.name == "save"}
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str)):
                strings.update({t.id: node.value.value for t in node.targets
                                if isinstance(t, ast.Name)})
    calls = []
    for tree in trees:
        found = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and _is_save(node.func, torch_names, save_names)]
        for node in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
            call = _save_call(node, strings)
            if call is not None:
                calls.append(call)
    return calls


def _is_save(func: ast.expr, torch_names: set[str], save_names: set[str]) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "save" and isinstance(func.value, ast.Name) \
            and func.value.id in torch_names
    return isinstance(func, ast.Name) and func.id in save_names


def _save_call(node: ast.Call, strings: dict[str, str]) -> SaveCall | None:
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    saved = node.args[0] if node.args else keywords.get("obj")
    target = node.args[1] if len(node.args) > 1 else keywords.get("f")
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        name = target.value
    elif isinstance(target, ast.Name) and target.id in strings:
        name = strings[target.id]
    else:
        return None
    owner, state_dict = "", False
    if (isinstance(saved, ast.Call) and isinstance(saved.func, ast.Attribute)
            and saved.func.attr == "state_dict" and isinstance(saved.func.value, ast.Name)):
        owner, state_dict = saved.func.value.id, True
    elif isinstance(saved, ast.Name):
        owner = saved.id
    return SaveCall(_normal(name), owner, state_dict)


def _normal(name: str) -> str:
    return str(PurePosixPath(name))


_cache: dict[int, tuple[weakref.ref[Any], Saved]] = {}


def saved_files(student: Any, run: Any) -> Saved:
    """The files the notebook saved (the targets of its torch.save calls, then every other
    `.pkl`, `.pt` and `.pth` in its folder), each read and classified here. Asked once per
    submission: the public and hidden items share the answer. Never raises for what the
    notebook did."""
    key = id(student)
    cached = _cache.get(key)
    if cached is not None and cached[0]() is student:
        return cached[1]
    found = _saved_files(student, run)
    with contextlib.suppress(TypeError):  # one that cannot be referred to weakly: asked again
        _cache[key] = (weakref.ref(student, lambda _, key=key: _cache.pop(key, None)), found)
    return found


def _saved_files(student: Any, run: Any) -> Saved:
    calls = tuple(save_calls(run))
    try:
        present = {_normal(name): size for name, size in student.files().items()}
    except ProbeError:
        present = {}
    targets = list(dict.fromkeys(c.target for c in calls))
    names = [t for t in targets if t in present]
    names += sorted(n for n in present if n.lower().endswith(SUFFIXES) and n not in names)
    files = []
    for name in names[:MAX_FILES]:
        if present[name] > MAX_BYTES:
            files.append(SavedFile(name, "unreadable",
                                   note=say(N_("too large for the grader to read"))))
            continue
        try:
            data = student.read_file(name, max_bytes=MAX_BYTES)
        except ProbeError:
            files.append(SavedFile(name, "unreadable",
                                   note=say(N_("the grader could not read it"))))
            continue
        files.append(classify(name, data))
    return Saved(tuple(files), calls, tuple(t for t in targets if t not in present))


def classify(name: str, data: bytes) -> SavedFile:
    """What a saved file holds, read here with `torch.load(weights_only=True)` only: a
    state_dict (tensors by name), a whole pickled object (refused; its pickle's opcodes,
    listed without running them, name the classes it would build), other tensors, or
    nothing the grader can read."""
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  refused or broken: the opcodes tell which
        classes = pickled_classes(data)
        if not classes:
            return SavedFile(name, "unreadable",
                             note=say(N_("neither parameters nor a pickled model")))
        shown = classes[0].rpartition(".")[2]
        return SavedFile(name, "whole", classes,
                         note=say(N_("a pickled {name}: a whole net"), name=shown))
    state = parameters_of(loaded)
    if state is None:
        return SavedFile(name, "other", note=say(N_("a {type}, not parameters by name"),
                                                 type=type(loaded).__name__))
    chain = linear_chain(state)
    shape = say(N_("a state_dict of a {sizes} net"),
                sizes=" → ".join(map(str, layer_sizes(chain)))) if chain \
        else say(N_("a state_dict of {count} tensors"), count=len(state))
    return SavedFile(name, "state_dict", state=state, note=shape)


#: What a weights-only file may name: where tensors and their storage come from.
_TENSOR_MODULES = ("torch._utils", "torch._tensor", "collections", "builtins", "__builtin__",
                   "_codecs", "torch.serialization", "numpy.core.multiarray",
                   "numpy._core.multiarray", "numpy")


def pickled_classes(data: bytes) -> tuple[str, ...]:
    """The classes and functions a torch.save file's pickle names beyond tensors and their
    storage (`__main__.Net`, `torch.nn.modules.container.Sequential`, ...), read from its
    opcodes without running any: () for a file that is not a pickle."""
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                member = next((i for i in archive.infolist()
                               if i.filename.endswith("data.pkl")), None)
                if member is None or member.file_size > MAX_BYTES:
                    return ()
                stream = io.BytesIO(archive.read(member))
            names = list(_globals(stream, 1))
        else:
            names = list(_globals(io.BytesIO(data), 4))  # the legacy format: 4 pickles
    except Exception:  # noqa: BLE001  not a pickle at all
        return ()
    return tuple(dict.fromkeys(n for n in names if not _tensor_name(n)))


def _tensor_name(name: str) -> bool:
    module, _, attribute = name.rpartition(".")
    return module in _TENSOR_MODULES or (module == "torch" and (
        attribute.endswith("Storage") or attribute in ("device", "Size")
        or isinstance(getattr(torch, attribute, None), torch.dtype)))


def _globals(stream: io.BytesIO, pickles: int) -> Iterator[str]:
    """`module.name` of every GLOBAL and STACK_GLOBAL in the next `pickles` pickles."""
    for _ in range(pickles):
        strings: list[str] = []
        memo: dict[int, str] = {}
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name == "GLOBAL":
                yield str(arg).replace(" ", ".", 1)
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                yield f"{strings[-2]}.{strings[-1]}"
            elif isinstance(arg, str) and "UNICODE" in opcode.name:
                strings.append(arg)
            elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                memo[int(arg)] = strings[-1]
            elif opcode.name == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif opcode.name in ("BINGET", "LONG_BINGET", "GET") and int(arg) in memo:
                strings.append(memo[int(arg)])
        if stream.tell() >= len(stream.getbuffer()):
            return


def parameters_of(loaded: Any) -> dict[str, torch.Tensor] | None:
    """The parameters by name in what a weights-only load returned: a state_dict, or one
    kept under a key of a checkpoint (`{"model_state_dict": ..., "epoch": 3}`)."""
    if _tensors(loaded):
        return dict(loaded)
    if isinstance(loaded, Mapping):
        for value in loaded.values():
            if _tensors(value):
                return dict(value)
    return None


def _tensors(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


# ------------------------------------------------------------------ a state_dict, restored here


Chain = list[tuple[torch.Tensor, torch.Tensor | None]]


def linear_chain(state: Mapping[str, torch.Tensor]) -> Chain | None:
    """The state_dict as a chain of Linear layers in the order they were registered (each
    `<layer>.weight`, out x in, and maybe `<layer>.bias`), or None when it holds anything
    else (convolutions, batch norm statistics, ...) or the sizes do not chain."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        prefix, _, kind = key.rpartition(".")
        layers.setdefault(prefix, {})[kind] = tensor
    chain: Chain = []
    for parts in layers.values():
        weight, bias = parts.get("weight"), parts.get("bias")
        if set(parts) - {"weight", "bias"} or weight is None or weight.ndim != 2 \
                or not weight.is_floating_point():
            return None
        if bias is not None and (tuple(bias.shape) != (weight.shape[0],)
                                 or not bias.is_floating_point()):
            return None
        if chain and chain[-1][0].shape[0] != weight.shape[1]:
            return None
        chain.append((weight.double(), None if bias is None else bias.double()))
    return chain or None


def layer_sizes(chain: Chain) -> list[int]:
    """The sizes along a chain: [inputs, hidden..., outputs]."""
    return [chain[0][0].shape[1], *(w.shape[0] for w, _ in chain)]


def restorations(chain: Chain, x: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The chain's predictions on `x` with each activation between its layers (every
    combination up to COMBINED_UP_TO hidden layers, else the same one throughout), computed
    here in float64: (the activations in words, the predictions)."""
    hidden = len(chain) - 1
    names = list(ACTIVATIONS)
    combos = (itertools.product(names, repeat=hidden) if hidden <= COMBINED_UP_TO
              else ((name,) * hidden for name in names))
    given = torch.from_numpy(np.asarray(x, np.float64))
    for combo in combos:
        out = given
        with torch.no_grad():
            for i, (weight, bias) in enumerate(chain):
                out = F.linear(out, weight, bias)
                if i < hidden:
                    out = ACTIVATIONS[combo[i]](out)
        used = list(dict.fromkeys(combo))
        yield Words.join(used, ", ") if used else say(NO_ACTIVATION), out.numpy()


def agree(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two models' predictions on the judge's points are the same, up to float32
    rounding."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return False
    return bool(np.max(np.abs(a - b), initial=0.0) <= 1e-5 + 1e-4 * max(1.0, np.abs(b).max(
        initial=0.0)))


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference between two models' predictions (inf when they cannot be
    compared)."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        return float("inf")
    with np.errstate(invalid="ignore"):
        found = np.max(np.abs(a - b), initial=0.0)
    return float(found) if np.isfinite(found) else float("inf")


# ------------------------------------------------------------------ the judgement


@dataclass(frozen=True)
class Judgement:
    """One rubric item's verdict on the saved model: the fraction earned and why, in words."""
    fraction: float
    feedback: str


@dataclass(frozen=True)
class Saving:
    """The saved model, judged: `parameters` (a state_dict restores the trained net) and
    `whole` (a whole saved net restores it); `rows` are what each file was found to hold,
    for `evidence["saved_files"]`."""
    saved: Saved
    parameters: Judgement
    whole: Judgement
    rows: tuple[dict[str, Any], ...] = ()


@dataclass
class _Model:
    """A model whose predictions on the judge's points are known: `words` says which."""
    words: str
    prediction: np.ndarray


def judge_saving(student: Any, run: Any, contract: tuple[str, ...] | list[str] = (),
                 rng: np.random.Generator | None = None) -> Saving:
    """Whether the notebook's saved files restore its trained model, whatever they are
    called: the trained model is the live nn.Module the notebook saved (else the contract's,
    else any mapping one input to one output), asked on points drawn here; each state_dict
    is restored here and each whole net inside the sandbox, and their predictions compared
    with it. Never raises for what the notebook did."""
    rng = rng if rng is not None else np.random.default_rng()
    x = np.sort(rng.uniform(-1.5, 1.5, (POINTS, 1)).astype(np.float32), axis=0)
    saved = saved_files(student, run)
    live = _live_model(student, saved, contract, x)
    wholes = {f.name: _loaded(student, f, x) for f in saved.wholes}
    chains = {f.name: linear_chain(f.state) if f.state is not None else None
              for f in saved.state_dicts}
    parameters = _judge_parameters(saved, chains, wholes, live, x)
    whole = _judge_whole(saved, chains, wholes, live, x)
    rows = tuple({"file": f.name, "holds": f.note or f.kind} for f in saved.files)
    return Saving(saved, parameters, whole, rows)


def _live_model(student: Any, saved: Saved, contract: tuple[str, ...] | list[str],
                x: np.ndarray) -> _Model | None:
    """The trained model still in the notebook: the one its torch.save calls saved, else
    the contract's, else the first defined that maps (k, 1) to (k, 1)."""
    first = [c.owner for c in saved.calls if c.owner] + list(contract)
    for name in regressors(student, list(dict.fromkeys(first)))[:4]:
        try:
            answer = student.forward(name, x)
        except ProbeError:
            continue
        if np.asarray(answer).size == len(x):
            return _Model(say(N_("the notebook's `{name}`"), name=name), np.asarray(answer))
    return None


def _loaded(student: Any, file: SavedFile, x: np.ndarray) -> np.ndarray | str:
    """A whole net's predictions, unpickled and run inside the sandbox only; or why not."""
    try:
        answer = np.asarray(student.load_and_forward(file.name, x))
    except ProbeError as exc:
        if exc.kind == "timeout":
            return say(N_("{name} took too long to load and run inside the sandbox"),
                       name=file.name)
        return say(N_("{file} could not be loaded as a model and run on a batch of shape "
                      "(k, 1) inside the sandbox"), file=file.words())
    if answer.size != len(x):
        return say(N_("{name} loaded, but maps a batch of shape ({count}, 1) to shape "
                      "{shape}: not one output per input"), name=file.name, count=len(x),
                   shape=list(answer.shape))
    return answer


def _restored(chain: Chain | None, against: np.ndarray, x: np.ndarray) -> tuple[bool, str]:
    """Whether a state_dict, restored here, predicts `against` on `x`: (True, the
    activation it does so with), (False, "") when none does, or (False, why it cannot be
    restored, in words)."""
    if chain is None:
        return False, say(N_("holds layers the grader does not rebuild by itself (it rebuilds "
                             "chains of Linear layers)"))
    sizes = layer_sizes(chain)
    if sizes[0] != 1 or sizes[-1] != 1:
        return False, say(N_("maps {inputs} inputs to {outputs} outputs, not one input to one "
                             "output"), inputs=int(sizes[0]), outputs=int(sizes[-1]))
    for activation, prediction in restorations(chain, x):
        if agree(prediction, against):
            return True, activation
    return False, ""


def _judge_parameters(saved: Saved, chains: dict[str, Chain | None],
                      wholes: dict[str, np.ndarray | str], live: _Model | None,
                      x: np.ndarray) -> Judgement:
    if not saved.state_dicts:
        return Judgement(0.0, saved.no_parameters())
    references = [live] if live is not None else [
        _Model(say(N_("the whole net saved in {name}"), name=name), p)
        for name, p in wholes.items()
        if not isinstance(p, str)]
    why = []
    for file in saved.state_dicts:
        for reference in references:
            matched, words = _restored(chains[file.name], reference.prediction, x)
            if matched:
                return Judgement(1.0, say(N_("{file}, restored by the grader ({activations}), "
                                             "predicts what {model} predicts"),
                                          file=file.words(), activations=words,
                                          model=reference.words))
            if words:
                why.append(say(_WHY, name=file.words(), why=words))
                break
            why.append(say(N_("{file}, restored by the grader with any of the common "
                              "activations, does not predict what {model} predicts"),
                           file=file.words(), model=reference.words))
    if not references:
        restorable = [f for f in saved.state_dicts if chains[f.name] is not None]
        if restorable:
            return Judgement(0.5, say(N_("{file} was saved, but the grader found no trained "
                                         "model left in the notebook, nor a whole saved net, "
                                         "to compare it with"), file=restorable[0].words()))
        return Judgement(0.5, say(N_("{file} was saved, but could not be checked: no trained "
                                     "model is left in the notebook to compare it with"),
                                  file=saved.state_dicts[0].words()))
    if all(chains[f.name] is None for f in saved.state_dicts):
        return Judgement(0.5, say(N_("{why}: saved, but not checked"), why=why[0]))
    return Judgement(0.0, Words.join(why))


def _judge_whole(saved: Saved, chains: dict[str, Chain | None],
                 wholes: dict[str, np.ndarray | str], live: _Model | None,
                 x: np.ndarray) -> Judgement:
    if not saved.wholes:
        return Judgement(0.0, saved.no_whole())
    why = []
    loaded = {name: p for name, p in wholes.items() if not isinstance(p, str)}
    why += [p for p in wholes.values() if isinstance(p, str)]
    for name, prediction in loaded.items():
        file = next(f for f in saved.wholes if f.name == name)
        if live is not None:
            if agree(prediction, live.prediction):
                return Judgement(1.0, say(N_("{file}, loaded inside the sandbox, predicts what "
                                             "{model} predicts"), file=file.words(),
                                          model=live.words))
            why.append(say(N_("{file}, loaded inside the sandbox, does not predict what {model} "
                              "predicts (they differ by up to {difference:.3g} on the grader's "
                              "points)"), file=file.words(), model=live.words,
                           difference=difference(prediction, live.prediction)))
            continue
        restored = [(state, _restored(chains[state.name], prediction, x))
                    for state in saved.state_dicts]
        for state, (matched, _) in restored:
            if matched:
                return Judgement(1.0, say(N_("{file}, loaded inside the sandbox, predicts what "
                                             "the parameters saved in {name} predict (the "
                                             "notebook kept no trained model to compare with)"),
                                          file=file.words(), name=state.name))
        alone = say(N_("{file} loads inside the sandbox, but the grader found no trained model "
                       "left in the notebook to compare it with"), file=file.words())
        if all(words for _, (_, words) in restored):  # no parameters it could be checked by
            return Judgement(0.5, alone)
        why.append(say(N_("{alone}, and the parameters saved beside it predict otherwise"),
                       alone=alone))
    return Judgement(0.0, Words.join(why))
