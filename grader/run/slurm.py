"""Dask workers started as Slurm jobs for one run: `grade ... --cluster slurm`.

The Dask backend (dask.py) grades on them as on any cluster; this module owns the jobs. It
starts a `dask_jobqueue.SLURMCluster` in the `grade` process (the Dask scheduler lives
there, so nothing outlives the run), submits min(--slurm-jobs, submissions) jobs of one
single-threaded worker each, and closes the cluster when the run ends, however it ends:
every job of the run is cancelled, the last ones by their unique job name.

While the run is on, a keeper thread watches the jobs and the workers:

- a job that ends before its worker ever connected (a wrong Python, a node without the
  shared filesystem) means the next ones will too: the run stops with one line that names the
  folder of the jobs' logs;
- a job lost mid-run (cancelled, pre-empted, out of walltime or memory) is replaced, at most
  `jobs` times in a row without a result in between, so a partition that kills every job
  ends the run instead of feeding it jobs for ever; the grading it held is sent once more
  by the scheduler (`allowed-failures` 1) and then recorded with the reason (dask.py);
- when nothing is left to send, the jobs whose worker is idle (or that have not started)
  are cancelled, so a GPU is not held while the last notebooks finish elsewhere.

Each worker holds at most one task (`worker-saturation` 1.0), so the one a lost job takes
with it is the one it was grading, never one that merely waited there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from grader.errors import GraderError
from grader.run.plan import SlurmJobs
from grader.text import clean_text

if TYPE_CHECKING:
    from distributed import Client

POLL_S = 3.0               # how often the keeper looks at the jobs and the workers
SLURM_CALL_TIMEOUT_S = 60  # sbatch --test-only, squeue, scancel
IDLE_POLLS = 2             # a worker idle this many polls in a row may be let go at the end
DEAD_AFTER_S = 20          # no job and no worker this long, none to replace them: give up

#: The scheduler's settings for a run on Slurm jobs (see the module's docstring).
SCHEDULER_CONFIG = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.deploy.lost-worker-timeout": "5s",
}


class SlurmError(GraderError):
    """The Slurm jobs cannot be started or kept: dask-jobqueue or sbatch missing, a job
    Slurm refuses, jobs that end before their worker starts."""

    exit_code = 2


def jobqueue_module() -> ModuleType:
    """dask_jobqueue, imported without the SIGINT handler its import installs (its runner
    module sets one that calls sys.exit(), which would turn Ctrl-C into a silent exit 0 and
    skip the stop that ends the gradings and cancels the jobs: grader.run.stop's stays)."""
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if on_main else None
    try:
        import dask_jobqueue
    except ImportError:
        raise SlurmError("--cluster slurm needs dask-jobqueue: "
                         "pip install 'torchgrade[cluster]'") from None
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGINT, previous)
    return dask_jobqueue


def _slurm_command(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SlurmError(f"--cluster slurm runs on a Slurm login node: `{name}` is not on "
                         "this machine's PATH")
    return found


def _call(*args: str) -> str:
    """A Slurm client command's stdout; its stderr, as one line, in the error."""
    try:
        done = subprocess.run([_slurm_command(args[0]), *args[1:]], capture_output=True,
                              text=True, timeout=SLURM_CALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{args[0]}` did not answer within {SLURM_CALL_TIMEOUT_S} s: is "
                         "slurmctld up? (`sinfo`)") from None
    if done.returncode != 0:
        raise SlurmError(f"`{' '.join(args[:2])}` failed: "
                         f"{joined(done.stderr or done.stdout)}")
    return done.stdout


def joined(text: object, limit: int = 300) -> str:
    """`text` on one line (Slurm's and Dask's messages span several), at most `limit`
    characters."""
    return clean_text(" ".join(str(text).split()), limit)


def job_options(spec: SlurmJobs, job_name: str) -> dict[str, Any]:
    """SLURMCluster's arguments for `spec`. One process of one thread per job (a grading
    forks a sandbox from its worker, so two must never share one); Slurm books `cpus` cores
    for the notebook's torch. Lists the TA set in jobqueue.yaml are kept, ours added."""
    import dask

    directives = list(dask.config.get("jobqueue.slurm.job-extra-directives", None) or [])
    worker_args = list(dask.config.get("jobqueue.slurm.worker-extra-args", None) or [])
    if spec.gpus:
        directives.append(f"--gres=gpu:{spec.gpus}")
        worker_args += ["--resources", f"GPU={spec.gpus}"]
    # `exec`: the worker replaces the job script's shell, so Slurm's signals reach it and its
    # processes (the sandboxes among them) stay in the job's tree: under proctrack/linuxproc
    # a worker left behind by its exited shell would escape the job's end.
    python = dask.config.get("jobqueue.slurm.python", None) or sys.executable
    options: dict[str, Any] = {
        "python": f"exec {python}", "cores": 1, "processes": 1, "job_cpu": spec.cpus,
        "memory": f"{spec.memory_mb}MiB", "job_mem": f"{spec.memory_mb}M",
        "job_name": job_name, "job_extra_directives": directives,
        "worker_extra_args": worker_args, "log_directory": spec.log_directory,
        "scheduler_options": {"dashboard_address": "127.0.0.1:0", "dashboard": False},
    }
    for key, value in (("queue", spec.partition), ("account", spec.account),
                       ("walltime", spec.walltime)):
        if value is not None:
            options[key] = value
    return options


class SlurmRun:
    """One run's Slurm jobs and their keeper; a context manager that cancels them all."""

    def __init__(self, spec: SlurmJobs, wanted: int) -> None:
        self.spec = spec
        self.target = max(1, min(spec.jobs, wanted))
        self.job_name = f"torchgrade-{secrets.token_hex(4)}"
        self.logs = spec.log_directory or tempfile.gettempdir()
        self.cluster: Any = None
        self.client: Client | None = None
        self.error: SlurmError | None = None
        self.on_error: Callable[[], None] = lambda: None
        self._left = (wanted, 0)           # (not yet sent, sent and not back)
        self._seen_worker = False
        self._dead_since: float | None = None
        self._replacements = 0
        self._idle_for: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._config: contextlib.ExitStack | None = None

    # ------------------------------------------------------------------------ start and end

    def __enter__(self) -> SlurmRun:
        jobqueue = jobqueue_module()
        import dask

        if self.spec.log_directory:
            Path(self.spec.log_directory).mkdir(parents=True, exist_ok=True)
        self._config = contextlib.ExitStack()
        self._config.enter_context(dask.config.set(SCHEDULER_CONFIG))
        try:
            options = job_options(self.spec, self.job_name)
            self._test_only(jobqueue, options)
            self.cluster = jobqueue.SLURMCluster(**options)
            self.cluster.scale(jobs=self.target)
            self._thread = threading.Thread(target=self._keep, name="torchgrade-slurm",
                                            daemon=True)
            self._thread.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the cluster (dask-jobqueue cancels the jobs it knows), then cancel by name
        whatever of this run is still queued, so an interrupted close leaves no job."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S * 4)
        try:
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close(timeout=30)
        finally:
            with contextlib.suppress(SlurmError):
                if self.queued():
                    _call("scancel", f"--name={self.job_name}",
                          f"--user={_user()}")
            if self._config is not None:
                self._config.close()

    def _test_only(self, jobqueue: ModuleType, options: dict[str, Any]) -> None:
        """Ask sbatch whether it would take the worker's job (`--test-only` submits
        nothing): a wrong partition, account or walltime is one line now, not jobs that
        never come."""
        script = _job_script(jobqueue, options)
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
            handle.write(script)
        try:
            _call("sbatch", "--test-only", handle.name)
        except SlurmError as exc:
            raise SlurmError(f"Slurm refuses the worker jobs: {exc}; see --partition, "
                             "--account, --walltime") from None
        finally:
            os.unlink(handle.name)

    # ------------------------------------------------------------------------ the client's side

    def wait_for_a_worker(self, client: Client) -> None:
        """Wait until a worker has connected: as long as the jobs wait in Slurm's queue,
        never longer than it takes them to end without one."""
        while not client.scheduler_info(n_workers=-1).get("workers"):
            if self.error is not None:
                raise self.error
            time.sleep(0.5)

    def left(self, unsent: int, out: int) -> None:
        """The client's count of what is still to grade; a result coming back resets the
        budget of replacement jobs."""
        if (unsent, out) != self._left:
            self._replacements = 0
        self._left = (unsent, out)

    # ------------------------------------------------------------------------ the keeper

    def queued(self) -> list[str]:
        """The ids of this run's jobs that Slurm still holds (pending, running, ending)."""
        out = _call("squeue", "--noheader", f"--name={self.job_name}", f"--user={_user()}",
                    "--format=%i")
        return out.split()

    def _keep(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._look()
            except SlurmError as exc:
                self._fail(exc)
            except Exception as exc:  # noqa: BLE001 - a closing cluster; the run ends anyway
                logging.getLogger(__name__).debug("slurm keeper: %s", exc)
            if self.error is not None:
                return

    def _fail(self, error: SlurmError) -> None:
        self.error = error
        self.on_error()

    def _look(self) -> None:
        cluster = self.cluster
        workers = dict(cluster.scheduler_info.get("workers", {}))
        if workers:
            self._seen_worker = True
        unsent, out = self._left
        if unsent + out == 0:
            return
        queued = self.queued()
        submitted = any(getattr(job, "job_id", None) for job in list(cluster.workers.values()))
        missing = len(cluster.worker_spec) - len(cluster.workers)
        if workers or queued or not submitted:
            self._dead_since = None
        elif not self._seen_worker:
            raise SlurmError(f"the Slurm jobs of this run ended before their Dask worker "
                             f"started: see their output in {self.logs}")
        else:
            # A lost job counts as missing only after lost-worker-timeout: wait that long
            # for its replacement before calling the run dead.
            self._dead_since = self._dead_since or time.monotonic()
            hopeless = missing <= 0 or self._replacements >= self.spec.jobs
            if hopeless and time.monotonic() - self._dead_since > DEAD_AFTER_S:
                raise SlurmError(f"every Slurm job of this run ended with {unsent + out} "
                                 f"notebooks left, and the jobs started to replace them "
                                 f"ended too: see their output in {self.logs}")
        if missing > 0 and self._replacements < self.spec.jobs:
            self._replacements += missing
            cluster.scale(jobs=len(cluster.worker_spec))
        elif unsent == 0:
            self._let_go(workers, out)

    def _let_go(self, workers: dict[str, Any], out: int) -> None:
        """Nothing left to send: cancel the jobs not yet started and those whose worker has
        been idle for IDLE_POLLS looks, keeping one job for each grading still out."""
        cluster = self.cluster
        names = {info.get("name"): address for address, info in workers.items()}
        processing = self.client.processing() if self.client is not None else {}
        idle = [name for name, address in names.items()
                if address in processing and not processing[address]]
        self._idle_for = {name: self._idle_for.get(name, 0) + 1 for name in idle}
        surplus = len(cluster.worker_spec) - out
        if surplus <= 0:
            return
        not_started = [n for n in cluster.worker_spec if n not in names]
        let_go = not_started + [n for n in idle if self._idle_for[n] >= IDLE_POLLS]
        for name in let_go[:surplus]:
            cluster.worker_spec.pop(name, None)
        if let_go[:surplus]:
            cluster.scale(jobs=len(cluster.worker_spec))


def _job_script(jobqueue: ModuleType, options: dict[str, Any]) -> str:
    """The job script SLURMCluster would submit (with a placeholder scheduler address)."""
    job = jobqueue.slurm.SLURMJob(
        scheduler="tcp://127.0.0.1:8786", name="check",
        **{k: v for k, v in options.items() if k != "scheduler_options"})
    return str(job.job_script())


def _user() -> str:
    import getpass

    return os.environ.get("USER") or getpass.getuser()


@contextlib.contextmanager
def slurm_client(spec: SlurmJobs, wanted: int, distributed: ModuleType
                 ) -> Iterator[tuple[Client, SlurmRun]]:
    """A Client of a fresh SLURMCluster for `wanted` gradings; every job ends with it."""
    with SlurmRun(spec, wanted) as run, \
            distributed.Client(run.cluster, set_as_default=False) as client:
        run.client = client
        try:
            yield client, run
        finally:
            run.client = None
