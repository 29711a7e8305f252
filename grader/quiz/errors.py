"""The quiz's error types. Every message is one line, fit to print after "Error: "."""

from __future__ import annotations


class QuizError(Exception):
    """Base of the quiz's expected failures; the command turns it into exit code 2."""


class BankError(QuizError):
    """The question bank is missing or invalid."""


class AnswersError(QuizError):
    """An answers file is unreadable, malformed, or answers a question wrongly typed."""


class ProgressError(QuizError):
    """The progress file cannot be read or written."""
