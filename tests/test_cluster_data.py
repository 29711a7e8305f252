"""What a cluster batch sends and accepts: submissions as data staged by the local rules,
scorecards checked before the client writes them, kit identities compared line by line."""

from __future__ import annotations

import base64
import copy
import zipfile
from pathlib import Path

import pytest

from grader.classroom.cluster import validated_card
from grader.classroom.cluster_worker import identity_difference, kit_identity
from grader.course.kit import load_kit
from grader.grading.runner import error_scorecard
from grader.grading.staging import (
    MAX_FILE_BYTES,
    ShippedSubmission,
    SubmissionError,
    stage,
    stage_contents,
)
from grader.grading.suites import suite_digest

KIT = load_kit(Path(__file__).resolve().parent.parent)
GOOD = b"def point_in_time_join(*a, **k):\n    return 1\n"


def shipped_round_trip(source: Path) -> ShippedSubmission:
    return ShippedSubmission.from_dict(ShippedSubmission.read(source, KIT).to_dict(), KIT)


def test_a_shipped_submission_stages_exactly_like_the_submission_itself(tmp_path):
    sub = tmp_path / "alice"
    (sub / "deep").mkdir(parents=True)
    (sub / "deep" / "pit_join.py").write_bytes(GOOD)
    (sub / "freshness.py").write_bytes(b"def f(:\n")
    (sub / "notes.txt").write_text("not an exercise file")
    with zipfile.ZipFile(tmp_path / "bob.zip", "w") as archive:
        archive.writestr("../feast_e2e.py", "x = 1\n")
        archive.writestr("work/pit_join.py", GOOD)
    for source in (sub, tmp_path / "bob.zip"):
        here = stage(source, tmp_path / "here" / source.name, KIT)
        shipped = shipped_round_trip(source)
        there = stage_contents(shipped.contents, tmp_path / "there" / source.name, KIT)
        assert {k: (v.status, v.reason) for k, v in here.items()} == {
            k: (v.status, v.reason) for k, v in there.items()
        }
        assert there["ex2_pit_join"].path.read_bytes() == GOOD
    assert set(ShippedSubmission.read(sub, KIT).to_dict()["files"]) == {
        "ex2_pit_join",
        "ex3_freshness",
    }


def test_an_unreadable_submission_ships_as_its_error(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    shipped = shipped_round_trip(tmp_path / "broken.zip")
    assert shipped.contents == {} and "not a valid zip" in shipped.error


@pytest.mark.parametrize(
    "files",
    [
        {"../../etc/passwd": {"b64": base64.b64encode(GOOD).decode()}},
        {"ex2_pit_join": {"b64": "not base64!"}},
        {"ex2_pit_join": {"b64": 3}},
        {"ex2_pit_join": {"b64": "", "refused": "both"}},
        {"ex2_pit_join": "raw text"},
    ],
)
def test_a_malformed_shipped_submission_is_refused(files):
    with pytest.raises(SubmissionError, match="malformed"):
        ShippedSubmission.from_dict({"error": None, "files": files}, KIT)


def test_a_shipped_file_is_cut_at_the_staging_limit_and_then_refused(tmp_path):
    huge = base64.b64encode(b"#" * (MAX_FILE_BYTES + 5000)).decode()
    shipped = ShippedSubmission.from_dict(
        {"error": None, "files": {"ex2_pit_join": {"b64": huge}}}, KIT
    )
    assert len(shipped.contents["ex2_pit_join"]) == MAX_FILE_BYTES + 1
    staged = stage_contents(shipped.contents, tmp_path, KIT)
    assert (
        staged["ex2_pit_join"].status == "error" and "larger than" in staged["ex2_pit_join"].reason
    )


def good_card() -> dict:
    card = error_scorecard(KIT, "alice", [ex.slug for ex in KIT.exercises], "x", 1.0).to_dict()
    card["status"], card["error"] = "graded", None
    return card


def test_a_scorecard_from_a_worker_is_accepted_when_it_is_one():
    card = validated_card(good_card(), "alice", KIT, suite_digest(KIT))
    assert card.submission == "alice" and card.max_score == KIT.total_points


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda c: c.update(submission="bob"), "another submission"),
        (lambda c: c.update(suite_digest="sha256:other"), "other suites"),
        (lambda c: c.update(score=KIT.total_points + 1), "impossible"),
        (lambda c: c.update(score=float("nan")), "non-numeric"),
        (lambda c: c.update(score="100"), "non-numeric"),
        (lambda c: c.update(status="passed"), "unknown status"),
        (lambda c: c["exercises"].pop(), "other exercises"),
        (lambda c: c.update(unexpected=1), "malformed"),
        (lambda c: c["exercises"][0].update(tests=[{"id": "x"}]), "malformed"),
    ],
)
def test_a_scorecard_from_a_worker_that_is_not_one_is_refused(change, reason):
    card = copy.deepcopy(good_card())
    change(card)
    with pytest.raises(ValueError, match=reason):
        validated_card(card, "alice", KIT, suite_digest(KIT))


def test_the_identity_check_names_what_differs():
    ours = {**kit_identity(KIT), "data_manifest": {"seed": 42, "version": 3}, "set_up": True}
    assert identity_difference(ours, dict(ours)) is None
    cases = {
        "grader_version": ("9.9.9", "grader 9.9.9"),
        "suite_digest": ("sha256:feed", "suite digest sha256:feed"),
        "data_manifest": ({"seed": 7, "version": 3}, "seed 7"),
        "set_up": (False, "not set up"),
    }
    for key, (value, words) in cases.items():
        line = identity_difference(ours, {**ours, key: value})
        assert line is not None and words in line and "\n" not in line
    assert "no kit" in identity_difference(ours, {"error": "no kit (...)"})
