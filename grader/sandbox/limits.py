"""Resource limits for one run: a cgroup where the machine allows one, rlimits always.

Which cgroup applies is detected, not assumed: cgroup v1 with writable `memory` and `pids`
hierarchies (a root-run grader on many VMs), cgroup v2 with a writable subtree that has the
`memory` and `pids` controllers (a delegated user slice), or none, in which case memory is held by
RLIMIT_AS and processes by RLIMIT_NPROC. `in_force()` says which, for the report.

Without a sandbox (`grade check` on a laptop, `--no-sandbox`) a run gets what its platform has,
and nothing here may fail where a platform lacks it: cgroups only on Linux; rlimits wherever
`resource` exists (not on Windows), imported when a run is limited, never at import; RLIMIT_AS
only where the kernel enforces it (Linux; macOS accepts it and holds nothing); RLIMIT_NPROC
only in a sandbox, as it counts every process and thread of the user, and a student's desktop
runs more than a notebook's share. The wall-clock limits are the agent's and the session's and
hold everywhere. `without_sandbox()` says in one line what holds on this platform.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from grader.i18n import N_, Words, say

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The first note of a run no sandbox held, and what `grade check` says before it starts one.
NOT_SANDBOXED = N_("not sandboxed: resource limits only")


@dataclass(frozen=True)
class ResourceLimits:
    memory_mb: int = 4096
    pids: int = 256
    cpu_seconds: int = 3600       # CPU time over all threads: about cores x wall limit
    file_mb: int = 512            # largest file a process may write
    open_files: int = 1024
    disk_mb: int = 1024           # size of the writable home and /tmp (tmpfs, charged to memory)

    @classmethod
    def for_run(cls, memory_mb: int, wall_seconds: int, cores: int | None = None) -> ResourceLimits:
        """Limits for a notebook allowed `wall_seconds`: RLIMIT_CPU counts every thread, and
        torch uses every core, so the CPU budget is cores x wall time."""
        cores = cores or os.cpu_count() or 1
        return cls(memory_mb=memory_mb, cpu_seconds=cores * wall_seconds)


def _resource() -> ModuleType | None:
    """The `resource` module, or None on a platform without rlimits (Windows). Imported here,
    when a run is limited, so that importing the sandbox never needs it."""
    try:
        import resource
    except ImportError:
        return None
    return resource


def _address_space_enforced() -> bool:
    """Whether RLIMIT_AS holds: Linux enforces it; macOS accepts the call and holds nothing."""
    return sys.platform.startswith("linux")


def rlimits(limits: ResourceLimits, with_memory: bool, *,
            sandboxed: bool = True) -> list[tuple[int, int]]:
    """(resource, value) pairs applied to the run's first process before exec; none on a
    platform without rlimits. `with_memory`: no cgroup holds this run, so memory and
    processes are held by rlimits. (RLIMIT_NPROC counts every process of the host user, and
    a root grader's sandboxes all run as the same one, so where a pids cgroup holds each run
    it is not set; nor without a sandbox, where the user is a student or TA whose desktop
    alone may run more threads than the limit, so that the kernel could not even start.)"""
    resource = _resource()
    if resource is None:
        return []
    pairs = [
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_mb << 20),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if with_memory and sandboxed:
        pairs.append((resource.RLIMIT_NPROC, limits.pids))
    if with_memory and _address_space_enforced():
        # virtual address space, not resident memory: CUDA-enabled torch reserves several GB
        pairs.append((resource.RLIMIT_AS, (limits.memory_mb + 8192) << 20))
    return pairs


class Cgroup:
    """One run's cgroup (v1: one directory per controller; v2: one directory)."""

    def __init__(self, kind: str, directories: list[Path]) -> None:
        self.kind = kind
        self.directories = directories

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.directories]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in path.read_text().split())
        return found

    def kill(self, attempts: int = 200) -> None:
        """SIGKILL everything in the cgroup, again and again until it is empty (a fork bomb
        keeps forking while it is being killed, but the pids limit bounds how far)."""
        kill_file = self.directories[0] / "cgroup.kill"
        if self.kind == "cgroup v2" and kill_file.exists():
            kill_file.write_text("1")
        for _ in range(attempts):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        for directory in self.directories:
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)

    def peak_memory(self) -> int | None:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            for directory in self.directories:
                path = directory / name
                if path.exists():
                    return int(path.read_text().split()[0])
        return None

    def oom_killed(self) -> bool:
        for name in ("memory.oom_control", "memory.events"):
            for directory in self.directories:
                path = directory / name
                if path.exists():
                    for line in path.read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
        return False


def _own_path(controller: str) -> str | None:
    """This process's cgroup path for a v1 controller, or for v2 when `controller` is ''."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (controller and controller in controllers.split(",")) or (not controller
                                                                      and controllers == ""):
            return path
    return None


def _v1(limits: ResourceLimits, name: str) -> Cgroup | None:
    made: list[Path] = []
    try:
        for controller in ("memory", "pids"):
            mount, own = CGROUP_ROOT / controller, _own_path(controller)
            if own is None or not (mount / "cgroup.procs").exists():
                return None
            directory = mount / own.lstrip("/") / name
            directory.mkdir()
            made.append(directory)
        memory, pids = made
        limit = str(limits.memory_mb << 20)
        (memory / "memory.limit_in_bytes").write_text(limit)
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(limit)
        (pids / "pids.max").write_text(str(limits.pids))
        return Cgroup("cgroup v1", made)
    except OSError:
        for directory in made:
            directory.rmdir()
        return None


def _v2(limits: ResourceLimits, name: str) -> Cgroup | None:
    own = _own_path("")
    for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if own is None or not (mount / "cgroup.controllers").exists():
            continue
        parent = mount / own.lstrip("/")
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(enabled):
                continue
            directory = parent / name
            directory.mkdir()
        except OSError:
            continue
        try:
            (directory / "memory.max").write_text(str(limits.memory_mb << 20))
            swap = directory / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
            (directory / "pids.max").write_text(str(limits.pids))
            return Cgroup("cgroup v2", [directory])
        except OSError:
            directory.rmdir()
    return None


def create_cgroup(limits: ResourceLimits) -> Cgroup | None:
    """A fresh cgroup for one run with the memory and pids limits set, or None (always None
    off Linux, which has neither cgroups nor /proc/self/cgroup)."""
    if not sys.platform.startswith("linux"):
        return None
    name = f"torchgrade-{uuid.uuid4().hex[:12]}"
    return _v1(limits, name) or _v2(limits, name)


def preexec(limits: ResourceLimits, cgroup: Cgroup | None, *,
            sandboxed: bool = True) -> Callable[[], None]:
    """What the child runs between fork and exec: join the cgroup, then lower its rlimits.
    (POSIX only: Windows has no fork, and subprocess refuses a preexec_fn there.)"""
    files = [str(p) for p in cgroup.procs_files()] if cgroup else []
    pairs = rlimits(limits, with_memory=cgroup is None, sandboxed=sandboxed)
    resource = _resource() if pairs else None

    def apply() -> None:
        pid = str(os.getpid())
        for path in files:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(pid)
        for kind, value in pairs:
            assert resource is not None
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))

    return apply


def in_force(limits: ResourceLimits, cgroup: Cgroup | None, *,
             sandboxed: bool = True) -> list[str]:
    """Plain words for the report: which limits held this run, and by what. Without a
    sandbox, only those this platform holds (no tmpfs, no RLIMIT_NPROC; see the module)."""
    held_by = cgroup.kind if cgroup else "rlimit"
    memory = "address space (RLIMIT_AS)" if cgroup is None else "memory"
    if sandboxed:
        return [
            f"{memory} {limits.memory_mb} MB ({held_by})",
            f"processes {limits.pids} ({held_by if cgroup else 'RLIMIT_NPROC'})",
            f"CPU time {limits.cpu_seconds} s (RLIMIT_CPU)",
            f"file size {limits.file_mb} MB (RLIMIT_FSIZE)",
            f"open files {limits.open_files} (RLIMIT_NOFILE)",
            f"writable space {limits.disk_mb} MB in each of home, /tmp and /dev/shm (tmpfs)",
        ]
    held: list[str] = []
    if cgroup is not None:
        held += [f"memory {limits.memory_mb} MB ({held_by})",
                 f"processes {limits.pids} ({held_by})"]
    elif _resource() is not None and _address_space_enforced():
        held.append(f"{memory} {limits.memory_mb} MB (rlimit)")
    if _resource() is not None:
        held += [f"CPU time {limits.cpu_seconds} s (RLIMIT_CPU)",
                 f"file size {limits.file_mb} MB (RLIMIT_FSIZE)",
                 f"open files {limits.open_files} (RLIMIT_NOFILE)"]
    return held


def cgroup_offered() -> bool:
    """Whether `create_cgroup` would find a place for a run's cgroup here: the same places it
    tries, looked at, not written (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        if all(own is not None and (CGROUP_ROOT / c / "cgroup.procs").exists()
               and os.access(CGROUP_ROOT / c / own.lstrip("/"), os.W_OK)
               for c, own in (("memory", _own_path("memory")), ("pids", _own_path("pids")))):
            return True
        own = _own_path("")
        for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
            if own is None or not (mount / "cgroup.controllers").exists():
                continue
            parent = mount / own.lstrip("/")
            enabled = (parent / "cgroup.subtree_control").read_text(encoding="ascii").split()
            if {"memory", "pids"} <= set(enabled) and os.access(parent, os.W_OK):
                return True
    except (OSError, ValueError):
        return False
    return False


def without_sandbox(notebook_seconds: int) -> Words:
    """One line for a run without bubblewrap, before it starts: what this platform (and, on
    Linux, a cgroup it offers) limits and what it does not. The run's record says what held."""
    rlimited, cgroup = _resource() is not None, cgroup_offered()
    held: list[str] = [say(N_("time ({seconds} s)"), seconds=notebook_seconds)]
    free: list[str] = []
    (held if rlimited else free).append(N_("CPU time"))
    if cgroup:
        held += [N_("memory (cgroup)"), N_("processes (cgroup)")]
    elif rlimited and _address_space_enforced():
        held.append(N_("memory (address space)"))
        free.append(N_("processes"))
    else:
        free += [N_("memory"), N_("processes")]
    (held if rlimited else free).extend([N_("file size"), N_("open files")])
    free += [N_("disk space"), N_("network access"),
             N_("your own files (the notebook runs as you)")]
    return say(N_("{not_sandboxed}. On {platform}, limited: {held}; not limited: {free}"),
               not_sandboxed=NOT_SANDBOXED, platform=_platform_name(),
               held=Words.join(held, ", "), free=Words.join(free, ", "))


def _platform_name() -> str:
    return {"linux": "Linux", "darwin": "macOS", "win32": "Windows"}.get(
        sys.platform, sys.platform)
