"""The idx file format of the original MNIST distribution, and the public/private split.

An idx file is a big-endian header (two zero bytes, a type code, the number of dimensions, then
one uint32 per dimension) followed by the raw array. MNIST uses unsigned bytes (type 0x08).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import DataError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

#: MD5 of the original, uncompressed files as published with MNIST.
PUBLISHED_MD5: dict[str, str] = {
    TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
    TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
    TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
    TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
}

#: The course's slides speak of 50,000 training images: the rest is our private hold-out.
PUBLIC_TRAIN_SIZE = 50_000

_UBYTE = 0x08


def encode(array: np.ndarray) -> bytes:
    """Serialise a uint8 array (labels: 1-D, images: 3-D) as an idx file."""
    if array.dtype != np.uint8:
        raise ValueError(f"idx files here hold uint8, got {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, _UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode(data: bytes | memoryview, name: str = "idx data") -> np.ndarray:
    """Parse idx bytes into an array, checking that the header and the length agree."""
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an idx file ({len(data)} bytes)")
    zero1, zero2, code, ndim = struct.unpack_from(">BBBB", data, 0)
    if zero1 or zero2 or code != _UBYTE or ndim not in (1, 3):
        raise DataError(f"{name}: not an unsigned-byte idx file (header {bytes(data[:4])!r})")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{name}: header truncated")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{name}: {len(data)} bytes, header promises {expected}; file truncated?")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def read(path: Path) -> np.ndarray:
    """Memory-map an idx file read-only; the pages are shared by every process that reads it."""
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    return decode(memoryview(mapped), name=str(path))


def md5_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


@dataclass(frozen=True)
class MnistSplit:
    """The three parts the grader works with. Images are uint8 (N, 28, 28), labels uint8 (N,).

    `train` is what students see, `holdout` never enters a sandbox, `test` is public.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    holdout_images: np.ndarray
    holdout_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def split(files: dict[str, np.ndarray], public_size: int = PUBLIC_TRAIN_SIZE) -> MnistSplit:
    """Cut the official training set into the public part and the private hold-out."""
    images, labels = files[TRAIN_IMAGES], files[TRAIN_LABELS]
    if len(images) != len(labels):
        raise DataError(f"{len(images)} training images but {len(labels)} labels")
    if not 0 < public_size < len(images):
        raise DataError(f"cannot hold out the last {len(images) - public_size} of {len(images)}")
    return MnistSplit(
        train_images=images[:public_size],
        train_labels=labels[:public_size],
        holdout_images=images[public_size:],
        holdout_labels=labels[public_size:],
        test_images=files[TEST_IMAGES],
        test_labels=files[TEST_LABELS],
    )
