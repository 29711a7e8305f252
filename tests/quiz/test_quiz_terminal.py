"""The interactive quiz driven in a real terminal (a pty) through the installed `grade` script."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pexpect
import pytest

from kit_helpers import interruptible

GRADE = Path(sys.executable).parent / "grade"
ANSWER = (
    "A point-in-time join gives each training row the feature values as of its timestamp, "
    "never later ones; a plain join takes the latest values and leaks the future."
)


def spawn(progress: Path, *args: str) -> pexpect.spawn:
    assert GRADE.exists(), f"{GRADE} is missing: pip install -e . first"
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm", "COLUMNS": "120"}
    child = pexpect.spawn(
        str(GRADE),
        ["quiz", "--progress", str(progress), "--section", "interview", "--mode", "free", *args],
        env=env,
        encoding="utf-8",
        dimensions=(50, 120),
        preexec_fn=interruptible,
        timeout=90,  # a loaded 2-core machine starts Python slowly; a hang still fails
    )
    child.logfile_read = io.StringIO()  # the whole transcript, for the no-traceback checks
    return child


def finish(child: pexpect.spawn) -> str:
    """Wait for the program to end; return its whole transcript."""
    child.expect(pexpect.EOF)
    child.close()
    return child.logfile_read.getvalue()


def test_answering_two_questions_shows_feedback_and_a_summary(tmp_path: Path) -> None:
    progress = tmp_path / "p.json"
    child = spawn(progress, "-n", "2", "--seed", "7")
    for i in (1, 2):
        child.expect(f"Question {i}/2")
        child.expect("Your answer")
        child.sendline(ANSWER if i == 1 else "no idea")
        child.expect(r"Score: \d+%")
        child.expect("Model answer")
    child.expect("Summary")
    transcript = finish(child)
    assert "Answered 2 of 2" in transcript
    assert "Traceback" not in transcript
    assert child.exitstatus == 0
    cards = json.loads(progress.read_text())["cards"]
    assert len(cards) == 2


def test_the_pit_answer_in_a_terminal_scores_its_key_points(tmp_path: Path) -> None:
    progress = tmp_path / "p.json"
    # interview-pit-join missed before: it is due, so it comes first.
    progress.write_text(
        json.dumps(
            {
                "version": 1,
                "cards": {"interview-pit-join": {"box": 1, "due": "2020-01-01T00:00:00+00:00"}},
            }
        )
    )
    child = spawn(progress, "-n", "1")
    child.expect("Question 1/1 · interview · interview-pit-join")
    child.expect("Your answer")
    child.sendline(ANSWER)
    child.expect(r"Score: (\d+)%")
    assert int(child.match.group(1)) >= 70
    child.expect("✓")
    child.expect("missed: Feast does it automatically")
    finish(child)
    assert child.exitstatus == 0


@pytest.mark.parametrize("stop", ["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_eof_ends_with_a_summary_and_no_traceback(tmp_path: Path, stop: str) -> None:
    progress = tmp_path / "p.json"
    child = spawn(progress, "-n", "3")
    child.expect("Question 1/3")
    child.expect("Your answer")
    child.sendline(ANSWER)
    child.expect("Model answer")
    child.expect("Question 2/3")
    child.expect("Your answer")
    if stop == "ctrl-c":
        child.sendintr()
    else:
        child.sendeof()
    child.expect(r"Summary \(stopped early\)")
    transcript = finish(child)
    assert "Answered 1 of 3" in transcript
    assert "Traceback" not in transcript
    assert child.exitstatus == 0
    assert len(json.loads(progress.read_text())["cards"]) == 1
