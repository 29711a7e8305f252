"""Output for people: short on stubs, feedback in full under its test, 80 columns, plain when
piped, and nothing a submission wrote can drive the terminal."""

from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from grader.cli import cli
from grader.grading import render
from grader.grading.safe_text import clean, plain
from grader.grading.scorecard import ExerciseResult, Scorecard
from grader.grading.scorecard import TestResult as Result

BOX = re.compile("[\u2500-\u257f]")
HOSTILE = (
    "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x1b[1A\r25/25 passed [bold red]boom[/bold red]\x9b31m"
)
LONG = (
    "Called point_in_time_join(entity_df, feature_df, ttl=timedelta(hours=1)) with an entity "
    "row at 10:00 and a feature row at exactly 09:00; got a missing value, expected 3.5 "
    "because the TTL bound is inclusive: a row exactly ttl old is kept. END-OF-FEEDBACK"
)


def _test(name: str, status: str, feedback: str = "", points: float = 2.0) -> Result:
    earned = points if status == "passed" else 0.0
    return Result(f"ex2_pit_join::test_{name}", "public", earned, points, status, feedback, 0.1)  # type: ignore[arg-type]


def _exercise(*tests: Result, slug: str = "ex2_pit_join") -> ExerciseResult:
    score = sum(t.points for t in tests)
    status = "passed" if all(t.status == "passed" for t in tests) else "failed"
    return ExerciseResult(slug, score, 30.0, status, None, list(tests))  # type: ignore[arg-type]


def _card(*exercises: ExerciseResult) -> Scorecard:
    return Scorecard(
        submission="me", graded_at="2026-01-01T10:00:00Z", grader_version="x",
        suite_digest="sha256:x", status="graded", error=None,
        score=sum(e.score for e in exercises), max_score=sum(e.max_score for e in exercises),
        duration_s=1.5, exercises=list(exercises),
    )  # fmt: skip


def _stub(slug: str) -> ExerciseResult:
    nie = "Not done yet: point_in_time_join still raises NotImplementedError."
    return _exercise(*[_test(f"t{i}", "failed", nie) for i in range(12)], slug=slug)


def _printed(card: Scorecard, capsys, monkeypatch, **kwargs) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    render.render_scorecard(card, hidden_ran=True, **kwargs)
    return capsys.readouterr().out


def test_clean_strips_escapes_and_controls_but_keeps_lines():
    text = clean(HOSTILE + "\nnext\tline\u202eevil")
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\r" not in text
    assert "52;" not in text and "2J" not in text  # whole sequences go, not just ESC
    assert "\u202e" not in text
    assert "next\tline" in text and "\n" in text
    assert "[bold red]boom[/bold red]" in text


def test_plain_text_is_never_read_as_markup():
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor").print(plain(HOSTILE))
    printed = out.getvalue()
    assert "[bold red]boom[/bold red]" in printed
    assert "\x1b]52" not in printed and "\x1b[2J" not in printed


def test_a_stub_exercise_is_one_line(capsys, monkeypatch):
    printed = _printed(_card(_stub("ex2_pit_join")), capsys, monkeypatch)
    lines = [line for line in printed.splitlines() if "ex2_pit_join" in line]
    assert lines == ["ex2_pit_join  0/30  not started: open exercises/ex2_pit_join/README.md"]
    assert "NotImplementedError" not in printed


def test_passed_tests_fold_into_a_count_and_failures_show_in_full(capsys, monkeypatch):
    tests = [_test(f"passing_{i}", "passed") for i in range(9)] + [
        _test("ttl_bound_is_inclusive", "failed", LONG)
    ]
    printed = _printed(_card(_exercise(*tests)), capsys, monkeypatch)
    assert "passing 3" not in printed
    assert "9 passed" in printed and "9 of 10 tests passed" in printed
    assert "ttl bound is inclusive" in printed
    words = " ".join(printed.split())
    assert " ".join(LONG.split()) in words  # every word of the feedback, in order
    assert all(len(line) <= 80 for line in printed.splitlines())


def test_verbose_lists_the_passed_tests(capsys, monkeypatch):
    tests = [_test("first_ok", "passed"), _test("second_ok", "passed"), _test("bad", "failed", "x")]
    printed = _printed(_card(_exercise(*tests)), capsys, monkeypatch, verbose=True)
    assert "first ok" in printed and "second ok" in printed


def test_piped_output_is_plain_text_without_box_drawing(capsys, monkeypatch, kit_root):
    card = _card(_exercise(_test("a", "passed"), _test("b", "failed", HOSTILE)), _stub("ex3"))
    printed = _printed(card, capsys, monkeypatch)
    result = CliRunner().invoke(cli, ["--kit", str(kit_root), "list"])
    for text in (printed, result.output):
        assert not BOX.search(text), text
        assert "\x1b" not in text
    assert "[bold red]boom[/bold red]" in printed


def test_a_terminal_at_80_columns_keeps_every_line_within_it():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    ex = _exercise(_test("a_rather_long_test_name_about_ttl_bounds", "failed", LONG * 3))
    render.render_exercise(console, ex)
    lines = out.getvalue().splitlines()
    assert len(lines) > 4 and all(len(line) <= 80 for line in lines)


def test_the_first_failing_tests_task_is_the_next_step():
    tests = [_test("done", "passed"), _test("ties", "failed", "x"), _test("ttl", "failed", "y")]
    tests[0].task, tests[1].task, tests[2].task = 1, 3, 4  # type: ignore[attr-defined]
    ex = _exercise(*tests)
    assert render.next_task(ex) == 3
    out = io.StringIO()
    render.render_exercise(Console(file=out, width=80), ex, first_only=True)
    printed = out.getvalue()
    assert "next: task 3 in exercises/ex2_pit_join/README.md" in printed
    assert "+ 1 more not passing: ttl" in printed and "y" not in printed.split("ttl")[-1]


@pytest.mark.parametrize("status, shown", [("passed", "30/30 passed"), ("stub", "not started")])
def test_list_shows_the_last_score_from_the_scorecard(tmp_path, kit_root, status, shown):
    ex = _exercise(*[_test(f"t{i}", "passed", points=3.0) for i in range(10)])
    card = _card(ex if status == "passed" else _stub("ex2_pit_join"))
    path = tmp_path / "scorecard.json"
    card.write(path)
    result = CliRunner().invoke(cli, ["--kit", str(kit_root), "list", "--scorecard", str(path)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "ex2_pit_join" in line)
    assert shown in row
    other = next(line for line in result.output.splitlines() if "ex3_freshness" in line)
    assert other.rstrip().endswith("-")
