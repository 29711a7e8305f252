"""The scorecard: one typed model of a graded submission, with its renderings.

`Scorecard.to_dict()` is SPEC schema version 1 (plus the extra key `isolation`);
`to_gradescope()` is Gradescope's `results.json`; `write()` is atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1
TestStatus = Literal["passed", "failed", "error", "timeout"]
ExerciseStatus = Literal["passed", "failed", "error", "timeout", "missing"]


@dataclass
class TestResult:
    """One graded test."""

    id: str
    """`<slug>::<test name>`, stable across runs."""
    visibility: Literal["public", "hidden"]
    """Whether the test ships to students."""
    points: float
    """Points earned: `max_points` when passed, else 0."""
    max_points: float
    """Points the test is worth."""
    status: TestStatus
    """How the test ended."""
    feedback: str
    """For the learner: what was called, what came back, what was expected and why."""
    duration_s: float
    """Wall-clock seconds the test took."""
    task: int | None = None
    """The number of the exercise README's task the test checks (its `task` marker); an
    extra key of schema version 1."""


@dataclass
class ExerciseResult:
    """One exercise of a submission."""

    slug: str
    score: float
    max_score: float
    status: ExerciseStatus
    """`missing`: file not found; `error`: could not be loaded; `timeout`: out of time."""
    error: str | None
    """One-line reason when `status` is `error`, `missing` or `timeout`."""
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class Scorecard:
    """A graded submission."""

    submission: str
    graded_at: str
    """ISO-8601 UTC."""
    grader_version: str
    suite_digest: str
    """`sha256:` of the suites and manifest used: scorecards with equal digests compare."""
    status: Literal["graded", "error"]
    error: str | None
    score: float
    max_score: float
    duration_s: float
    exercises: list[ExerciseResult] = field(default_factory=list)
    isolation: Literal["full", "reduced"] = "full"
    """`reduced` when bubblewrap was unavailable and only limits and a dropped uid applied."""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        ordered = {"schema_version": data.pop("schema_version")}
        ordered.update(data)
        return ordered

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scorecard:
        data = dict(data)
        exercises = [
            ExerciseResult(**{**ex, "tests": [TestResult(**t) for t in ex.get("tests", [])]})
            for ex in data.pop("exercises", [])
        ]
        return cls(**data, exercises=exercises)

    def to_gradescope(
        self, hidden_visibility: str = "after_due_date", titles: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Gradescope `results.json` (see `grader.grading.gradescope_results`)."""
        from grader.grading.gradescope_results import render

        return render(self, hidden_visibility=hidden_visibility, titles=titles)

    def write(self, path: Path) -> None:
        """Write the scorecard as JSON, atomically."""
        write_json_atomic(path, self.to_dict())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` through a temp file and a rename: all or nothing."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file and a rename: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is cut so the temp name stays legal (255 bytes) however long `path`'s is.
    short = os.fsdecode(os.fsencode(path.name)[:100])
    fd, tmp = tempfile.mkstemp(prefix=f".{short}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_scorecard(path: Path) -> Scorecard:
    """Load a scorecard written by `Scorecard.write`."""
    return Scorecard.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
