"""`grade quiz`: parse options, call the quiz library, render. No quiz logic lives here.

Works from any folder: it needs only the packaged bank, never the kit's course.toml.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import click
from rich.console import Console

from grader.quiz.answers import grade_answers, load_answers
from grader.quiz.bank import Bank, default_bank
from grader.quiz.errors import QuizError
from grader.quiz.progress import (
    PROGRESS_ENV,
    default_progress_path,
    load_progress,
    section_stats,
)
from grader.quiz.render import render_intro, render_report, render_stats, render_summary
from grader.quiz.session import MODES, pick_questions, run_session

EPILOG = """\b
Examples:
  grade quiz                          5 questions, due ones first
  grade quiz --section interview -n 5 the five interview questions
  grade quiz --mode flash             flashcards, rate yourself
  grade quiz --review                 only the questions due for review
  grade quiz --stats                  mastery per section
  grade quiz --list                   question ids, one a line
  grade quiz --answers my.toml --json score a file of answers (id = "answer")
"""


class QuizUsageError(click.ClickException):
    """A one-line error with exit code 2 (bad input, bad answers file, unusable progress file)."""

    exit_code = 2


def _section_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """Validate --section against the bank's sections (loaded only when the option is used)."""
    if not value:
        return []
    known = list(_bank().sections)
    unknown = [v for v in value if v not in known]
    if unknown:
        raise QuizUsageError(f"unknown section {unknown[0]!r}; known: {', '.join(known)}")
    return list(dict.fromkeys(value))


def _bank() -> Bank:
    """The packaged bank (read on first use); an invalid bank becomes a one-line error."""
    try:
        return default_bank()
    except QuizError as exc:
        raise QuizUsageError(str(exc)) from None


@click.command("quiz", epilog=EPILOG)
@click.option(
    "--section",
    "sections",
    multiple=True,
    callback=_section_ids,
    metavar="ID",
    help="Only this lesson section (repeatable), e.g. interview; `grade quiz --stats` lists them.",
)
@click.option(
    "-n", "count", type=click.IntRange(min=0), metavar="N", help="Number of questions (0 = all)."
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="mixed",
    show_default=True,
    help="free: typed answers only; choice: multiple choice and true/false; "
    "flash: flashcards you rate yourself.",
)
@click.option("--review", is_flag=True, help="Ask only the questions due for review.")
@click.option("--stats", is_flag=True, help="Show mastery per section and exit.")
@click.option("--list", "list_ids", is_flag=True, help="Print the question ids, one a line.")
@click.option(
    "--answers",
    "answers_file",
    type=click.Path(dir_okay=True, path_type=Path),
    metavar="FILE",
    help="Score a TOML or JSON file mapping question id -> answer, without a terminal.",
)
@click.option("--json", "as_json", is_flag=True, help="With --answers or --stats: print JSON.")
@click.option(
    "--progress",
    "progress_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=PROGRESS_ENV,
    metavar="FILE",
    help="Progress file (default: one per user in the platform's user-data folder).",
)
@click.option("--seed", type=int, help="Seed for the question order (for reproducible runs).")
def quiz(
    sections: list[str],
    count: int | None,
    mode: str,
    review: bool,
    stats: bool,
    list_ids: bool,
    answers_file: Path | None,
    as_json: bool,
    progress_file: Path | None,
    seed: int | None,
) -> None:
    """Interview self-quiz on feature stores and Feast, with spaced review.

    Free-text answers are scored by the key points their sentences state (a list of terms, a
    negated or reversed statement does not count); the feedback quotes the words that earned
    each point, names misconceptions with the correcting sentence, lists the missed points and
    shows a model answer. Questions you miss come back sooner.
    """
    actions = [f for f, on in (("--stats", stats), ("--list", list_ids)) if on]
    actions += ["--answers"] if answers_file else []
    actions += ["--review"] if review else []
    if len(actions) > 1:
        raise QuizUsageError(f"{' and '.join(actions)} cannot be combined")
    if as_json and not (answers_file or stats):
        raise QuizUsageError("--json needs --answers FILE or --stats")
    try:
        if list_ids:
            _list(sections)
        elif answers_file:
            _answers(answers_file, as_json)
        elif stats:
            _stats(progress_file, as_json)
        else:
            _interactive(sections, count, mode, review, progress_file, seed)
    except QuizError as exc:
        raise QuizUsageError(str(exc)) from None


def _list(sections: list[str]) -> None:
    for question in _bank().in_sections(sections):
        click.echo(question.id)


def _answers(path: Path, as_json: bool) -> None:
    report = grade_answers(_bank(), load_answers(path))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        render_report(Console(highlight=False), report)


def _stats(progress_file: Path | None, as_json: bool) -> None:
    bank = _bank()
    progress = load_progress(progress_file)
    rows = section_stats(bank.sections, {q.id: q.section for q in bank.questions}, progress)
    if as_json:
        click.echo(json.dumps({"sections": [r.to_dict() for r in rows]}, indent=2))
    else:
        render_stats(Console(highlight=False), rows, progress.path or default_progress_path())


def _interactive(
    sections: list[str],
    count: int | None,
    mode: str,
    review: bool,
    progress_file: Path | None,
    seed: int | None,
) -> None:
    bank = _bank()
    progress = load_progress(progress_file)
    questions = pick_questions(
        bank,
        progress,
        sections=sections,
        mode=mode,
        count=count,
        review=review,
        rng=random.Random(seed),
    )
    console = Console(highlight=False)
    if not questions:
        console.print("Nothing is due for review right now. Run `grade quiz` to learn new ones.")
        return
    render_intro(console, len(questions), mode, sections)
    outcome = run_session(questions, progress, mode=mode, console=console)
    render_summary(console, outcome.results, outcome.planned, outcome.stopped, progress.path)
