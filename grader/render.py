"""Terminal renderings (rich) of the kit's data: exercise lists, scorecards, summaries."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from grader.kit import Kit


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
