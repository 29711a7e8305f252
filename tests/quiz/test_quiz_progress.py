"""Spaced review: Leitner boxes in a per-user JSON file."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.quiz.bank import Bank
from grader.quiz.errors import ProgressError
from grader.quiz.progress import (
    INTERVAL_DAYS,
    MAX_BOX,
    Progress,
    default_progress_path,
    load_progress,
    section_stats,
)
from grader.quiz.session import pick_questions

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_a_missing_progress_file_is_an_empty_progress(progress_path: Path) -> None:
    progress = load_progress(progress_path)
    assert progress.cards == {}
    assert not progress_path.exists()


def test_progress_round_trips_through_the_file(progress_path: Path) -> None:
    progress = load_progress(progress_path)
    progress.record("skew-kinds", 0.2, NOW)
    progress.record("pit-ttl", 1.0, NOW)
    progress.save()

    again = load_progress(progress_path)
    assert again.cards == progress.cards
    assert again.cards["skew-kinds"].box == 1
    assert again.cards["pit-ttl"].box == 2
    assert json.loads(progress_path.read_text())["version"] == 1


def test_saving_leaves_no_temporary_files_behind(progress_path: Path) -> None:
    progress = Progress(progress_path)
    for i in range(3):
        progress.record("skew-kinds", 1.0, NOW + timedelta(days=i))
        progress.save()
    assert [p.name for p in progress_path.parent.iterdir()] == [progress_path.name]


def test_a_missed_question_becomes_due_before_a_passed_one(bank: Bank, progress_path: Path) -> None:
    progress = Progress(progress_path)
    progress.record("skew-kinds", 1.0, NOW)
    progress.record("skew-definition", 0.3, NOW)
    progress.save()
    progress = load_progress(progress_path)

    assert progress.due_ids(["skew-kinds", "skew-definition"], NOW) == ["skew-definition"]
    picked = pick_questions(
        bank, progress, sections=["skew"], count=3, rng=random.Random(0), now=NOW
    )
    assert picked[0].id == "skew-definition"
    assert "skew-kinds" not in [q.id for q in picked]  # passed: not due, unseen ones first
    later = NOW + timedelta(days=INTERVAL_DAYS[2])
    assert progress.due_ids(["skew-kinds", "skew-definition"], later) == [
        "skew-definition",
        "skew-kinds",
    ]


def test_passing_moves_a_question_up_one_box_and_missing_sends_it_back_to_box_1() -> None:
    progress = Progress(None)
    boxes = []
    for score in (1.0, 0.8, 1.0, 1.0, 1.0, 1.0, 0.1):
        boxes.append(progress.record("q", score, NOW).box)
    assert boxes == [2, 3, 4, 5, MAX_BOX, MAX_BOX, 1]
    card = progress.cards["q"]
    assert (card.seen, card.passed) == (7, 6)


def test_review_asks_only_due_questions_and_nothing_when_none_is_due(bank: Bank) -> None:
    progress = Progress(None)
    assert pick_questions(bank, progress, review=True, now=NOW) == []
    progress.record("pit-ttl", 0.0, NOW)
    progress.record("skew-kinds", 1.0, NOW)
    picked = pick_questions(bank, progress, review=True, now=NOW)
    assert [q.id for q in picked] == ["pit-ttl"]


def test_unseen_questions_come_before_ones_not_yet_due(bank: Bank) -> None:
    progress = Progress(None)
    progress.record("skew-kinds", 1.0, NOW)
    picked = pick_questions(bank, progress, sections=["skew"], count=0, now=NOW)
    assert picked[-1].id == "skew-kinds"
    assert len(picked) == len(bank.in_sections(["skew"]))


def test_a_corrupt_progress_file_is_a_one_line_error_and_is_kept(progress_path: Path) -> None:
    progress_path.write_text("{not json")
    with pytest.raises(ProgressError) as info:
        load_progress(progress_path)
    assert "\n" not in str(info.value)
    assert progress_path.read_text() == "{not json"


def test_a_card_with_an_impossible_box_is_rejected(progress_path: Path) -> None:
    card = {"box": 9, "due": NOW.isoformat()}
    progress_path.write_text(json.dumps({"version": 1, "cards": {"q": card}}))
    with pytest.raises(ProgressError, match="box"):
        load_progress(progress_path)


def test_the_default_progress_file_lives_in_the_user_data_folder() -> None:
    path = default_progress_path()
    assert path.name == "quiz-progress.json"
    assert "feature-store-lab" in path.parts


def test_stats_report_mastery_per_section(bank: Bank) -> None:
    progress = Progress(None)
    for _ in range(MAX_BOX):
        progress.record("skew-kinds", 1.0, NOW)
    progress.record("skew-silent", 0.0, NOW)
    rows = {
        s.section: s
        for s in section_stats(
            bank.sections, {q.id: q.section for q in bank.questions}, progress, NOW
        )
    }
    assert list(rows) == list(bank.sections)
    skew = rows["skew"]
    assert (skew.seen, skew.mastered, skew.due) == (2, 1, 1)
    assert skew.mastery == pytest.approx(1 / skew.questions)
    assert rows["interview"].mastery == 0.0
