"""The `grade` command line: parsing only. Each verb calls one library function and renders it.

Library errors (`KitError`, `SetupError`, ...) become a one-line `click.ClickException` with
exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader import __version__
from grader.course.kit import Kit, KitError, load_kit


class UsageError(click.ClickException):
    """A one-line error with exit code 2 (bad usage or bad input)."""

    exit_code = 2


def _kit(ctx: click.Context) -> Kit:
    """Load the kit named by `--kit` (or found from the cwd) once per invocation."""
    obj = ctx.ensure_object(dict)
    if "kit" not in obj:
        try:
            obj["kit"] = load_kit(obj.get("kit_path"))
        except KitError as exc:
            raise UsageError(str(exc)) from None
    return obj["kit"]


class _LazyGroup(click.Group):
    """A group whose heavier verbs are imported only when they are used (or help lists them):
    `grade check` need not pay for the quiz's imports."""

    lazy = {"quiz": "grader.quiz.command:quiz"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            import importlib

            module, attr = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: grade --kit ~/feature-store-lab list",
)
@click.option(
    "--kit",
    "kit_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Kit folder (the one holding course.toml). Default: found from the current directory.",
)
@click.version_option(__version__, prog_name="grade")
@click.pass_context
def cli(ctx: click.Context, kit_path: Path | None) -> None:
    """Feature Store Lab: grade your exercises, get hints, set up the Feast repo, take the quiz.

    Run without a verb to grade your work in ./exercises (the same as `grade check`).
    """
    ctx.ensure_object(dict)["kit_path"] = kit_path
    if ctx.invoked_subcommand is None:
        check_cmd = cli.get_command(ctx, "check")
        if check_cmd is None:  # pragma: no cover - check is always registered
            click.echo(ctx.get_help())
            return
        ctx.invoke(check_cmd)


@cli.command("list")
@click.option(
    "--scorecard",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("scorecard.json"),
    show_default=True,
    help="The scorecard whose scores to show (grade check and grade watch write it).",
)
@click.pass_context
def list_cmd(ctx: click.Context, scorecard: Path) -> None:
    """List the exercises in course order with their points and your last scores.

    Example: grade list
    """
    from grader.grading.render import render_exercise_list

    render_exercise_list(_kit(ctx), _last_scorecard(scorecard))


def _last_scorecard(path: Path):
    """The scorecard at `path`, or None when there is none (or it cannot be read)."""
    from grader.grading.scorecard import read_scorecard

    try:
        return read_scorecard(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None


@cli.command("hint")
@click.argument("slug")
@click.argument("n", required=False, type=int)
@click.pass_context
def hint_cmd(ctx: click.Context, slug: str, n: int | None) -> None:
    """Show hint N (default: all hints) for exercise SLUG, gentlest first.

    Example: grade hint ex2_pit_join 1
    """
    kit = _kit(ctx)
    try:
        exercise = kit.exercise(slug)
    except KitError as exc:
        raise UsageError(str(exc)) from None
    hints = exercise.hints
    if n is not None:
        if not 1 <= n <= len(hints):
            raise UsageError(f"{slug} has hints 1..{len(hints)}, not {n}")
        click.echo(f"Hint {n}/{len(hints)} for {slug}: {hints[n - 1]}")
        return
    for i, text in enumerate(hints, 1):
        click.echo(f"Hint {i}/{len(hints)}: {text}\n")


@cli.command("setup")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed of the data.")
@click.option(
    "--online",
    type=click.Choice(["sqlite", "redis"]),
    default="sqlite",
    show_default=True,
    help="Online store to fill; redis reads REDIS_CONNECTION_STRING (default localhost:6379).",
)
@click.option("--force", is_flag=True, help="Regenerate the data even when it is present.")
@click.pass_context
def setup_cmd(ctx: click.Context, seed: int, online: str, force: bool) -> None:
    """Generate data/, then apply and materialize the reference Feast repo.

    Safe to re-run: existing data is kept unless --force (or a different --seed) is given.

    Example: grade setup --online redis
    """
    from grader.course.reference_repo import SetupError, run_setup

    kit = _kit(ctx)
    try:
        run_setup(kit, seed=seed, online=online, force=force, echo=click.echo)
    except SetupError as exc:
        raise UsageError(str(exc)) from None


def grading_options(func):
    """The sandbox's time limits, shared by every verb that grades."""
    func = click.option(
        "--timeout",
        "submission_timeout",
        type=click.FloatRange(min=1),
        default=600.0,
        show_default=True,
        help="Seconds one submission may take in all.",
    )(func)
    func = click.option(
        "--call-timeout",
        type=click.FloatRange(min=1),
        default=60.0,
        show_default=True,
        help="Seconds one call into student code may take (a known-slow Feast call: up to "
        "3 x this, never more).",
    )(func)
    return func


def budget_options(func):
    """The kernel-enforced budgets of one submission (SPEC section 6)."""
    func = click.option(
        "--disk",
        "disk_mib",
        type=click.IntRange(min=16, max=1 << 20),
        default=256,
        show_default=True,
        metavar="MiB",
        help="Size of a submission's private folder (a tmpfs of its own, at most 20,000 "
        "files), e.g. --disk 128.",
    )(func)
    func = click.option(
        "--memory",
        "memory_mib",
        type=click.IntRange(min=64, max=1 << 20),
        default=1024,
        show_default=True,
        metavar="MiB",
        help="Memory of a submission's sandboxed worker and every process it starts, "
        "together (memfds, tmpfs and /dev/shm included), e.g. --memory 512.",
    )(func)
    return func


def _options(
    call_timeout: float,
    submission_timeout: float,
    public_only: bool = False,
    *,
    memory_mib: int = 1024,
    disk_mib: int = 256,
):
    from grader.grading.options import GradingOptions
    from grader.sandbox.bubblewrap import Limits

    return GradingOptions(
        limits=Limits(
            call_timeout_s=call_timeout,
            budget_memory_bytes=memory_mib << 20,
            disk_bytes=disk_mib << 20,
        ),
        submission_timeout_s=submission_timeout,
        include_hidden=not public_only,
    )


def _refuse_unsafe_sandbox() -> None:
    """Refuse, in one line, to grade where student code would run as root."""
    from grader.sandbox.bubblewrap import bwrap_works, root_refusal

    refusal = root_refusal(bwrap_works())
    if refusal:
        raise UsageError(refusal)


def _known_slugs(kit: Kit, slugs: tuple[str, ...]) -> None:
    """Refuse, in one line, an exercise slug the manifest does not name."""
    for slug in slugs:
        try:
            kit.exercise(slug)
        except KitError as exc:
            raise UsageError(str(exc)) from None


@cli.command("check")
@click.argument("slugs", nargs=-1)
@click.option(
    "--submission",
    type=click.Path(path_type=Path),
    help="Folder or .zip to grade. Default: the kit's exercises/ folder.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("scorecard.json"),
    show_default=True,
    help="Where to write the scorecard.",
)
@click.option("-v", "--verbose", is_flag=True, help="List the tests that passed too.")
@grading_options
@budget_options
@click.pass_context
def check_cmd(
    ctx,
    slugs,
    submission,
    json_path,
    verbose,
    submission_timeout,
    call_timeout,
    memory_mib,
    disk_mib,
) -> None:
    """Grade your work (default ./exercises): a table per exercise with feedback, and a scorecard.

    Runs the public tests, and the hidden ones too where they are present. Where the grader
    may make control groups (root, or a delegated cgroup), the kernel holds the submission to
    --memory and --disk; elsewhere the scorecard says isolation was reduced.

    Example: grade check ex2_pit_join --memory 512 --disk 128
    """
    from grader.grading.render import render_scorecard
    from grader.grading.session import Session
    from grader.grading.suites import suite_files

    kit = _kit(ctx)
    _known_slugs(kit, slugs)
    source = submission or kit.root / "exercises"
    if not source.exists():
        raise UsageError(f"{source} does not exist")
    _refuse_unsafe_sandbox()
    options = _options(call_timeout, submission_timeout, memory_mib=memory_mib, disk_mib=disk_mib)
    chosen = list(slugs) or [ex.slug for ex in kit.exercises]
    # A warm factory even for one grading: its Feast import overlaps the suites' imports here.
    session = Session(kit, source, chosen, options).start()
    try:
        card = session.grade(chosen)
    finally:
        session.close()
    try:
        card.write(json_path)
    except OSError as exc:
        raise UsageError(f"cannot write {json_path}: {exc.strerror}") from None
    hidden = any(v == "hidden" for _, v, _ in suite_files(kit, list(slugs) or None))
    render_scorecard(card, hidden_ran=hidden, verbose=verbose)
    click.echo(f"Scorecard written to {json_path}")


@cli.command("watch")
@click.argument("slugs", nargs=-1)
@click.option(
    "--submission",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to watch. Default: the kit's exercises/ folder.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("scorecard.json"),
    show_default=True,
    help="The scorecard each regrade updates (grade list shows it).",
)
@click.option("-v", "--verbose", is_flag=True, help="Every failing and passed test, not one.")
@grading_options
@click.pass_context
def watch_cmd(ctx, slugs, submission, json_path, verbose, submission_timeout, call_timeout) -> None:
    """Grade SLUGS (default: all), then regrade an exercise each time you save its file.

    Shows the score, the first failing test with its feedback and what to do next; the
    sandbox stays warm between saves. Ctrl-C stops.

    Example: grade watch ex2_pit_join
    """
    from grader.grading.watch import run_watch

    kit = _kit(ctx)
    _known_slugs(kit, slugs)
    source = submission or kit.root / "exercises"
    if not source.is_dir():
        raise UsageError(f"{source} is not a folder")
    _refuse_unsafe_sandbox()
    options = _options(call_timeout, submission_timeout)
    chosen = list(slugs) or [ex.slug for ex in kit.exercises]
    run_watch(kit, source, chosen, options, scorecard=json_path, verbose=verbose)


@cli.command("batch")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for scorecards, Gradescope files, gradebook.csv and summary.json.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Submissions graded at once (each with its own sandboxes).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Grade on an existing Dask cluster (e.g. tcp://10.0.0.5:8786) instead of locally; its "
    "workers need the same kit installed and set up (README: Grading on a Dask cluster).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Keep scorecards already in --out that the same suites graded; grade the rest.",
)
@click.option(
    "--warm/--cold",
    default=True,
    show_default=True,
    help="Fork sandboxed workers from a pre-imported factory per slot (fast), or start "
    "each from scratch.",
)
@click.option(
    "--compare",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="OLD_OUT",
    help="An earlier results folder: write regrade.csv (what changed, decreases first). "
    "Automatic when --out holds scorecards of other suites.",
)
@grading_options
@budget_options
@click.pass_context
def batch_cmd(
    ctx,
    submissions,
    out,
    workers,
    scheduler,
    resume,
    warm,
    compare,
    submission_timeout,
    call_timeout,
    memory_mib,
    disk_mib,
) -> None:
    """Grade every sub-folder or .zip of SUBMISSIONS, each as one submission.

    Each submission is held to --memory and --disk (see `grade check --help`).

    Example: grade batch submissions/ --out results/ --workers 2 --memory 512

    Regrade after a suite fix and see what changed: grade batch submissions/ --out
    results-v2/ --compare results/
    """
    from grader.classroom.batch import BatchError, find_submissions, run_batch
    from grader.classroom.regrade import read_regrade, summary_lines
    from grader.grading.render import batch_progress

    kit = _kit(ctx)
    try:
        total = len(find_submissions(submissions, out))
        with batch_progress(total) as on_done:
            cards = run_batch(
                kit,
                submissions,
                out,
                workers=workers,
                resume=resume,
                scheduler=scheduler,
                warm=warm,
                options=_options(
                    call_timeout, submission_timeout, memory_mib=memory_mib, disk_mib=disk_mib
                ),
                on_done=on_done,
                compare=compare,
            )
    except BatchError as exc:
        raise UsageError(str(exc)) from None
    errors = sum(c.status == "error" for c in cards)
    click.echo(f"Graded {len(cards)} submissions ({errors} with errors) into {out}")
    regrade = read_regrade(out)
    if regrade is not None:
        for line in summary_lines(regrade):
            click.echo(line)
        click.echo(f"Every change: {out / 'regrade.csv'}")


@cli.command("verify")
@click.option("--no-grading", is_flag=True, help="Only the static checks (fast).")
@click.option(
    "--mutants",
    "mutant_slug",
    metavar="SLUG",
    default=None,
    help="Instead: mutation-test the suites of one exercise (slow; run it with nice).",
)
@click.option(
    "--max-mutants",
    type=click.IntRange(min=1),
    default=None,
    help="With --mutants: grade only the first N mutants (a quick look).",
)
@click.pass_context
def verify_cmd(ctx, no_grading: bool, mutant_slug: str | None, max_mutants: int | None) -> None:
    """Maintainer self-check: stubs score 0, solutions score full marks, points add up.

    With --mutants SLUG it grades every mutant of solutions/SLUG (one small change each)
    with the full suites and reports the share the suites kill (target 95% of those not
    listed in grader/suites/SLUG/equivalent_mutants.toml); exit 1 below the target.

    Example: grade verify

    Example: nice -n 19 grade verify --mutants ex2_pit_join
    """
    from grader.classroom.verify import grading_checks, static_checks
    from grader.grading.options import GradingOptions
    from grader.grading.render import render_check

    kit = _kit(ctx)
    if mutant_slug is not None:
        _verify_mutants(ctx, kit, mutant_slug, max_mutants)
        return
    if max_mutants is not None:
        raise UsageError("--max-mutants needs --mutants SLUG")
    failed = 0
    for check in static_checks(kit):
        render_check(check)
        failed += not check.ok
    if not no_grading:
        for check in grading_checks(kit, GradingOptions()):
            render_check(check)
            failed += not check.ok
    if failed:
        click.echo(f"{failed} check(s) failed")
        ctx.exit(1)
    click.echo("All checks passed.")


def _verify_mutants(ctx, kit, slug: str, limit: int | None) -> None:
    from grader.classroom.mutants import TARGET, run_mutants
    from grader.grading.options import GradingOptions

    if slug not in {ex.slug for ex in kit.exercises}:
        raise UsageError(f"no exercise {slug!r}; `grade list` shows them")
    if not (kit.root / "solutions" / slug / kit.exercise(slug).module).is_file():
        raise UsageError(f"solutions/{slug}/{kit.exercise(slug).module} is not in this kit")

    def progress(i: int, total: int, mutant, outcome: str) -> None:
        # Flushed: the run takes a while and is often followed through a pipe or a log file.
        click.echo(f"[{i}/{total}] line {mutant.line}: {mutant.id}: {outcome}")
        sys.stdout.flush()

    report = run_mutants(kit, slug, GradingOptions(), limit=limit, progress=progress)
    judged = report.total - len(report.equivalent)
    click.echo(
        f"{slug}: {len(report.killed)} of {judged} non-equivalent mutants killed "
        f"({report.score:.0%}; target {TARGET:.0%}), {len(report.equivalent)} listed as "
        f"equivalent, {len(report.survived)} survived"
    )
    for mutant in report.survived:
        click.echo(f"  survived: line {mutant.line}: {mutant.id}")
    for mid in report.killed_by_equivalent:
        click.echo(f"  listed as equivalent but killed (remove it from the list): {mid}")
    for mid in report.stale:
        click.echo(f"  listed as equivalent but no longer produced: {mid}")
    if not report.ok:
        ctx.exit(1)


@cli.command("release")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty OUT.")
@click.option(
    "--notebooks",
    is_flag=True,
    help="Also write exercises/<slug>/<module>.ipynb beside each stub (README tasks as "
    "markdown cells); the grader grades a notebook when the .py file is absent.",
)
@click.pass_context
def release_cmd(ctx: click.Context, out: Path, force: bool, notebooks: bool) -> None:
    """Write the student kit to OUT: no solutions/, no hidden suites.

    Example: grade release ../feature-store-lab-student --notebooks
    """
    from grader.classroom.release import ReleaseError, build_release

    try:
        files = build_release(_kit(ctx), out, force=force, notebooks=notebooks)
    except ReleaseError as exc:
        raise UsageError(str(exc)) from None
    click.echo(f"Wrote the student kit ({len(files)} files) to {out}")


@cli.command("report")
@click.argument("scorecards", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--title", default="Feature Store Lab: class report", show_default=True)
@click.option(
    "--similarity",
    "similarity_page",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A page written by `grade similarity` to link and summarise (default: "
    "similarity.html in a SCORECARDS folder, if there).",
)
def report_cmd(
    scorecards: tuple[Path, ...], out: Path, title: str, similarity_page: Path | None
) -> None:
    """Write one self-contained HTML class report from scorecards (files or folders).

    A results folder's regrade.json (from `grade batch`) shows as a section on what changed.

    Example: grade report results/ --out report.html --similarity results/similarity.html
    """
    from grader.classroom.report import (
        ReportError,
        build_report,
        find_extras,
        load_scorecards,
    )
    from grader.grading.scorecard import write_text_atomic

    try:
        cards = load_scorecards(list(scorecards))
        extras = find_extras(list(scorecards), out, similarity_page)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    try:
        write_text_atomic(out, build_report(cards, title=title, extras=extras))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"Wrote {out} ({len(cards)} scorecards)")


@cli.command("gradescope-bundle")
@click.argument("out_zip", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--hidden-visibility",
    type=click.Choice(["visible", "hidden", "after_due_date", "after_published"]),
    default="after_due_date",
    show_default=True,
    help="When students see the hidden tests' results on Gradescope.",
)
@click.option(
    "--try",
    "try_submission",
    type=click.Path(exists=True, path_type=Path),
    help="Run the bundle here on this submission (folder or .zip) as Gradescope would, "
    "and print what the student would see.",
)
@click.option(
    "--memory",
    "memory_mib",
    type=click.IntRange(min=256),
    default=768,
    show_default=True,
    help="With --try: the container's memory in MiB (a memory cgroup, when root).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --try: lay out /autograder in this (empty) folder and leave it there.",
)
@click.pass_context
def gradescope_bundle_cmd(
    ctx: click.Context,
    out_zip: Path | None,
    hidden_visibility: str,
    try_submission: Path | None,
    memory_mib: int,
    keep: Path | None,
) -> None:
    """Write a Gradescope autograder zip (setup.sh, run_autograder and the kit), or try it.

    Example: grade gradescope-bundle autograder.zip

    Example: grade gradescope-bundle --try my-submission/  (runs setup.sh and
    run_autograder in a temp /autograder under 768 MiB, one CPU and no bubblewrap)
    """
    from grader.classroom.gradescope import BundleError, build_bundle

    if out_zip is None and try_submission is None:
        raise UsageError("give OUT.zip to write the bundle, or --try SUBMISSION to try it")
    kit = _kit(ctx)
    if out_zip is not None:
        try:
            count = build_bundle(kit, out_zip, hidden_visibility=hidden_visibility)
        except BundleError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot write {out_zip}: {exc.strerror}") from None
        click.echo(f"Wrote {out_zip} ({count} files); upload it as the autograder on Gradescope")
    if try_submission is not None:
        from grader.classroom.gradescope_try import TrialError, render_trial, try_bundle

        try:
            run = try_bundle(kit, try_submission, memory_mib=memory_mib, keep=keep, echo=click.echo)
        except (TrialError, BundleError) as exc:
            raise UsageError(str(exc)) from None
        click.echo(render_trial(run))
        if run.results is None:
            raise click.ClickException("run_autograder wrote no results.json")


@cli.command("similarity")
@click.argument("source", metavar="SUBMISSIONS_OR_RESULTS", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("similarity.html"),
    show_default=True,
    help="The HTML page to write; the CSV of every pair goes beside it (same name, .csv).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Flag a pair when the mean of the shares of each file's code (beyond the stub) that "
    "the other holds reaches this.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Flagged pairs shown side by side per exercise.",
)
@click.pass_context
def similarity_cmd(ctx, source: Path, out: Path, threshold: float, top: int) -> None:
    """Rank pairs of submissions by shared code, per exercise (flags for a closer look).

    SUBMISSIONS_OR_RESULTS is the folder `grade batch` graded, or its --out folder. The
    stubs count as starter code; renamed variables and reordered functions still match.

    Example: grade similarity submissions/ --out results/similarity.html --threshold 0.6
    """
    from grader.classroom.similarity import (
        SimilarityError,
        build_page,
        flagged_counts,
        pairs_csv,
        pairs_csv_path,
        run_similarity,
    )
    from grader.grading.scorecard import write_text_atomic

    if not source.exists():
        raise UsageError(f"{source} does not exist")
    try:
        result = run_similarity(_kit(ctx), source, threshold=threshold, out=out)
    except SimilarityError as exc:
        raise UsageError(str(exc)) from None
    csv_path = pairs_csv_path(out)
    try:
        write_text_atomic(csv_path, pairs_csv(result))
        write_text_atomic(out, build_page(result, top=top))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    flagged = flagged_counts(result)
    counts = ", ".join(f"{slug} {n}" for slug, n in flagged.items())
    click.echo(f"Compared {len(result.submissions)} submissions; pairs flagged: {counts}")
    click.echo(f"Wrote {out} and {csv_path} (flags for a closer look, not verdicts)")


@cli.command("export")
@click.argument("results", type=click.Path(exists=True, path_type=Path), nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["canvas", "moodle", "csv"]),
    required=True,
    help="canvas: Canvas gradebook import; moodle: Moodle CSV grade import; csv: everything.",
)
@click.option(
    "--roster",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="CSV with columns submission, student_id, name (optional: section, login_id, "
    "email, canvas_id).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--assignment",
    metavar="NAME",
    help="One column NAME with the total instead of one column per exercise.",
)
@click.pass_context
def export_cmd(ctx, results, fmt: str, roster: Path, out: Path, assignment: str | None) -> None:
    """Join scorecards to a roster and write the file an LMS imports.

    RESULTS are scorecard files or folders (a `grade batch` --out folder). Submissions no
    roster row names, and students without a submission, are listed, never dropped silently.

    Example: grade export results/ --format canvas --roster roster.csv --out canvas.csv
    """
    from grader.classroom.export import ExportError, export_grades, read_roster
    from grader.classroom.report import ReportError, load_scorecards
    from grader.grading.safe_text import printable
    from grader.grading.scorecard import write_text_atomic

    try:
        cards = load_scorecards(list(results))
        students = read_roster(roster)
        result = export_grades(_kit(ctx), cards, students, fmt, assignment=assignment)
    except (ReportError, ExportError) as exc:
        raise UsageError(str(exc)) from None
    try:
        write_text_atomic(out, result.text)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"Wrote {out} ({fmt}, {result.rows} rows)")
    if result.unmatched:
        where = "kept as rows without a student" if fmt == "csv" else "not in the file"
        click.echo(
            f"{len(result.unmatched)} submission(s) match no roster row ({where}): "
            + ", ".join(printable(s) for s in result.unmatched)
        )
    if result.absent:
        click.echo(
            f"{len(result.absent)} student(s) have no graded submission (empty grade): "
            + ", ".join(
                printable(f"{s.name} ({s.student_id}, {s.submission or 'no submission id'})")
                for s in result.absent
            )
        )


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Smaller inputs (a smoke run, not the real figures).")
@click.pass_context
def bench_cmd(ctx: click.Context, quick: bool) -> None:
    """Print the grader's speed figures as JSON lines (ratios measured in one run).

    Example: grade bench
    """
    import json

    from grader.classroom.bench import run_bench

    run_bench(_kit(ctx), lambda figure: click.echo(json.dumps(figure)), quick=quick)


def main() -> None:
    """Console-script entry point."""
    from grader.sandbox import typeguard_cache

    typeguard_cache.install(record=True)  # a trusted process: it may add to the cache
    cli(prog_name="grade")


if __name__ == "__main__":
    main()
