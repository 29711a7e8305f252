"""`grade watch` as a student uses it: a real terminal program (pexpect), files saved by hand.

The watcher grades once, regrades the exercise whose file was saved, survives a hostile file,
and leaves on Ctrl-C with no process of its own left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pexpect
import psutil
import pytest

from grader.course.kit import load_kit
from grader.grading.scorecard import ExerciseResult, Scorecard
from grader.grading.scorecard import TestResult as Result
from grader.grading.session import suite_imports
from grader.grading.watch import changed_slugs, merge_into, watch

from kit_helpers import interruptible

PIT = "pit_join.py"


def _save(path: Path, text: str) -> None:
    """Save as an editor does: a new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _shows(child: pexpect.spawn, text: str) -> None:
    """Wait for `text` on the terminal, whatever styles (escape sequences) it is drawn in.
    `text` is a regular expression over the visible characters."""
    style = r"(?:\x1b\[[0-9;]*m)*"
    visible = re.sub(r"(\\?.)", lambda m: m.group(1) + style, text)
    child.expect(visible)


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture
def watched(lab, tmp_path):
    """A submission folder with the ex2 stub, and a `grade watch ex2_pit_join` on a terminal."""
    sub = tmp_path / "work"
    shutil.copytree(lab.root / "exercises" / "ex2_pit_join", sub / "ex2_pit_join")
    card = tmp_path / "scorecard.json"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "grader.cli", "--kit", str(lab.root), "watch", "ex2_pit_join",
         "--submission", str(sub), "--json", str(card), "--call-timeout", "5"],
        dimensions=(40, 80), encoding="utf-8", timeout=240, env={**os.environ, "TERM": "xterm"},
        preexec_fn=interruptible,
    )  # fmt: skip
    yield child, sub / "ex2_pit_join" / PIT, card
    if child.isalive():
        child.kill(9)


@pytest.mark.slow
def test_a_saved_fix_is_regraded_in_place_and_ctrl_c_leaves_nothing_behind(watched, lab):
    child, stub, card = watched
    _shows(child, r"ex2_pit_join  0/30  not started: open exercises/ex2_pit_join/README\.md")
    _shows(child, "Total: 0/30")
    solution = (lab.root / "solutions" / "ex2_pit_join" / PIT).read_text()

    _save(stub, solution)
    _shows(child, "ex2_pit_join  30/30  passed")
    _shows(child, "Total: 30/30")
    assert json.loads(card.read_text())["score"] == 30

    # A hostile save: it kills what it can and hangs. It costs this regrade only.
    _save(stub, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nwhile True:\n    pass\n")
    _shows(child, "ex2_pit_join  0/30  (error|timeout|failed)")
    _shows(child, "Total: 0/30")
    workers = _descendants(child.pid)
    assert workers, "the warm worker factory should be alive between regrades"

    # A file that does not even parse, then the fix again: the watcher is still there.
    _save(stub, "def point_in_time_join(:\n")
    _shows(child, "ex2_pit_join  0/30  error")
    _save(stub, solution)
    _shows(child, "ex2_pit_join  30/30  passed")

    workers |= _descendants(child.pid)
    child.sendintr()
    child.expect("Stopped watching.")
    child.expect(pexpect.EOF)
    child.wait()
    assert child.exitstatus == 0, child.before
    deadline = time.monotonic() + 15
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(workers), "processes left behind after Ctrl-C"


def test_only_the_exercise_whose_file_changed_is_regraded(kit_root):
    kit = load_kit(kit_root)
    slugs = [ex.slug for ex in kit.exercises]
    paths = ["/w/ex2_pit_join/pit_join.py", "/w/notes.txt", "/w/deep/a/freshness.py"]
    assert changed_slugs(kit, slugs, paths) == ["ex2_pit_join", "ex3_freshness"]
    assert changed_slugs(kit, ["ex1_fraud_design"], paths) == []


def test_the_loop_grades_all_once_then_each_saved_exercise(kit_root):
    kit = load_kit(kit_root)
    graded: list[list[str]] = []

    class Recorder:  # stands in for a Session: records what it was asked to grade
        slugs = ["ex2_pit_join", "ex3_freshness"]

        def __init__(self) -> None:
            self.kit = kit

        def grade(self, slugs: list[str]) -> Scorecard:
            graded.append(list(slugs))
            return _card("d", *(_ex(s, 1, 1) for s in slugs))

    shown: list[list[str]] = []
    changes = [
        {(1, "/w/ex2_pit_join/pit_join.py")},
        {(2, "/w/ex2_pit_join/README.md"), (1, "/w/ex1_fraud_design/fraud_design.py")},
        {(2, "/w/ex3_freshness/freshness.py"), (2, "/w/ex2_pit_join/pit_join.py")},
    ]
    watch(Recorder(), lambda card, slugs: shown.append(slugs), changes)  # type: ignore[arg-type]
    expected = [
        ["ex2_pit_join", "ex3_freshness"],
        ["ex2_pit_join"],
        ["ex2_pit_join", "ex3_freshness"],
    ]
    assert graded == expected and shown == expected


def _card(digest: str, *exercises: ExerciseResult) -> Scorecard:
    return Scorecard(
        submission="me", graded_at="2026-01-01T00:00:00Z", grader_version="x",
        suite_digest=digest, status="graded", error=None,
        score=sum(e.score for e in exercises), max_score=sum(e.max_score for e in exercises),
        duration_s=1.0, exercises=list(exercises),
    )  # fmt: skip


def _ex(slug: str, score: float, max_score: float) -> ExerciseResult:
    test = Result(f"{slug}::t", "public", score, max_score, "passed", "", 0.1)
    return ExerciseResult(slug, score, max_score, "passed" if score else "failed", None, [test])


def test_a_regrade_replaces_its_exercise_and_keeps_the_others(tmp_path):
    path = tmp_path / "scorecard.json"
    merge_into(path, _card("d1", _ex("ex1", 5, 25), _ex("ex2", 0, 30)))
    merged = merge_into(path, _card("d1", _ex("ex2", 30, 30)))
    assert [(e.slug, e.score) for e in merged.exercises] == [("ex1", 5), ("ex2", 30)]
    assert (merged.score, merged.max_score) == (35, 55)
    assert json.loads(path.read_text())["score"] == 35
    # Other suites graded the old card: its scores do not compare, so they are dropped.
    other = merge_into(path, _card("d2", _ex("ex2", 10, 30)))
    assert [(e.slug, e.score) for e in other.exercises] == [("ex2", 10)]


def test_the_watcher_preimports_what_the_suites_import_and_never_runs_them(tmp_path):
    suite = tmp_path / "test_public.py"
    suite.write_text(
        "from __future__ import annotations\nimport json, os\nfrom pathlib import Path\n"
        "from . import local\nraise SystemExit('a suite must not run here')\n"
        "def f():\n    import feast\n"
    )
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    assert suite_imports([suite, broken]) == ["json", "os", "pathlib"]
