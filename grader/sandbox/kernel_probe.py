"""The kernel's side of every question the judge asks: runs inside the student's kernel.

The agent loads this file as a module of its own inside the kernel (never into the notebook's
namespace, so no name here can clash with a student's), then calls `answer()` once per
question with the request as JSON text, a folder for the arrays and the notebook's namespace.
Inputs arrive as `.npy` files the agent wrote; outputs leave as `.npy` files the agent reads,
all with `allow_pickle=False`. Nothing here is trusted by the grader: every answer is
validated on the other side, and accuracy is never computed here.

Before the first question the agent calls `freeze()`: the notebook has ended, so nothing of it
may go on working while it is being asked about (a thread that keeps training, a timer, a
trace function). What runs after that is only the judge's question, in the main thread.

The asker's half of that exchange is here too (`stage`, `answered`), with the answers about
the work folder that need no kernel (`list_files`, `read_file`): the agent uses them in the
sandbox, and `live.py` in a student's own kernel (`torchgrade.check`), so both ask and answer
by the same code.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: The file an answer is left in, in the question's folder.
ANSWER = "answer.json"


class Frozen(BaseException):
    """Raised inside each thread the notebook started once the notebook has ended. Creating
    it never returns: the thread sleeps for ever, without holding the interpreter lock, at
    the first exception handler it reaches (every handler, `finally` included, creates the
    exception first)."""

    def __init__(self, *args: Any) -> None:
        while True:
            time.sleep(3600)


def freeze(own_threads: list[int]) -> dict[str, int]:
    """Stop what the notebook left running: its Python threads (see Frozen; `own_threads` are
    the kernel's own, which the agent noted before the first cell), interval timers, signal
    handlers other than the kernel's interrupt, and trace or profile functions."""
    import threading

    main = threading.main_thread().ident
    stopped = 0
    raise_in = ctypes.pythonapi.PyThreadState_SetAsyncExc
    raise_in.argtypes = [ctypes.c_ulong, ctypes.py_object]
    for ident in list(sys._current_frames()):
        if ident != main and ident not in own_threads:
            stopped += raise_in(ident, Frozen)
    if hasattr(signal, "setitimer"):  # not on Windows
        for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(timer, 0)
    kept = {signal.SIGINT, getattr(signal, "SIGKILL", None), getattr(signal, "SIGSTOP", None)}
    for signum in signal.valid_signals():
        if signum in kept:
            continue
        try:
            if signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            continue
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)  # type: ignore[arg-type]
    threading.setprofile(None)  # type: ignore[arg-type]
    return {"threads_stopped": stopped}


def to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def save(values: list[Any], folder: str) -> list[str]:
    names = []
    for i, value in enumerate(values):
        path = os.path.join(folder, f"out-{i}.npy")
        np.save(path, to_numpy(value), allow_pickle=False)
        names.append(path)
    return names


def arguments(request: dict[str, Any]) -> list[Any]:
    """The judge's arrays, as tensors (or arrays with torch=False); 0-d ones as numbers."""
    arrays = [np.load(p, allow_pickle=False) for p in request["inputs"]]
    if request.get("torch", True):
        import torch

        return [a.item() if a.ndim == 0 else torch.from_numpy(a) for a in arrays]
    return [a.item() if a.ndim == 0 else a for a in arrays]


def call(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    function = scope[request["name"]]
    if request.get("no_grad"):
        import torch

        with torch.no_grad():
            result = function(*arguments(request))
    else:
        result = function(*arguments(request))
    values = list(result) if isinstance(result, (tuple, list)) else [result]
    return {"outputs": save(values, folder)}


def modules_of(scope: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v for k, v in list(scope.items())
            if isinstance(v, torch.nn.Module) and not k.startswith("_")}


def device_of(module: Any) -> Any:
    import torch

    for p in list(module.parameters()) + list(module.buffers()):
        return p.device
    return torch.device("cpu")


def forward(module: Any, x: Any, batch: int) -> Any:
    """The module in eval mode, without gradients, batch by batch on its own device; a tuple
    output counts by its first element."""
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            device = device_of(module)
            outs = [module(chunk.to(device)) for chunk in x.split(batch)]
            outs = [o[0] if isinstance(o, (tuple, list)) else o for o in outs]
            return torch.cat([o.float().cpu() for o in outs])
    finally:
        module.train(was_training)


def describe(name: str, module: Any, x: Any) -> dict[str, Any]:
    """One module: its class, the layer types it holds and those its forward ran on `x`."""
    entry: dict[str, Any] = {"name": name, "class": type(module).__name__,
                             "layers": sorted({type(m).__name__ for m in module.modules()})}
    used: set[str] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: used.add(type(m).__name__))
             for m in module.modules()]
    try:
        entry["output_shape"] = list(forward(module, x, len(x)).shape)
    except Exception as exc:  # noqa: BLE001  the judge reports it as the student's error
        entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        for hook in hooks:
            hook.remove()
    entry["used_layers"] = sorted(used)
    return entry


# ------------------------------------------------------------------ layers, for the judge to verify

#: Words in a class name that claim a kind of layer, checked in this order.
LAYER_WORDS = (("BatchNorm", "batchnorm"), ("Dropout", "dropout"), ("Conv", "conv"))
#: What a layer's answer may hold: a few layers of each kind, within the wire's limits (an
#: answer carries at most 64 arrays).
LAYERS_PER_KIND = 3
LAYER_ARRAYS = 60
LAYER_BYTES = 24 << 20
LAYER_TENSORS = ("weight", "bias", "running_mean", "running_var")
LAYER_SETTINGS = ("stride", "padding", "dilation", "groups", "padding_mode", "eps", "momentum",
                  "p", "inplace")


def layer_kind(class_name: str) -> str | None:
    """The kind of layer a class name claims to be, or None."""
    for word, kind in LAYER_WORDS:
        if word in class_name:
            return kind
    return None


def setting(value: Any) -> Any:
    """A declared setting as JSON numbers or text, or None when it is something else."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, tuple | list) and all(isinstance(v, int) for v in value):
        return [int(v) for v in value]
    return None


def nbytes(tensor: Any) -> int:
    return int(tensor.numel() * tensor.element_size())


class LayerRecorder:
    """Forward hooks that keep, for the first call of each claimed layer in each mode, a copy
    of its input (taken before the layer runs, so an in-place layer cannot overwrite it) and
    of its output (taken at once, so a later in-place operation cannot change it), and in
    eval mode its weights, statistics and settings. A hook never raises into the forward: a
    layer it cannot read is simply not recorded, and the judge verifies nothing of it."""

    def __init__(self) -> None:
        self.mode = "eval"
        self.entries: dict[str, dict[str, Any]] = {}
        self.reserved: dict[str, int] = {}   # bytes kept back for a layer's train-mode call
        self.arrays: list[Any] = []
        self.ran: dict[str, str] = {}
        self.inputs: dict[str, Any] = {}
        self.spent = 0

    def attach(self, module: Any) -> list[Any]:
        handles = []
        for path, layer in module.named_modules():
            if layer_kind(type(layer).__name__):
                handles.append(layer.register_forward_pre_hook(self.before(path)))
                handles.append(layer.register_forward_hook(self.after(path)))
        return handles

    def wanted(self, path: str) -> bool:
        """Whether this call of the layer is still to be recorded: the first call in each
        mode of a layer admitted on its first eval-mode call."""
        entry = self.entries.get(path)
        if entry is None:
            return self.mode == "eval" and path not in self.ran
        return self.mode not in entry["calls"]

    def before(self, path: str) -> Any:
        def hook(layer: Any, args: Any) -> None:
            first = args[0] if isinstance(args, tuple) and args else None
            if self.wanted(path) and path not in self.inputs and hasattr(first, "detach"):
                with contextlib.suppress(Exception):  # not a tensor after all: not recorded
                    self.inputs[path] = first.detach().clone()
        return hook

    def after(self, path: str) -> Any:
        def hook(layer: Any, args: Any, output: Any) -> None:
            given = self.inputs.pop(path, None)
            if given is not None and hasattr(output, "detach") and self.wanted(path):
                with contextlib.suppress(Exception):  # unreadable: the judge verifies nothing
                    self.record(path, layer, given, output.detach().clone())
            self.ran.setdefault(path, type(layer).__name__)
        return hook

    def record(self, path: str, layer: Any, given: Any, output: Any) -> None:
        size = nbytes(given) + nbytes(output)
        entry = self.entries.get(path)
        if entry is None:
            entry = self.admit(path, layer, size)
        elif size > self.reserved.get(path, 0):
            return
        if entry is not None:
            entry["calls"][self.mode] = {"input": self.keep(given), "output": self.keep(output)}

    def admit(self, path: str, layer: Any, size: int) -> dict[str, Any] | None:
        """A new layer's entry, with its tensors, if its kind and the answer have room (for
        this call and one as large in train mode)."""
        kind = layer_kind(type(layer).__name__)
        same = sum(1 for e in self.entries.values() if e["kind"] == kind)
        tensors = {n: getattr(layer, n, None) for n in LAYER_TENSORS}
        tensors = {n: t.detach() for n, t in tensors.items() if hasattr(t, "detach")}
        cost = sum(nbytes(t) for t in tensors.values()) + 2 * size
        if (same >= LAYERS_PER_KIND or len(self.arrays) + len(tensors) + 4 > LAYER_ARRAYS
                or self.spent + cost > LAYER_BYTES):
            return None
        entry = {"path": path, "class": type(layer).__name__, "kind": kind, "calls": {},
                 "settings": {n: setting(getattr(layer, n)) for n in LAYER_SETTINGS
                              if hasattr(layer, n)},
                 "tensors": {n: self.keep(t.clone()) for n, t in tensors.items()}}
        self.spent += cost
        self.reserved[path] = size
        self.entries[path] = entry
        return entry

    def keep(self, tensor: Any) -> int:
        self.arrays.append(tensor)
        return len(self.arrays) - 1


def run_mode(module: Any, x: Any, mode: str, seed: int) -> str | None:
    """One pass of the judge's batch in `mode`, under a fixed seed that leaves the notebook's
    own random state as it was; the name of the error it raised, or None."""
    import torch

    device = device_of(module)
    module.train(mode == "train")
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            module(x.to(device))
    except Exception as exc:  # noqa: BLE001  the judge says which mode failed, in words
        return type(exc).__name__
    return None


def layers(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    """The claimed convolution, batch norm and dropout layers of a model, as it ran on the
    judge's batch in eval mode and then in train mode, on a copy (see `private`), so the
    notebook's model and its running statistics stay as they were. The judge recomputes
    every layer."""
    (x,) = arguments(request)
    model, restore = private(target(request, scope))
    recorder = LayerRecorder()
    handles = recorder.attach(model)
    try:
        errors = {}
        for mode in ("eval", "train"):
            recorder.mode = mode
            errors[mode] = run_mode(model, x, mode, int(request.get("seed", 0)))
    finally:
        for handle in handles:
            handle.remove()
        restore()
    return {"layers": list(recorder.entries.values()),
            "ran": [[path, name] for path, name in recorder.ran.items()][:64],
            "errors": {m: e for m, e in errors.items() if e},
            "outputs": save(recorder.arrays, folder)}


def private(module: Any) -> tuple[Any, Any]:
    """A model to run in train mode without touching the notebook's: a deep copy, or, for a
    model that cannot be copied (one holding a lock or a file, say), the model itself with
    a function that puts back its parameters, buffers and modes afterwards."""
    import copy

    import torch

    try:
        return copy.deepcopy(module), lambda: None
    except Exception:  # noqa: BLE001  anything deepcopy raises: fall back to restoring
        pass
    tensors = module.state_dict(keep_vars=True)
    saved = {name: t.detach().clone() for name, t in tensors.items() if hasattr(t, "detach")}
    modes = [(m, m.training) for m in module.modules()]

    def restore() -> None:
        with torch.no_grad():
            for name, value in saved.items():
                tensors[name].copy_(value)
        for m, training in modes:
            m.training = training
    return module, restore


def target(request: dict[str, Any], scope: dict[str, Any]) -> Any:
    """The model a question is about: a module of the notebook, or a saved whole model."""
    import torch

    if request.get("file"):
        loaded = torch.load(request["file"], map_location="cpu", weights_only=False)
        if not isinstance(loaded, torch.nn.Module):
            raise TypeError(f"{request['file']} holds a {type(loaded).__name__}, not a model")
        return loaded
    return modules_of(scope)[request["name"]]


def environment() -> dict[str, Any]:
    """Which torch the notebook ran (None when it never imported torch: importing costs
    seconds). The device is the grader's to say, never the kernel's."""
    if "torch" not in sys.modules:
        return {"torch": None}
    import torch

    return {"torch": str(torch.__version__)}


def value(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    return {"outputs": save([scope[request["name"]]], folder)}


def modules(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    import torch

    x = torch.rand(*request["shape"])
    return {"modules": [describe(name, module, x) for name, module in modules_of(scope).items()]}


def forward_named(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    (x,) = arguments(request)
    module = modules_of(scope)[request["name"]]
    return {"outputs": save([forward(module, x, request.get("batch", 500))], folder)}


def load_and_forward(request: dict[str, Any], folder: str,
                     scope: dict[str, Any]) -> dict[str, Any]:
    (x,) = arguments(request)
    loaded = target({"file": request["file"]}, scope)
    return {"outputs": save([forward(loaded, x, request.get("batch", 500))], folder)}


# ------------------------------------------------------------------ an expression, for the judge

#: The builtins an evaluated expression may name: numbers, sizes and sequences, and
#: `__import__`, which numpy and torch call from C inside the expression's frame (`a.sum()`
#: imports numpy's `_methods`). The sandbox is the boundary; this namespace keeps the
#: notebook's own names (and a stale variable) out of the answer, and the judge refuses an
#: expression that names anything else before it is sent.
EXPRESSION_BUILTINS = ("abs", "bool", "float", "int", "len", "list", "max", "min", "pow",
                       "range", "round", "slice", "sum", "tuple", "zip", "__import__")
#: The same limits as protocol.EVALUATE's (this module cannot import protocol in the kernel).
MAX_EXPRESSION_CHARS = 16_000


def evaluate(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    """The value of one expression the judge read from the notebook (its intermediate names
    already filled in), with the judge's arrays bound to `names`, in a namespace of its own:
    numpy (`np`, `numpy`), `math`, torch when asked for, a few builtins and those arrays, never
    the notebook's globals, so only the judge's inputs can make the answer. Under torch the
    default dtype is float64 while it runs (the arrays are float64, and `torch.ones(n, 1)` in
    the expression must match them), and put back after."""
    import builtins
    import math

    expression = str(request["expression"])
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError("expression too long")
    names = [str(n) for n in request["names"]]
    values = arguments(request)
    if len(names) != len(values) or any(not n.isidentifier() or n.startswith("_")
                                        for n in names):
        raise ValueError("one plain name per array")
    code = compile(expression, "<expression>", "eval")
    namespace: dict[str, Any] = {
        "__builtins__": {n: getattr(builtins, n) for n in EXPRESSION_BUILTINS},
        "np": np, "numpy": np, "math": math}
    uses_torch = bool(request.get("torch", True)) or "torch" in code.co_names
    if not uses_torch:
        namespace.update(zip(names, values, strict=True))
        return {"outputs": save([eval(code, namespace)], folder)}
    import torch

    namespace["torch"] = torch
    namespace.update(zip(names, values, strict=True))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            found = eval(code, namespace)  # the judge's question, inside the sandbox
    finally:
        torch.set_default_dtype(default)
    return {"outputs": save([found], folder)}


def env(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    return environment()


def freeze_leftovers(request: dict[str, Any], folder: str,
                     scope: dict[str, Any]) -> dict[str, Any]:
    return freeze([int(i) for i in request.get("own_threads", [])])


#: The answer to each question the kernel is asked (the agent refuses any other before it
#: gets here: see protocol.OPERATIONS).
HANDLERS: dict[str, Callable[[dict[str, Any], str, dict[str, Any]], dict[str, Any]]] = {
    "call": call, "value": value, "modules": modules, "forward": forward_named,
    "load": load_and_forward, "env": env, "layers": layers, "evaluate": evaluate,
    "freeze": freeze_leftovers}


def probe(request: dict[str, Any], folder: str, scope: dict[str, Any]) -> dict[str, Any]:
    """Answer one question; `scope` is the notebook's namespace."""
    handler = HANDLERS.get(request["op"])
    if handler is None:
        raise ValueError(f"unknown probe {request['op']!r}")
    return handler(request, folder, scope)


def answer(request: str, folder: str, scope: dict[str, Any]) -> None:
    """Answer one question given as JSON text (data, never code) and leave the answer as
    `answer.json` in `folder`, where the agent reads it."""
    found = probe(json.loads(request), folder, scope)
    with open(os.path.join(folder, ANSWER), "w", encoding="utf-8") as handle:
        json.dump(found, handle)


# ------------------------------------------------------------------ the asker's half

def stage(request: dict[str, Any], folder: str) -> dict[str, Any]:
    """The request as `answer` reads it: its packed arrays (base64 `.npy`, as they crossed
    the wire) written as `in-<i>.npy` files in `folder` and named in `inputs`."""
    staged = {key: value for key, value in request.items() if key != "arrays"}
    staged["inputs"] = []
    for i, packed in enumerate(request.get("arrays", [])):
        path = os.path.join(folder, f"in-{i}.npy")
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(packed))
        staged["inputs"].append(path)
    return staged


def answered(folder: str) -> dict[str, Any]:
    """The answer `answer` left in `folder`, the arrays of the files it names packed as base64
    `.npy` text for the wire."""
    with open(os.path.join(folder, ANSWER), encoding="utf-8") as handle:
        found = json.load(handle)
    if "outputs" in found:
        found["outputs"] = [packed(path) for path in found["outputs"]]
    return found


def packed(path: str) -> str:
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def list_files(folder: str, data_roots: set[str], limit: int = 1000) -> list[list[Any]]:
    """[name, size] of the regular files the notebook left in its folder (data mounts aside)."""
    found: list[list[Any]] = []
    for path in sorted(Path(folder).rglob("*")):
        if len(found) >= limit:
            break
        relative = path.relative_to(folder)
        if relative.parts[0] in data_roots or path.is_symlink() or not path.is_file():
            continue
        found.append([str(relative), path.stat().st_size])
    return found


def read_file(folder: str, name: str, limit: int) -> dict[str, Any]:
    """The reply to a request for a file of the work folder: its bytes as base64, or why not
    (outside the folder, not a file, over `limit` bytes)."""
    work = Path(folder).resolve()
    path = (work / name).resolve()
    if work not in path.parents or not path.is_file():
        return {"ok": False, "error": "FileNotFoundError", "message": name}
    if path.stat().st_size > limit:
        return {"ok": False, "error": "FileTooLarge", "message": f"over {limit} bytes"}
    return {"ok": True, "data": packed(str(path))}
