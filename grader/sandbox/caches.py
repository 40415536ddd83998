"""What a fresh sandbox would otherwise rebuild for every notebook, built once outside it.

matplotlib lists the machine's fonts the first time pyplot is imported and keeps the list in
~/.cache/matplotlib. A sandbox's home is an empty tmpfs, so every notebook that plots would scan
the fonts again: about 0.4 s per notebook, and fontconfig, which finds no /etc/fonts in the
sandbox, writes "Cannot load default config file" into the student's output. The list is built
here instead, by the grader's own interpreter (no student code involved), kept in the TA's
cache folder, mounted read-only into each sandbox, and copied by the agent into the student's
home, where matplotlib finds it and may still rewrite it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUILD_TIMEOUT_S = 120


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torchgrade-sandbox"


@functools.cache
def _matplotlib_version() -> str | None:
    """Looked up once per process: scanning the installed distributions takes milliseconds."""
    try:
        return importlib.metadata.version("matplotlib")
    except importlib.metadata.PackageNotFoundError:
        return None


def matplotlib_fonts() -> Path | None:
    """A folder holding matplotlib's font list for this environment, built on first use.
    None when matplotlib is not installed or the list could not be built: notebooks then
    build it themselves, as before."""
    version = _matplotlib_version()
    if version is None:
        return None
    key = hashlib.sha256(f"{sys.prefix}\0{version}".encode()).hexdigest()[:16]
    folder = cache_root() / f"matplotlib-{key}"
    if _complete(folder):
        return folder
    try:
        _build(folder)
    except (OSError, subprocess.SubprocessError):
        return None
    return folder if _complete(folder) else None


def _complete(folder: Path) -> bool:
    return folder.is_dir() and len(list(folder.glob("fontlist-*.json"))) == 1


def _build(folder: Path) -> None:
    """Let matplotlib write its font list into a scratch folder (with an empty home, so the
    TA's own fonts stay out), keep only that file, and rename the folder into place at once:
    a concurrent build or an interrupted one never leaves a half-written list."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        home, config, result = scratch / "home", scratch / "config", scratch / "result"
        for path in (home, config, result):
            path.mkdir()
        env = {"HOME": str(home), "MPLCONFIGDIR": str(config), "LANG": "C.UTF-8",
               "PYTHONUTF8": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "MPLBACKEND": "agg"}
        # Windows: Python needs SYSTEMROOT to start, matplotlib WINDIR to find the fonts
        env.update({k: os.environ[k] for k in ("SYSTEMROOT", "WINDIR") if k in os.environ})
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                       check=True, capture_output=True, timeout=BUILD_TIMEOUT_S)
        for found in config.glob("fontlist-*.json"):
            shutil.copyfile(found, result / found.name)
        result.chmod(0o755)
        try:
            result.rename(folder)
        except OSError:
            if not _complete(folder):  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
