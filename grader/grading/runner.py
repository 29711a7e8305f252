"""Grading one submission: stage its files, run the suites in-process, build the scorecard.

The suites (`<kit>/grader/suites/<slug>/test_public.py`, `test_hidden.py`, see
`grader.grading.suites`) are ordinary pytest files. They reach the submission only through the
`student` fixture (see `suites/conftest.py`), which asks `current()` for a `StudentProxy`:
student code always runs in a sandboxed worker.

pytest caches imported test modules, so `pytest.main` must run once per process:
`grader.grading.child.grade_in_child` forks a fresh child for each submission.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import grader
from grader.course.kit import Kit
from grader.grading import oracle
from grader.grading.options import GradingOptions
from grader.grading.safe_text import clean_line, clean_text
from grader.grading.scorecard import ExerciseResult, Scorecard, TestResult
from grader.grading.staging import (
    ShippedSubmission,
    StagedFile,
    SubmissionError,
    stage,
    stage_contents,
    submission_id,
)
from grader.grading.suites import VISIBILITY, suite_digest, suite_files, suites_dir
from grader.sandbox import budgets
from grader.sandbox.bubblewrap import (
    bwrap_works,
    dedicated_user,
    end_user_processes,
    remove_user_files,
    sandbox_uid_for,
    shares_one_user,
)
from grader.sandbox.proxy import (
    SharedWorker,
    StudentCrash,
    StudentError,
    StudentProblem,
    StudentProxy,
    StudentTimeout,
    SubmissionProblem,
)
from grader.sandbox.reduced import lock_away


class GradingContext:
    """Everything the suites may use while grading one submission."""

    def __init__(
        self,
        kit: Kit,
        staged: dict[str, StagedFile],
        options: GradingOptions,
        workroot: Path,
        slugs: list[str] | None = None,
    ) -> None:
        self.kit = kit
        self.slugs = slugs or [ex.slug for ex in kit.exercises]
        self.staged = staged
        self.options = options
        self.workroot = workroot
        self.deadline = time.monotonic() + options.submission_timeout_s
        self.digest = suite_digest(kit)
        self.proxies: dict[str, StudentProxy] = {}
        self.student_worker: SharedWorker | None = None
        self.reference_worker: SharedWorker | None = None
        self.reference_files = self._stage_reference()

    def _stage_reference(self) -> dict[str, StagedFile]:
        """Copy the reference solutions next to the submission now, before any student code
        runs: the trusted side never writes into the (student-reachable) work folder later."""
        files = {}
        for slug in self.slugs:
            ex = self.kit.exercise(slug)
            source = self.kit.root / "solutions" / slug / ex.module
            folder = self.workroot / "reference" / slug
            folder.mkdir(parents=True, exist_ok=True)
            if source.is_file():
                shutil.copy2(source, folder / ex.module)
                files[slug] = StagedFile(slug, ex.module, "ok", path=folder / ex.module)
            else:
                files[slug] = StagedFile(slug, ex.module, "missing")
        return files

    def _shared(self, folder: Path, slugs: list[str], *, trusted: bool = False) -> SharedWorker:
        """One sandboxed worker for the exercise modules of `slugs` staged under `folder`
        (`trusted`: the reference solution's, see `SharedWorker.trusted`)."""
        folder.mkdir(parents=True, exist_ok=True)
        preload: list[str] = []
        for ex in self.kit.exercises:
            if ex.slug in slugs:
                preload += [m for m in ex.imports if m not in preload]
        return SharedWorker(
            folder,
            readonly=(self.kit.data_dir,),
            limits=self.options.limits,
            preload=tuple(preload),
            use_bwrap=self.options.use_bwrap,
            zygote=self.options.zygote,
            trusted=trusted,
        )

    def _proxy(
        self, staged: StagedFile, shared: SharedWorker, *, deadline: float | None
    ) -> StudentProxy:
        problem = None
        if staged.status == "missing":
            problem = f"{staged.module} was not found in the submission"
        elif staged.status == "error":
            problem = staged.reason
        return StudentProxy(
            staged.slug,
            staged.path,
            problem=problem,
            shared=shared,
            limits=self.options.limits,
            deadline=deadline,
        )

    def student(self, slug: str) -> StudentProxy:
        """The proxy of the submission's module for `slug` (one worker serves them all)."""
        if slug not in self.proxies:
            if self.student_worker is None:
                self.student_worker = self._shared(self.workroot / "submission", self.slugs)
            staged = self.staged[slug]
            self.proxies[slug] = self._proxy(staged, self.student_worker, deadline=self.deadline)
        return self.proxies[slug]

    def prestart(self) -> None:
        """Start the submission's worker now, on a thread: it imports its libraries (Feast:
        seconds) while pytest collects the suites (see `SharedWorker.prestart`). Not with a
        warm factory: forking from it is quick, and its control socket serves one thread."""
        if self.options.zygote is not None:
            return
        if self.student_worker is None:
            self.student_worker = self._shared(self.workroot / "submission", self.slugs)
        self.student_worker.prestart()

    def reference(self, slug: str) -> StudentProxy:
        """A proxy of the reference solution, sandboxed the same way (for timing ratios)."""
        key = f"reference:{slug}"
        if key not in self.proxies:
            if self.reference_worker is None:
                # Only ex2's timing needs it: no Feast import for a pandas reference.
                folder = self.workroot / "reference"
                self.reference_worker = self._shared(folder, [slug], trusted=True)
            staged = self.reference_files[slug]
            self.proxies[key] = self._proxy(staged, self.reference_worker, deadline=None)
        return self.proxies[key]

    def cache_path(self, name: str) -> Path:
        """A file path in the oracle cache, keyed by the suites and the data version."""
        return oracle.cache_path(self.options.cache_dir, self.digest, self.kit.data_dir, name)

    def done(self, slug: str) -> None:
        """`slug`'s tests are over: stop its job worker and, if it had one, the reference's
        worker, so that the next exercise's workers do not add to their memory (on
        Gradescope the whole run must fit in 768 MB). A later call restarts them."""
        proxy = self.proxies.get(slug)
        if proxy is not None:
            proxy.close()  # its job worker only: the submission's worker is shared
        reference = self.proxies.pop(f"reference:{slug}", None)
        if reference is not None:
            reference.close()
            if self.reference_worker is not None:
                self.reference_worker.close()
                self.reference_worker = None

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()  # its job worker; the shared workers are closed below
        for shared in (self.student_worker, self.reference_worker):
            if shared is not None:
                shared.close()
        self.proxies.clear()


_CURRENT: GradingContext | None = None


def current() -> GradingContext:
    """The context of the submission being graded (for the suites' fixtures)."""
    if _CURRENT is None:
        raise RuntimeError("the grader suites only run under `grade`")
    return _CURRENT


MAX_FEEDBACK = 4000
"""Characters of one test's feedback: it quotes student values, which can be huge."""
MAX_REASON = 500
"""Characters of an exercise's one-line error."""


def _feedback(exc: BaseException) -> tuple[str, str]:
    """(status, learner feedback) for an exception that ended a test.

    The text quotes student data (values, exception messages): it is stored as plain text,
    control characters and escape sequences stripped (`grader.grading.safe_text`).
    """
    status, text = _raw_feedback(exc)
    return status, clean_text(text, MAX_FEEDBACK)


def _raw_feedback(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, AssertionError):
        return "failed", (str(exc).strip() or "The check failed.")
    if isinstance(exc, StudentTimeout):
        return "timeout", str(exc)
    if isinstance(exc, StudentError) and exc.not_implemented:
        return "failed", f"Not done yet: {exc.function} still raises NotImplementedError."
    if isinstance(exc, StudentError):
        return "failed", str(exc)
    if isinstance(exc, StudentCrash | SubmissionProblem | StudentProblem):
        return "error", str(exc)
    return "error", f"The grader could not check this: {type(exc).__name__}: {exc}"[:2000]


class _Collector:
    """pytest plugin that turns test outcomes into `TestResult`s (never test source)."""

    def __init__(self, on_exercise_done: Callable[[str], None] | None = None) -> None:
        self.results: dict[str, TestResult] = {}
        self.slugs: dict[str, str] = {}
        self.collect_errors: list[str] = []
        self.on_exercise_done = on_exercise_done
        self._running: str | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Suites run in course order, an exercise's files together: when the next exercise
        # starts, the last one's module fixtures are torn down and its helpers can go.
        slug = Path(str(item.fspath)).parent.name
        if self._running not in (None, slug) and self.on_exercise_done is not None:
            self.on_exercise_done(self._running)
        self._running = slug

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        path = Path(str(item.fspath))
        slug, visibility = path.parent.name, VISIBILITY.get(path.name, "hidden")
        test_id = f"{slug}::{item.name}"
        marker = item.get_closest_marker("points")
        max_points = float(marker.args[0]) if marker else 0.0
        task_marker = item.get_closest_marker("task")
        task = task_marker.kwargs.get("taskno") if task_marker else None
        result = self.results.get(test_id)
        if result is None:
            result = TestResult(test_id, visibility, 0.0, max_points, "passed", "", 0.0)  # type: ignore[arg-type]
            result.task = task if isinstance(task, int) else None
            self.results[test_id] = result
            self.slugs[test_id] = slug
        result.duration_s = round(result.duration_s + report.duration, 4)
        if report.failed and result.status == "passed" and call.excinfo is not None:
            result.status, result.feedback = _feedback(call.excinfo.value)  # type: ignore[assignment]
        if report.when == "call" and report.passed and result.status == "passed":
            result.points = max_points
            result.feedback = "Passed."
        if report.when == "teardown" and result.status != "passed":
            result.points = 0.0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: suite could not be loaded")


def _run_suites(
    files: list[Path],
    root: Path,
    *,
    exitfirst: bool = False,
    on_exercise_done: Callable[[str], None] | None = None,
) -> _Collector:
    collector = _Collector(on_exercise_done)
    args = [
        *(["-x"] if exitfirst else []),
        *(str(f) for f in files),
        "-q",
        "-p", "no:cacheprovider",
        "-p", "no:randomly",
        # Its full garbage collection at the end costs 0.1 s a run in a process that holds
        # Feast and pandas; the suites report through our collector, not unraisable hooks.
        "-p", "no:unraisableexception",
        # Only our collector: installed plugins (hypothesis, anyio, ...) would cost a tenth
        # of a second to load in every grading process and add nothing.
        "--disable-plugin-autoload",
        "--assert=plain",
        "--import-mode=importlib",
        "--rootdir", str(root),
        "-c", str(root / "pytest.ini"),
    ]  # fmt: skip
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        pytest.main(args, plugins=[collector])
    return collector


def _exercise_results(
    kit: Kit, slugs: list[str], staged: dict[str, StagedFile], ctx: GradingContext, col: _Collector
) -> list[ExerciseResult]:
    out = []
    for ex in kit.exercises:
        if ex.slug not in slugs:
            continue
        tests = [t for tid, t in col.results.items() if col.slugs[tid] == ex.slug]
        score = round(sum(t.points for t in tests), 4)
        st = staged[ex.slug]
        proxy = ctx.proxies.get(ex.slug)
        if st.status == "missing":
            status, error = "missing", f"{st.module} not found in the submission"
        elif st.status == "error":
            status, error = "error", st.reason
        elif proxy is not None and proxy.problem:
            status, error = "error", proxy.problem
        elif proxy is not None and proxy.over_budget:
            status, error = "error", proxy.over_budget
        elif proxy is not None and proxy.out_of_memory:
            status, error = "error", f"a call {proxy.out_of_memory}"
        elif proxy is not None and proxy.timed_out:
            status, error = "timeout", "a call ran out of time"
        elif tests and all(t.status == "error" for t in tests):
            status, error = "error", tests[0].feedback.splitlines()[0][:300]
        elif tests and all(t.status == "passed" for t in tests):
            status, error = "passed", None
        else:
            status, error = "failed", None
        error = clean_line(error, MAX_REASON) if error is not None else None
        out.append(ExerciseResult(ex.slug, score, ex.points, status, error, tests))
    return out


def grade_submission(
    kit: Kit,
    source: Path | ShippedSubmission,
    *,
    name: str | None = None,
    slugs: list[str] | None = None,
    options: GradingOptions | None = None,
) -> Scorecard:
    """Grade the submission at `source` (folder or .zip, or one read elsewhere and shipped
    here as data) in this process.

    Call at most once per process (pytest caches test modules); see `grade_in_child`.
    """
    global _CURRENT
    options = options or GradingOptions()
    slugs = slugs or [ex.slug for ex in kit.exercises]
    started = time.monotonic()
    graded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(source, ShippedSubmission) and name is None:
        raise ValueError("a shipped submission needs its name")
    sub_id = clean_line(name) if name else submission_id(source)  # type: ignore[arg-type]
    bwrapped = options.uses_bwrap()
    sandboxed = bwrapped and budgets.available()  # no budgets: reduced isolation
    lock_away_from_workers(kit, options)
    base = dict(
        submission=sub_id,
        graded_at=graded_at,
        grader_version=grader.__version__,
        suite_digest=suite_digest(kit),
        max_score=float(sum(kit.exercise(s).points for s in slugs)),
        isolation="full" if sandboxed else "reduced",
    )
    limits = options.limits
    sized = False
    if options.zygote is not None:  # workers forked from it can only see its (sized) pool
        workroot = options.zygote.new_folder("grade")
    else:
        workroot = Path(tempfile.mkdtemp(prefix="fslab-grade-"))
        # The submission's disk budget: a tmpfs of its own, in the grading child's own mount
        # namespace (see `grade_in_child`), so that it goes with the child however it ends.
        sized = budgets.has_private_mounts() and budgets.private_tmpfs(
            workroot, limits.disk_bytes, limits.disk_inodes
        )
        if not sandboxed:
            # The worker's unprivileged user may pass through (to its own folder, which it
            # will own) but not list; the reference solution's folder is root's alone.
            os.chmod(workroot, 0o711)
            (workroot / "reference").mkdir(mode=0o700)
    try:
        try:
            if isinstance(source, ShippedSubmission):
                if source.error:
                    raise SubmissionError(source.error)
                staged = stage_contents(source.contents, workroot / "submission", kit)
            else:
                staged = stage(source, workroot / "submission", kit)
        except SubmissionError as exc:
            reason = clean_line(exc, MAX_REASON)
            return Scorecard(
                **base, status="error", error=reason, score=0.0,
                duration_s=round(time.monotonic() - started, 3),
                exercises=[
                    ExerciseResult(s, 0.0, kit.exercise(s).points, "error", reason, [])
                    for s in slugs
                ],
            )  # fmt: skip
        ctx = GradingContext(kit, staged, options, workroot, slugs)
        uid = sandbox_uid_for((kit.data_dir,))
        if uid is not None and bwrapped:
            # The workers run as that uid: the staged files and folders are theirs to use.
            budgets.chown_tree(workroot, uid)
        _CURRENT = ctx
        ctx.prestart()
        try:
            files = [p for _, _, p in suite_files(kit, slugs, options.include_hidden)]
            collector = _run_suites(
                files, suites_dir(kit), exitfirst=options.exitfirst, on_exercise_done=ctx.done
            )
            exercises = _exercise_results(kit, slugs, staged, ctx, collector)
        finally:
            ctx.close()
            _CURRENT = None
        error = clean_line("; ".join(collector.collect_errors)) or None
        return Scorecard(
            **base,
            status="error" if error else "graded",
            error=error,
            score=round(sum(e.score for e in exercises), 4),
            duration_s=round(time.monotonic() - started, 3),
            exercises=exercises,
        )
    finally:
        end_sandbox_user(options)
        if sized:
            budgets.release_tmpfs(workroot)
        shutil.rmtree(workroot, ignore_errors=True)


def private_paths(kit: Kit, options: GradingOptions) -> list[Path]:
    """What no worker may ever read: the kit's solutions, its suites (hidden ones and their
    oracles), the oracle caches, and in a checkout its git history and its own tests (which
    hold both again: alternative solutions, expected scorecards)."""
    root = kit.root
    return [
        root / "solutions", suites_dir(kit), options.cache_dir, root / ".oracle-cache",
        root / ".git", root / "tests",
    ]  # fmt: skip


def lock_away_from_workers(kit: Kit, options: GradingOptions, *extra: Path) -> list[Path]:
    """Where every worker runs as the one sandbox user on the host's filesystem (root
    without bubblewrap), make `private_paths` and `extra` (e.g. a batch's other
    submissions) root's alone before any student code runs (`grader.sandbox.reduced`);
    elsewhere do nothing. Returns the paths whose mode changed (contents never change)."""
    if not shares_one_user(options.uses_bwrap()):
        return []
    # Made now, so that it is never created open to all by the oracles computed later.
    with contextlib.suppress(OSError):
        options.cache_dir.mkdir(parents=True, exist_ok=True)
    return lock_away(*private_paths(kit, options), *extra)


def end_sandbox_user(options: GradingOptions) -> None:
    """In reduced isolation as root (every worker runs as the one dedicated user, one
    submission at a time) end every process of that user, then remove its files from the
    shared temporary folders: what hid from its workers' trees goes with the submission.
    Called at the end of `grade_submission` and again by the parent of a grading child, which
    may have been killed before its own cleanup ran."""
    user = dedicated_user() if shares_one_user(options.uses_bwrap()) else None
    if user is not None:
        left = end_user_processes(user)
        if left:  # the next submission would share the machine with them: say so
            print(
                f"warning: {len(left)} processes of the sandbox user (uid {user}) could not "
                "be ended",
                file=sys.stderr,
            )
        remove_user_files(user)


def error_scorecard(
    kit: Kit, name: str, slugs: list[str], reason: str, seconds: float
) -> Scorecard:
    """A scorecard for a submission that could not be graded at all."""
    reason = clean_line(reason, MAX_REASON)
    return Scorecard(
        submission=clean_line(name),
        graded_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        grader_version=grader.__version__,
        suite_digest=suite_digest(kit),
        status="error",
        error=reason,
        score=0.0,
        max_score=float(sum(kit.exercise(s).points for s in slugs)),
        duration_s=round(seconds, 3),
        exercises=[
            ExerciseResult(s, 0.0, kit.exercise(s).points, "error", reason, []) for s in slugs
        ],
        isolation="full" if bwrap_works() and budgets.available() else "reduced",
    )
