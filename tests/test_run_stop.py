"""Stopping a run (grader/run/stop.py): Ctrl-C waits for a result being stored, and Ctrl-C
for real (a `grade` process interrupted mid-batch, then the same command resuming it)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from grader.run.stop import InterruptGuard
from grader.sandbox import bwrap

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
GRADE = str(Path(sys.executable).parent / "grade")


def test_ctrl_c_waits_until_a_result_is_stored():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    stored = []
    before = signal.getsignal(signal.SIGINT)
    with InterruptGuard() as guard, pytest.raises(KeyboardInterrupt), guard.holding():
        os.kill(os.getpid(), signal.SIGINT)
        stored.append("result")  # still runs: the interrupt waits for the block's end
    assert stored == ["result"] and guard.interrupted
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


# ----------------------------------------------------------------------------- Ctrl-C for real


def _results(out: Path) -> list[tuple[str, float]]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        return sorted(db.execute("SELECT student, total FROM results").fetchall())
    finally:
        db.close()


def _sandboxes_under(folder: Path) -> list[str]:
    """Running bubblewrap processes whose command line names `folder` (their staging)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"bwrap") and str(folder).encode() in b" ".join(argv):
            found.append(cmdline.parent.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path: Path):
    folder = tmp_path / "class"
    folder.mkdir()
    for student in ("alice", "bob", "dave"):
        name = f"{student}_W4_Homework.ipynb"
        (folder / name).write_bytes((SUBMISSIONS / name).read_bytes())
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}  # every staging folder lands here
    command = [GRADE, str(folder), "--hw", "W4", "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "W4_Homework.ipynb" in first, first + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    graded = _results(out)
    assert 1 <= len(graded) < 3
    line = f"interrupted: {len(graded)} graded, {3 - len(graded)} left; run the same command"
    assert line in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert len((first + stdout).splitlines()) == len(graded)  # one line per stored result
    assert _sandboxes_under(scratch) == []
    assert sorted(p.name for p in scratch.iterdir()) == []  # every sandbox closed and cleaned

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{3 - len(graded)} graded, {len(graded)} unchanged, 0 rejected" in again.stdout
    for student, _ in graded:
        assert f"{student:<16} W4_Homework.ipynb            unchanged" in again.stdout
    final = _results(out)
    assert [s for s, _ in final] == ["alice", "bob", "dave"]  # each once: nothing twice
    assert dict(final) == {"alice": 14, "bob": 11, "dave": 4}
