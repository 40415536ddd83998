"""The bubblewrap command line: what a sandboxed notebook can see, and as whom it runs.

Everything is hidden unless listed here (an allowlist, never `--ro-bind / /` with masks): the
system's /usr, the Python interpreter and its environment, the agent's files, matplotlib's
font list as the grader built it, the handed-in files, and the public MNIST view. The grader's
source tree, the assignments' hidden tests and solutions, the gradebook, the output folder and
the private hold-out are simply not there.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

SANDBOX_HOME = "/home/student"
WORK_DIR = f"{SANDBOX_HOME}/work"
AGENT_DIR = "/opt/torchgrade"
AGENT_PATH = f"{AGENT_DIR}/agent.py"
FONTS_DIR = f"{AGENT_DIR}/matplotlib"
#: What a warm-started sandbox runs until its agent is brought in: it says when the sandbox is
#: built (bubblewrap names its first process before the mounts are done), then waits for its
#: stdin to close.
PLACEHOLDER = ["/bin/sh", "-c", "echo ready && exec cat"]
SUBMISSION_DIR = "/submission"
#: Roots course notebooks pass to torchvision's MNIST; each gets the public view.
DATA_ROOTS = ("mnist", "data", "dataset", "datasets", "MNIST_data")
NOBODY = 65534
#: Folders that exist only as mount points: a few entries each, never room to write data in.
MOUNT_POINT_MB = 1

_PASSWD = f"student:x:{NOBODY}:{NOBODY}:student:{SANDBOX_HOME}:/bin/sh\n"
_GROUP = f"student:x:{NOBODY}:\n"
_HOSTS = "127.0.0.1 localhost sandbox\n::1 localhost\n"


def executable() -> str | None:
    return shutil.which("bwrap")


def write_etc(folder: Path) -> Path:
    """A minimal /etc: who the student is, localhost, and the dynamic linker's cache."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(_PASSWD, encoding="utf-8")
    (folder / "group").write_text(_GROUP, encoding="utf-8")
    (folder / "hosts").write_text(_HOSTS, encoding="utf-8")
    (folder / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files\n",
                                          encoding="utf-8")
    return folder


def _system_mounts() -> list[str]:
    """/usr read-only, and the merged-/usr links (or the directories where they are real)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    return args


def python_roots() -> list[Path]:
    """The interpreter's installation and the virtual environment (those outside /usr)."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    return sorted(root for root in roots if not str(root).startswith("/usr/"))


def _same_path(path: Path) -> str:
    return str(path)


def command(*, python: str, agent_files: list[Path], submission: Path, etc: Path,
            data_view: Path | None, disk_mb: int, gpu_devices: list[str],
            env: dict[str, str], fonts: Path | None = None,
            program: list[str] | None = None, info_fd: int | None = None,
            seccomp_fd: int | None = None,
            source: Callable[[Path], str] = _same_path) -> list[str]:
    """The full bwrap argv for one run of the agent. `fonts`: the grader's prebuilt
    matplotlib font list (see caches.py), read-only beside the agent. `program`: what runs
    inside instead of the agent (a warm start runs a placeholder and brings its agent in);
    `info_fd`: where bubblewrap writes the pid of the sandbox's first process; `seccomp_fd`:
    the compiled filter of seccomp.py; `source`: where bubblewrap finds each host path the
    sandbox sees (a root grader hands them over from a private mount namespace: see
    session.Exports)."""
    bwrap = executable()
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    size, small = str(disk_mb << 20), str(MOUNT_POINT_MB << 20)
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            *_system_mounts(), "--proc", "/proc", "--dev", "/dev",
            "--size", size, "--tmpfs", "/dev/shm",
            "--size", size, "--tmpfs", "/tmp",
            "--size", small, "--tmpfs", "/run", "--size", small, "--tmpfs", "/root",
            "--size", small, "--tmpfs", "/home",
            "--size", size, "--tmpfs", SANDBOX_HOME]
    for name in ("passwd", "group", "hosts", "nsswitch.conf"):
        args += ["--ro-bind", source(etc / name), f"/etc/{name}"]
    if Path("/etc/ld.so.cache").exists():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for root in python_roots():
        args += ["--ro-bind", source(root), str(root)]
    for path in agent_files:
        args += ["--ro-bind", source(path), f"{AGENT_DIR}/{path.name}"]
    if fonts is not None:
        args += ["--ro-bind", source(fonts), FONTS_DIR]
    args += ["--ro-bind", source(submission), SUBMISSION_DIR, "--dir", WORK_DIR]
    if data_view is not None:
        for root in DATA_ROOTS:
            args += ["--ro-bind", source(data_view), f"{WORK_DIR}/{root}"]
    for device in gpu_devices:
        args += ["--dev-bind", device, device]
    # last: the root itself (where the mount points above were made) becomes read-only, so
    # nothing can be made outside the size-capped tmpfs folders
    args += ["--remount-ro", "/", "--chdir", WORK_DIR, "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return [*args, "--", *(program or [python, AGENT_PATH])]


def host_paths(*, agent_files: list[Path], submission: Path, etc: Path,
               data_view: Path | None, fonts: Path | None) -> list[Path]:
    """Every host path `command` binds apart from the system's own (/usr, the linker cache):
    what a root grader must hand over to the unprivileged user that starts bubblewrap."""
    paths = [etc / name for name in ("passwd", "group", "hosts", "nsswitch.conf")]
    paths += [*python_roots(), *agent_files, submission]
    paths += [p for p in (fonts, data_view) if p is not None]
    return paths


def gpu_device_nodes(indices: list[int]) -> list[str]:
    """The NVIDIA device nodes a job with these GPUs needs bound into its sandbox."""
    nodes = [f"/dev/nvidia{i}" for i in indices]
    nodes += ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
              "/dev/nvidia-modeset"]
    return [n for n in nodes if Path(n).exists()]
