"""Grading in a forked child: each submission gets a fresh pytest (it caches test modules),
its own process group, and a parent that enforces the time budget as a backstop.

Where control groups can be made, each submission also gets a group of its own
(`grader.sandbox.budgets`): the child grades in its `grader` leaf, capped at
`Limits.grader_memory_bytes` (decoding a hostile answer costs that submission, never the
batch), and its sandboxed workers get groups inside it. The parent removes the whole group,
with anything left in it, once the child has ended, however it ended."""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.course.kit import Kit
from grader.grading.options import GradingOptions
from grader.grading.runner import end_sandbox_user, error_scorecard, grade_submission
from grader.grading.scorecard import Scorecard, write_json_atomic
from grader.grading.staging import ShippedSubmission, submission_id
from grader.sandbox import budgets

_FORK_ORPHANS: list[Any] = []
_PR_SET_PDEATHSIG = 1


def _forget_inherited_engines() -> None:
    """After a fork: stop using the parent's DuckDB connection (ibis's default backend, which
    Feast's duckdb store reads through). DuckDB is not fork-safe: a query on a connection
    whose worker threads stayed in the parent waits forever. The old connection is kept, not
    closed, since closing it could wait for those threads too."""
    config = sys.modules.get("ibis.config")
    if config is not None and config.options.default_backend is not None:
        _FORK_ORPHANS.append(config.options.default_backend)
        config.options.default_backend = None


def _child(
    kit: Kit, source: Path, name: str | None, slugs, options, out: str, parent: int, groups
) -> None:
    group, leaf = groups
    if leaf is not None:  # before anything else: what we allocate from here on counts
        leaf.add(os.getpid())
    budgets.set_submission_group(group)
    budgets.private_mounts()  # the submission's sized folder goes with us, however we end
    os.setsid()  # our own process group: the parent can end us and our workers together
    # ... and if the parent is killed outright, we go too (our workers die with us).
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the line above
    _forget_inherited_engines()
    card = grade_submission(kit, source, name=name, slugs=slugs, options=options)
    write_json_atomic(Path(out), card.to_dict())


@dataclass
class ChildGrading:
    """A submission being graded in a forked child process."""

    kit: Kit
    source: Path | ShippedSubmission
    name: str
    slugs: list[str]
    options: GradingOptions
    process: Any
    out: Path
    started: float
    group: budgets.Cgroup | None = None
    """The submission's control group (removed by `result`)."""
    leaf: budgets.Cgroup | None = None
    """The grading child's own group, inside `group`."""

    @property
    def overdue(self) -> bool:
        """Past the submission budget plus a grace period: the child is to be killed."""
        return time.monotonic() - self.started > self.options.submission_timeout_s + 60

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        self.process.join(10)

    def release(self) -> bool:
        """Kill whatever is left in the submission's group and remove it, and end what the
        sandbox user still runs (a child killed by us or the kernel skipped its own cleanup);
        True when the group is gone."""
        end_sandbox_user(self.options)
        if self.group is None:
            return True
        gone = self.group.remove()
        self.group = None
        return gone

    def _grader_over_budget(self) -> bool:
        return self.leaf is not None and self.leaf.oom_kills() > 0

    def result(self) -> Scorecard:
        """The child's scorecard, or an `error` one if it died without writing it; then the
        submission's group is removed."""
        try:
            return self._result()
        finally:
            self.release()

    def _result(self) -> Scorecard:
        try:
            data = json.loads(self.out.read_text(encoding="utf-8"))
            self.out.unlink()
            return Scorecard.from_dict(data)
        except (OSError, ValueError):
            if self._grader_over_budget():
                mib = self.options.limits.grader_memory_bytes >> 20
                reason = (
                    f"the grader needed more than {mib} MiB to check this submission's answers "
                    "(answers too large)"
                )
            elif self.overdue:
                reason = f"grading took longer than {self.options.submission_timeout_s:.0f} s"
            else:
                reason = f"the grading process ended unexpectedly (exit {self.process.exitcode})"
            seconds = time.monotonic() - self.started
            return error_scorecard(self.kit, self.name, self.slugs, reason, seconds)


def start_child(
    kit: Kit,
    source: Path | ShippedSubmission,
    *,
    name: str | None = None,
    slugs: list[str] | None = None,
    options: GradingOptions | None = None,
) -> ChildGrading:
    """Fork a child that grades `source` with a fresh pytest and writes its scorecard
    (`name` is required when `source` is a `ShippedSubmission`)."""
    options = options or GradingOptions()
    slugs = slugs or [ex.slug for ex in kit.exercises]
    name = name or submission_id(source)  # type: ignore[arg-type]
    fd, out = tempfile.mkstemp(prefix="fslab-card-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    group = budgets.Cgroup.create(inner=True)
    leaf = None
    if group is not None:
        leaf = budgets.Cgroup.create(
            "grader", parent=group, memory_bytes=options.limits.grader_memory_bytes
        )
    process = multiprocessing.get_context("fork").Process(
        target=_child,
        args=(kit, source, name, slugs, options, out, os.getpid(), (group, leaf)),
        daemon=False,
    )
    process.start()
    return ChildGrading(
        kit, source, name, slugs, options, process, Path(out), time.monotonic(), group, leaf
    )


def grade_in_child(
    kit: Kit,
    source: Path,
    *,
    name: str | None = None,
    slugs: list[str] | None = None,
    options: GradingOptions | None = None,
) -> Scorecard:
    """`grade_submission` in a forked child, so each submission gets a fresh pytest.

    The parent enforces the submission's time budget (plus a grace period) as a backstop and
    returns an `error` scorecard if the child dies without one.
    """
    child = start_child(kit, source, name=name, slugs=slugs, options=options)
    child.process.join(child.options.submission_timeout_s + 60)
    if child.process.is_alive():
        child.kill()
    return child.result()
