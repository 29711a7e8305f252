"""Tests carry their README task into the scorecard and the table; the student kit's header."""

from __future__ import annotations

from grader.grading.render import render_scorecard
from grader.grading.scorecard import ExerciseResult, Scorecard
from grader.grading.scorecard import TestResult as Result


def card(tests: list[Result], max_score: float) -> Scorecard:
    score = sum(t.points for t in tests)
    return Scorecard(
        submission="me", graded_at="2026-01-01T00:00:00Z", grader_version="0", suite_digest="x",
        status="graded", error=None, score=score, max_score=max_score, duration_s=1.0,
        exercises=[ExerciseResult("ex2_pit_join", score, max_score, "passed", None, tests)],
    )  # fmt: skip


def test_the_task_number_is_an_extra_key_of_each_test_and_old_cards_still_load():
    t = Result("ex2_pit_join::test_ties", "public", 1.0, 1.0, "passed", "Passed.", 0.1, task=3)
    data = card([t], 30).to_dict()
    assert data["schema_version"] == 1
    assert data["exercises"][0]["tests"][0]["task"] == 3
    del data["exercises"][0]["tests"][0]["task"]  # a scorecard written before the key existed
    assert Scorecard.from_dict(data).exercises[0].tests[0].task is None


def test_the_student_kit_header_says_how_many_points_the_hidden_tests_hold(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    tests = [
        Result("ex2_pit_join::test_a", "public", 2.0, 2.0, "passed", "Passed.", 0.1, task=1),
        Result("ex2_pit_join::test_b", "public", 0.0, 1.0, "failed", "Called ...", 0.1, task=7),
    ]
    render_scorecard(card(tests, 30), hidden_ran=False)
    out = capsys.readouterr().out
    assert "public 2/3" in out and "27 more points in the instructor's hidden tests" in out
    assert "(task 7)" in out, out  # the failing test's row names its README task


def test_the_instructor_header_keeps_the_full_score(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    tests = [Result("ex2_pit_join::test_a", "hidden", 2.0, 2.0, "passed", "Passed.", 0.1, 4)]
    render_scorecard(card(tests, 2), hidden_ran=True)
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "ex2_pit_join  2/2" in first and "hidden tests" not in first, out
