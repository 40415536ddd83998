"""The Dask backend: what travels to a worker, and a real cluster on 127.0.0.1 (a `dask
scheduler` and two `dask worker` processes) grading the W4 examples with the same scores as
this machine does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import assignments, intake
from grader.run import dask as cluster
from grader.run.dask import ClusterError, Parcel, WorkerSide
from grader.sandbox import bwrap

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
BIN = Path(sys.executable).parent
GRADE, DASK = str(BIN / "grade"), str(BIN / "dask")
W4_STUDENTS = ["alice", "bob", "carol", "dave", "erin"]


# ----------------------------------------------------------------------------- what travels


def test_a_parcel_carries_the_submission_and_its_files(tmp_path: Path):
    w5 = assignments.find("W5")
    student = tmp_path / "class" / "zoe"
    student.mkdir(parents=True)
    (student / "W5_Save_Model.ipynb").write_bytes(
        (SUBMISSIONS / "alice_W5_Save_Model.ipynb").read_bytes())
    (student / "net_params.pkl").write_bytes(b"\x80\x04weights")
    found, rejected = intake.collect(tmp_path / "class", w5, tmp_path / "scratch")
    assert not rejected and len(found) == 1
    parcel = Parcel.of("key-1", found[0])
    landed = tmp_path / "worker"
    landed.mkdir()
    copy = parcel.unpack(landed, w5)
    assert copy.path.read_bytes() == found[0].path.read_bytes()
    assert [(f.name, f.read_bytes()) for f in copy.files] == [("net_params.pkl",
                                                               b"\x80\x04weights")]
    assert (copy.student, copy.notebook, copy.content_hash) == (
        "zoe", found[0].notebook, found[0].content_hash)
    assert all(landed in f.parents for f in (copy.path, *copy.files))


def test_a_parcel_never_writes_outside_its_folder(tmp_path: Path):
    w4 = assignments.find("W4")
    bad = Parcel("k", "mallory", "W4_Homework.ipynb", "../../evil.ipynb", b"{}",
                 (("..", b"x"),), "hash")
    (tmp_path / "worker").mkdir()
    with pytest.raises(ClusterError, match="refusing the file name"):
        bad.unpack(tmp_path / "worker", w4)
    assert not (tmp_path / "evil.ipynb").exists()
    assert (tmp_path / "worker" / "evil.ipynb").exists()  # the name, without its path


def test_the_shipped_assignment_is_the_same_rubric():
    w4 = assignments.find("W4")
    worker = WorkerSide()
    shipped = worker.unpack_assignment(w4.name, cluster.pack_assignment(w4))
    assert shipped.folder != w4.folder
    assert shipped.digest() == w4.digest()  # same gradebook key on both sides
    assert worker.unpack_assignment(w4.name, cluster.pack_assignment(w4)) is shipped


def test_without_dask_the_error_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what a missing package looks like
    with pytest.raises(ClusterError) as caught:
        cluster.distributed_module()
    assert str(caught.value) == "--cluster needs Dask: pip install 'torchgrade[cluster]'"


def test_no_scheduler_at_the_address_is_one_line(tmp_path: Path):
    port = _free_port()
    result = subprocess.run([GRADE, str(SUBMISSIONS), "--hw", "W4", "--out", str(tmp_path),
                             "--cluster", f"tcp://127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: no Dask scheduler answers at tcp://127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- a real cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _end(procs: list[subprocess.Popen]) -> None:
    """SIGTERM (Dask closes gracefully) to each process group, a wait until the groups are
    empty (a nanny's worker process outlives its nanny by a moment), then SIGKILL."""
    groups = {p.pid for p in procs}
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _processes_in_groups(groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    for proc in procs:
        proc.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory) -> Iterator[dict]:
    """A `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    root = tmp_path_factory.mktemp("dask")
    worker_tmp = root / "tmp"
    worker_tmp.mkdir()
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    logs = (root / "dask.log").open("wb")
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", port,
                               "--no-dashboard"], stdout=logs, stderr=logs,
                              start_new_session=True)]
    try:
        for n in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{n}",
                 "--local-directory", str(root / f"w{n}")],
                stdout=logs, stderr=logs, start_new_session=True,
                env={**os.environ, "TMPDIR": str(worker_tmp)}))
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield {"address": address, "procs": procs, "tmp": worker_tmp}
    finally:
        _end(procs)
        logs.close()
    assert _processes_in_groups({p.pid for p in procs}) == []  # nannies' workers too
    left = [p.name for p in worker_tmp.iterdir()]
    assert left == [], left  # the workers removed their parcels and shipped assignments


def _processes_in_groups(groups: set[int]) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in groups and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _scores(out: Path) -> dict[str, tuple[str, float]]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        rows = db.execute("SELECT student, outcome, total FROM results").fetchall()
    finally:
        db.close()
    return {student: (outcome, total) for student, outcome, total in rows}


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_a_dask_cluster_grades_as_this_machine_does(dask_cluster, tmp_path: Path):
    import distributed

    started = time.monotonic()
    on_cluster = subprocess.run(
        [GRADE, str(SUBMISSIONS), "--hw", "W4", "--cluster", dask_cluster["address"],
         "--out", str(tmp_path / "cluster")], capture_output=True, text=True, timeout=600)
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert "5 graded, 0 unchanged, 0 rejected" in on_cluster.stdout
    with distributed.Client(dask_cluster["address"], set_as_default=False) as client:
        ran = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran  # both workers graded
    leftovers = [p.name for p in dask_cluster["tmp"].iterdir()
                 if p.name.startswith(("torchgrade-run-", "torchgrade-sub-", "torchgrade-parcel"))]
    assert leftovers == []  # each worker closed its sandboxes and removed the parcels

    here = subprocess.run([GRADE, str(SUBMISSIONS), "--hw", "W4", "--jobs", "1",
                           "--out", str(tmp_path / "here")],
                          capture_output=True, text=True, timeout=600)
    assert here.returncode == 0, here.stderr
    cluster_scores, local_scores = _scores(tmp_path / "cluster"), _scores(tmp_path / "here")
    assert sorted(cluster_scores) == W4_STUDENTS
    assert cluster_scores == local_scores
    assert cluster_scores["alice"] == ("completed", 14)
    print(f"cluster test: {time.monotonic() - started:.1f} s")
