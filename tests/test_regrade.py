"""Regrade diffs: a batch over results made by other suites (or `--compare OLD_OUT`) writes
`regrade.csv`, decreases first and flagged, and the class report shows the change."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.classroom.regrade import Change, Regrade, summary_lines
from grader.cli import cli
from grader.course.kit import Kit, load_kit
from grader.grading.suites import PACKAGE_DIR, suite_digest

# A suite "fix" that makes one test of ex2 stricter than any answer can be.
TIGHTENED = "test_a_feature_row_stamped_exactly_at_the_entity_timestamp_is_used"


@pytest.fixture(scope="module")
def klass(lab, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("regrade") / "subs"
    (folder / "good").mkdir(parents=True)
    shutil.copy2(lab.root / "solutions" / "ex2_pit_join" / "pit_join.py", folder / "good")
    (folder / "wrong").mkdir()
    (folder / "wrong" / "pit_join.py").write_text(
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n    return entity_df.copy()\n"
    )
    return folder


@pytest.fixture(scope="module")
def fixed_kit(lab, tmp_path_factory) -> Kit:
    """The lab kit with its own copy of the suites, one ex2 test changed (another digest)."""
    root = tmp_path_factory.mktemp("fixed")
    for name in ("course.toml",):
        shutil.copy2(lab.root / name, root / name)
    for name in ("data", "exercises", "solutions", "feature_repo"):
        shutil.copytree(lab.root / name, root / name, symlinks=True)
    suites = root / "grader" / "suites"
    shutil.copytree(PACKAGE_DIR / "suites", suites, ignore=shutil.ignore_patterns("__pycache__"))
    public = suites / "ex2_pit_join" / "test_public.py"
    text = public.read_text()
    head = f"def {TIGHTENED}(student):\n"
    assert head in text
    public.write_text(text.replace(head, head + '    assert False, "tightened"\n', 1))
    kit = load_kit(root)
    assert suite_digest(kit) != suite_digest(lab)
    return kit


def batch(kit: Kit, subs: Path, out: Path, *extra: str):
    result = CliRunner().invoke(
        cli, ["--kit", str(kit.root), "batch", str(subs), "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def graded(lab, klass, fixed_kit, tmp_path_factory):
    """The class graded by the original suites, then regraded in place by the fixed ones."""
    out = tmp_path_factory.mktemp("out") / "results"
    batch(lab, klass, out)
    before = {p.name: p.read_text() for p in out.glob("*.json")}
    shutil.copytree(out, out.parent / "first")
    output = batch(fixed_kit, klass, out)
    return out, before, output


def test_a_batch_over_other_suites_results_writes_regrade_csv_decreases_first(graded):
    out, before, output = graded
    rows = list(csv.DictReader((out / "regrade.csv").open()))
    assert rows[0]["submission"] == "good" and rows[0]["exercise"] == "ex2_pit_join"
    assert rows[0]["change"] == "DECREASE"
    old, new = float(rows[0]["old"]), float(rows[0]["new"])
    assert old == json.loads(before["good.json"])["exercises"][1]["score"]
    assert new < old and float(rows[0]["delta"]) == new - old
    assert f"ex2_pit_join::{TIGHTENED}: passed -> failed" in rows[0]["tests_changed"]
    # Unchanged exercises (the missing ones) are not listed.
    assert {r["exercise"] for r in rows} <= {"ex2_pit_join"}
    assert "!! DECREASE good ex2_pit_join" in output and "1 scores went down" in output


def test_compare_names_the_old_results_and_gives_the_same_diff(graded, klass, fixed_kit, tmp_path):
    out, _, _ = graded
    new_out = tmp_path / "new"
    output = batch(fixed_kit, klass, new_out, "--compare", str(out.parent / "first"))
    assert (new_out / "regrade.csv").read_text() == (out / "regrade.csv").read_text()
    assert "!! DECREASE good ex2_pit_join" in output and "Every change:" in output


def test_a_rerun_with_the_same_suites_is_no_regrade_and_clears_the_old_file(
    graded, klass, fixed_kit, tmp_path
):
    out, _, _ = graded
    again = tmp_path / "again"
    shutil.copytree(out, again)
    output = batch(fixed_kit, klass, again, "--resume")
    assert not (again / "regrade.csv").exists() and not (again / "regrade.json").exists()
    assert "Regrade" not in output


def test_the_class_report_shows_the_change(graded, tmp_path):
    out, _, _ = graded
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert "Regrade: what changed" in html and "1 scores went down" in html
    assert f"ex2_pit_join::{TIGHTENED}" in html


def test_compare_with_a_folder_without_scorecards_is_a_one_line_error(lab, klass, tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli, ["--kit", str(lab.root), "batch", str(klass), "--out", str(tmp_path / "o"),
              "--compare", str(tmp_path / "empty")],
    )  # fmt: skip
    assert result.exit_code == 2 and "holds no scorecards to compare with" in result.output
    help_text = CliRunner().invoke(cli, ["batch", "--help"]).output
    assert "--compare" in help_text and "--compare results/" in help_text


def test_the_summary_lists_decreases_before_increases_and_escapes_control_characters():
    regrade = Regrade(
        ["sha256:old"], "sha256:new", 3,
        [Change("x\x1b[2Jy", "ex2", 10, 5, ("t: passed -> failed",)), Change("b", "ex1", 1, 4)],
    )  # fmt: skip
    lines = summary_lines(regrade)
    assert lines[1].startswith("!! DECREASE x?[2Jy ex2: 10 -> 5 (-5)")
    assert lines[2].startswith("   increase b ex1: 1 -> 4 (+3)")
