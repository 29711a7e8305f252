"""The question bank: `bank.toml` (package data) loaded and validated into dataclasses.

The bank is data: sections, prompts, model answers, key points as claims (subject and what is
said of it, see `grader.quiz.claims`), the shared `[terms]` (synonyms) and `[antonyms]`,
choices and explanations all live in the TOML file; this module only reads and checks it.
`load_bank()` either returns a fully valid `Bank` or raises `BankError` naming the first
problem.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from grader.quiz.claims import Claim
from grader.quiz.errors import BankError
from grader.quiz.matching import FUNCTION_WORDS, analyze, compile_pattern, stem
from grader.quiz.prose import OrderModel, train_order_model

Kind = Literal["free", "choice", "truefalse"]
KINDS: tuple[Kind, ...] = ("free", "choice", "truefalse")
LETTERS = "abcdefgh"
MIN_POINTS, MAX_POINTS = 3, 6
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class KeyPoint:
    """One idea a good free-text answer states, as one or more claims."""

    text: str
    """The idea in a short sentence, shown as covered, missed or contradicted."""
    claims: tuple[Claim, ...]
    """Ways of stating it; one clause stating any of them earns the point."""
    weight: float = 1.0
    """Share of the question's score, relative to the other points."""
    opposites: tuple[Claim, ...] = ()
    """Statements that contradict it (swapped roles, wrong direction): misconceptions."""


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
    antonyms: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    """For `free`: the bank's antonym pairs as stems, both directions."""
    foils: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    """For `free`: what the question sets its topic against ("a plain join"), if anything."""
    topic: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    """For `free`: names of the topic itself, which end talk about the foil."""
    key_stems: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """For `free`: the word stems its patterns are made of (to measure key-term density)."""
    order_model: OrderModel = field(default_factory=OrderModel, compare=False, repr=False)
    """For `free`: the word-order model of the bank's model answers (see `grader.quiz.prose`)."""

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


def _patterns(raw: Any, key: str, where: str, terms: dict[str, tuple[str, ...]]) -> tuple:
    value = raw.get(key)
    _require(
        isinstance(value, list) and bool(value) and all(isinstance(p, str) for p in value),
        where,
        f"'{key}' must be a non-empty list of strings",
    )
    out = []
    for p in value:
        try:
            out.append(compile_pattern(p, terms))
        except re.error as exc:
            raise BankError(f"bank: {where}: pattern {p!r} does not compile: {exc}") from None
    return tuple(out)


def _claim(raw: Any, where: str, terms: dict[str, tuple[str, ...]]) -> Claim:
    _require(isinstance(raw, dict), where, "a claim must be a table {subject, says, negated}")
    unknown = sorted(set(raw) - {"subject", "says", "negated", "about"})
    _require(not unknown, where, f"unknown claim key {unknown[:1]}")
    says = _patterns(raw, "says", where, terms)
    subject = _patterns(raw, "subject", where, terms) if "subject" in raw else ()
    negated = raw.get("negated", False)
    _require(
        isinstance(negated, bool) or negated == "either",
        where,
        "'negated' must be true, false or \"either\"",
    )
    about = raw.get("about", "any")
    _require(about in ("any", "topic", "foil"), where, "'about' must be any, topic or foil")
    return Claim(says, subject, None if negated == "either" else bool(negated), str(about))


def _key_point(raw: Any, where: str, terms: dict[str, tuple[str, ...]]) -> KeyPoint:
    _require(isinstance(raw, dict), where, "a key point must be a table")
    text = _str(raw, "text", where)
    claims_raw = raw.get("claims")
    _require(
        isinstance(claims_raw, list) and bool(claims_raw), where, "needs a non-empty 'claims' list"
    )
    claims = tuple(
        _claim(c, f"{where} claim {i + 1}", terms) for i, c in enumerate(claims_raw or [])
    )
    opposites_raw = raw.get("opposites", [])
    _require(isinstance(opposites_raw, list), where, "'opposites' must be a list of claims")
    opposites = tuple(
        _claim(c, f"{where} opposite {i + 1}", terms) for i, c in enumerate(opposites_raw)
    )
    weight = raw.get("weight", 1.0)
    _require(
        isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0,
        where,
        "'weight' must be a positive number",
    )
    return KeyPoint(text, claims, float(weight), opposites)


_REGEX_PARTS = re.compile(r"\[[^\]]*\]|\(\?<?[:=!]|\{\d*,?\d*\}|\\[a-z]")


_FUNCTION_STEMS = frozenset(stem(w) for w in FUNCTION_WORDS) | FUNCTION_WORDS


def _key_stems(points: tuple[KeyPoint, ...]) -> frozenset[str]:
    """The topic words of a question: every word stem in its compiled patterns."""
    out: set[str] = set()
    for point in points:
        for claim in (*point.claims, *point.opposites):
            for pattern in (*claim.says, *claim.subject):
                words = re.findall(r"[a-z][a-z0-9]+", _REGEX_PARTS.sub(" ", pattern.pattern))
                out.update(w for w in words if len(w) >= 3 and w not in _FUNCTION_STEMS)
    return frozenset(out)


def _terms(data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    raw = data.get("terms", {})
    _require(isinstance(raw, dict), "[terms]", "must map a name to a list of patterns")
    terms: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        _require(
            bool(re.fullmatch(r"[a-z][a-z0-9_]*", name))
            and isinstance(value, list)
            and bool(value)
            and all(isinstance(v, str) for v in value),
            f"[terms] {name}",
            "needs a lower-case name and a non-empty list of patterns",
        )
        terms[name] = tuple(value)
    return terms


def _antonyms(data: dict[str, Any]) -> dict[str, str]:
    table = data.get("antonyms", {})
    raw = table.get("pairs", []) if isinstance(table, dict) else None
    _require(
        isinstance(raw, list)
        and all(
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(w, str) and w.isalpha() for w in p)
            for p in raw
        ),
        "[antonyms]",
        "'pairs' must be a list of [word, word] pairs of single words",
    )
    out: dict[str, str] = {}
    for a, b in raw or []:
        sa, sb = stem(a.lower()), stem(b.lower())
        _require(sa not in out and sb not in out, "[antonyms]", f"{a!r}/{b!r} listed twice")
        out[sa], out[sb] = sb, sa
    return out


def _question(
    raw: Any,
    index: int,
    sections: dict[str, str],
    terms: dict[str, tuple[str, ...]],
    antonyms: dict[str, str],
) -> Question:
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
            _key_point(p, f"{where} point {i + 1}", terms) for i, p in enumerate(points_raw or [])
        )
        _require(
            MIN_POINTS <= len(points) <= MAX_POINTS,
            where,
            f"needs {MIN_POINTS}-{MAX_POINTS} key points, has {len(points)}",
        )
        model_answer = _str(raw, "model_answer", where)
        foils = _patterns(raw, "foils", where, terms) if "foils" in raw else ()
        topic = _patterns(raw, "topic", where, terms) if "topic" in raw else ()
        return Question(
            qid,
            section,
            "free",
            prompt,
            model_answer=model_answer,
            points=points,
            antonyms=tuple(antonyms.items()),
            foils=foils,
            topic=topic,
            key_stems=_key_stems(points),
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
    terms = _terms(data)
    antonyms = _antonyms(data)
    questions = tuple(
        _question(q, i, sections, terms, antonyms) for i, q in enumerate(raw_questions or [])
    )
    model = train_order_model([analyze(q.model_answer) for q in questions if q.kind == "free"])
    questions = tuple(replace(q, order_model=model) if q.kind == "free" else q for q in questions)
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
