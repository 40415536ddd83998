"""The progress bar (grader/run/progress.py)."""

from __future__ import annotations

import io

from rich.console import Console

from grader.run.progress import ProgressBar


def test_progress_bar_counts_each_outcome():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with ProgressBar(5, console) as bar:
        for outcome in ("completed", "completed", "error", "timeout"):
            bar.advance(outcome)
    text = out.getvalue()
    assert "4/5" in text
    assert "completed 2  error 1  timeout 1" in text
    assert "ETA" in text


def test_no_bar_when_stderr_is_not_a_terminal():
    out = io.StringIO()
    with ProgressBar(3, Console(file=out, force_terminal=False)) as bar:
        bar.advance("completed")
    assert out.getvalue() == ""
