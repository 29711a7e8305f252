"""Terminal renderings (rich) of the kit's data: exercise lists, scorecards, summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.course.kit import Kit
from grader.grading.scorecard import Scorecard


def console() -> Console:
    """A console on stdout; plain text when stdout is not a terminal."""
    return Console(highlight=False)


def render_exercise_list(kit: Kit) -> None:
    """Print the exercises in course order with title, module and points."""
    table = Table(title=kit.name)
    table.add_column("#", justify="right")
    table.add_column("slug")
    table.add_column("title")
    table.add_column("file")
    table.add_column("points", justify="right")
    table.add_column("hints", justify="right")
    for i, ex in enumerate(kit.exercises, 1):
        table.add_row(
            str(i),
            ex.slug,
            ex.title,
            f"exercises/{ex.slug}/{ex.module}",
            f"{ex.points:g}",
            str(len(ex.hints)),
        )
    table.caption = f"{kit.total_points:g} points in all. Hints: grade hint SLUG [N]"
    console().print(table)


STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "magenta",
    "timeout": "yellow",
    "missing": "dim",
}


def render_scorecard(card: Scorecard, *, hidden_ran: bool) -> None:
    """Print a scorecard: a table per exercise, feedback for each test that did not pass."""
    out = console()
    for ex in card.exercises:
        style = STATUS_STYLE.get(ex.status, "")
        title = f"{ex.slug}: {ex.score:g}/{ex.max_score:g} [{style}]{ex.status}[/{style}]"
        if ex.error:
            title += f" - {escape(ex.error)}"
        table = Table(title=title, title_justify="left", show_lines=False, expand=True)
        table.add_column("test", ratio=3)
        table.add_column("", width=6)
        table.add_column("points", justify="right", width=9)
        table.add_column("result", width=8)
        table.add_column("feedback", ratio=5)
        for t in ex.tests:
            name = t.id.split("::", 1)[-1].removeprefix("test_").replace("_", " ")
            st = STATUS_STYLE.get(t.status, "")
            feedback = "" if t.status == "passed" else escape(t.feedback)
            table.add_row(
                name, t.visibility, f"{t.points:g}/{t.max_points:g}",
                f"[{st}]{t.status}[/{st}]", feedback,
            )  # fmt: skip
        out.print(table)
    out.print(f"[bold]Total: {card.score:g}/{card.max_score:g}[/bold] ({card.duration_s:.1f}s)")
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
    mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
    detail = f" - {escape(check.detail)}" if check.detail else ""
    console().print(f"{mark} {escape(check.name)}{detail}")


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
            TextColumn("{task.description}"),
            console=out,
        ) as progress:
            task = progress.add_task("", total=total)

            def update(card: Scorecard, done: int, _total: int) -> None:
                progress.update(
                    task, completed=done, description=f"{card.submission}: {card.score:g}"
                )

            yield update
        return

    def line(card: Scorecard, done: int, total_: int) -> None:
        print(
            f"[{done}/{total_}] {card.submission}: "
            f"{card.score:g}/{card.max_score:g} ({card.status})",
            flush=True,
        )

    yield line
