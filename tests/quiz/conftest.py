"""Fixtures of the quiz tests.

Every test gets its own progress file through the environment variable the command reads, so
no test ever touches the learner's real progress in the user-data folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.quiz.bank import Bank, load_bank
from grader.quiz.progress import PROGRESS_ENV


@pytest.fixture(scope="session")
def bank() -> Bank:
    """The packaged question bank, loaded fresh (not the process-wide cached one)."""
    return load_bank()


@pytest.fixture(autouse=True)
def progress_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private progress file for this test (not created yet); also set for the CLI."""
    path = tmp_path / "progress.json"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    return path


@pytest.fixture
def runner() -> CliRunner:
    """A click runner whose environment points the quiz at the test's progress file."""
    return CliRunner()
