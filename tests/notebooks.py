"""Run one of our own notebooks (templates, solutions, example submissions) in a real kernel.

These are trusted files written for the course: tests run them directly to check they do what they
claim. Student notebooks are only ever run by the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


def execute(path: Path, cwd: Path, *, replace: Iterable[tuple[str, str]] = (),
            append: str | None = None, timeout: int = 600) -> nbformat.NotebookNode:
    """Execute `path` with `cwd` as its folder; errors are recorded per cell, not raised."""
    nb = nbformat.read(path, as_version=4)
    for old, new in replace:
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
    if append is not None:
        nb.cells.append(nbformat.v4.new_code_cell(append))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env={"MPLBACKEND": "Agg"})
    return nb


def errors(nb: nbformat.NotebookNode) -> list[str]:
    """The exception names raised by each failing cell, in order."""
    return [out.ename for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "error"]


def last_json(nb: nbformat.NotebookNode) -> dict:
    """The JSON object printed by the last cell."""
    outputs = nb.cells[-1].get("outputs", [])
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if not text:
        raise AssertionError(f"the last cell printed nothing: {outputs}")
    return json.loads(text.strip().splitlines()[-1])


def write(path: Path, *cells: str) -> Path:
    """A notebook of these code cells at `path`, with the Python 3 kernel named."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
