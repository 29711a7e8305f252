"""Suites are course content: they are found in the kit being graded."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.course.kit import load_kit
from grader.grading.suites import PACKAGE_DIR, suite_digest, suite_files, suites_dir

KIT_ROOT = Path(__file__).resolve().parents[1]


def _kit_copy(tmp_path, *, with_suites: bool):
    root = tmp_path / "other-kit"
    root.mkdir()
    shutil.copy2(KIT_ROOT / "course.toml", root / "course.toml")
    if with_suites:
        shutil.copytree(PACKAGE_DIR / "suites", root / "grader" / "suites")
    return load_kit(root)


def test_a_kit_with_its_own_suites_is_graded_with_them(tmp_path):
    other = _kit_copy(tmp_path, with_suites=True)
    assert suites_dir(other) == other.root / "grader" / "suites"
    files = suite_files(other, ["ex2_pit_join"], include_hidden=False)
    assert [(s, v, p.relative_to(other.root).as_posix()) for s, v, p in files] == [
        ("ex2_pit_join", "public", "grader/suites/ex2_pit_join/test_public.py")
    ]


def test_the_digest_follows_the_suites_of_the_kit(tmp_path):
    other = _kit_copy(tmp_path, with_suites=True)
    same = suite_digest(other)
    (other.root / "grader" / "suites" / "ex2_pit_join" / "test_hidden.py").unlink()
    assert suite_digest(other) != same


def test_a_kit_without_suites_uses_the_installed_ones(tmp_path):
    other = _kit_copy(tmp_path, with_suites=False)
    assert suites_dir(other) == PACKAGE_DIR / "suites"
