"""The question bank loads, is valid, and covers the whole lesson."""

from __future__ import annotations

import copy
import re
import tomllib
from importlib import resources
from typing import Any

import pytest

from grader.quiz.bank import LETTERS, MAX_POINTS, MIN_POINTS, Bank, parse_bank
from grader.quiz.errors import BankError

INTERVIEW_IDS = {
    "interview-skew",
    "interview-dual-database",
    "interview-pit-join",
    "interview-feast-vs-tecton-hopsworks",
    "interview-freshness",
}
LESSON_SECTIONS = {
    "skew",
    "feature-store",
    "architecture",
    "pit-join",
    "feast",
    "hands-on",
    "best-practices",
    "interview",
}


def raw_bank() -> dict[str, Any]:
    text = resources.files("grader.quiz").joinpath("bank.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_the_bank_has_at_least_25_questions(bank: Bank) -> None:
    assert len(bank.questions) >= 25


def test_question_ids_are_unique(bank: Bank) -> None:
    ids = bank.ids()
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


def test_every_lesson_section_is_declared_and_has_questions(bank: Bank) -> None:
    assert set(bank.sections) == LESSON_SECTIONS
    covered = {q.section for q in bank.questions}
    assert covered == LESSON_SECTIONS


def test_every_section_except_interview_has_quick_recall_questions(bank: Bank) -> None:
    quick = {q.section for q in bank.questions if q.kind in ("choice", "truefalse")}
    assert LESSON_SECTIONS - {"interview"} <= quick


def test_the_five_interview_questions_are_present_and_free_text(bank: Bank) -> None:
    for qid in INTERVIEW_IDS:
        question = bank.get(qid)
        assert question is not None, f"{qid} is missing"
        assert question.kind == "free"
        assert question.section == "interview"


def test_every_free_question_has_3_to_6_weighted_key_points_made_of_claims(bank: Bank) -> None:
    free = [q for q in bank.questions if q.kind == "free"]
    assert free
    for q in free:
        assert MIN_POINTS <= len(q.points) <= MAX_POINTS, q.id
        assert q.model_answer.strip(), q.id
        for point in q.points:
            assert point.claims, f"{q.id}: {point.text}"
            assert point.weight > 0
            for claim in (*point.claims, *point.opposites):
                assert claim.says and all(isinstance(p, re.Pattern) for p in claim.says)


def test_terms_are_expanded_and_antonyms_go_both_ways(bank: Bank) -> None:
    question = bank.get("interview-dual-database")
    assert question is not None
    antonyms = dict(question.antonyms)
    assert antonyms[antonyms["onlin"]] == "onlin"
    materialization = question.points[3]
    assert "onlin" in materialization.claims[0].says[0].pattern  # {online} was expanded


def test_every_multiple_choice_answer_is_among_its_choices(bank: Bank) -> None:
    choice = [q for q in bank.questions if q.kind == "choice"]
    assert choice
    for q in choice:
        assert isinstance(q.answer, str) and q.answer in LETTERS[: len(q.choices)], q.id
        assert q.choices[LETTERS.index(str(q.answer))]
        assert q.explanation


def test_every_true_false_question_has_a_boolean_answer_and_an_explanation(bank: Bank) -> None:
    tf = [q for q in bank.questions if q.kind == "truefalse"]
    assert tf
    for q in tf:
        assert isinstance(q.answer, bool)
        assert q.explanation


def test_the_hands_on_traps_are_asked(bank: Bank) -> None:
    hands_on = " ".join(q.prompt + q.model_answer for q in bank.in_sections(["hands-on"]))
    for trap in ("store.apply([])", "materialize_incremental", "duckdb"):
        assert trap in hands_on


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: d["questions"].append(copy.deepcopy(d["questions"][0])), "duplicate id"),
        (lambda d: d["questions"][0].update(section="nowhere"), "unknown section"),
        (lambda d: _claim(d).update(says=["(unclosed"]), "compile"),
        (lambda d: _claim(d).update(says=[]), "'says' must be a non-empty list"),
        (lambda d: _claim(d).update(says=["{nosuchterm}"]), "unknown term"),
        (lambda d: _claim(d).update(negated="maybe"), "'negated' must be"),
        (lambda d: _claim(d).update(about="elsewhere"), "'about' must be"),
        (lambda d: _claim(d).update(sayz=["x"]), "unknown claim key"),
        (lambda d: d["questions"][0]["points"][0].update(claims=[]), "'claims'"),
        (lambda d: d["antonyms"].update(pairs=[["online"]]), "[antonyms]"),
        (lambda d: d["antonyms"]["pairs"].append(["online", "remote"]), "listed twice"),
        (lambda d: d["terms"].update(Bad=["x"]), "[terms] Bad"),
        (lambda d: d["questions"][0].update(points=d["questions"][0]["points"][:2]), "key points"),
        (lambda d: _first(d, "choice").update(answer="h"), "letter of one of its"),
        (lambda d: _first(d, "truefalse").update(answer="yes"), "true or false"),
        (lambda d: d["questions"][0].update(kind="essay"), "'kind'"),
    ],
)
def test_the_validator_rejects_a_broken_bank_with_one_line(breakage: Any, message: str) -> None:
    data = raw_bank()
    parse_bank(copy.deepcopy(data))  # the real bank is fine
    breakage(data)
    with pytest.raises(BankError, match=re.escape(message)) as info:
        parse_bank(data)
    assert "\n" not in str(info.value)


def _claim(data: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = data["questions"][0]["points"][0]["claims"][0]
    return claim


def _first(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(q for q in data["questions"] if q["kind"] == kind)
