"""What running a notebook in the sandbox costs: an empty notebook, start to finish.

    python bench/sandbox_overhead.py [--runs 10]

Each run starts a kernel, executes one empty cell, answers one probe and tears everything down
(bubblewrap, cgroup, kernel). Printed: the median wall time with bubblewrap, the same without
it (resource limits only), their difference and ratio, and the peak memory of a sandboxed run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

from grader.sandbox import Sandbox, SandboxConfig


def empty_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(x):\n    return x")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, folder / "empty.ipynb")


def one_run(folder: Path, sandboxed: bool) -> tuple[float, int | None]:
    start = time.perf_counter()
    with Sandbox(SandboxConfig(sandboxed=sandboxed)).open(folder, "empty.ipynb") as session:
        record = session.execute()
        session.call("f", np.zeros(3), torch=False)
    assert record.outcome == "completed", record.reason
    return time.perf_counter() - start, record.peak_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        empty_notebook(folder)
        one_run(folder, True)  # warm the page cache for both
        sandboxed, plain, peaks = [], [], []
        for _ in range(args.runs):  # interleaved, so drift affects both alike
            seconds, peak = one_run(folder, True)
            sandboxed.append(seconds)
            peaks.append(peak or 0)
            plain.append(one_run(folder, False)[0])
    with_bwrap, without = statistics.median(sandboxed), statistics.median(plain)
    print(f"empty notebook, median of {args.runs}: sandboxed {with_bwrap:.2f} s, "
          f"not sandboxed {without:.2f} s; the sandbox adds {with_bwrap - without:+.2f} s "
          f"({with_bwrap / without:.2f}x); peak memory of a sandboxed run "
          f"{statistics.median(peaks) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
