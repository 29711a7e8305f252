"""Scoring one answer to one question, and the result model with its dict rendering.

A free-text answer scores the weighted share of the question's key points it covers (see
`grader.quiz.matching` for what "covers" means). A choice or true/false answer scores 1 or 0.
Every question is worth `max_score` 1.0; a report's score is the mean over its questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from grader.quiz.bank import LETTERS, Question
from grader.quiz.matching import analyze, first_match

PASS_MARK = 0.7
"""A score at or above this counts as knowing the question (for the Leitner boxes)."""

_TRUE = frozenset({"true", "t", "yes", "y"})
_FALSE = frozenset({"false", "f", "no", "n"})
_LETTER = re.compile(r"^\(?([a-h])[).:]?$")


class AnswerFormatError(ValueError):
    """An answer that cannot be read as an answer to its question (wrong type or no such option)."""


@dataclass(frozen=True)
class QuestionResult:
    """The outcome of one answered question."""

    id: str
    """The question id."""
    section: str
    """The question's section."""
    kind: str
    """`free`, `choice`, `truefalse`, or `flash` for a self-rated flashcard."""
    score: float
    """Between 0 and `max_score`."""
    max_score: float
    """What a perfect answer scores (always 1.0)."""
    covered_points: tuple[str, ...]
    """Key points the answer states (free text only)."""
    missed_points: tuple[str, ...]
    """Key points it misses; for a wrong choice, the right option."""
    model_answer: str
    """The model answer, or the right option with its explanation."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `grade quiz --answers FILE --json`, one question."""
        return {
            "id": self.id,
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "missed_points": list(self.missed_points),
            "model_answer": self.model_answer,
            "section": self.section,
            "kind": self.kind,
            "covered_points": list(self.covered_points),
        }


@dataclass(frozen=True)
class QuizReport:
    """The results of a set of answered questions."""

    results: tuple[QuestionResult, ...] = field(default_factory=tuple)

    @property
    def score(self) -> float:
        """Total score over total max score, 0..1; 0 when nothing was answered."""
        total = sum(r.max_score for r in self.results)
        return sum(r.score for r in self.results) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """`{"score": 0..1, "questions": [...]}` as printed by `--json`."""
        return {
            "score": round(self.score, 4),
            "questions": [r.to_dict() for r in self.results],
        }


def score_free_text(question: Question, answer: str) -> QuestionResult:
    """Score `answer` by the weighted share of `question`'s key points it covers."""
    analyzed = analyze(answer)
    covered: list[str] = []
    missed: list[str] = []
    got = 0.0
    for point in question.points:
        if first_match(point.matchers, analyzed, negation_sensitive=point.negation_sensitive):
            covered.append(point.text)
            got += point.weight
        else:
            missed.append(point.text)
    total = sum(p.weight for p in question.points)
    return QuestionResult(
        question.id,
        question.section,
        question.kind,
        got / total if total else 0.0,
        1.0,
        tuple(covered),
        tuple(missed),
        question.model_answer,
    )


def parse_option(question: Question, answer: str | bool) -> int:
    """Read a choice or true/false answer as an index into `question.options`.

    Accepts a letter ("b", "B)", "(b)"), the option's text, and for true/false also a boolean
    or true/false/yes/no. Raises `AnswerFormatError` for anything else.
    """
    options = question.options
    if isinstance(answer, bool):
        if question.kind != "truefalse":
            raise AnswerFormatError("expected the letter of a choice, not true/false")
        return 0 if answer else 1
    if not isinstance(answer, str):
        raise AnswerFormatError(f"expected a letter, got {type(answer).__name__}")
    text = answer.strip().lower()
    if question.kind == "truefalse":
        if text in _TRUE:
            return 0
        if text in _FALSE:
            return 1
    m = _LETTER.match(text)
    if m and LETTERS.index(m.group(1)) < len(options):
        return LETTERS.index(m.group(1))
    for i, option in enumerate(options):
        if text == option.lower():
            return i
    letters = ", ".join(LETTERS[: len(options)])
    hint = " or true/false" if question.kind == "truefalse" else ""
    raise AnswerFormatError(f"{answer!r} is not one of {letters}{hint}")


def score_option(question: Question, index: int) -> QuestionResult:
    """Score a picked option: 1.0 when it is the right one, else 0.0 naming the right one."""
    right = question.correct_index
    ok = index == right
    missed = () if ok else (f"the answer is {LETTERS[right]}) {question.options[right]}",)
    return QuestionResult(
        question.id,
        question.section,
        question.kind,
        1.0 if ok else 0.0,
        1.0,
        (),
        missed,
        question.full_answer,
    )


def score_answer(question: Question, answer: str | bool) -> QuestionResult:
    """Score any answer to `question`; raises `AnswerFormatError` when it has the wrong type."""
    if question.kind == "free":
        if not isinstance(answer, str):
            raise AnswerFormatError("expected free text, got true/false")
        return score_free_text(question, answer)
    return score_option(question, parse_option(question, answer))


def self_rated(question: Question, score: float) -> QuestionResult:
    """The result of a flashcard the learner rated themself (`score` in 0..1)."""
    missed = () if score >= PASS_MARK else tuple(p.text for p in question.points)
    return QuestionResult(
        question.id, question.section, "flash", score, 1.0, (), missed, question.full_answer
    )
