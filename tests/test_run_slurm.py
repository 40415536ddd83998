"""`--cluster slurm`: the jobs torchgrade asks Slurm for, and a real one-node Slurm cluster on
this machine (munged, slurmctld and slurmd in a temporary folder, tests/slurm_cluster.py)
grading the W4 examples as this machine does, losing a job mid-batch without losing or
doubling a grade, and leaving no job behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader import assignments
from grader.results import Result
from grader.run import dask as cluster
from grader.run.plan import PlanError, SlurmJobs, plan
from grader.sandbox import bwrap
from tests import slurm_cluster as test_slurm

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
GRADE = str(Path(sys.executable).parent / "grade")
W4_STUDENTS = ["alice", "bob", "carol", "dave", "erin"]
#: Two jobs of one core: the machine (and CI's) has two.
SLURM_ARGS = ["--cluster", "slurm", "--slurm-jobs", "2", "--job-cpus", "1",
              "--walltime", "00:20:00"]


# ----------------------------------------------------------------------------- what is asked


def test_each_job_is_one_single_threaded_worker_with_the_gpu_where_asked():
    pytest.importorskip("dask_jobqueue")
    from grader.run.slurm import job_options

    cpu = job_options(SlurmJobs(jobs=3, partition="short", cpus=6, memory_mb=6144,
                                log_directory="/shared/logs"), "torchgrade-x")
    assert (cpu["cores"], cpu["processes"], cpu["job_cpu"]) == (1, 1, 6)
    assert (cpu["queue"], cpu["job_name"], cpu["job_mem"]) == ("short", "torchgrade-x",
                                                              "6144M")
    assert "account" not in cpu  # left to jobqueue.yaml, then to Slurm
    assert cpu["job_extra_directives"] == [] and cpu["worker_extra_args"] == []
    gpu = job_options(SlurmJobs(gpus=1, memory_mb=6144), "torchgrade-y")
    assert gpu["job_extra_directives"] == ["--gres=gpu:1"]
    assert gpu["worker_extra_args"] == ["--resources", "GPU=1"]


def test_the_job_script_is_what_slurm_is_asked():
    jobqueue = pytest.importorskip("dask_jobqueue")
    from grader.run.slurm import _job_script, job_options

    script = _job_script(jobqueue, job_options(
        SlurmJobs(partition="gpu", account="course", cpus=8, memory_mb=10240, gpus=1,
                  walltime="04:00:00", log_directory="/shared/logs"), "torchgrade-z"))
    for line in ("#SBATCH -p gpu", "#SBATCH -A course", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=10240M", "#SBATCH -t 04:00:00", "#SBATCH --gres=gpu:1",
                 "#SBATCH -o /shared/logs/torchgrade-z-%J.out"):
        assert line in script.splitlines(), script
    assert "--nthreads 1" in script and "--resources GPU=1" in script


def test_the_plan_books_memory_and_gpus_from_the_assignment():
    w4, w6 = assignments.find("W4"), assignments.find("W6")
    layout = plan(w4, cluster="slurm", slurm=SlurmJobs(jobs=3))
    assert layout.cluster == "slurm" and layout.workers == 3 and layout.cluster_gpu is False
    assert layout.slurm is not None
    assert layout.slurm.memory_mb == w4.limits.memory_mb + 2048
    on_cpus = plan(w6, cluster="slurm", slurm=SlurmJobs())
    assert on_cpus.slurm is not None and on_cpus.slurm.gpus == 0
    assert "--gpus-per-job 1" in on_cpus.notes[0]
    on_gpus = plan(w6, cluster="slurm", gpus=True, slurm=SlurmJobs())
    assert on_gpus.slurm is not None and on_gpus.slurm.gpus == 1 and on_gpus.cluster_gpu
    with pytest.raises(PlanError, match="contradict"):
        plan(w6, cluster="slurm", gpus=False, slurm=SlurmJobs(gpus=1))
    with pytest.raises(PlanError, match="--walltime"):
        SlurmJobs(walltime="four hours")


def test_a_slurm_option_without_cluster_slurm_is_a_usage_error(tmp_path: Path):
    result = subprocess.run([GRADE, str(SUBMISSIONS), "--hw", "W4", "--out", str(tmp_path),
                             "--partition", "gpu"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--partition is for --cluster slurm" in result.stderr


def test_without_dask_jobqueue_the_error_is_one_line(monkeypatch):
    from grader.run.slurm import SlurmError, jobqueue_module

    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(SlurmError) as caught:
        jobqueue_module()
    assert str(caught.value) == ("--cluster slurm needs dask-jobqueue: "
                                 "pip install 'torchgrade[cluster]'")


def test_a_slurm_worker_takes_its_gpu_from_slurm_job_gpus(monkeypatch):
    """Under ConstrainDevices a job sees CUDA_VISIBLE_DEVICES=0 whichever GPU it got; the
    sandbox binds /dev/nvidiaN, so the node's own id (SLURM_JOB_GPUS) is the one to use."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_GPUS", "3")
    assert cluster._worker_gpu(None) == 3
    monkeypatch.delenv("SLURM_JOB_GPUS")
    assert cluster._worker_gpu(None) == 0


def test_a_grading_lost_twice_is_recorded_with_the_reason():
    distributed = pytest.importorskip("distributed")
    w4 = assignments.find("W4")
    submission = SimpleNamespace(student="bob", notebook=w4.notebooks[0], content_hash="h")
    lost = distributed.KilledWorker("grade-1", SimpleNamespace(address="tcp://n1:1"), 1)
    future = SimpleNamespace(result=lambda: (_ for _ in ()).throw(lost))
    result = cluster._result_of(future, submission)  # type: ignore[arg-type]
    assert isinstance(result, Result) and result.run.outcome == "failed"
    assert result.run.reason.startswith("the worker grading it was lost 2 times")
    assert "Slurm job was cancelled, pre-empted" in result.run.reason


# ----------------------------------------------------------------------------- a real Slurm


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[test_slurm.SlurmCluster]:
    """munged, slurmctld and slurmd on this machine, stopped (their jobs cancelled first)
    however the tests end."""
    why = test_slurm.why_not()
    if why is not None:
        pytest.skip(why)
    pytest.importorskip("dask_jobqueue")
    with test_slurm.slurm_cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> dict[str, tuple[str, float]]:
    """The W4 examples' outcomes and scores graded on this machine (`--jobs 2`)."""
    out = tmp_path_factory.mktemp("here")
    graded = subprocess.run([GRADE, str(SUBMISSIONS), "--hw", "W4", "--jobs", "2",
                             "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert graded.returncode == 0, graded.stderr
    scores = _scores(out)
    assert sorted(scores) == W4_STUDENTS
    assert scores["alice"] == ("completed", 14)
    return scores


def _grade(slurm: test_slurm.SlurmCluster, out: Path, *extra: str,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([GRADE, str(SUBMISSIONS), "--hw", "W4", "--out", str(out),
                             *SLURM_ARGS, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or slurm.env)


def _scores(out: Path) -> dict[str, tuple[str, float]]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        rows = db.execute("SELECT student, outcome, total FROM results").fetchall()
    finally:
        db.close()
    assert len(rows) == len({student for student, _, _ in rows}), rows  # one row each
    return {student: (outcome, total) for student, outcome, total in rows}


def _result_lines(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()
            if line.split() and line.split()[0] in W4_STUDENTS]


def _until_empty(slurm: test_slurm.SlurmCluster, timeout: float = 30) -> list[str]:
    """The queue once the jobs cancelled at the end have left it (or what is still there)."""
    deadline = time.monotonic() + timeout
    while (jobs := slurm.jobs()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return jobs


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_slurm_jobs_grade_as_this_machine_does(slurm, here, tmp_path: Path):
    started = time.monotonic()
    on_slurm = _grade(slurm, tmp_path / "slurm")
    stdout, stderr = on_slurm.communicate(timeout=600)
    took = time.monotonic() - started
    assert on_slurm.returncode == 0, stderr
    assert "5 graded, 0 unchanged, 0 rejected" in stdout
    assert sorted(_result_lines(stdout)) == W4_STUDENTS
    assert _until_empty(slurm) == []  # every job of the run ended with it
    logs = sorted(p.name for p in (tmp_path / "slurm" / "slurm-logs").iterdir())
    assert len(logs) == 4 and all(n.startswith("torchgrade-") for n in logs), logs
    slurm_scores = _scores(tmp_path / "slurm")
    assert slurm_scores == here
    print(f"slurm run: {took:.1f} s; scores {sorted(slurm_scores.items())}")


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
@pytest.mark.parametrize("cancelled", [1, 2], ids=["one-job", "both-jobs"])
def test_a_job_cancelled_mid_batch_costs_no_grade(slurm, here, tmp_path: Path,
                                                   cancelled: int):
    """scancel one of the two jobs while its worker grades: the scheduler sends that
    notebook again, and every submission is graded exactly once. Both of them: the jobs
    are replaced, and the same holds."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    started = time.monotonic()
    run = _grade(slurm, tmp_path / "out", env={**slurm.env, "TMPDIR": str(scratch)})
    try:
        victims = _jobs_grading(slurm, scratch, run)[:cancelled]
        slurm.client("scancel", *victims)
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, stderr
    assert "5 graded, 0 unchanged, 0 rejected" in stdout
    assert sorted(_result_lines(stdout)) == W4_STUDENTS  # one line each: none twice
    assert _scores(tmp_path / "out") == here  # the notebook sent again scored the same
    assert _until_empty(slurm) == []
    print(f"slurm run with jobs {victims} cancelled: {time.monotonic() - started:.1f} s")


def _jobs_grading(slurm: test_slurm.SlurmCluster, scratch: Path,
                  run: subprocess.Popen) -> list[str]:
    """The run's two jobs once both workers are grading (two parcel folders in the
    workers' TMPDIR, which sbatch passes on from the grade process)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        running = slurm.running()
        if len(running) == 2 and len(list(scratch.glob("torchgrade-parcel-*"))) == 2:
            return running
        time.sleep(0.2)
    raise AssertionError("no worker started grading within 300 s")


@pytest.mark.slow
@pytest.mark.slurm
def test_ctrl_c_cancels_the_jobs(slurm, tmp_path: Path):
    run = _grade(slurm, tmp_path / "out")
    deadline = time.monotonic() + 120
    while len(slurm.running()) < 2 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert len(slurm.running()) == 2, run.communicate()
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, (stdout, stderr)
    assert "interrupted: 0 graded, 5 left" in stderr
    assert _until_empty(slurm, timeout=15) == []


@pytest.mark.slow
@pytest.mark.slurm
def test_jobs_whose_worker_cannot_start_end_the_run_in_one_line(slurm, tmp_path: Path):
    env = {**slurm.env, "DASK_JOBQUEUE__SLURM__PYTHON": "/bin/false"}
    started = time.monotonic()
    run = _grade(slurm, tmp_path / "out", env=env)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, (stdout, stderr)
    logs = (tmp_path / "out" / "slurm-logs").resolve()
    assert stderr == (f"error: the Slurm jobs of this run ended before their Dask worker "
                      f"started: see their output in {logs}\n")
    assert _until_empty(slurm) == []
    assert time.monotonic() - started < 60


@pytest.mark.slow
@pytest.mark.slurm
def test_a_partition_slurm_refuses_is_one_line(slurm, tmp_path: Path):
    run = _grade(slurm, tmp_path / "out", "--partition", "nowhere")
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, (stdout, stderr)
    assert stderr.startswith("error: Slurm refuses the worker jobs: `sbatch --test-only` "
                             "failed: sbatch: error: invalid partition specified: nowhere")
    assert stderr.count("\n") == 1
    assert slurm.jobs() == []


def test_the_test_cluster_says_why_it_cannot_run(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "not root" in (test_slurm.why_not() or "")
