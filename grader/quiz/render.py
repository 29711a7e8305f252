"""Terminal renderings of the quiz (rich). Functions here print; they decide nothing.

Bank text is printed as `Text`, never as markup, because prompts contain brackets such as
`store.apply([])` that rich would otherwise read as style tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.quiz.bank import LETTERS, Question
from grader.quiz.progress import SectionStats
from grader.quiz.scoring import PASS_MARK, QuestionResult, QuizReport


def _pct(score: float) -> str:
    return f"{round(score * 100)}%"


def _style(score: float) -> str:
    return "green" if score >= PASS_MARK else "yellow" if score > 0 else "red"


def render_intro(console: Console, count: int, mode: str, sections: Sequence[str]) -> None:
    """The banner at the start of an interactive session."""
    where = ", ".join(sections) if sections else "all sections"
    console.print(
        Text.assemble(
            ("Feature Store Lab: interview self-quiz\n", "bold"),
            f"{count} question{'s' * (count != 1)} from {where}, mode {mode}. ",
            ("Ctrl-D or Ctrl-C ends the quiz with a summary.", "dim"),
        )
    )


def render_question(console: Console, question: Question, index: int, total: int) -> None:
    """The question header, prompt and (for choice questions) the labelled options."""
    console.print()
    console.print(
        Text(f"Question {index}/{total} · {question.section} · {question.id}", style="bold cyan")
    )
    console.print(Text(question.prompt))
    if question.kind != "free":
        for letter, option in zip(LETTERS, question.options, strict=False):
            console.print(Text(f"  {letter}) {option}"))


def _feedback(console: Console, result: QuestionResult) -> None:
    """Covered points with the words that earned them, misconceptions with their correction,
    the other missed points, and general advice."""
    quotes = {e.point: e.quote for e in result.evidence}
    for point in result.covered_points:
        quote = f' ("{quotes[point]}")' if point in quotes else ""
        console.print(Text(f"  ✓ {point}{quote}", style="green"))
    wrong = {m.point for m in result.misconceptions}
    for m in result.misconceptions:
        console.print(Text(f'  ✗ misconception: "{m.quote}" contradicts: {m.point}', style="red"))
        console.print(Text(f"      correct: {m.correction}", style="yellow"))
    for point in result.missed_points:
        if point not in wrong:
            console.print(Text(f"  ✗ missed: {point}", style="red"))
    for advice in result.advice:
        console.print(Text(f"  ! {advice}", style="yellow"))


def render_result(console: Console, result: QuestionResult) -> None:
    """Score and feedback after an answer: the points with evidence, misconceptions, missed
    points, advice, then the model answer."""
    console.print(Text(f"Score: {_pct(result.score)}", style=f"bold {_style(result.score)}"))
    _feedback(console, result)
    console.print(Panel(Text(result.model_answer), title="Model answer", title_align="left"))


def render_summary(
    console: Console,
    results: Sequence[QuestionResult],
    planned: int,
    stopped: bool,
    progress_path: Path | None,
) -> None:
    """The end-of-session summary: one row per answered question and the total."""
    console.print()
    title = "Summary" + (" (stopped early)" if stopped else "")
    table = Table(title=title, title_justify="left")
    table.add_column("question")
    table.add_column("section")
    table.add_column("score", justify="right")
    for r in results:
        table.add_row(r.id, r.section, Text(_pct(r.score), style=_style(r.score)))
    console.print(table)
    report = QuizReport(tuple(results))
    console.print(
        Text(
            f"Answered {len(results)} of {planned}; total score {_pct(report.score)}.",
            style="bold",
        )
    )
    missed = [r.id for r in results if r.score < PASS_MARK]
    if missed:
        console.print(Text(f"These come back first next time: {', '.join(missed)}"))
    if progress_path is not None and results:
        console.print(Text(f"Progress saved to {progress_path}", style="dim"))


def render_stats(console: Console, stats: Sequence[SectionStats], progress_path: Path) -> None:
    """Mastery per section (`grade quiz --stats`)."""
    table = Table(title="Quiz mastery per section", title_justify="left")
    table.add_column("section", no_wrap=True)
    for name, justify in (
        ("questions", "right"),
        ("seen", "right"),
        ("mastered", "right"),
        ("due now", "right"),
        ("mastery", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in stats:
        table.add_row(
            s.section,
            str(s.questions),
            str(s.seen),
            str(s.mastered),
            str(s.due),
            Text(_pct(s.mastery), style=_style(s.mastery) if s.seen else "dim"),
        )
    console.print(table)
    console.print(Text(f"Progress file: {progress_path}", style="dim"))


def render_report(console: Console, report: QuizReport) -> None:
    """A human summary of `--answers FILE` without `--json`."""
    for r in report.results:
        console.print(Text(f"{r.id}: {_pct(r.score)}", style=f"bold {_style(r.score)}"))
        _feedback(console, r)
    console.print(
        Text(f"Total: {_pct(report.score)} over {len(report.results)} answers", style="bold")
    )
