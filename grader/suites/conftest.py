"""Fixtures of the grading suites. Student code is reached only through `student`."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading.runner import GradingContext, current
from grader.sandbox.proxy import StudentProxy


def _slug(request: pytest.FixtureRequest) -> str:
    return Path(str(request.node.fspath)).parent.name


@pytest.fixture(scope="session")
def grading() -> GradingContext:
    """The context of the submission being graded: kit, options, oracle cache."""
    return current()


@pytest.fixture(scope="module")
def student(request: pytest.FixtureRequest, grading: GradingContext) -> StudentProxy:
    """The submission's module of this suite's exercise, running in a sandboxed worker."""
    return grading.student(_slug(request))


@pytest.fixture(scope="module")
def reference(request: pytest.FixtureRequest, grading: GradingContext) -> StudentProxy:
    """The reference solution of this suite's exercise, sandboxed like the student's."""
    return grading.reference(_slug(request))


@pytest.fixture(scope="session")
def data_dir(grading: GradingContext) -> Path:
    """The kit's generated data folder (read-only inside the sandbox)."""
    return grading.kit.data_dir
