"""Grading on a Dask cluster: `--cluster tcp://HOST:8786` (an existing scheduler),
`--cluster local` (a LocalCluster of --jobs worker processes on this machine) or
`--cluster slurm` (workers started as Slurm jobs for the run, by slurm.py).

Each task runs a grading on a worker, sandbox and all; the Result comes back to this process,
which alone writes the gradebook. A worker need not share this machine's filesystem: the task
carries the notebook's bytes and its extra files, and the assignment folder is shipped once per
run (scattered to every worker) and unpacked into a temporary folder there, so what grades a
submission is exactly the rubric whose digest keys its gradebook row. Workers need torchgrade
installed (`pip install 'torchgrade[cluster]'`, for `grader` and `reference`), bubblewrap, and
MNIST in their own cache (`grade data fetch`) when the client has it.

One grading per worker process at a time: a grading runs pytest in the worker process and
forks a sandbox from it, so two gradings must never share a process. Workers are started with
one thread (`--nthreads 1`; LocalCluster threads_per_worker=1), and the worker's one grading
slot (`WorkerSide.one_at_a_time`) holds any further thread back, so a worker started with more
threads is slower, never wrong. That is preferred to a fresh subprocess per task, which would
pay for importing torch and mapping MNIST on every submission; the student's code already runs
in a process of its own, the sandbox.

Before the first grading, one task asks a worker whether it has what grading needs
(`worker_lacks`: bubblewrap, MNIST, a GPU where one was asked for); a worker without it stops
the run with one line, instead of failing every submission. A task whose worker is lost (on
Slurm: its job cancelled or pre-empted) is run again by the scheduler up to its
`allowed-failures`, then recorded failed with the reason, to be graded on the next run.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import warnings
import zipfile
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any

from grader import assignments, data, intake
from grader.assignments import Assignment
from grader.errors import DataError, GraderError
from grader.intake import Submission
from grader.judge.grade import GRADED_AGAIN
from grader.results import Result
from grader.run.grading import Grading, Job
from grader.run.plan import GpuSlots, Plan
from grader.run.progress import Reporter
from grader.run.stop import InFlight, wait_until_stopped
from grader.sandbox import SandboxConfig, bwrap
from grader.text import clean_text

if TYPE_CHECKING:
    from distributed import Client

    from grader.run.slurm import SlurmRun

CONNECT_TIMEOUT_S = 20
CHECK_TIMEOUT_S = 300    # the first task: a worker imports torchgrade (and torch) to run it
WINDOW_MIN = 64          # tasks out at once: enough for an autoscaler to see the demand
WINDOW_PER_WORKER = 4


class ClusterError(GraderError):
    """The Dask cluster cannot be used: Dask missing, no scheduler at the address, no GPU worker
    for a GPU run."""

    exit_code = 2


def distributed_module() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs Dask: pip install 'torchgrade[cluster]'") from None
    return distributed


# ----------------------------------------------------------------------------- what travels


@dataclass(frozen=True)
class Parcel:
    """One submission as bytes, for a worker that cannot read the client's files."""

    key: str
    student: str
    notebook: str                      # the assignment's notebook name
    filename: str                      # the handed-in file's name
    content: bytes
    files: tuple[tuple[str, bytes], ...]
    content_hash: str

    @classmethod
    def of(cls, key: str, submission: Submission) -> Parcel:
        """Read the submission's plain files (never through a link: intake.read_regular)."""
        return cls(key, submission.student, submission.notebook.name, submission.path.name,
                   intake.read_regular(submission.path, intake.MAX_NOTEBOOK_BYTES),
                   tuple((p.name, intake.read_regular(p, intake.MAX_ARCHIVE_BYTES))
                         for p in submission.files),
                   submission.content_hash)

    def unpack(self, folder: Path, assignment: Assignment) -> Submission:
        """Write the files into `folder` and describe them as the intake would have."""
        notebook = next((n for n in assignment.notebooks if n.name == self.notebook), None)
        if notebook is None:
            raise ClusterError(f"{self.notebook} is not a notebook of {assignment.name}")
        path = folder / plain_name(self.filename)
        path.write_bytes(self.content)
        extras = folder / "files"
        extras.mkdir()
        files = []
        for name, content in self.files:
            target = extras / plain_name(name)
            target.write_bytes(content)
            files.append(target)
        return Submission(self.student, notebook, path, tuple(files), self.content_hash)


def plain_name(name: str) -> str:
    plain = PurePosixPath(name).name
    if plain in ("", ".", ".."):
        raise ClusterError(f"refusing the file name {name!r}")
    return plain


def pack_assignment(assignment: Assignment) -> bytes:
    """The assignment folder as a zip, for workers without the client's assignments."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in assignment.folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(assignment.folder).as_posix())
    return buffer.getvalue()


# ----------------------------------------------------------------------------- on the worker


@dataclass
class WorkerSide:
    """What a Dask worker process keeps for the gradings it runs: its one grading slot, the
    gradings in flight (for a stop from the client), the assignments shipped to it, MNIST."""

    one_at_a_time: threading.Lock = field(default_factory=threading.Lock)
    in_flight: InFlight = field(default_factory=InFlight)
    grading: Grading = field(default_factory=Grading)
    unpacked: dict[str, Assignment] = field(default_factory=dict)
    unpack_lock: threading.Lock = field(default_factory=threading.Lock)

    def unpack_assignment(self, name: str, blob: bytes) -> Assignment:
        """The shipped assignment, unpacked once per worker process into the worker's own
        directory, which Dask removes when the worker closes (and purges if it died)."""
        digest = hashlib.sha256(blob).hexdigest()
        with self.unpack_lock:
            if digest not in self.unpacked:
                root = Path(tempfile.mkdtemp(prefix="torchgrade-assignment-",
                                             dir=_worker_dir()))
                atexit.register(shutil.rmtree, root, True)
                folder = root / plain_name(name)
                with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                    zf.extractall(folder)  # made by pack_assignment from the client's own folder
                self.unpacked[digest] = assignments.load(folder)
            return self.unpacked[digest]

    def grade(self, parcel: Parcel, assignment_name: str, assignment_blob: bytes,
              config: SandboxConfig, local_devices: tuple[int, ...] | None) -> Result:
        with self.one_at_a_time:
            assignment = self.unpack_assignment(assignment_name, assignment_blob)
            config = _worker_config(config, local_devices)
            self.in_flight.start(parcel.key)
            try:
                with tempfile.TemporaryDirectory(prefix="torchgrade-parcel-") as folder:
                    submission = parcel.unpack(Path(folder).resolve(), assignment)
                    result = self.grading.grade(submission, assignment, config)
            finally:
                stopped = self.in_flight.finish(parcel.key)
            if stopped:
                raise ClusterError(f"grading of {parcel.student} {parcel.notebook} was stopped")
            return result


#: This worker process's side. Dask calls the task and the stop as plain functions by name
#: (they travel pickled by reference), so what they share lives with the process.
WORKER = WorkerSide()


def grade_parcel(parcel: Parcel, assignment_name: str, assignment_blob: bytes,
                 config: SandboxConfig, local_devices: tuple[int, ...] | None) -> Result:
    """The task a worker runs: unpack, grade in the sandbox, hand back the Result."""
    return WORKER.grade(parcel, assignment_name, assignment_blob, config, local_devices)


def stop_gradings(keys: list[str]) -> int:
    """Run on every worker when the client is stopped: end the sandbox of a listed grading
    in flight here, and say how many of them are still running (the client asks until none
    is). Dask cannot stop a running task; with its sandbox killed the task finishes at once,
    its Session still closes and cleans up, and its result is dropped."""
    return WORKER.in_flight.stop(keys)


def worker_lacks(data_view: bool, sandboxed: bool, gpu: bool) -> list[str]:
    """The first task of a run on a cluster: what this worker lacks of what the run needs,
    each as a phrase naming the worker and what to do (empty when nothing). That the task
    runs at all shows torchgrade imports there."""
    host = os.uname().nodename
    lacks = []
    if sandboxed and bwrap.executable() is None:
        lacks.append(f"bubblewrap is not installed on {host} (apt-get install bubblewrap)")
    if data_view and not data.is_cached():
        lacks.append(f"MNIST is not in {data.data_root()} on {host} (set TORCHGRADE_DATA to a "
                     "folder every node shares and run `grade data fetch` once)")
    if gpu and not Path(f"/dev/nvidia{_worker_gpu(None)}").exists():
        lacks.append(f"{host} has no /dev/nvidia{_worker_gpu(None)} for its GPU")
    return lacks


def _worker_dir() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):  # not in a Dask worker: the system's temporary folder
        return None


def _worker_config(config: SandboxConfig, local_devices: tuple[int, ...] | None
                   ) -> SandboxConfig:
    view = None
    if config.data_view is not None:
        if not data.is_cached():
            raise DataError(f"MNIST is not cached on worker {os.uname().nodename}: run "
                            "`grade data fetch` there")
        view = data.public_view()
    gpus = (_worker_gpu(local_devices),) if config.gpus else ()
    return replace(config, data_view=view, gpus=gpus)


def _worker_gpu(local_devices: tuple[int, ...] | None) -> int:
    """This worker's GPU: a LocalCluster worker's by its number; in a Slurm job, the first
    of SLURM_JOB_GPUS (the node's own GPU ids; a job confined by cgroups, ConstrainDevices,
    sees CUDA_VISIBLE_DEVICES=0 whichever GPU it got, and the sandbox binds /dev/nvidiaN by
    this index); else the first index of the worker's CUDA_VISIBLE_DEVICES (start one worker
    per GPU with it set); else GPU 0."""
    if local_devices:
        from distributed import get_worker

        name = get_worker().name
        if isinstance(name, int):
            return GpuSlots(local_devices).device_of_worker(name)
    for variable in ("SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        first = os.environ.get(variable, "").split(",")[0].strip()
        if first.isdigit():
            return int(first)
    return 0


# ----------------------------------------------------------------------------- on the client


@dataclass
class Dask:
    assignment: Assignment
    config: SandboxConfig
    plan: Plan

    #: gradings run on the cluster: this process raises on a stop and ends them there
    stops_sandboxes_here = False

    def run(self, pending: list[Job], report: Reporter) -> None:
        """Submit the jobs to the cluster and report each result as it comes back. At most a
        window of tasks is out at once (each carries its notebook's bytes through the
        scheduler); the next is sent as a result comes back."""
        distributed = distributed_module()
        with _client(self.plan, len(pending)) as (client, slurm):
            if slurm is not None:
                slurm.wait_for_a_worker(client)
            else:
                _wait_for_a_worker(client, self.plan)
            run = _ClusterRun(self, client, distributed, pending, report, slurm)
            try:
                if self.plan.cluster != "local":
                    _check_a_worker(client, self.config, run.resources, slurm)
                run.go()
            except BaseException:
                run.stop()
                raise


class _ClusterRun:
    """One run's state on the client: the tasks out, the queue, the shipped assignment."""

    def __init__(self, backend: Dask, client: Client, distributed: ModuleType,
                 pending: list[Job], report: Reporter, slurm: SlurmRun | None = None) -> None:
        self.client, self.report, self.slurm = client, report, slurm
        self.assignment = backend.assignment
        self.resources = _gpu_resources(client, backend.plan)
        blob = pack_assignment(backend.assignment)
        # Slurm jobs come and go: data scattered to them would go with the last that held
        # it, so there each task carries the assignment (a few tens of kB) itself.
        self.blob = blob if slurm is not None else client.scatter(blob, broadcast=True,
                                                                  hash=True)
        config = replace(backend.config, gpus=(0,) if self.resources else ())
        if backend.plan.slurm is not None and config.torch_threads is None:
            config = replace(config, torch_threads=backend.plan.slurm.cpus)
        self.config = config
        self.local = backend.plan.devices if backend.plan.cluster == "local" else None
        self.queue = deque(enumerate(pending))
        self.futures: dict[Any, Job] = {}
        self.finished = distributed.as_completed([], loop=client.loop)
        if slurm is not None:
            slurm.on_error = self.wake

    def go(self) -> None:
        for _ in range(min(len(self.queue), _window(self.client))):
            self.submit()
        self._tell_slurm()
        for future in self.finished:
            if self.slurm is not None and self.slurm.error is not None:
                raise self.slurm.error
            key, submission = self.futures.pop(future)
            self.report(key, _result_of(future, submission))
            self.submit()
            self._tell_slurm()

    def _tell_slurm(self) -> None:
        if self.slurm is not None:
            self.slurm.left(len(self.queue), len(self.futures))

    def wake(self) -> None:
        """Cancel what is out, so that go() wakes up and raises the Slurm jobs' error."""
        with suppress(Exception):
            self.client.cancel(list(self.futures))

    def submit(self) -> None:
        """Send the next submission; one whose files cannot be read is reported failed."""
        while self.queue:
            number, (key, submission) = self.queue.popleft()
            try:
                parcel = Parcel.of(key, submission)
            except (intake.RefusedFile, OSError) as exc:
                self.report(key, Result.failed(
                    submission.student, submission.notebook.name, submission.content_hash,
                    f"{clean_text(exc, 300)}; {intake.PLAIN_FILES_ONLY}; {GRADED_AGAIN}"))
                continue
            with warnings.catch_warnings():  # a notebook with large outputs is one task
                warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
                future = self.client.submit(
                    grade_parcel, parcel, self.assignment.name, self.blob, self.config,
                    self.local, pure=False, resources=self.resources,
                    key=f"grade-{number}-{key[:8]}")
            self.futures[future] = (key, submission)
            self.finished.add(future)
            return

    def stop(self) -> None:
        """Cancel what has not started, end the sandboxes of what has, and wait (a while)
        until those gradings have cleaned up after themselves."""
        keys = [key for key, _ in self.futures.values()]
        with suppress(Exception):
            self.client.cancel(list(self.futures))

        def still_running() -> int | None:
            try:
                running = self.client.run(stop_gradings, keys, on_error="ignore")
            except Exception:  # noqa: BLE001 - a cluster going away has nothing left to stop
                return None
            return sum(n for n in running.values() if isinstance(n, int))

        wait_until_stopped(still_running)


@contextmanager
def _client(plan: Plan, wanted: int) -> Iterator[tuple[Client, SlurmRun | None]]:
    distributed = distributed_module()
    quiet = [logging.getLogger(name) for name in ("distributed", "dask_jobqueue")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # a cluster closed mid-run logs what it lost; we know
        logger.setLevel(logging.CRITICAL)
    try:
        if plan.cluster == "local":
            with _local_cluster(plan, distributed) as local, \
                    distributed.Client(local, set_as_default=False) as client:
                yield client, None
            return
        if plan.cluster == "slurm":
            from grader.run.slurm import SlurmJobs, slurm_client

            with slurm_client(plan.slurm or SlurmJobs(), wanted, distributed) as (client, run):
                yield client, run
            return
        try:
            _knock(plan.cluster)
            client = distributed.Client(plan.cluster, timeout=CONNECT_TIMEOUT_S,
                                        set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"no Dask scheduler answers at {plan.cluster}: start one "
                               f"with `dask scheduler` ({type(exc).__name__})") from None
        with client:
            yield client, None
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _knock(address: str | None) -> None:
    """Fail at once on a tcp:// address nobody listens on (Dask itself retries until its
    timeout); other protocols are left to Dask."""
    scheme, _, rest = (address or "").partition("://")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host and port.isdigit():
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()


@contextmanager
def _local_cluster(plan: Plan, distributed: ModuleType) -> Iterator[Any]:
    """A LocalCluster of worker processes that ignore Ctrl-C: the terminal sends SIGINT to
    the whole process group, and this process, not the workers, decides how to stop them.
    Its scratch folder goes when it does."""
    import dask

    scratch = tempfile.mkdtemp(prefix="torchgrade-dask-")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the spawned workers
    try:
        with dask.config.set({"temporary-directory": scratch}):
            local = distributed.LocalCluster(
                n_workers=plan.workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.CRITICAL,
                resources={"GPU": 1} if plan.devices else None)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        with local:
            yield local
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _gpu_resources(client: Client, plan: Plan) -> dict[str, float] | None:
    if plan.cluster == "local":
        return {"GPU": 1} if plan.devices else None
    if plan.cluster_gpu is False:
        return None
    workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
    if any(w.get("resources", {}).get("GPU") for w in workers):
        return {"GPU": 1}
    if plan.cluster_gpu:
        raise ClusterError(f"--gpus: no worker at {plan.cluster} offers a GPU; start "
                           "workers with `--resources GPU=1`")
    logging.getLogger(__name__).warning("no GPU worker at %s: grading on CPUs", plan.cluster)
    return None


def _result_of(future: Any, submission: Submission) -> Result:
    """The task's Result; a task that raised (its worker died, a worker without MNIST, a
    grading that failed outside grade()) is that submission's failure, not the batch's."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one task's failure is recorded for it alone
        if type(exc).__name__ == "KilledWorker":
            reason = (f"the worker grading it was lost {_attempts(exc)} times (its process "
                      "died, or its Slurm job was cancelled, pre-empted or out of time or "
                      "memory)")
        else:
            reason = (f"the grading on the cluster failed ({type(exc).__name__}: "
                      f"{clean_text(exc, 300)})")
        return Result.failed(submission.student, submission.notebook.name,
                             submission.content_hash, f"{reason}; {GRADED_AGAIN}")


def _attempts(killed: Exception) -> int:
    allowed = getattr(killed, "allowed_failures", None)
    return allowed + 1 if isinstance(allowed, int) else 2


def _check_a_worker(client: Client, config: SandboxConfig,
                    resources: dict[str, float] | None, slurm: SlurmRun | None) -> None:
    """Run `worker_lacks` as the run's first task; stop the run with one line if the worker
    lacks anything, or cannot run torchgrade at all."""
    future = client.submit(worker_lacks, config.data_view is not None, config.sandboxed,
                           bool(resources), pure=False, resources=resources)
    if slurm is not None:
        wake, slurm.on_error = slurm.on_error, future.cancel
    try:
        lacks = future.result(timeout=CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the worker cannot grade
        if slurm is not None and slurm.error is not None:
            raise slurm.error from None
        if isinstance(exc, TimeoutError):
            raise ClusterError(f"no worker ran the run's first task within {CHECK_TIMEOUT_S} "
                               "s: are the workers busy with another run?") from None
        where = "the Slurm jobs' workers" if slurm is not None else "the Dask workers"
        said = clean_text(" ".join(str(exc).split()), 200)
        raise ClusterError(f"{where} cannot run torchgrade ({type(exc).__name__}: {said}): "
                           "install it where their Python imports it, the same version as "
                           "here") from None
    finally:
        if slurm is not None:
            slurm.on_error = wake
    if lacks:
        raise ClusterError("a worker cannot grade: " + "; ".join(lacks))


def _window(client: Client) -> int:
    workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    return max(WINDOW_MIN, WINDOW_PER_WORKER * workers)


def _wait_for_a_worker(client: Client, plan: Plan) -> None:
    if plan.cluster == "local" or client.scheduler_info().get("workers"):
        return
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise ClusterError(f"no Dask worker is connected to {plan.cluster}: start one with "
                           f"`dask worker {plan.cluster} --nthreads 1`") from None
