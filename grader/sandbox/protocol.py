"""The wire format between the trusted grader and the in-sandbox agent, and the table of
requests (`OPERATIONS`) both sides build, check and dispatch by.

One JSON object per line. Arrays travel as base64 `.npy` bytes written and read with
`allow_pickle=False`, so an answer can carry numbers and nothing that runs. This module is also
mounted read-only into the sandbox, next to the agent: it imports only the standard library
and numpy.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Largest line either side accepts: a request with 10,000 MNIST images is about 10 MB.
MAX_LINE_BYTES = 64 << 20
#: Largest single array in an answer (10,000 x 10 float64 logits are 800 kB).
MAX_ARRAY_BYTES = 32 << 20

_KINDS = "biuf"  # bool, signed, unsigned, float: never object, string or void arrays


class ProtocolError(ValueError):
    """A message or an array that does not follow the wire format."""


class Packed(str):
    """An array packed already (see pack_array): sent as it is. The judge packs the inputs it
    asks every submission about (the MNIST images) once per grading process."""


def pack_array(array: Any) -> str:
    """An array (or anything numpy turns into a numeric array) as base64 `.npy` text."""
    if isinstance(array, Packed):
        return array
    value = np.asarray(array)
    if value.dtype.kind not in _KINDS:
        raise ProtocolError(f"cannot send an array of dtype {value.dtype}")
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def unpack_array(text: Any, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Decode one packed array, refusing oversized, pickled or non-numeric payloads."""
    if not isinstance(text, str):
        raise ProtocolError(f"expected a packed array, got {type(text).__name__}")
    if len(text) > (max_bytes * 4) // 3 + 1024:
        raise ProtocolError(f"array larger than {max_bytes} bytes")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        value = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError, UnicodeEncodeError) as exc:
        raise ProtocolError(f"not a plain .npy array ({exc})") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in _KINDS:
        raise ProtocolError(f"array of unsupported dtype {getattr(value, 'dtype', None)}")
    return value


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=True).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One message, its text made valid UTF-8: JSON may carry lone surrogates (`"\\ud800"`,
    as a kernel that packs with ensure_ascii writes them), which no file, database or page
    can store; each becomes U+FFFD."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"message longer than {MAX_LINE_BYTES} bytes")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return valid_text(message)


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [valid_text(v) for v in value]
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ the questions

#: What a request may carry besides its own fields: its name, its arrays and how long it may
#: take (the client sets it; the agent falls back to the operation's default).
COMMON_FIELDS = frozenset({"op", "arrays", "timeout"})
#: The most arrays an answer may carry.
MAX_OUTPUTS = 64


@dataclass(frozen=True)
class Operation:
    """One kind of request, as both sides know it: the grader builds and checks requests and
    answers from it, the agent dispatches by it, and anything not in `OPERATIONS` is refused.

    `fields` are the request's own fields and their JSON types (`required` must be there);
    `arrays` is how many arrays it sends (None: any number); `outputs` how many arrays its
    answer carries ("none", "one", "many"); `answer` the answer's fields the grader checks by
    type; `kernel` whether the student's kernel answers (kernel_probe.py) or the agent itself;
    `internal` whether only the agent may ask it; `timeout` its default limit in seconds;
    `described` the question in a TA's words."""

    name: str
    fields: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    arrays: int | None = 0
    outputs: str = "none"
    answer: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    kernel: bool = True
    internal: bool = False
    timeout: float = 120
    described: str = ""


CALL = Operation("call", {"name": str, "torch": bool, "no_grad": bool}, frozenset({"name"}),
                 arrays=None, outputs="many", described="calling")
VALUE = Operation("value", {"name": str}, frozenset({"name"}), outputs="one", timeout=60,
                  described="reading")
MODULES = Operation("modules", {"shape": list}, frozenset({"shape"}),
                    answer={"modules": list}, described="listing the models")
FORWARD = Operation("forward", {"name": str, "batch": int}, frozenset({"name"}), arrays=1,
                    outputs="one", timeout=600, described="running the model")
LOAD = Operation("load", {"file": str, "batch": int}, frozenset({"file"}), arrays=1,
                 outputs="one", timeout=600, described="loading and running")
ENV = Operation("env", timeout=60, described="asking for the torch version")
LAYERS = Operation("layers", {"name": str, "file": str, "seed": int}, arrays=1,
                   outputs="many", described="checking the layers of")
FILES = Operation("files", answer={"files": list}, kernel=False, timeout=60,
                  described="listing the files")
FILE = Operation("file", {"name": str, "max_bytes": int}, frozenset({"name"}),
                 answer={"data": str}, kernel=False, timeout=60, described="reading the file")
#: The longest expression EVALUATE carries (characters) and the most names it binds: a
#: gradient read from a notebook, its intermediate names filled in, is a few hundred.
MAX_EXPRESSION_CHARS = 16_000
MAX_BOUND_NAMES = 16
EVALUATE = Operation("evaluate", {"expression": str, "names": list, "torch": bool},
                     frozenset({"expression", "names"}), arrays=None, outputs="one",
                     timeout=60, described="evaluating an expression read from the notebook")
FREEZE = Operation("freeze", {"own_threads": list}, internal=True, timeout=30,
                   described="stopping what the notebook left running")
CLOSE = Operation("close", kernel=False, timeout=2, described="ending the run")

OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    CALL, VALUE, MODULES, FORWARD, LOAD, ENV, LAYERS, EVALUATE, FILES, FILE, FREEZE, CLOSE)}


def operation(name: Any, internal: bool = False) -> Operation:
    """The operation called `name`; a ProtocolError for any other, or for one only the agent
    may ask when `internal` is False. The one place where an unknown request is refused."""
    found = OPERATIONS.get(name) if isinstance(name, str) else None
    if found is None or (found.internal and not internal):
        raise ProtocolError(f"unknown request {str(name)[:100]!r}")
    return found


def request(name: str, arrays: Sequence[Any] = (), /, *, internal: bool = False,
            **fields: Any) -> dict[str, Any]:
    """A request for the operation `name` (its fields may include one called "name"), its
    fields and arrays checked against the table and the arrays packed; a ProtocolError for a
    request the table does not allow, before anything is sent."""
    op = operation(name, internal)
    check_request(op, {**fields, "arrays": list(arrays)})
    message: dict[str, Any] = {**fields, "op": op.name}
    if arrays:
        message["arrays"] = [pack_array(a) for a in arrays]
    return message


def check_request(op: Operation, message: Mapping[str, Any]) -> None:
    """That `message` holds only the fields `op` takes, of their types, its required ones and
    as many arrays as it sends."""
    extra = set(message) - set(op.fields) - COMMON_FIELDS
    if extra:
        raise ProtocolError(f"{op.name} takes no field {sorted(extra)[0]!r}")
    missing = op.required - set(message)
    if missing:
        raise ProtocolError(f"{op.name} needs the field {sorted(missing)[0]!r}")
    for key, kind in op.fields.items():
        if key in message and not isinstance(message[key], kind):
            raise ProtocolError(f"{op.name}: field {key!r} of the wrong type")
    arrays = message.get("arrays", [])
    if not isinstance(arrays, list):
        raise ProtocolError(f"{op.name}: arrays must be a list")
    if op.arrays is not None and len(arrays) != op.arrays:
        raise ProtocolError(f"{op.name} sends {op.arrays} arrays, not {len(arrays)}")
    if op is EVALUATE:
        check_expression(message.get("expression", ""), message.get("names", []), len(arrays))


_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def check_expression(expression: str, names: Sequence[Any], arrays: int) -> None:
    """That an EVALUATE request is within its limits: an expression of at most
    MAX_EXPRESSION_CHARS, and one plain name (a letter first, no underscore there, so no
    dunder) for each array it binds, none twice. Both sides check it: the grader before it
    sends, the agent before the kernel sees it."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ProtocolError(f"evaluate: an expression longer than {MAX_EXPRESSION_CHARS} "
                            "characters")
    if len(names) > MAX_BOUND_NAMES:
        raise ProtocolError(f"evaluate: more than {MAX_BOUND_NAMES} names")
    if not all(isinstance(n, str) and _IDENTIFIER.fullmatch(n) for n in names):
        raise ProtocolError("evaluate: a name that is not a plain identifier")
    if len(set(names)) != len(names) or len(names) != arrays:
        raise ProtocolError(f"evaluate: {len(names)} names for {arrays} arrays")


def check_answer(op: Operation, answer: Mapping[str, Any]) -> list[np.ndarray]:
    """The arrays of a successful answer to `op`, every field the table names checked by its
    type and every array unpacked (see unpack_array); a ProtocolError for anything else."""
    for key, kind in op.answer.items():
        if not isinstance(answer.get(key), kind):
            raise ProtocolError(f"the answer's {key!r} is not a {_type_name(kind)}")
    if op.outputs == "none":
        return []
    outputs = answer.get("outputs")
    if not isinstance(outputs, list) or len(outputs) > MAX_OUTPUTS:
        raise ProtocolError("no list of outputs")
    if op.outputs == "one" and len(outputs) != 1:
        raise ProtocolError(f"expected one output, got {len(outputs)}")
    return [unpack_array(o) for o in outputs]


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
