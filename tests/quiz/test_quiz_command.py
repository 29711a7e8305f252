"""`grade quiz` through click's runner: listing, scoring a file of answers, errors, sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.quiz.bank import Bank
from grader.quiz.progress import load_progress

GOLDEN = Path(__file__).parent / "golden"


def run(runner: CliRunner, *args: str, input: str | None = None):  # noqa: A002
    return runner.invoke(cli, ["quiz", *args], input=input, catch_exceptions=False)


def test_list_prints_every_question_id_one_a_line(runner: CliRunner, bank: Bank) -> None:
    result = run(runner, "--list")
    assert result.exit_code == 0
    assert result.output.splitlines() == bank.ids()


def test_list_with_a_section_prints_only_that_section(runner: CliRunner) -> None:
    result = run(runner, "--list", "--section", "interview")
    assert result.output.split() == [
        "interview-skew",
        "interview-dual-database",
        "interview-pit-join",
        "interview-feast-vs-tecton-hopsworks",
        "interview-freshness",
    ]


def test_the_quiz_works_outside_the_kit(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no course.toml anywhere up from here
    assert run(runner, "--list").exit_code == 0


def test_answers_json_has_the_documented_shape(runner: CliRunner, tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "interview-skew": "Training and serving features differ.",
                "skew-code-example": "a",
                "skew-silent": "false",
                "arch-online-history": "a",
            }
        )
    )
    result = run(runner, "--answers", str(answers), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"score", "questions"}
    assert 0 <= data["score"] <= 1
    assert [q["id"] for q in data["questions"]] == [
        "interview-skew",
        "skew-code-example",
        "skew-silent",
        "arch-online-history",
    ]
    for q in data["questions"]:
        assert {"id", "score", "max_score", "missed_points", "model_answer"} <= set(q)
        assert 0 <= q["score"] <= q["max_score"]
        assert isinstance(q["missed_points"], list)
        assert q["model_answer"]
    scores = [q["score"] for q in data["questions"]]
    assert scores[1:] == [1.0, 1.0, 0.0]
    assert 0 < scores[0] < 1
    assert data["score"] == pytest.approx(sum(scores) / 4, abs=1e-3)


def test_a_golden_answers_file_gets_its_expected_scorecard(runner: CliRunner) -> None:
    result = run(runner, "--answers", str(GOLDEN / "answers.toml"), "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    expected = json.loads((GOLDEN / "expected.json").read_text())
    assert got["score"] == expected["score"]
    keys = ("id", "score", "max_score", "missed_points")
    assert [{k: q[k] for k in keys} for q in got["questions"]] == expected["questions"]


def test_answers_without_json_print_a_human_summary(runner: CliRunner) -> None:
    result = run(runner, "--answers", str(GOLDEN / "answers.toml"))
    assert result.exit_code == 0
    assert "interview-freshness: 44%" in result.output
    assert "Total: 66%" in result.output


def test_scoring_a_file_does_not_touch_the_progress_file(
    runner: CliRunner, progress_path: Path
) -> None:
    run(runner, "--answers", str(GOLDEN / "answers.toml"), "--json")
    assert not progress_path.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("unknown.toml", 'no-such-question = "x"\n', "unknown question id 'no-such-question'"),
        ("type.json", '{"interview-skew": 3}', "expected free text, got a number"),
        ("letter.json", '{"skew-code-example": "q"}', "'q' is not one of a, b, c, d"),
        ("bool.json", '{"skew-code-example": true}', "not true/false"),
        ("table.toml", "[interview-skew]\nx = 1\n", "expected free text, got a table"),
        ("bad.toml", 'interview-skew = "unclosed\n', "invalid TOML"),
        ("bad.json", '{"interview-skew": }', "invalid JSON"),
        ("list.json", '["a", "b"]', "expected a mapping"),
        ("binary.toml", None, "cannot read answers file"),
    ],
)
def test_a_bad_answers_file_exits_2_with_one_line(
    runner: CliRunner, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"\xff\xfe\x00bad")
    else:
        path.write_text(content)
    result = run(runner, "--answers", str(path), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_a_missing_answers_file_exits_2_with_one_line(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "--answers", str(tmp_path / "nope.toml"), "--json")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot read answers file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--section", "nowhere", "--list"], "unknown section 'nowhere'"),
        (["--json"], "--json needs --answers FILE or --stats"),
        (["--list", "--stats"], "cannot be combined"),
    ],
)
def test_bad_usage_exits_2_with_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = run(runner, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_a_session_without_a_terminal_scores_answers_and_saves_progress(
    runner: CliRunner, progress_path: Path, bank: Bank
) -> None:
    question = bank.get("interview-pit-join")
    assert question is not None
    result = run(
        runner,
        "--section",
        "interview",
        "--mode",
        "free",
        "-n",
        "2",
        "--seed",
        "1",
        input=question.model_answer + "\nI am not sure.\n",
    )
    assert result.exit_code == 0, result.output
    assert "Question 1/2" in result.output and "Question 2/2" in result.output
    assert result.output.count("Model answer") == 2
    assert "Summary" in result.output and "stopped early" not in result.output
    cards = load_progress(progress_path).cards
    assert len(cards) == 2
    assert sorted(c.last_score for c in cards.values())[0] == 0.0


def test_end_of_input_ends_the_session_with_a_summary(runner: CliRunner) -> None:
    result = run(runner, "--mode", "choice", "-n", "3", input="a\n")
    assert result.exit_code == 0
    assert "Summary (stopped early)" in result.output
    assert "Answered 1 of 3" in result.output


def test_flashcards_are_rated_by_the_learner(runner: CliRunner, progress_path: Path) -> None:
    result = run(runner, "--mode", "flash", "-n", "2", input="\ny\n\nmaybe\nn\n")
    assert result.exit_code == 0, result.output
    assert "Please type y, p or n." in result.output
    scores = sorted(c.last_score for c in load_progress(progress_path).cards.values())
    assert scores == [0.0, 1.0]


def test_review_says_so_when_nothing_is_due(runner: CliRunner) -> None:
    result = run(runner, "--review")
    assert result.exit_code == 0
    assert "Nothing is due" in result.output


def test_review_asks_the_question_missed_before_until_it_is_passed(
    runner: CliRunner, progress_path: Path
) -> None:
    progress = load_progress(progress_path)
    progress.record("skew-code-example", 0.0)
    progress.record("pit-ttl", 1.0)
    progress.save()
    result = run(runner, "--review", input="a\n")
    assert "Question 1/1 · skew · skew-code-example" in result.output
    assert "Score: 100%" in result.output
    assert "Nothing is due" in run(runner, "--review").output


def test_stats_show_every_section(runner: CliRunner, bank: Bank) -> None:
    run(runner, "--mode", "choice", "-n", "2", input="a\na\n")
    result = run(runner, "--stats", "--json")
    assert result.exit_code == 0
    sections = json.loads(result.stdout)["sections"]
    assert [s["section"] for s in sections] == list(bank.sections)
    assert sum(s["seen"] for s in sections) == 2
    table = run(runner, "--stats").output
    assert "hands-on" in table and "mastery" in table


def test_an_unusable_progress_file_exits_2_with_one_line(
    runner: CliRunner, progress_path: Path
) -> None:
    progress_path.write_text("[]")
    result = run(runner, "-n", "1", input="a\n")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "progress file" in result.stderr


def test_help_has_an_example(runner: CliRunner) -> None:
    result = run(runner, "--help")
    assert "grade quiz --answers" in result.output


def test_answers_feedback_quotes_evidence_and_names_misconceptions(
    runner: CliRunner, tmp_path: Path
) -> None:
    answers = tmp_path / "a.toml"
    answers.write_text(
        'interview-dual-database = """The online store keeps the full history; materialize '
        'copies online to offline."""\n'
        'interview-freshness = "Every feature view gets a TTL, the oldest value you accept."\n'
    )
    text = run(runner, "--answers", str(answers))
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())  # rich wraps long lines
    assert 'misconception: "The online store keeps the full history"' in flat
    assert "correct: The offline store" in flat
    assert '("Every feature view gets a TTL")' in flat
    data = json.loads(run(runner, "--answers", str(answers), "--json").stdout)
    dual, fresh = data["questions"]
    assert dual["score"] == 0.0 and len(dual["misconceptions"]) == 2
    assert fresh["evidence"][0]["quote"].startswith("Every feature view gets a TTL")
