"""A benchmark script run on this tree and on an earlier revision, turn about, in one session.

    python bench/against_revision.py --rev HEAD --rounds 2 -- bench/sandbox_overhead.py --runs 5

The earlier revision is checked out into a temporary git worktree and imported from there
(PYTHONPATH), with this tree's virtual environment; the two are run alternately, `--rounds`
times each, so the machine's load falls on both alike. Each run's output is printed under its
label; the script itself reports what it measures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(tree: Path, script: list[str], label: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(tree / script[0]), *script[1:]], cwd=tree,
                          env=env, capture_output=True, text=True)
    print(f"--- {label} (exit {done.returncode})")
    print(done.stdout.rstrip())
    if done.returncode:
        print(done.stderr[-2000:].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the earlier revision (default: HEAD)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("script", nargs=argparse.REMAINDER,
                        help="-- then the benchmark script and its arguments")
    args = parser.parse_args()
    script = [a for a in args.script if a != "--"]
    if not script:
        parser.error("name the benchmark script after --")
    with tempfile.TemporaryDirectory(prefix="torchgrade-rev-") as folder:
        earlier = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(earlier), args.rev],
                       cwd=ROOT, check=True)
        try:
            for round_ in range(1, args.rounds + 1):
                run(earlier, script, f"{args.rev}, round {round_}")
                run(ROOT, script, f"this tree, round {round_}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(earlier)], cwd=ROOT,
                           check=False)


if __name__ == "__main__":
    main()
