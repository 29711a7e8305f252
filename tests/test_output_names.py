"""Submission ids are data: every submission gets a unique id and a safe, unique file stem."""

from __future__ import annotations

import re
from pathlib import Path

from grader.classroom.outputs import assign_stems, gradescope_name, scorecard_name, unique_ids

HASHED = re.compile(r"[A-Za-z0-9._-]{1,40}-[0-9a-f]{8}")


def test_safe_unique_ids_keep_their_names():
    ids = ["alice", "Bob.Smith", "carol_2", "d-e-f", "x" * 100]
    assert assign_stems(ids) == {i: i for i in ids}


def test_unsafe_long_and_reserved_ids_get_a_slug_and_a_hash():
    ids = ["summary", "Summary", "gradebook", "regrade", "alice.gradescope", "a b", "x" * 101,
           "../../etc", ".hidden", "émile", "\ufffd", "rm -rf ~"]  # fmt: skip
    stems = assign_stems([*ids, "alice"])
    assert stems["alice"] == "alice"
    for sid in ids:
        assert HASHED.fullmatch(stems[sid]), (sid, stems[sid])
    assert stems["émile"].startswith("emile-") and stems["../../etc"].startswith("etc-")
    assert len(set(stems.values())) == len(stems)


def test_no_two_submissions_share_an_output_file_even_ignoring_case():
    ids = ["alice", "Alice", "ALICE.gradescope", "bob", "summary", "x" * 240]
    stems = assign_stems(ids)
    files = [name(stems[i]).casefold() for i in ids for name in (scorecard_name, gradescope_name)]
    files += ["summary.json", "gradebook.csv", "regrade.csv"]
    assert len(files) == len(set(files)), files
    assert stems["bob"] == "bob" and stems["alice"] != "alice" and stems["Alice"] != "Alice"


def test_a_safe_id_shaped_like_a_hashed_stem_cannot_take_anothers_name():
    victim = "a b"
    forged = assign_stems([victim])[victim]  # an attacker names a folder after it
    stems = assign_stems([victim, forged])
    assert stems[forged] == forged and stems[victim] != forged


def test_stems_depend_only_on_the_set_of_ids():
    ids = ["z", "summary", "a b", "Alice", "alice"]
    assert assign_stems(ids) == assign_stems(list(reversed(ids)))


def test_entries_that_would_share_an_id_are_told_apart(tmp_path):
    paths = [tmp_path / "x", tmp_path / "x.zip", tmp_path / "x.zip.zip", tmp_path / "y.zip"]
    ids = unique_ids(paths)
    assert ids[tmp_path / "y.zip"] == "y"
    assert ids[tmp_path / "x"] == "x"
    assert len(set(ids.values())) == len(paths), ids


def test_cleaning_that_makes_names_equal_still_leaves_distinct_ids(tmp_path):
    paths = [tmp_path / "eve", tmp_path / "eve\x1b[0m", tmp_path / "e\x07ve"]
    ids = unique_ids(paths)
    assert len(set(ids.values())) == 3
    assert all("\x1b" not in i and "\x07" not in i for i in ids.values())
    assert ids[tmp_path / "eve"].startswith("eve")


def test_ids_keep_the_original_name_minus_control_characters():
    path = Path("/subs") / "Zoë \x1b]0;title\x07O'Brien.zip"
    assert unique_ids([path])[path] == "Zoë O'Brien"
