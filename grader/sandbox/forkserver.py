"""The warm start: one process that has already imported torch, ipykernel, nbclient and
pyplot, and forks an agent into each notebook's own bubblewrap sandbox.

Python's start, `import torch` (1.5-2.3 s of one core) and an IPython kernel's start (0.6-0.8 s)
were most of what a short notebook cost to grade. The sandbox is still bubblewrap's, built
afresh for every notebook with the same mounts, limits and namespaces; what changes is how its
agent starts. bubblewrap runs a placeholder (`sh -c 'echo ready && exec cat'`, which ends when
the grader closes its stdin), and for each job this server forks a child that, before any
student code exists:

1. keeps only the job's three descriptors (requests, replies, stderr log) and /dev/null, and
   checks that the placeholder's pid still belongs to a bubblewrap that the process which
   asked started (its pid as the kernel gives it, SO_PEERCRED, never the job's word);
2. joins the run's cgroup and lowers its rlimits, as bubblewrap's child does;
3. becomes the unprivileged sandbox user when the grader is root (grader/sandbox/user.py),
   then enters every namespace of the placeholder (mount, pid, network, IPC, UTS, cgroup,
   user), so it sees the sandbox's root, its loopback and nothing else;
4. drops every capability (bounding, ambient, effective, permitted), sets no_new_privs, loads
   the grader's seccomp filter, and resets its environment, its import path and matplotlib's
   folders;
5. says "ok" to this server, which only then answers the grader (a child that cannot get in
   is answered as an error, and the grader starts that run cold; one that is not in after
   SETUP_TIMEOUT_S is killed and answered so);
6. forks once more, so the agent is a process of the sandbox's pid namespace, and runs the
   agent there. The agent forks the notebook's kernel the same way (kernel_fork.fork_kernel).

This process runs no student code and holds nothing but imported modules: a child starts from
a copy of exactly that. It never touches the GPU (CUDA cannot survive a fork), and it refuses
to serve if importing started a Python thread or mapped shared writable memory. It is started
by grader/sandbox/warm.py as `python forkserver.py FD LISTEN_FD|- [MATPLOTLIB_DIR]`, outside
any sandbox, with the sandbox's environment. FD is the owner's AF_UNIX socket: the server ends
when it closes. LISTEN_FD, when given, is a listening socket (an abstract name) through which
other processes of the same user (the workers of a `--jobs N` run) connect, so one server
serves a whole machine; a connection from any other user is hung up on, and no sandbox can
reach the name (abstract names belong to a network namespace, and each sandbox has its own).
On every connection each job arrives as one JSON message with three descriptors attached, and
the answer, on that connection, is one JSON message with the job's number: {"id": N, "pid":
PID} or {"id": N, "error": "..."}. The server is one thread: it waits on every connection and
every child's setup at once (poll), so clients are served concurrently.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIBC = ctypes.CDLL(None, use_errno=True)
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "cgroup")  # then "user"; see enter()
CLONE_NEWUSER = 0x10000000
NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
#: Imported once here, so no notebook pays for them: the agent's (nbformat, nbclient,
#: jupyter_client, zmq), the kernel's (ipykernel and what its start imports), and torch.
PRELOAD = ("agent", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
           "ipykernel.debugger", "IPython.core.completerlib", "IPython.core.debugger",
           "IPython.core.oinspect", "IPython.extensions", "sqlite3", "tornado.queues", "psutil",
           "numpy", "torch")
MPL_BACKEND = "module://matplotlib_inline.backend_inline"
#: The channel's number inside the agent (it comes in the first request, as in a cold start).
CHANNEL_FD = 3
STATUS_FD = 4  # the child's "ok" (or why not) to this server, closed before the agent runs
SETUP_TIMEOUT_S = 20
SEND_TIMEOUT_S = 10
MAX_CONNECTIONS = 256


class SetupError(RuntimeError):
    """The child could not be placed into its sandbox; it exits before running anything."""


def preload(matplotlib_dir: str | None = None) -> dict[str, Any]:
    """Import what every run needs, and check that nothing started a thread. With
    `matplotlib_dir` (the grader's prebuilt font list, caches.py), pyplot too, set up as a
    kernel would set it up: the inline backend named, the fonts already listed."""
    started = time.monotonic()
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    if matplotlib_dir:
        os.environ["MPLCONFIGDIR"] = matplotlib_dir
        os.environ["MPLBACKEND"] = MPL_BACKEND  # what ipykernel sets before any notebook code
        importlib.import_module("matplotlib.pyplot")
        del os.environ["MPLCONFIGDIR"], os.environ["MPLBACKEND"]
    from setproctitle import setproctitle

    setproctitle("torchgrade fork server")  # also readies the children's retitle()

    # OpenBLAS starts its pool when numpy loads and stops it around fork() itself
    # (pthread_atfork); a Python thread would be copied half-way through whatever it did. A
    # writable shared mapping would be one memory for every notebook forked from here.
    shared = [line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if line.split()[1] == "rw-s"]
    return {"ready": threading.active_count() == 1 and not shared,
            "python_threads": threading.active_count(), "shared_writable": shared[:5],
            "native_threads": len(os.listdir("/proc/self/task")),
            "seconds": round(time.monotonic() - started, 3)}


@dataclass
class _Setup:
    """A child on its way into its sandbox, and where its answer goes."""

    conn: socket.socket
    job_id: Any
    pid: int
    deadline: float
    raw: bytes = b""


def serve(control: socket.socket, listener: socket.socket | None = None) -> None:
    """Fork a child per job until the grader closes `control`. Jobs arrive on `control` and
    on every connection `listener` accepts from a process of this server's own user (the
    workers of a pool); each is answered on its own connection with its own number, and one
    child's setup never holds up another's answer. The answer waits for the child to be in
    its sandbox (or to fail getting there), so a failure is the grader's to handle (it starts
    that run cold) and never a run that looks like the student's. Single-threaded: this
    process forks, so it must never run a second thread."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    conns: dict[int, socket.socket] = {control.fileno(): control}
    setups: dict[int, _Setup] = {}
    poller = select.poll()
    for sock in (control, listener):
        if sock is not None:
            poller.register(sock.fileno(), select.POLLIN)
    while True:
        wait = min((s.deadline for s in setups.values()), default=None)
        timeout = None if wait is None else max(0, int((wait - time.monotonic()) * 1000) + 1)
        for fd, _ in poller.poll(timeout):
            if listener is not None and fd == listener.fileno():
                _accept(listener, conns, poller)
            elif fd in setups:
                _setup_status(fd, setups, poller)
            elif fd in conns and not _request(conns[fd], setups, poller):
                if conns[fd] is control:
                    return
                poller.unregister(fd)
                conns.pop(fd).close()
        _expire(setups, poller)


def peer(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel saw it connect."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def _accept(listener: socket.socket, conns: dict[int, socket.socket],
            poller: select.poll) -> None:
    """Take a connection from a process of this server's user; anyone else is hung up on."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    if peer(conn)[1] != os.geteuid() or len(conns) >= MAX_CONNECTIONS:
        conn.close()
        return
    conn.settimeout(SEND_TIMEOUT_S)  # an answer never waits on a client that stopped reading
    conns[conn.fileno()] = conn
    poller.register(conn.fileno(), select.POLLIN)


def _request(conn: socket.socket, setups: dict[int, _Setup], poller: select.poll) -> bool:
    """Read one job from `conn` and fork its child. False: the connection has ended."""
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    except OSError:
        return False
    if not message:
        for fd in fds:
            os.close(fd)
        return False
    job: dict[str, Any] = {}
    try:
        decoded = json.loads(message)
        if not isinstance(decoded, dict):
            raise ValueError("a job is a JSON object")
        job = decoded
        if len(fds) != 3:
            raise ValueError(f"expected 3 descriptors, got {len(fds)}")
        job["requester"] = peer(conn)[0]  # the kernel's word, never the job's
        status_read, status_write = os.pipe()
        pid = os.fork()
    except (ValueError, OSError) as exc:
        _send(conn, {"id": job.get("id"), "error": f"{type(exc).__name__}: {exc}"})
        for fd in fds:
            os.close(fd)
        return True
    if pid == 0:
        os.close(status_read)
        _child(job, fds, status_write)
    os.close(status_write)
    for fd in fds:
        os.close(fd)
    setups[status_read] = _Setup(conn, job.get("id"), pid,
                                 time.monotonic() + SETUP_TIMEOUT_S)
    poller.register(status_read, select.POLLIN)
    return True


def _setup_status(fd: int, setups: dict[int, _Setup], poller: select.poll) -> None:
    """The child's one line: "ok" once it is in its sandbox, else why not."""
    setup = setups[fd]
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        chunk = b""
    setup.raw += chunk
    if chunk and b"\n" not in setup.raw:
        return
    _answer(setups.pop(fd), fd, poller, setup.raw.decode("utf-8", "replace").strip())


def _expire(setups: dict[int, _Setup], poller: select.poll) -> None:
    """A child that is not in its sandbox after SETUP_TIMEOUT_S is killed and answered."""
    now = time.monotonic()
    for fd in [fd for fd, s in setups.items() if s.deadline <= now]:
        setup = setups.pop(fd)
        with contextlib.suppress(OSError):
            os.kill(setup.pid, signal.SIGKILL)
        _answer(setup, fd, poller,
                f"the child was not in its sandbox after {SETUP_TIMEOUT_S} s")


def _answer(setup: _Setup, fd: int, poller: select.poll, status: str) -> None:
    poller.unregister(fd)
    os.close(fd)
    _send(setup.conn, {"id": setup.job_id, "pid": setup.pid} if status == "ok"
          else {"id": setup.job_id, "error": status or "the child ended during setup"})


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    """Answer on `conn`; a client that has gone (or stopped reading) gets nothing."""
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _child(job: dict[str, Any], fds: list[int], status: int) -> None:
    """The forked child: into the sandbox, then the agent. Never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _stdio(fds, status)
        status = STATUS_FD
        namespaces = _open_namespaces(int(job["target"]), int(job["parent"]),
                                      int(job["requester"]))
        _close_all_but({0, 1, 2, CHANNEL_FD, STATUS_FD, *namespaces.values()})
        for path in job["cgroup_procs"]:
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
        for kind, value in job["rlimits"]:
            _setrlimit(int(kind), int(value))
        become(job.get("identity"))
        enter(namespaces)
        drop_privileges()
        load_seccomp(job.get("seccomp"))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in job["env"].items()})
        os.chdir(job["cwd"])
        only_sandbox_paths(str(Path(job["agent"]).parent))
        forget_matplotlib_folders()
    except BaseException as exc:  # noqa: BLE001  the server tells the grader why
        with contextlib.suppress(OSError):
            os.write(status, f"{type(exc).__name__}: {exc}"[:2000].encode() + b"\n")
        os._exit(71)
    try:
        os.write(status, b"ok\n")
        os.close(status)
    except OSError:  # nobody is waiting for this child any more
        os._exit(71)
    code = 70
    try:
        code = _run_agent(job)
    finally:
        os._exit(code)


def become(identity: list[int] | None) -> None:
    """A root grader's sandboxes run as an unprivileged user (grader/sandbox/user.py): become
    it before entering, so the agent and the kernel are that user on the host, as
    bubblewrap's own processes are. Its user namespaces are that user's, so it may still
    enter them."""
    if not identity:
        return
    uid, gid = (int(v) for v in identity)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(program: str | None) -> None:
    """Install the grader's compiled seccomp filter (grader/sandbox/seccomp.py), as
    `bwrap --seccomp` does for a cold start. Needs no_new_privs, set just before."""
    if not program:
        return
    import base64

    raw = base64.b64decode(program)
    if not raw or len(raw) % 8:
        raise SetupError("the seccomp filter is not a list of BPF instructions")
    buffer = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(raw) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise SetupError(f"cannot load the seccomp filter: {os.strerror(ctypes.get_errno())}")


def only_sandbox_paths(agent_dir: str) -> None:
    """The import path of a cold agent: its own read-only folder and the Python installation
    (read-only mounts), never this server's folder on the host, which a notebook could create
    inside its sandbox (the root is a tmpfs) and fill with modules for the agent to import."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}

    def read_only(path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == p or real.startswith(p + os.sep) for p in prefixes)

    kept = [p for p in sys.path if p and read_only(p)]
    sys.path[:] = [agent_dir, *kept]
    sys.path_importer_cache.clear()


def _open_namespaces(target: int, parent: int, requester: int | None = None
                     ) -> dict[str, int]:
    """Descriptors of the placeholder's namespaces that differ from this process's. `target`
    must still be `parent`'s child once they are open (bubblewrap, which the grader has not
    reaped, forks its first process once), so a reused pid cannot pass for it; and `parent`
    must be a child of `requester`, the process that asked (so a process sharing this server
    can only bring an agent into a sandbox it started itself)."""
    found: dict[str, int] = {}
    for name in (*NAMESPACES, "user"):
        fd = os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(fd).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
            os.close(fd)
            continue
        found[name] = fd
    stat = Path(f"/proc/{target}/stat").read_text()
    if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
        raise SetupError(f"process {target} is no longer the sandbox's first process")
    if requester is not None:
        started_by = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1]
        if int(started_by) != requester:
            raise SetupError(f"process {parent} was not started by process {requester}, "
                             "which asked for it")
    if "mnt" not in found or "pid" not in found:
        raise SetupError(f"process {target} is not in a sandbox of its own")
    return found


def _stdio(fds: list[int], status: int) -> None:
    """requests on 0, nothing on 1, the stderr log on 2, replies on CHANNEL_FD, the setup
    status on STATUS_FD."""
    requests, replies, log = fds
    devnull = os.open(os.devnull, os.O_RDWR)
    # any of them may sit on 0-4 already: lift all of them above first
    lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
              for fd in (requests, replies, log, status, devnull)]
    for fd in {requests, replies, log, status, devnull} - {0, 1, 2, CHANNEL_FD, STATUS_FD}:
        os.close(fd)
    for fd, target in zip(lifted, (0, CHANNEL_FD, 2, STATUS_FD, 1), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.set_inheritable(CHANNEL_FD, False)
    os.set_inheritable(STATUS_FD, False)


def _close_all_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _setrlimit(kind: int, value: int) -> None:
    import resource

    _, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))


def enter(namespaces: dict[str, int]) -> None:
    """setns() into each namespace, each while holding CAP_SYS_ADMIN over it. bubblewrap run
    by root makes the mount, pid and other namespaces before its user namespace (they belong
    to ours); run by anyone else, it makes them in an outer user namespace and may nest the
    sandbox's own one inside. So: first the user namespace that owns the mount namespace
    (when it is not ours), then the others, then the sandbox's own user namespace."""
    own_user = os.stat("/proc/self/ns/user").st_ino
    owner = fcntl.ioctl(namespaces["mnt"], NS_GET_USERNS)
    try:
        if os.fstat(owner).st_ino != own_user:
            _setns(owner, CLONE_NEWUSER, "the user namespace that owns the sandbox")
        entered = os.fstat(owner).st_ino
    finally:
        os.close(owner)
    for name in NAMESPACES:
        if name in namespaces:
            _setns(namespaces[name], 0, f"the {name} namespace")
    if "user" in namespaces and os.fstat(namespaces["user"]).st_ino != entered:
        _setns(namespaces["user"], CLONE_NEWUSER, "the sandbox's user namespace")
    for fd in namespaces.values():
        os.close(fd)


def _setns(fd: int, kind: int, what: str) -> None:
    if LIBC.setns(fd, kind) != 0:
        raise SetupError(f"cannot enter {what}: {os.strerror(ctypes.get_errno())}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """No capability in any set, none to regain (no_new_privs), as `bwrap --cap-drop ALL`."""
    for cap in range(64):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
            raise SetupError(f"cannot drop capability {cap} from the bounding set")
    LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if LIBC.capset(ctypes.byref(header), data) != 0:
        raise SetupError(f"capset: {os.strerror(ctypes.get_errno())}")
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SetupError("cannot set no_new_privs")


def forget_matplotlib_folders() -> None:
    """matplotlib remembers its config and cache folders once asked (here: this server's,
    outside the sandbox); make it ask again, so the notebook's matplotlib uses the sandbox's
    home as a fresh import there would."""
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return
    for name in ("get_configdir", "get_cachedir"):
        inner = getattr(getattr(mpl, name), "__wrapped__", None)
        if inner is not None:
            setattr(mpl, name, mpl._logged_cached(f"{name.upper()}=%s")(inner))
    texmanager = sys.modules.get("matplotlib.texmanager")
    if texmanager is not None:  # a class attribute, computed when pyplot was imported
        from pathlib import Path

        texmanager.TexManager._cache_dir = Path(mpl.get_cachedir(), "tex.cache")


def _run_agent(job: dict[str, Any]) -> int:
    """Fork into the sandbox's pid namespace; this process only waits for the agent."""
    pid = os.fork()
    if pid:
        os.close(0)
        os.close(CHANNEL_FD)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) & 0xFF
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    sys.argv = [job["agent"]]
    retitle([sys.executable, job["agent"]])
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    import agent

    agent.FORK_KERNEL = True
    code = agent.main()
    sys.stderr.flush()
    os._exit(code)


def retitle(argv: list[str]) -> None:
    """Show a forked process as what a cold start would have executed, not as this server
    (whose command line names the grader's source tree)."""
    from setproctitle import setproctitle

    setproctitle(" ".join(argv))


def main() -> int:
    """`forkserver.py CONTROL_FD LISTEN_FD|- [MATPLOTLIB_DIR]`"""
    control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=int(sys.argv[1]))
    control.settimeout(SEND_TIMEOUT_S)
    listener = None if sys.argv[2] == "-" else socket.socket(fileno=int(sys.argv[2]))
    status = preload(sys.argv[3] if len(sys.argv) > 3 else None)
    _send(control, status)
    if not status["ready"]:
        return 1
    serve(control, listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
