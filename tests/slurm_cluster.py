"""A real one-node Slurm cluster on this machine, for the tests of `--cluster slurm`.

munged, slurmctld and slurmd run as root in the foreground, as children of the test process
(so they are stopped by their own ids), with every state, spool, log, pid and socket path
inside one temporary folder and a munge key made there: nothing of the machine's own Slurm or
munge setup (/etc/slurm, /run/munge) is read or touched. Clients (sbatch, squeue, scancel,
and so the grader's SLURMCluster) find this cluster through SLURM_CONF, which `SlurmCluster.env`
sets. The configuration is the smallest Slurm 22.05 accepts: processes tracked by their parent
(proctrack/linuxproc, no cgroups), no task plugin, cons_tres selection, the machine's CPUs and
memory as one node, one partition.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
PARTITION = "grading"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def why_not() -> str | None:
    """Why this machine cannot run the test cluster, or None when it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the Slurm daemons of the test cluster run as root, and this is not root"
    missing = [name for name in DAEMONS if _which(name) is None]
    if missing:
        return (f"Slurm or munge is not installed ({', '.join(missing)} missing): "
                "`make system` as root installs Debian's slurmctld, slurmd and munge")
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


@dataclass
class SlurmCluster:
    """The running test cluster: where it lives and how a client reaches it."""

    root: Path
    env: dict[str, str]
    partition: str = PARTITION
    procs: list[subprocess.Popen] = field(default_factory=list)

    def client(self, *args: str, timeout: float = 30) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        done = subprocess.run([_which(args[0]) or args[0], *args[1:]], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[str]:
        """The ids of the jobs in the queue (pending, running or completing)."""
        return self.client("squeue", "--noheader", "--format=%i").split()

    def running(self) -> list[str]:
        return self.client("squeue", "--noheader", "--states=RUNNING", "--format=%i").split()

    def log(self, name: str) -> str:
        path = self.root / "log" / name
        return path.read_text(errors="replace") if path.exists() else ""


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _memory_mb() -> int:
    """The node's memory for slurm.conf: a little under MemTotal (slurmd drains a node that
    claims more than it has)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _config(root: Path, host: str, ports: list[int]) -> str:
    cpus = os.cpu_count() or 1
    return "\n".join([
        "ClusterName=torchgrade-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "SchedulerType=sched/builtin",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "KillWait=5",          # a cancelled job's processes: SIGTERM, then SIGKILL after 5 s
        "MinJobAge=5",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_memory_mb()} "
        "State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@contextlib.contextmanager
def slurm_cluster(root: Path) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd under `root`; stop them (and cancel every job
    left) however the block ends."""
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_config(root, host, _free_ports(2)))
    key = root / "munge" / "munge.key"
    subprocess.run([_which("mungekey"), "--create", "--force", f"--keyfile={key}"], check=True,
                   capture_output=True, timeout=30)
    key.chmod(0o600)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(root, env)
    munge = root / "munge"
    logs = (root / "log" / "daemons.out").open("ab")
    try:
        cluster.procs.append(subprocess.Popen(
            [_which("munged"), "--foreground", "--force", f"--socket={munge / 'munge.socket'}",
             f"--key-file={key}", f"--pid-file={munge / 'munged.pid'}",
             f"--log-file={root / 'log' / 'munged.log'}", f"--seed-file={munge / 'seed'}"],
            stdout=logs, stderr=logs, env=env, start_new_session=True))
        _wait_for(lambda: (munge / "munge.socket").exists(), "munged", cluster)
        cluster.procs.append(subprocess.Popen(
            [_which("slurmctld"), "-D", "-i"], stdout=logs, stderr=logs, env=env,
            start_new_session=True))
        cluster.procs.append(subprocess.Popen(
            [_which("slurmd"), "-D", "-N", host], stdout=logs, stderr=logs, env=env,
            start_new_session=True))
        _wait_for(lambda: _idle(cluster), "the node to be idle", cluster)
        yield cluster
    finally:
        try:
            _cancel_everything(cluster)
        finally:
            _stop(cluster.procs)
            logs.close()


def _idle(cluster: SlurmCluster) -> bool:
    try:
        states = cluster.client("sinfo", "--noheader", "--format=%T", timeout=10).split()
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return states == ["idle"]


def _wait_for(ready: object, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        if any(p.poll() is not None for p in cluster.procs):
            break
        time.sleep(0.3)
    raise RuntimeError(f"the test Slurm cluster did not start ({what}): "
                       + " | ".join(cluster.log(n)[-600:] for n in (
                           "daemons.out", "munged.log", "slurmctld.log", "slurmd.log")))


def _cancel_everything(cluster: SlurmCluster) -> None:
    """Cancel every job still queued and wait until the node has ended them (their
    slurmstepd processes are not children of slurmd, so this must happen before it stops)."""
    if not cluster.procs or any(p.poll() is not None for p in cluster.procs):
        return
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        if cluster.jobs():
            cluster.client("scancel", "--full", *cluster.jobs())
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while cluster.jobs() and time.monotonic() < deadline:
            time.sleep(0.5)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each daemon, newest first; SIGKILL to any that has not ended in time."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
