"""`grade export`: scorecards joined to a roster in Canvas, Moodle and plain CSV formats."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.course.kit import load_kit
from grader.grading.safe_text import csv_cell
from grader.grading.scorecard import ExerciseResult, Scorecard

from kit_helpers import KIT_ROOT

KIT = load_kit(KIT_ROOT)
SCORES = {
    "alice": (25, 30, 20, 25),
    "bob": (0, 12.5, 20, 0),
    "=cmd|' /C calc'!A0": (5, 5, 5, 5),  # an id chosen to attack the spreadsheet
    "zed-unlisted": (1, 1, 1, 1),
}
ROSTER = """Submission,Student_ID,Name,Section,Login_ID,Email
alice,S001,"Liddell, Alice",A,aliddell,alice@example.edu
bob,S002,Bob Builder,B,bbuilder,bob@example.edu
"=cmd|' /C calc'!A0",S003,@SUM(1+1),A,mallory,m@example.edu
carol,S004,Carol Absent,B,cabsent,carol@example.edu
,S005,Dave No-Id,A,dnoid,dave@example.edu
"""


def card(sid: str, scores: tuple[float, ...]) -> Scorecard:
    exercises = [
        ExerciseResult(ex.slug, float(s), ex.points, "passed" if s == ex.points else "failed", None)
        for ex, s in zip(KIT.exercises, scores, strict=True)
    ]
    return Scorecard(sid, "2026-12-01T10:00:00+00:00", "0.1.0", "sha256:x", "graded", None,
                     float(sum(scores)), KIT.total_points, 1.0, exercises)  # fmt: skip


@pytest.fixture
def results(tmp_path) -> Path:
    out = tmp_path / "results"
    for i, (sid, scores) in enumerate(SCORES.items()):
        card(sid, scores).write(out / f"s{i}.json")
    (out / "summary.json").write_text("{}")
    (tmp_path / "roster.csv").write_text(ROSTER)
    return out


def export(tmp_path, results, fmt, *extra):
    out = tmp_path / f"grades-{fmt}.csv"
    result = CliRunner().invoke(
        cli,
        ["--kit", str(KIT_ROOT), "export", str(results), "--format", fmt,
         "--roster", str(tmp_path / "roster.csv"), "--out", str(out), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output, list(csv.reader(out.open(encoding="utf-8")))


def test_canvas_has_its_identity_columns_points_possible_and_empty_cells_for_absent(
    tmp_path, results
):
    output, rows = export(tmp_path, results, "canvas")
    slugs = [ex.slug for ex in KIT.exercises]
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *slugs]
    assert rows[1] == ["Points Possible", "", "", "", "", "25", "30", "20", "25"]
    by_id = {r[2]: r for r in rows[2:]}
    assert by_id["S001"] == ["Liddell, Alice", "", "S001", "aliddell", "A", "25", "30", "20", "25"]
    assert by_id["S002"][5:] == ["0", "12.5", "20", "0"]
    assert by_id["S004"][5:] == ["", "", "", ""]  # no submission: ungraded, not zero
    assert by_id["S003"][0] == "'@SUM(1+1)"  # a formula in a name is neutralised
    assert "1 submission(s) match no roster row (not in the file): zed-unlisted" in output
    assert "2 student(s) have no graded submission" in output
    assert (
        "Carol Absent (S004, carol)" in output and "Dave No-Id (S005, no submission id)" in output
    )


def test_one_assignment_column_with_the_total(tmp_path, results):
    _, rows = export(tmp_path, results, "canvas", "--assignment", "Feast lab (1234)")
    assert rows[0][5:] == ["Feast lab (1234)"] and rows[1][5:] == ["100"]
    assert {r[2]: r[5] for r in rows[2:]}["S001"] == "100"


def test_moodle_identifies_students_by_id_number(tmp_path, results):
    _, rows = export(tmp_path, results, "moodle")
    assert rows[0] == ["ID number", "Full name", "Email address", "Group",
                       *[ex.slug for ex in KIT.exercises], "Total"]  # fmt: skip
    assert rows[1] == ["S001", "Liddell, Alice", "alice@example.edu", "A", "25", "30", "20", "25",
                       "100"]  # fmt: skip


def test_plain_csv_keeps_unmatched_submissions_and_neutralises_formulas(tmp_path, results):
    output, rows = export(tmp_path, results, "csv")
    header, body = rows[0], rows[1:]
    assert header[:6] == ["student_id", "name", "section", "login_id", "email", "submission"]
    by_sub = {r[5]: r for r in body}
    assert by_sub["zed-unlisted"][0] == "" and by_sub["zed-unlisted"][-1] == "graded"
    assert "'=cmd|' /C calc'!A0" in by_sub  # the attack is text now
    assert by_sub["carol"][-1] == "absent" and by_sub[""][-1] == "no submission"
    assert "kept as rows without a student" in output
    assert len(body) == 6  # five students and one unmatched submission: nobody dropped


@pytest.mark.parametrize(
    "roster, message",
    [
        ("submission,name\nalice,Alice\n", "lacks the column(s) student_id"),
        ("submission,student_id,name\nalice,S1,A\nalice,S2,B\n", "line 3: submission 'alice'"),
        ("submission,student_id,name\nalice,S1,A\nbob,S1,B\n", "student_id 'S1' is also on"),
        ("submission,student_id,name\n", "has no students"),
    ],
)
def test_a_bad_roster_is_a_one_line_error(tmp_path, results, roster, message):
    (tmp_path / "roster.csv").write_text(roster)
    result = CliRunner().invoke(
        cli,
        ["--kit", str(KIT_ROOT), "export", str(results), "--format", "canvas",
         "--roster", str(tmp_path / "roster.csv"), "--out", str(tmp_path / "x.csv")],
    )  # fmt: skip
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.csv").exists()


def test_export_help_has_an_example():
    text = CliRunner().invoke(cli, ["export", "--help"]).output
    assert "Example: grade export results/ --format canvas" in text


@pytest.mark.parametrize(
    "value, cell",
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("plain", "plain"), (-2.5, "-2.5"), (3, "3"), (None, "")],
)  # fmt: skip
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_neutralised(value, cell):
    assert csv_cell(value) == cell
