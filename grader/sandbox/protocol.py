"""The wire format between the trusted grader and the in-sandbox agent.

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
