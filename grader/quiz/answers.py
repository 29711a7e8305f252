"""Scoring a file of answers without a terminal (`grade quiz --answers FILE`).

The file is TOML or JSON mapping question ids to answers: free text, or the letter of a choice
(true/false questions also take true/false). Anything else is an `AnswersError` with a one-line
message, raised before any scoring so that a bad file never produces a partial report.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from grader.quiz.bank import Bank
from grader.quiz.errors import AnswersError
from grader.quiz.scoring import AnswerFormatError, QuizReport, score_answer


def _parse(text: str, path: Path) -> Any:
    """Parse `text` as JSON or TOML: by extension, else JSON when it looks like JSON."""
    suffix = path.suffix.lower()
    as_json = suffix == ".json" or (suffix != ".toml" and text.lstrip().startswith("{"))
    try:
        return json.loads(text) if as_json else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswersError(f"{path}: invalid JSON: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AnswersError(f"{path}: invalid TOML: {exc}") from None


def load_answers(path: Path) -> dict[str, Any]:
    """Read the answers file at `path` into a mapping of question id -> raw answer."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AnswersError(f"cannot read answers file {path}: {reason}") from None
    data = _parse(text, path)
    if not isinstance(data, dict):
        raise AnswersError(f"{path}: expected a mapping of question id to answer")
    return data


def grade_answers(bank: Bank, answers: dict[str, Any]) -> QuizReport:
    """Score the answers in file order; raises `AnswersError` on the first bad one."""
    results = []
    for qid, answer in answers.items():
        question = bank.get(qid)
        if question is None:
            raise AnswersError(f"unknown question id {qid!r} (see `grade quiz --list`)")
        if not isinstance(answer, str | bool):
            expected = "free text" if question.kind == "free" else "a letter"
            raise AnswersError(f"answer to {qid!r}: expected {expected}, got {_type_name(answer)}")
        try:
            results.append(score_answer(question, answer))
        except AnswerFormatError as exc:
            raise AnswersError(f"answer to {qid!r}: {exc}") from None
    return QuizReport(tuple(results))


def _type_name(value: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
        type(None): "null",
    }.get(type(value), type(value).__name__)
