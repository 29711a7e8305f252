"""ex1's public and hidden suites share one apply of the student's objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.harness import fraud
from grader.sandbox.proxy import StudentTimeout


class FlakyStudent:
    """A proxy whose first apply times out after leaving a half-written repo behind."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls = 0

    def harness(self, target, data_dir, repo, cwd, _timeout):
        self.calls += 1
        Path(repo).mkdir(parents=True, exist_ok=True)
        (Path(repo) / "feature_store.yaml").write_text(fraud.CONFIG)
        raise StudentTimeout("no answer within 120 s: the call was stopped")


def test_a_timed_out_apply_is_reported_the_same_way_to_both_suites(tmp_path):
    student = FlakyStudent(tmp_path)
    for _suite in ("public", "hidden"):
        with pytest.raises(StudentTimeout, match="no answer"):
            fraud.applied_registry(student, tmp_path / "data", "repo")
    assert student.calls == 1  # not re-applied into the folder the first try left behind
