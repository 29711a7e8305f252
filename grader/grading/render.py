"""Terminal renderings (rich) of the kit's data: exercise lists, scorecards, summaries.

Written for people at any width (80 columns and up): feedback goes under its test, never in a
narrow column, and piped output is plain text without box drawing. Every string that came
from a submission is printed through `grader.grading.safe_text` (no markup, no escapes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from grader.course.kit import Kit
from grader.grading.safe_text import clean, plain, shown_id
from grader.grading.scorecard import ExerciseResult, Scorecard, TestResult


def console() -> Console:
    """A console on stdout; plain text when stdout is not a terminal."""
    return Console(highlight=False)


def _box(out: Console):
    """Table lines on a terminal; none when piped (plain text for files and other tools)."""
    return box.SIMPLE_HEAD if out.is_terminal else None


def render_exercise_list(kit: Kit, card: Scorecard | None = None) -> None:
    """Print the exercises in course order with title, file, points and, from `card` (the
    last scorecard), each one's last score."""
    out = console()
    table = Table(title=kit.name, box=_box(out), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("exercise", no_wrap=True)
    table.add_column("title", ratio=1)
    table.add_column("file", no_wrap=True)
    table.add_column("points", justify="right")
    table.add_column("last score", no_wrap=True)
    last = {ex.slug: ex for ex in card.exercises} if card else {}
    for i, ex in enumerate(kit.exercises, 1):
        result = last.get(ex.slug)
        if result is None:
            score = Text("-", style="dim")
        elif not_started(result):
            score = Text("not started", style="dim")
        else:
            style = STATUS_STYLE.get(result.status, "")
            score = Text.assemble(f"{result.score:g}/{result.max_score:g} ", (result.status, style))
        table.add_row(str(i), ex.slug, ex.title, ex.module, f"{ex.points:g}", score)
    seen = f"last scores from {clean(card.graded_at)}" if card else "no scorecard yet: grade check"
    table.caption = f"{kit.total_points:g} points in all; {seen}. Hints: grade hint SLUG [N]"
    out.print(table)


STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "magenta",
    "timeout": "yellow",
    "missing": "dim",
}
# The feedback `grader.grading.runner` gives a test whose student function is still a stub.
NOT_IMPLEMENTED = "still raises NotImplementedError"


def not_started(ex: ExerciseResult) -> bool:
    """Every test of the exercise failed only because its functions are still stubs."""
    return bool(ex.tests) and all(
        t.status == "failed" and NOT_IMPLEMENTED in t.feedback for t in ex.tests
    )


def _test_name(test: TestResult) -> str:
    return clean(test.id.split("::", 1)[-1].removeprefix("test_").replace("_", " "))


def next_task(ex: ExerciseResult) -> int | None:
    """The task number of the first test that did not pass, where the tests carry one."""
    for t in ex.tests:
        task = t.task
        if t.status != "passed" and isinstance(task, int):
            return task
    return None


def _indented(out: Console, text: Text, indent: int) -> None:
    """`text` wrapped to the console's width, every line indented (no trailing blanks, so
    piped output stays clean), its own line breaks kept."""
    width = max(20, out.width - indent)
    for line in text.split("\n"):
        for part in line.wrap(out, width) or [Text("")]:
            part.rstrip()
            out.print(Text(" " * indent) + part, no_wrap=True, overflow="fold")


def render_exercise(
    out: Console,
    ex: ExerciseResult,
    *,
    verbose: bool = False,
    first_only: bool = False,
    public_only: bool = False,
) -> None:
    """One exercise for a person: a header line, then each test that did not pass with its
    feedback in full under it (`first_only`: the first one, the rest in one line), passed
    tests folded into a count unless `verbose`. A stub is one line."""
    ok, bad = ("\u2713", "\u2717") if out.is_terminal else ("ok", "x")
    slug = clean(ex.slug)
    if not_started(ex):
        out.print(
            Text.assemble(
                (slug, "bold"), f"  0/{ex.max_score:g}  ", ("not started", "dim"),
                f": open exercises/{slug}/README.md",
            )
        )  # fmt: skip
        return
    style = STATUS_STYLE.get(ex.status, "")
    passed = [t for t in ex.tests if t.status == "passed"]
    failing = [t for t in ex.tests if t.status != "passed"]
    header = Text.assemble((slug, "bold"), f"  {ex.score:g}/{ex.max_score:g}  ", (ex.status, style))
    ran = sum(t.max_points for t in ex.tests)
    if public_only and ex.tests and ran < ex.max_score:
        # A student kit: say what can be reached here and what the hidden tests add.
        header = Text.assemble(
            (slug, "bold"), f"  public {ex.score:g}/{ran:g}  ", (ex.status, style),
            f"  · {ex.max_score - ran:g} more points in the instructor's hidden tests",
        )  # fmt: skip
    if ex.tests:
        header.append(f"  ({len(passed)} of {len(ex.tests)} tests passed)")
    out.print(header)
    if ex.error:
        _indented(out, plain(ex.error, style), 2)
    shown = failing[:1] if first_only else failing
    for t in shown:
        st = STATUS_STYLE.get(t.status, "")
        row = Text.assemble(
            (bad, st), f" {t.points:g}/{t.max_points:g} ", (t.status, st), "  ", _test_name(t)
        )
        if t.task is not None:
            row.append(f"  (task {t.task})", style="dim")
        if t.visibility == "hidden":
            row.append(" (hidden test)", style="dim")
        _indented(out, row, 2)
        _indented(out, plain(t.feedback), 6)
    rest = failing[len(shown) :]
    if rest:
        names = ", ".join(_test_name(t) for t in rest)
        more = Text(f"  + {len(rest)} more not passing: {names}")
        out.print(more, no_wrap=True, overflow="ellipsis")
    if verbose:
        for t in passed:
            out.print(Text.assemble("  ", (ok, "green"), " ", _test_name(t), f"  {t.points:g}"))
    elif passed:
        out.print(Text.assemble("  ", (ok, "green"), f" {len(passed)} passed", (
            " (--verbose lists them)" if failing else "", "dim")))  # fmt: skip
    task = next_task(ex)
    if task is not None:
        out.print(Text(f"  next: task {task} in exercises/{slug}/README.md", style="bold"))


def exercise_line(ex: ExerciseResult) -> Text:
    """One exercise in one line: slug, score, status (or "not started")."""
    if not_started(ex):
        return Text.assemble(f"{clean(ex.slug)}  0/{ex.max_score:g}  ", ("not started", "dim"))
    style = STATUS_STYLE.get(ex.status, "")
    return Text.assemble(f"{clean(ex.slug)}  {ex.score:g}/{ex.max_score:g}  ", (ex.status, style))


def render_watch(
    out: Console,
    overview: Scorecard,
    regrade: Scorecard,
    regraded: list[str],
    *,
    source: Path,
    verbose: bool = False,
) -> None:
    """One screen of `grade watch`, redrawn in place on a terminal: every exercise in one line
    but the ones just regraded, which show their first failing test in full."""
    if out.is_terminal:
        out.clear()
    else:
        out.print("-" * 40)
    out.print(
        Text.assemble(
            ("grade watch", "bold"), f": {clean(source)} (save a file to regrade it; Ctrl-C stops)"
        )
    )
    out.print()
    for ex in overview.exercises:
        if ex.slug in regraded:
            render_exercise(out, ex, verbose=verbose, first_only=not verbose)
        else:
            out.print(exercise_line(ex))
    out.print()
    stamp = clean(regrade.graded_at[11:19])
    out.print(
        Text.assemble(
            ("Total: ", "bold"), (f"{overview.score:g}/{overview.max_score:g}", "bold"),
            f"   {', '.join(regraded)} graded in {regrade.duration_s:.1f}s at {stamp} UTC",
        )
    )  # fmt: skip
    if regrade.error:
        out.print(plain(f"Grading error: {regrade.error}", "magenta"))


def render_scorecard(card: Scorecard, *, hidden_ran: bool, verbose: bool = False) -> None:
    """Print a scorecard for a person: each exercise (see `render_exercise`), the total, and
    what the score means here."""
    out = console()
    for ex in card.exercises:
        render_exercise(out, ex, verbose=verbose, public_only=not hidden_ran)
        out.print()
    total = Text.assemble(("Total: ", "bold"), (f"{card.score:g}/{card.max_score:g}", "bold"))
    total.append(f" ({card.duration_s:.1f}s)")
    out.print(total)
    if card.error:
        out.print(plain(f"Grading error: {card.error}", "magenta"))
    if card.isolation == "reduced":
        out.print(
            "[yellow]Note: bubblewrap is not available here, so your code ran with reduced "
            "isolation (limits only).[/yellow]"
        )
    if not hidden_ran:
        out.print(
            "Only the public tests ran here. Your instructor also runs hidden tests, "
            "so a full public score is a good sign, not the final grade."
        )


def render_check(check) -> None:
    """One line of `grade verify`."""
    mark = ("ok  ", "green") if check.ok else ("FAIL", "red")
    detail = f" - {clean(check.detail)}" if check.detail else ""
    console().print(Text.assemble(mark, " ", clean(check.name), detail))


@contextmanager
def batch_progress(total: int) -> Iterator[Callable[[Scorecard, int, int], None]]:
    """A progress reporter for `run_batch`: a bar on a terminal, plain lines otherwise."""
    out = console()
    if out.is_terminal:
        with Progress(
            TextColumn("grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", markup=False),
            console=out,
        ) as progress:
            task = progress.add_task("", total=total)

            def update(card: Scorecard, done: int, _total: int) -> None:
                progress.update(
                    task,
                    completed=done,
                    description=f"{shown_id(card.submission)}: {card.score:g}",
                )

            yield update
        return

    def line(card: Scorecard, done: int, total_: int) -> None:
        print(
            f"[{done}/{total_}] {shown_id(card.submission)}: "
            f"{card.score:g}/{card.max_score:g} ({card.status})",
            flush=True,
        )

    yield line
