"""Shared fixtures: small synthetic MNIST files, so tests never need the real data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from grader.data import idx


@pytest.fixture(scope="session")
def synthetic_arrays() -> dict[str, np.ndarray]:
    """60 training and 12 test 'digits': random bytes with labels 0..9 (deterministic)."""
    rng = np.random.default_rng(0)
    return {
        idx.TRAIN_IMAGES: rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        idx.TRAIN_LABELS: (np.arange(60) % 10).astype(np.uint8),
        idx.TEST_IMAGES: rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        idx.TEST_LABELS: (np.arange(12) % 10).astype(np.uint8),
    }


@pytest.fixture(scope="session")
def synthetic_files(synthetic_arrays) -> dict[str, bytes]:
    return {name: idx.encode(array) for name, array in synthetic_arrays.items()}


@pytest.fixture(scope="session")
def synthetic_md5(synthetic_files) -> dict[str, str]:
    """The 'published' checksums of the synthetic files."""
    return {name: hashlib.md5(data).hexdigest() for name, data in synthetic_files.items()}


@pytest.fixture
def idx_folder(tmp_path: Path, synthetic_files) -> Path:
    """A folder holding the four synthetic idx files, as a TA would place them by hand."""
    folder = tmp_path / "placed"
    folder.mkdir()
    for name, data in synthetic_files.items():
        (folder / name).write_bytes(data)
    return folder
