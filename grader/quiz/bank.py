"""The question bank: `bank.toml` (package data) loaded and validated into dataclasses.

The bank is data: sections, prompts, model answers, key points with their patterns, choices and
explanations all live in the TOML file; this module only reads and checks it. `load_bank()`
either returns a fully valid `Bank` or raises `BankError` naming the first problem.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from grader.quiz.errors import BankError
from grader.quiz.matching import compile_pattern

Kind = Literal["free", "choice", "truefalse"]
KINDS: tuple[Kind, ...] = ("free", "choice", "truefalse")
LETTERS = "abcdefgh"
MIN_POINTS, MAX_POINTS = 3, 6
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class KeyPoint:
    """One idea a good free-text answer states."""

    text: str
    """The idea in a short sentence, shown as covered or missed."""
    patterns: tuple[str, ...]
    """Phrasings that show the idea, in the syntax of `grader.quiz.matching`."""
    weight: float = 1.0
    """Share of the question's score, relative to the other points."""
    negation_sensitive: bool = True
    """When true a negated phrasing ("does not leak") does not count as stating the point."""
    matchers: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    """The compiled `patterns`."""


@dataclass(frozen=True)
class Question:
    """One question of the bank. Which fields matter depends on `kind`."""

    id: str
    """Stable id, e.g. `interview-skew`; used by `--list`, `--answers` and the progress file."""
    section: str
    """Id of the lesson section it tests (a key of the bank's `[sections]`)."""
    kind: Kind
    """`free` (typed answer scored by key points), `choice` or `truefalse`."""
    prompt: str
    """The question as asked."""
    model_answer: str = ""
    """For `free`: a full-mark answer."""
    points: tuple[KeyPoint, ...] = ()
    """For `free`: the key points the score is made of."""
    choices: tuple[str, ...] = ()
    """For `choice`: the options, labelled a, b, c... in order."""
    answer: str | bool = ""
    """For `choice`: the correct letter; for `truefalse`: the correct boolean."""
    explanation: str = ""
    """For `choice` and `truefalse`: why the answer is right."""

    @property
    def options(self) -> tuple[str, ...]:
        """The labelled options the learner picks from (`True`/`False` for truefalse)."""
        if self.kind == "truefalse":
            return ("True", "False")
        return self.choices

    @property
    def correct_index(self) -> int:
        """Index into `options` of the right option (choice and truefalse only)."""
        if self.kind == "truefalse":
            return 0 if self.answer is True else 1
        return LETTERS.index(str(self.answer))

    @property
    def full_answer(self) -> str:
        """The answer to show after a question: the model answer or the right option with why."""
        if self.kind == "free":
            return self.model_answer
        i = self.correct_index
        return f"{LETTERS[i]}) {self.options[i]}. {self.explanation}"


@dataclass(frozen=True)
class Bank:
    """All questions, in bank order, and the lesson sections they belong to."""

    sections: dict[str, str]
    """Section id -> title, in lesson order."""
    questions: tuple[Question, ...]

    def get(self, qid: str) -> Question | None:
        """The question with id `qid`, or None."""
        return self._by_id().get(qid)

    def ids(self) -> list[str]:
        """Question ids in bank order."""
        return [q.id for q in self.questions]

    def in_sections(self, sections: tuple[str, ...] | list[str]) -> list[Question]:
        """Questions of the given sections (all when empty), in bank order."""
        return [q for q in self.questions if not sections or q.section in sections]

    def _by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}


def _require(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise BankError(f"bank: {where}: {msg}")


def _str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    _require(isinstance(value, str) and bool(value.strip()), where, f"needs a non-empty '{key}'")
    return str(value).strip()


def _key_point(raw: Any, where: str) -> KeyPoint:
    _require(isinstance(raw, dict), where, "a key point must be a table")
    text = _str(raw, "text", where)
    patterns = raw.get("patterns")
    _require(
        isinstance(patterns, list) and bool(patterns) and all(isinstance(p, str) for p in patterns),
        where,
        "needs a non-empty list of string 'patterns'",
    )
    matchers = []
    for p in patterns:
        try:
            matchers.append(compile_pattern(p))
        except re.error as exc:
            raise BankError(f"bank: {where}: pattern {p!r} does not compile: {exc}") from None
    weight = raw.get("weight", 1.0)
    _require(
        isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0,
        where,
        "'weight' must be a positive number",
    )
    negation = raw.get("negation_sensitive", True)
    _require(isinstance(negation, bool), where, "'negation_sensitive' must be true or false")
    return KeyPoint(text, tuple(patterns), float(weight), negation, tuple(matchers))


def _question(raw: Any, index: int, sections: dict[str, str]) -> Question:
    where = f"question #{index + 1}"
    _require(isinstance(raw, dict), where, "must be a table")
    qid = _str(raw, "id", where)
    where = f"question {qid!r}"
    _require(bool(_ID.match(qid)), where, "id must be lower-case words joined by '-'")
    section = _str(raw, "section", where)
    _require(section in sections, where, f"unknown section {section!r}")
    kind = raw.get("kind")
    _require(kind in KINDS, where, f"'kind' must be one of {', '.join(KINDS)}")
    prompt = _str(raw, "prompt", where)
    if kind == "free":
        points_raw = raw.get("points")
        _require(isinstance(points_raw, list), where, "a free question needs [[points]]")
        points = tuple(
            _key_point(p, f"{where} point {i + 1}") for i, p in enumerate(points_raw or [])
        )
        _require(
            MIN_POINTS <= len(points) <= MAX_POINTS,
            where,
            f"needs {MIN_POINTS}-{MAX_POINTS} key points, has {len(points)}",
        )
        return Question(
            qid,
            section,
            "free",
            prompt,
            model_answer=_str(raw, "model_answer", where),
            points=points,
        )
    explanation = _str(raw, "explanation", where)
    answer = raw.get("answer")
    if kind == "truefalse":
        _require(isinstance(answer, bool), where, "'answer' must be true or false")
        return Question(
            qid, section, "truefalse", prompt, answer=bool(answer), explanation=explanation
        )
    choices = raw.get("choices")
    _require(
        isinstance(choices, list)
        and 2 <= len(choices) <= len(LETTERS)
        and all(isinstance(c, str) and c.strip() for c in choices),
        where,
        f"needs 2-{len(LETTERS)} non-empty 'choices'",
    )
    _require(
        isinstance(answer, str) and answer in LETTERS[: len(choices or [])],
        where,
        f"'answer' must be the letter of one of its {len(choices or [])} choices",
    )
    return Question(
        qid,
        section,
        "choice",
        prompt,
        choices=tuple(c.strip() for c in choices or []),
        answer=str(answer),
        explanation=explanation,
    )


def parse_bank(data: dict[str, Any]) -> Bank:
    """Validate parsed TOML and build a `Bank`; raises `BankError` on the first problem."""
    raw_sections = data.get("sections")
    _require(
        isinstance(raw_sections, dict)
        and bool(raw_sections)
        and all(isinstance(v, str) for v in raw_sections.values()),
        "[sections]",
        "must map section ids to titles",
    )
    sections: dict[str, str] = dict(raw_sections or {})
    raw_questions = data.get("questions")
    _require(isinstance(raw_questions, list), "[[questions]]", "missing")
    questions = tuple(_question(q, i, sections) for i, q in enumerate(raw_questions or []))
    seen: set[str] = set()
    for q in questions:
        _require(q.id not in seen, f"question {q.id!r}", "duplicate id")
        seen.add(q.id)
    return Bank(sections, questions)


def load_bank(path: Path | None = None) -> Bank:
    """Load the bank from `path`, or the packaged `bank.toml` when None."""
    try:
        if path is None:
            text = resources.files("grader.quiz").joinpath("bank.toml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"cannot read the question bank: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BankError(f"the question bank is not valid TOML: {exc}") from None
    return parse_bank(data)


@cache
def default_bank() -> Bank:
    """The packaged bank, loaded once per process."""
    return load_bank()
