"""Scoring one answer to one question, and the result model with its dict rendering.

A free-text answer scores the weighted share of the question's key points it *states*: a
clause must say the point's claim of its subject with the right polarity (see
`grader.quiz.claims`). On top of that:

- a clause that contradicts a point is reported as a misconception, with the model answer's
  sentence that corrects it; a contradicted point that no other clause states costs
  `CONTRADICTION_COST` of its weight (one that another clause states keeps its credit: the
  answer said it, and the feedback still names the wrong clause);
- one clause earns at most `CLAUSE_CAP` points, so a run-on sentence cannot collect them all;
- an answer that is not written in sentences (few function words, words in no English order,
  a comma-separated run of terms) or is implausibly dense in key terms is a keyword list: it
  scores at most `LIST_FLOOR`, and the feedback asks for sentences.

A choice or true/false answer scores 1 or 0. Every question is worth `max_score` 1.0; a
report's score is the mean over its questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from grader.quiz.bank import LETTERS, Question
from grader.quiz.claims import Assessment, Hit, antonym_variants, assess, context
from grader.quiz.matching import FUNCTION_WORDS, Analyzed, analyze
from grader.quiz.prose import order_score, short_clause_share

PASS_MARK = 0.7
"""A score at or above this counts as knowing the question (for the Leitner boxes)."""

CLAUSE_CAP = 2
"""Most key points one clause can earn."""

CONTRADICTION_COST = 0.5
"""Share of a contradicted point's weight taken off the score."""

LIST_FLOOR = 0.05
"""The most a keyword list (an answer without sentence structure) can score."""

MIN_FUNCTION_SHARE = 0.2
"""Below this share of function words ("the", "is", "of"...) an answer is a list, not prose.
Written answers, even terse technical ones, run at 0.35-0.55 (the model answers do)."""

MAX_KEY_DENSITY = 0.65
"""Above this share of the question's key words an answer is a list of key terms (the model
answers run at 0.3-0.55)."""

MIN_WORDS_FOR_STRUCTURE = 4
"""Shorter answers are not judged on structure (there is too little to judge)."""

MIN_ORDER = -0.03
"""Below this word-order score (`grader.quiz.prose.order_score`) a punctuated answer's words
are in no English order. Prose scores about 0.01-0.3 (a held-out set went as low as 0.01),
shuffled words about -0.07 to 0.06, so this bound only catches clear disorder; punctuated
lists are caught by `MAX_SHORT_CLAUSES` and `MIN_FUNCTION_SHARE`."""

MIN_ORDER_UNPUNCTUATED = 0.065
"""The bound for an answer of 30+ word pairs without any punctuation, which is far likelier a
shuffle than prose (a learner who writes that long without a comma or a full stop is asked for
sentences too)."""

MIN_ORDER_PAIRS = 30
"""Word order is judged only on answers with at least this many word pairs (shorter ones vary
too much)."""

MAX_SHORT_CLAUSES = 0.6
"""Above this share of one- and two-word clauses (with 6 clauses or more) an answer is a
comma-separated list."""

ASK_FOR_SENTENCES = (
    "This reads as a list of terms, not an explanation: write full sentences that say what "
    "each part does and why, and the key points will count."
)

_TRUE = frozenset({"true", "t", "yes", "y"})
_FALSE = frozenset({"false", "f", "no", "n"})
_LETTER = re.compile(r"^\(?([a-h])[).:]?$")


class AnswerFormatError(ValueError):
    """An answer that cannot be read as an answer to its question (wrong type or no such option)."""


@dataclass(frozen=True)
class Evidence:
    """The words of an answer that earned a key point."""

    point: str
    quote: str


@dataclass(frozen=True)
class Misconception:
    """A clause of an answer that states the opposite of a key point."""

    point: str
    """The key point it contradicts."""
    quote: str
    """The answer's words that contradict it."""
    correction: str
    """The model answer's sentence that states the point."""


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
    evidence: tuple[Evidence, ...] = ()
    """For each covered point, the words of the answer that earned it."""
    misconceptions: tuple[Misconception, ...] = ()
    """Points the answer contradicts, each with its words and the correcting sentence."""
    advice: tuple[str, ...] = ()
    """General feedback, such as the request to write sentences instead of a list."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `grade quiz --answers FILE --json`, one question.

        SPEC section 5 fixes `id`, `score`, `max_score`, `missed_points` (which include the
        contradicted ones) and `model_answer`; the rest is extra feedback.
        """
        return {
            "id": self.id,
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "missed_points": list(self.missed_points),
            "model_answer": self.model_answer,
            "section": self.section,
            "kind": self.kind,
            "covered_points": list(self.covered_points),
            "evidence": [{"point": e.point, "quote": e.quote} for e in self.evidence],
            "misconceptions": [
                {"point": m.point, "quote": m.quote, "correction": m.correction}
                for m in self.misconceptions
            ],
            "advice": list(self.advice),
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


@cache
def _antonym_map(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(pairs)


def structure(question: Question, answer: Analyzed) -> tuple[float, float]:
    """The answer's share of function words and its share of the question's key words."""
    n = max(1, len(answer.raw))
    function_share = sum(t in FUNCTION_WORDS for t in answer.raw) / n
    key = sum(is_key_stem(s, question.key_stems) for s in answer.stems)
    return function_share, key / n


def is_key_stem(token: str, keys: frozenset[str]) -> bool:
    """True when `token` (a stem) is one of `keys` or, for keys of 4+ letters, extends one."""
    return token in keys or any(token[:n] in keys for n in range(4, len(token)))


def is_list_like(question: Question, answer: Analyzed) -> bool:
    """True when `answer` has no sentence structure: too few function words, too dense in key
    terms, mostly one- or two-word clauses, or words in no English order (see the constants)."""
    if len(answer.raw) < MIN_WORDS_FOR_STRUCTURE:
        return False
    function_share, key_density = structure(question, answer)
    if function_share < MIN_FUNCTION_SHARE or key_density > MAX_KEY_DENSITY:
        return True
    short, clauses = short_clause_share(answer)
    if clauses >= 6 and short > MAX_SHORT_CLAUSES:
        return True
    order, pairs = order_score(question.order_model, answer)
    punctuated = any(ch in answer.source for ch in ".,;:!?()")
    bound = MIN_ORDER if punctuated else MIN_ORDER_UNPUNCTUATED
    return pairs >= MIN_ORDER_PAIRS and order < bound


@dataclass(frozen=True)
class _Judged:
    """A free-text answer's assessment per key point, before crediting."""

    analyzed: Analyzed
    assessments: tuple[Assessment, ...]


def _judge(question: Question, analyzed: Analyzed) -> _Judged:
    variants = antonym_variants(analyzed, _antonym_map(question.antonyms))
    where = context(analyzed, question.foils, question.topic)
    return _Judged(
        analyzed,
        tuple(assess(p.claims, p.opposites, analyzed, variants, where) for p in question.points),
    )


_CORRECTIONS: dict[tuple[str, str], tuple[str, ...]] = {}


def corrections(question: Question) -> tuple[str, ...]:
    """For each key point, the model answer's sentence that states it ("" if none does).

    Computed on first use and kept (keyed by question id and model answer)."""
    key = (question.id, question.model_answer)
    if key not in _CORRECTIONS:
        judged = _judge(question, analyze(question.model_answer))
        model = judged.analyzed
        _CORRECTIONS[key] = tuple(
            model.sentence_text(model.sentences[a.states[0].first]) if a.states else ""
            for a in judged.assessments
        )
    return _CORRECTIONS[key]


def score_free_text(question: Question, answer: str) -> QuestionResult:
    """Score `answer` by the weighted key points its clauses state (see the module docstring)."""
    analyzed = analyze(answer)
    assessments = _judge(question, analyzed).assessments
    # Antonym swaps can turn a clause that states one point into a statement of another; a
    # clause that already states some point correctly is not read as a swapped statement.
    stating = {c for a in assessments for h in a.states for c in h.clauses_in(analyzed)}
    contradictions = [
        [
            h
            for h in a.contradicts
            if h.kind != "antonym" or not stating.intersection(h.clauses_in(analyzed))
        ]
        for a in assessments
    ]
    # Stated points are credited to a clause each, no clause crediting more than CLAUSE_CAP
    # points; points with the fewest stating clauses choose first, heavier ones first among
    # equals, so that the cap removes as little as possible.
    credited: dict[int, Hit] = {}
    used: dict[int, int] = {}
    order = sorted(
        (i for i, a in enumerate(assessments) if a.states),
        key=lambda i: (len(assessments[i].states), -question.points[i].weight),
    )
    for i in order:
        for hit in assessments[i].states:
            if used.get(hit.clause, 0) < CLAUSE_CAP:
                used[hit.clause] = used.get(hit.clause, 0) + 1
                credited[i] = hit
                break
    covered, missed, evidence, misconceptions = [], [], [], []
    got = cost = 0.0
    for i, point in enumerate(question.points):
        for hit in contradictions[i][:1]:
            first, last = analyzed.clause_bounds(hit.clause)
            quote = analyzed.quote(min(first, hit.first), max(last, hit.last))
            correction = corrections(question)[i] or question.model_answer
            misconceptions.append(Misconception(point.text, quote, correction))
        if i in credited:
            hit = credited[i]
            covered.append(point.text)
            evidence.append(Evidence(point.text, analyzed.quote(hit.first, hit.last)))
            got += point.weight
        else:
            missed.append(point.text)
            cost += CONTRADICTION_COST * point.weight if contradictions[i] else 0.0
    total = sum(p.weight for p in question.points)
    score = max(0.0, got - cost) / total if total else 0.0
    advice: list[str] = []
    if is_list_like(question, analyzed):
        score = min(score, LIST_FLOOR)
        advice.append(ASK_FOR_SENTENCES)
    return QuestionResult(
        question.id,
        question.section,
        question.kind,
        score,
        1.0,
        tuple(covered),
        tuple(missed),
        question.model_answer,
        tuple(evidence),
        tuple(misconceptions),
        tuple(advice),
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
