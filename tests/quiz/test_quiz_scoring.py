"""Scoring free-text answers by key points, and reading choice answers."""

from __future__ import annotations

import re

import pytest

from grader.quiz.bank import Bank, KeyPoint, Question, load_bank
from grader.quiz.claims import Claim
from grader.quiz.matching import analyze, compile_pattern, stem
from grader.quiz.scoring import AnswerFormatError, parse_option, score_answer, score_free_text

FREE_IDS = [q.id for q in load_bank().questions if q.kind == "free"]

# Written for these tests in other words than the model answers (a test below checks that no
# run of six words is shared), the way a learner who understood the lesson might answer.
PARAPHRASES = {
    "interview-skew": (
        "Skew between training and serving happens when the model is fed inputs in production "
        "that don't match what it saw while it was being fit. Typical reasons: two teams write "
        "the transformation twice, once in a Python notebook and once in a Java microservice, "
        "so the logic diverges; the offline job pulls from a nightly warehouse export while the "
        "live endpoint reads an event stream; or the historical features accidentally peek at "
        "events that happened later than the label. A feature store fixes this because a "
        "feature is defined once and that one definition feeds both the offline store used to "
        "build training sets and the online store queried at request time."
    ),
    "interview-dual-database": (
        "There are two storage layers because the workloads are opposite. The offline side, "
        "usually Parquet on S3 or BigQuery, holds every historical value and is optimised for "
        "big batch scans when you build training sets; throughput is what counts there. The "
        "online side, typically Redis or DynamoDB, stores just the most recent value for each "
        "key so the model server can fetch it in a couple of milliseconds. A materialization "
        "job periodically pushes the freshest rows across. You could not get one engine to be "
        "both a warehouse and a millisecond cache."
    ),
    "interview-pit-join": (
        "When you assemble a training set, each label row must be paired with feature values "
        "as they stood at the moment of that label, using only what was known then and nothing "
        "from afterwards. A naive join on user id would just grab the newest value in the "
        "table, which already reflects events after the label, so information from the future "
        "leaks into training and your validation numbers look too good compared with what "
        "production delivers. Feast handles this automatically inside get_historical_features."
    ),
    "interview-feast-vs-tecton-hopsworks": (
        "Feast is the free, open-source option written in Python that you host on your own "
        "infrastructure; it's great for a prototype or a small team that wants control, but it "
        "doesn't do much streaming transformation. Tecton is a commercial managed service whose "
        "strengths are real-time and streaming pipelines for features plus enterprise support, so "
        "you pay for it when you need real-time features without running the plumbing. "
        "Hopsworks is an all-in-one ML platform that ships a feature store together with other "
        "tooling, a good fit if you want everything integrated. I'd typically begin with Feast "
        "and migrate to a managed product once scale demands it."
    ),
    "interview-freshness": (
        "I give each feature view a time-to-live that says how stale a value may get, chosen "
        "per feature: profile attributes can be weeks old while transaction counts should be "
        "refreshed every hour. Materialization runs on a schedule in Airflow, and I track the "
        "lag between the newest offline data and the online store, raising an alert when it "
        "goes beyond the limit. If a value is stale I fall back to a default or a simpler model "
        "rather than serving bad numbers, and a dashboard shows freshness, null rates and drift."
    ),
}

OFF_TOPIC = [
    "My favourite recipe is a slow-cooked tomato sauce with garlic, basil and olive oil, "
    "simmered for two hours on a low flame until it thickens.",
    "The football match last weekend ended in a draw after a late penalty; the crowd was loud "
    "and the weather was cold, so we went home early.",
    "Photosynthesis turns sunlight, water and carbon dioxide into glucose and oxygen inside the "
    "chloroplasts of plant cells.",
    "I don't know.",
    "",
]


def point(*says: str, negated: bool | None = False, subject: tuple[str, ...] = ()) -> Question:
    """A free question with one key point, a claim that `says` (plus two that never match)."""
    never = KeyPoint("never", (Claim((compile_pattern("zzqx"),)),))
    claim = Claim(
        tuple(compile_pattern(p) for p in says),
        tuple(compile_pattern(p) for p in subject),
        negated,
    )
    kp = KeyPoint("the point", (claim,))
    return Question("t", "skew", "free", "?", model_answer="m", points=(kp, never, never))


def covers(question: Question, answer: str) -> bool:
    return "the point" in score_free_text(question, answer).covered_points


@pytest.mark.parametrize("qid", FREE_IDS)
def test_each_model_answer_scores_full_marks_on_its_own_question(bank: Bank, qid: str) -> None:
    question = bank.get(qid)
    assert question is not None
    result = score_answer(question, question.model_answer)
    assert result.score == 1.0, f"{qid} model answer misses {list(result.missed_points)}"
    assert result.missed_points == ()


@pytest.mark.parametrize("qid", sorted(PARAPHRASES))
def test_a_paraphrase_of_each_interview_answer_scores_at_least_0_7(bank: Bank, qid: str) -> None:
    question = bank.get(qid)
    assert question is not None
    result = score_answer(question, PARAPHRASES[qid])
    assert result.score >= 0.7, f"{qid}: {result.score:.2f}, missed {list(result.missed_points)}"


@pytest.mark.parametrize("qid", sorted(PARAPHRASES))
def test_the_paraphrases_really_use_other_words_than_the_model_answers(
    bank: Bank, qid: str
) -> None:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + 6]) for i in range(len(words) - 5)}

    question = bank.get(qid)
    assert question is not None
    assert not shingles(PARAPHRASES[qid]) & shingles(question.model_answer)


@pytest.mark.parametrize("qid", FREE_IDS)
def test_off_topic_answers_score_at_most_0_15_on_every_free_question(bank: Bank, qid: str) -> None:
    question = bank.get(qid)
    assert question is not None
    for answer in OFF_TOPIC:
        result = score_answer(question, answer)
        assert result.score <= 0.15, f"{qid} gave {result.score:.2f} to {answer!r}"


@pytest.mark.parametrize("qid", FREE_IDS)
def test_half_of_a_model_answer_does_not_get_full_marks(bank: Bank, qid: str) -> None:
    question = bank.get(qid)
    assert question is not None
    half = question.model_answer[: len(question.model_answer) // 3]
    assert score_answer(question, half).score < 1.0


def test_feedback_lists_covered_and_missed_points_and_the_model_answer(bank: Bank) -> None:
    question = bank.get("interview-pit-join")
    assert question is not None
    result = score_answer(question, "It leaks information from the future into training.")
    assert "leaks" in " ".join(result.covered_points)
    assert len(result.covered_points) + len(result.missed_points) == len(question.points)
    assert result.missed_points
    assert result.model_answer == question.model_answer
    assert 0 < result.score < 0.5


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It uses future data.", True),
        ("it USES future-data!", True),
        ("It used future data", True),
        ("It does not use future data.", False),
        ("It doesn't use future data.", False),
        ("It doesnt use future data.", False),
        ("It never uses future data.", False),
        ("It can't use future data.", False),
        ("Without using future data.", False),
        ("It does not leak, but the plain join uses future data.", True),
        ("No. It uses future data", True),
    ],
)
def test_a_negated_phrase_does_not_state_the_point(answer: str, expected: bool) -> None:
    assert covers(point("uses future data"), answer) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Future data is never used.", True),
        ("It never uses future data.", True),
        ("It does not use future data, only past values.", True),
        ("It uses future data.", False),
        ("It is not true that it never uses future data.", False),
    ],
)
def test_a_negated_claim_is_stated_by_a_denial_anywhere_in_its_clause(
    answer: str, expected: bool
) -> None:
    assert covers(point("uses future data", "future data", negated=True), answer) is expected


def test_either_polarity_can_state_a_claim() -> None:
    question = point("leak*", negated=None)
    assert covers(question, "a point-in-time join does not leak")
    assert covers(question, "a plain join leaks labels")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The online store keeps the latest values.", True),
        ("The online store, Redis for example, keeps the latest values.", True),
        ("The online store is a key-value cache. It keeps the latest values.", True),
        ("Latest values are what the online store keeps.", True),
        ("The online store is fast; the latest values are kept elsewhere.", False),
        ("The online store is fast. The latest values are kept elsewhere.", False),
        ("The online store is fast, and the offline store keeps the latest values.", False),
        ("Online store, latest values.", True),
    ],
)
def test_a_claim_needs_its_subject_in_the_same_clause_or_carried_into_it(
    answer: str, expected: bool
) -> None:
    question = point("latest valu*", subject=("online stor*",))
    assert covers(question, answer) is expected


def test_the_real_bank_is_negation_aware_on_the_only_past_data_point(bank: Bank) -> None:
    question = bank.get("interview-pit-join")
    assert question is not None
    text = "Only data from before the event is used, never values recorded afterwards"
    good = score_answer(question, "The join does not use future values, only past ones.")
    bad = score_answer(question, "The join uses future values.")
    assert text in good.covered_points
    assert text in bad.missed_points


@pytest.mark.parametrize(
    ("pattern", "answer"),
    [
        ("materialized view", "You materialise views."),
        ("leak*", "Leakage!"),
        ("storing features", "It STORES Features."),
        ("online store ... key value", "The online store is basically a key-value cache."),
        ("point in time", "Point-in-time"),
        ("offline .{0,40} online", "offline to online"),
        ("\\d+ ?ms", "answers in <10ms"),
    ],
)
def test_matching_ignores_case_punctuation_and_simple_word_forms(pattern: str, answer: str) -> None:
    assert covers(point(pattern), answer)


@pytest.mark.parametrize(
    ("pattern", "answer"),
    [
        ("leak", "bleak"),
        (
            "online store ... key value",
            "online store has nothing to do with a large pile of "
            "unrelated words and only then a key value",
        ),
        ("ttl", "title"),
    ],
)
def test_matching_respects_word_boundaries_and_gaps(pattern: str, answer: str) -> None:
    assert not covers(point(pattern), answer)


def test_the_stemmer_maps_inflections_of_a_word_to_one_stem() -> None:
    assert len({stem(w) for w in ("leak", "leaks", "leaked", "leaking")}) == 1
    assert len({stem(w) for w in ("use", "uses", "used", "using")}) == 1
    assert len({stem(w) for w in ("apply", "applies", "applied", "applying")}) == 1
    assert stem("materialise") == stem("materialize")
    assert stem("thing") == "thing"


def test_clauses_stop_negation_from_reaching_the_next_sentence() -> None:
    analyzed = analyze("That is not all. It uses future data")
    first = analyzed.raw.index("uses")
    assert analyzed.negations(first, first + 2, set()) == 0
    assert analyzed.negations(0, 2, set()) == 1


def test_a_contrast_marker_negates_what_follows_it() -> None:
    analyzed = analyze("Fall back to a default instead of serving stale values.")
    stale = analyzed.raw.index("stale")
    assert analyzed.negations(stale - 1, stale, set()) == 1
    assert analyzed.negations(0, 1, set()) == 0


@pytest.mark.parametrize(
    ("answer", "index"),
    [("a", 0), ("B", 1), ("(c)", 2), ("d)", 3), ("  b.  ", 1), ("Code skew", 0)],
)
def test_a_choice_answer_is_a_letter_or_the_option_text(
    bank: Bank, answer: str, index: int
) -> None:
    question = bank.get("skew-code-example")
    assert question is not None
    assert parse_option(question, answer) == index


@pytest.mark.parametrize(("answer", "index"), [(True, 0), ("false", 1), ("T", 0), ("b", 1)])
def test_a_true_false_answer_is_a_boolean_a_word_or_a_letter(
    bank: Bank, answer: str | bool, index: int
) -> None:
    question = bank.get("skew-silent")
    assert question is not None
    assert parse_option(question, answer) == index


@pytest.mark.parametrize("answer", ["e", "z", "", "maybe", True])
def test_an_impossible_choice_answer_is_rejected(bank: Bank, answer: str | bool) -> None:
    question = bank.get("skew-code-example")
    assert question is not None
    with pytest.raises(AnswerFormatError):
        parse_option(question, answer)


def test_a_wrong_choice_scores_zero_and_names_the_right_option(bank: Bank) -> None:
    question = bank.get("skew-code-example")
    assert question is not None
    wrong = score_answer(question, "b")
    right = score_answer(question, "a")
    assert (wrong.score, right.score) == (0.0, 1.0)
    assert wrong.missed_points == ("the answer is a) Code skew",)
    assert wrong.model_answer.startswith("a) Code skew.")
