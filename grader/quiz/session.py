"""The interactive quiz: choosing the questions and asking them one by one.

`pick_questions` decides what to ask (due questions first, so missed ones come back sooner);
`run_session` asks, scores, shows feedback and records progress after every answer. Ctrl-C or
EOF stops the loop and returns what was answered so far; the caller prints the summary.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console
from rich.text import Text

from grader.quiz.bank import LETTERS, Bank, Question
from grader.quiz.errors import ProgressError, QuizError
from grader.quiz.progress import Progress
from grader.quiz.render import render_question, render_result
from grader.quiz.scoring import (
    AnswerFormatError,
    QuestionResult,
    parse_option,
    score_free_text,
    score_option,
    self_rated,
)

MODES = ("mixed", "free", "choice", "flash")
"""mixed: each question in its own kind; free / choice: only those kinds; flash: self-rated."""
DEFAULT_COUNT = 5
_RATINGS = {"y": 1.0, "yes": 1.0, "p": 0.5, "partly": 0.5, "n": 0.0, "no": 0.0}

ReadLine = Callable[[str], str]
"""Reads one line after showing a prompt; raises EOFError or KeyboardInterrupt to stop."""


@dataclass
class SessionOutcome:
    """What happened in one interactive session."""

    planned: int
    """How many questions were picked."""
    results: list[QuestionResult] = field(default_factory=list)
    """Results of the questions answered, in order."""
    stopped: bool = False
    """True when the learner ended early with Ctrl-C or EOF."""


def _fits_mode(question: Question, mode: str) -> bool:
    if mode == "free":
        return question.kind == "free"
    if mode == "choice":
        return question.kind != "free"
    return True


def pick_questions(
    bank: Bank,
    progress: Progress,
    *,
    sections: Sequence[str] = (),
    mode: str = "mixed",
    count: int | None = None,
    review: bool = False,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> list[Question]:
    """Choose the questions of a session, in asking order.

    Review sessions ask only the due questions (all of them unless `count` is given). Other
    sessions ask due questions first, then unseen ones in random order, then the rest, soonest
    due first; `count` (default `DEFAULT_COUNT`, 0 = all) caps the number. Raises `QuizError`
    when the filters leave no question at all.
    """
    rng = rng or random.Random()
    pool = [q for q in bank.in_sections(list(sections)) if _fits_mode(q, mode)]
    if not pool:
        raise QuizError(f"no questions match section(s) {', '.join(sections)} in mode {mode}")
    by_id = {q.id: q for q in pool}
    due = progress.due_ids(by_id, now)
    if review:
        ordered = due
        count = count or len(ordered)
    else:
        unseen = [q.id for q in pool if q.id not in progress.cards]
        rng.shuffle(unseen)
        later = sorted(
            (q.id for q in pool if q.id in progress.cards and q.id not in due),
            key=lambda i: progress.cards[i].due_at,
        )
        ordered = due + unseen + later
        count = DEFAULT_COUNT if count is None else count or len(ordered)
    return [by_id[i] for i in ordered[:count]]


def _ask_option(question: Question, read: ReadLine, console: Console) -> int:
    letters = LETTERS[: len(question.options)]
    while True:
        raw = read(f"Your answer ({'/'.join(letters)}): ")
        try:
            return parse_option(question, raw)
        except AnswerFormatError:
            console.print(Text(f"Please type one of {', '.join(letters)}.", style="yellow"))


def _ask_flash(question: Question, read: ReadLine, console: Console) -> QuestionResult:
    read("Think of your answer, then press Enter to see it... ")
    console.print(Text(question.full_answer))
    if question.kind == "free":
        for point in question.points:
            console.print(Text(f"  • {point.text}"))
    while True:
        raw = read("Did you know it? [y]es / [p]artly / [n]o: ").strip().lower()
        if raw in _RATINGS:
            return self_rated(question, _RATINGS[raw])
        console.print(Text("Please type y, p or n.", style="yellow"))


def ask(question: Question, mode: str, read: ReadLine, console: Console) -> QuestionResult:
    """Ask one question (already shown) and return its scored result."""
    if mode == "flash":
        return _ask_flash(question, read, console)
    if question.kind == "free":
        answer = read("Your answer (one line, Enter to submit): ")
        return score_free_text(question, answer)
    return score_option(question, _ask_option(question, read, console))


def run_session(
    questions: Sequence[Question],
    progress: Progress,
    *,
    mode: str,
    console: Console,
    read: ReadLine | None = None,
) -> SessionOutcome:
    """Ask `questions` in order, showing feedback and saving progress after each answer.

    Never raises for Ctrl-C or EOF: they end the session with `stopped` set. A progress file
    that cannot be written is reported once and the session goes on without saving.
    """
    read = read or (lambda prompt: console.input(Text(prompt, style="bold")))
    outcome = SessionOutcome(planned=len(questions))
    try:
        for i, question in enumerate(questions, 1):
            render_question(console, question, i, len(questions))
            result = ask(question, mode, read, console)
            render_result(console, result)
            outcome.results.append(result)
            progress.record(question.id, result.score)
            try:
                progress.save()
            except ProgressError as exc:
                console.print(Text(f"Warning: {exc}; progress is not saved.", style="yellow"))
                progress.path = None
    except (KeyboardInterrupt, EOFError):
        # The prompt line is left unfinished by ^C / ^D; start the summary on a fresh line.
        console.print()
        outcome.stopped = True
    return outcome
