"""Instructor tools: resumable batches, the class report (Dask batches: test_cluster.py)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from grader.classroom.batch import run_batch
from grader.cli import cli
from grader.grading.gradescope_results import SCHEMA_PATH
from grader.grading.options import GradingOptions
from grader.sandbox.bubblewrap import Limits

from kit_helpers import free_port

OPTIONS = GradingOptions(limits=Limits(call_timeout_s=60), submission_timeout_s=300)


@pytest.fixture(scope="module")
def small_class(lab, tmp_path_factory) -> Path:
    """Three quick submissions: the ex2 solution, a wrong ex2, and an empty one."""
    folder = tmp_path_factory.mktemp("class") / "subs"
    (folder / "good").mkdir(parents=True)
    shutil.copy2(lab.root / "solutions" / "ex2_pit_join" / "pit_join.py", folder / "good")
    (folder / "wrong").mkdir()
    (folder / "wrong" / "pit_join.py").write_text(
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n    return entity_df.copy()\n"
    )
    (folder / "empty").mkdir()
    (folder / "empty" / "notes.txt").write_text("nothing here yet")
    return folder


@pytest.fixture(scope="module")
def local_batch(lab, small_class, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    started = time.monotonic()
    cards = run_batch(lab, small_class, out, workers=2, options=OPTIONS)
    return out, cards, time.monotonic() - started


def scores(cards) -> dict[str, list[tuple[str, float]]]:
    return {c.submission: [(e.slug, e.score) for e in c.exercises] for c in cards}


def test_resume_keeps_current_scorecards_and_regrades_stale_ones(lab, small_class, local_batch):
    out, cards, _ = local_batch
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    stale = json.loads((out / "wrong.json").read_text())
    stale["suite_digest"] = "sha256:old"
    (out / "wrong.json").write_text(json.dumps(stale))
    # The local batch ran warm; the regrade runs cold: both give the same scores.
    again = run_batch(lab, small_class, out, workers=2, options=OPTIONS, resume=True, warm=False)
    assert scores(again) == scores(cards)
    assert (out / "good.json").stat().st_mtime_ns == before["good.json"]
    assert json.loads((out / "wrong.json").read_text())["suite_digest"] != "sha256:old"


def test_an_unreachable_scheduler_is_a_one_line_error(lab, small_class, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["--kit", str(lab.root), "batch", str(small_class), "--out", str(tmp_path / "o"),
         "--scheduler", f"tcp://127.0.0.1:{free_port()}"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Dask scheduler" in result.output


def test_the_report_shows_distribution_pass_rates_and_problems(local_batch, tmp_path):
    out, cards, _ = local_batch
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert html.count("<svg") >= 3 and "http://" not in html.replace("http://www.w3.org", "")
    assert "Score distribution" in html and "What the class misses" in html
    for card in cards:
        assert card.submission in html or card.status == "graded"
    # The missing exercises of "empty" and the wrong answer show up as misses.
    assert "ex2_pit_join::" in html
    assert "3 submissions" in html


def test_report_rejects_a_folder_without_scorecards(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "no scorecards" in result.output


def test_batch_gradescope_results_name_exercises_by_title_and_validate(lab, local_batch):
    out, _, _ = local_batch
    results = json.loads((out / "good.gradescope.json").read_text())
    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text()))
    title = next(ex.title for ex in lab.exercises if ex.slug == "ex2_pit_join")
    names = [t["name"] for t in results["tests"]]
    assert names and all("ex2_pit_join" not in n for n in names)
    assert any(title in n for n in names)
