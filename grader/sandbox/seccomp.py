"""The system calls a sandboxed notebook may not make, as a seccomp filter.

Namespaces, mounts and capabilities already keep a notebook inside its sandbox; this filter
takes away the kernel interfaces through which a process escapes such a sandbox or attacks the
host kernel, so that a flaw in one of them is not a way out: new namespaces (`unshare`,
`setns`, `clone` with a namespace flag), mounts and root changes, tracing other processes
(`ptrace`, `process_vm_*`), the kernel keyring, BPF, perf events, loading kernels or modules,
`userfaultfd`, file handles, swap, reboot and the kernel log. Everything else is allowed: torch,
numpy, ipykernel and ZeroMQ need none of these. A denied call fails with EPERM (`clone3` with
ENOSYS, so the C library falls back to `clone`, whose flags the filter can read); a call made
through another architecture's system-call table (32-bit calls on x86_64) kills the process.

The filter is built here, in the trusted grader, with libseccomp (pyseccomp), and handed over
compiled: to bubblewrap (`--seccomp FD`) for a cold start, and to the warm start's forked
child, which loads it itself (`forkserver.load_seccomp`) after dropping its capabilities.
"""

from __future__ import annotations

import errno
import functools
import os

#: Denied with EPERM whatever their arguments.
DENIED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "iopl", "ioperm",
)
#: Every flag of clone() that makes a namespace.
CLONE_NAMESPACES = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                    | 0x20000000 | 0x40000000)  # NEWNS UTS IPC USER PID NET CGROUP


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its Python binding) is missing: the sandbox runs without the filter."""


@functools.cache
def program() -> bytes:
    """The compiled BPF program (struct sock_filter[]), as bubblewrap reads it."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:  # no binding, or no libseccomp.so
        raise SeccompUnavailable(f"libseccomp is not available ({exc})") from None
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(sc.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError):
            continue  # a call this architecture does not have
    for flag in _flags(CLONE_NAMESPACES):
        rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("torchgrade-seccomp")
    with os.fdopen(fd, "w+b") as handle:
        rules.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def _flags(mask: int) -> list[int]:
    return [1 << bit for bit in range(mask.bit_length()) if mask >> bit & 1]


def program_fd() -> int:
    """A descriptor holding the program from its start, for `bwrap --seccomp FD` (which
    reads it to the end); the caller closes it once bubblewrap has started."""
    fd = os.memfd_create("torchgrade-seccomp")
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
