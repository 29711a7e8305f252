"""Grading one submission: stage its files, run the suites in-process, build the scorecard.

The suites (`grader/suites/<slug>/test_public.py`, `test_hidden.py`) are ordinary pytest files.
They reach the submission only through the `student` fixture (see `suites/conftest.py`), which
asks `current()` for a `StudentProxy`: student code always runs in a sandboxed worker.

pytest caches imported test modules, so `pytest.main` must run once per process:
`grade_in_child` forks a fresh child for each submission.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import grader
from grader.kit import Kit
from grader.sandbox import Limits, bwrap_works
from grader.scorecard import ExerciseResult, Scorecard, TestResult, write_json_atomic
from grader.student import (
    SharedWorker,
    StudentCrash,
    StudentError,
    StudentProblem,
    StudentProxy,
    StudentTimeout,
    SubmissionProblem,
)
from grader.submission import StagedFile, SubmissionError, stage, submission_id

SUITES_DIR = Path(grader.__file__).resolve().parent / "suites"
HARNESS_DIR = SUITES_DIR.parent / "harness"
VISIBILITY = {"test_public.py": "public", "test_hidden.py": "hidden"}


def default_cache_dir() -> Path:
    """Where expected values are cached between runs (`FSLAB_CACHE_DIR` overrides)."""
    env = os.environ.get("FSLAB_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("feature-store-lab"))


@dataclass
class GradingOptions:
    """How to grade: limits, time budget, which suites."""

    limits: Limits = field(default_factory=Limits)
    submission_timeout_s: float = 600.0
    """Wall-clock budget of one submission, all exercises together."""
    include_hidden: bool = True
    """Run the hidden suites where they are present."""
    use_bwrap: bool | None = None
    """None: use bubblewrap when it works here."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    zygote: Any = None
    """A warm `grader.warm.Zygote` to fork sandboxed workers from (batch only), or None."""


def options_to_dict(options: GradingOptions) -> dict[str, Any]:
    """`GradingOptions` as plain JSON data (to ship to another process or machine)."""
    return {
        "limits": asdict(options.limits),
        "submission_timeout_s": options.submission_timeout_s,
        "include_hidden": options.include_hidden,
        "use_bwrap": options.use_bwrap,
        "cache_dir": str(options.cache_dir),
    }


def options_from_dict(data: dict[str, Any]) -> GradingOptions:
    """Inverse of `options_to_dict`."""
    return GradingOptions(
        limits=Limits(**data["limits"]),
        submission_timeout_s=float(data["submission_timeout_s"]),
        include_hidden=bool(data["include_hidden"]),
        use_bwrap=data["use_bwrap"],
        cache_dir=Path(data["cache_dir"]),
    )


def suite_files(kit: Kit, slugs: list[str] | None = None, include_hidden: bool = True):
    """`(slug, visibility, path)` of every present suite file, in course order."""
    out = []
    for ex in kit.exercises:
        if slugs and ex.slug not in slugs:
            continue
        for name, visibility in VISIBILITY.items():
            path = SUITES_DIR / ex.slug / name
            if path.is_file() and (include_hidden or visibility == "public"):
                out.append((ex.slug, visibility, path))
    return out


def suite_digest(kit: Kit) -> str:
    """`sha256:` over the manifest, the suites present and the grader version."""
    digest = hashlib.sha256(grader.__version__.encode())
    digest.update((kit.root / "course.toml").read_bytes())
    # The harness code computes and checks expected values too.
    for path in sorted([*SUITES_DIR.rglob("*.py"), *HARNESS_DIR.rglob("*.py")]):
        digest.update(str(path.relative_to(SUITES_DIR.parent)).encode())
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()


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

    def _shared(self, folder: Path) -> SharedWorker:
        """One sandboxed worker for every exercise module staged under `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        preload: list[str] = []
        for ex in self.kit.exercises:
            if ex.slug in self.slugs:
                preload += [m for m in ex.imports if m not in preload]
        return SharedWorker(
            folder,
            readonly=(self.kit.data_dir,),
            limits=self.options.limits,
            preload=tuple(preload),
            use_bwrap=self.options.use_bwrap,
            zygote=self.options.zygote,
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
                self.student_worker = self._shared(self.workroot / "submission")
            staged = self.staged[slug]
            self.proxies[slug] = self._proxy(staged, self.student_worker, deadline=self.deadline)
        return self.proxies[slug]

    def reference(self, slug: str) -> StudentProxy:
        """A proxy of the reference solution, sandboxed the same way (for timing ratios)."""
        key = f"reference:{slug}"
        if key not in self.proxies:
            if self.reference_worker is None:
                self.reference_worker = self._shared(self.workroot / "reference")
            staged = self.reference_files[slug]
            self.proxies[key] = self._proxy(staged, self.reference_worker, deadline=None)
        return self.proxies[key]

    def cache_path(self, name: str) -> Path:
        """A file path in the oracle cache, keyed by the suites and the data version."""
        from grader import datagen

        manifest = datagen.read_manifest(self.kit.data_dir) or {}
        key = hashlib.sha256(
            (self.digest + json.dumps(manifest, sort_keys=True)).encode()
        ).hexdigest()[:16]
        folder = self.options.cache_dir / key
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def close(self) -> None:
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


def _feedback(exc: BaseException) -> tuple[str, str]:
    """(status, learner feedback) for an exception that ended a test."""
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

    def __init__(self) -> None:
        self.results: dict[str, TestResult] = {}
        self.slugs: dict[str, str] = {}
        self.collect_errors: list[str] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        path = Path(str(item.fspath))
        slug, visibility = path.parent.name, VISIBILITY.get(path.name, "hidden")
        test_id = f"{slug}::{item.name}"
        marker = item.get_closest_marker("points")
        max_points = float(marker.args[0]) if marker else 0.0
        result = self.results.get(test_id)
        if result is None:
            result = TestResult(test_id, visibility, 0.0, max_points, "passed", "", 0.0)  # type: ignore[arg-type]
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


def _run_suites(files: list[Path]) -> _Collector:
    collector = _Collector()
    args = [
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
        "--rootdir", str(SUITES_DIR),
        "-c", str(SUITES_DIR / "pytest.ini"),
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
        elif proxy is not None and proxy.timed_out:
            status, error = "timeout", "a call ran out of time"
        elif tests and all(t.status == "error" for t in tests):
            status, error = "error", tests[0].feedback.splitlines()[0][:300]
        elif tests and all(t.status == "passed" for t in tests):
            status, error = "passed", None
        else:
            status, error = "failed", None
        out.append(ExerciseResult(ex.slug, score, ex.points, status, error, tests))
    return out


def grade_submission(
    kit: Kit,
    source: Path,
    *,
    name: str | None = None,
    slugs: list[str] | None = None,
    options: GradingOptions | None = None,
) -> Scorecard:
    """Grade the submission at `source` (folder or .zip) in this process.

    Call at most once per process (pytest caches test modules); see `grade_in_child`.
    """
    global _CURRENT
    options = options or GradingOptions()
    slugs = slugs or [ex.slug for ex in kit.exercises]
    started = time.monotonic()
    graded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    sub_id = name or submission_id(source)
    sandboxed = bwrap_works() if options.use_bwrap is None else options.use_bwrap
    base = dict(
        submission=sub_id,
        graded_at=graded_at,
        grader_version=grader.__version__,
        suite_digest=suite_digest(kit),
        max_score=float(sum(kit.exercise(s).points for s in slugs)),
        isolation="full" if sandboxed else "reduced",
    )
    if options.zygote is not None:  # workers forked from it can only see its pool
        workroot = options.zygote.new_folder("grade")
    else:
        workroot = Path(tempfile.mkdtemp(prefix="fslab-grade-"))
    try:
        try:
            staged = stage(source, workroot / "submission", kit)
        except SubmissionError as exc:
            return Scorecard(
                **base, status="error", error=str(exc), score=0.0,
                duration_s=round(time.monotonic() - started, 3),
                exercises=[
                    ExerciseResult(s, 0.0, kit.exercise(s).points, "error", str(exc), [])
                    for s in slugs
                ],
            )  # fmt: skip
        ctx = GradingContext(kit, staged, options, workroot, slugs)
        _CURRENT = ctx
        try:
            files = [p for _, _, p in suite_files(kit, slugs, options.include_hidden)]
            collector = _run_suites(files)
            exercises = _exercise_results(kit, slugs, staged, ctx, collector)
        finally:
            ctx.close()
            _CURRENT = None
        error = "; ".join(collector.collect_errors) or None
        return Scorecard(
            **base,
            status="error" if error else "graded",
            error=error,
            score=round(sum(e.score for e in exercises), 4),
            duration_s=round(time.monotonic() - started, 3),
            exercises=exercises,
        )
    finally:
        shutil.rmtree(workroot, ignore_errors=True)


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


def _child(kit: Kit, source: Path, name: str | None, slugs, options, out: str, parent: int) -> None:
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
    source: Path
    name: str
    slugs: list[str]
    options: GradingOptions
    process: Any
    out: Path
    started: float

    @property
    def overdue(self) -> bool:
        """Past the submission budget plus a grace period: the child is to be killed."""
        return time.monotonic() - self.started > self.options.submission_timeout_s + 60

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        self.process.join(10)

    def result(self) -> Scorecard:
        """The child's scorecard, or an `error` one if it died without writing it."""
        try:
            data = json.loads(self.out.read_text(encoding="utf-8"))
            self.out.unlink()
            return Scorecard.from_dict(data)
        except (OSError, ValueError):
            if self.overdue:
                reason = f"grading took longer than {self.options.submission_timeout_s:.0f} s"
            else:
                reason = f"the grading process ended unexpectedly (exit {self.process.exitcode})"
            seconds = time.monotonic() - self.started
            return error_scorecard(self.kit, self.name, self.slugs, reason, seconds)


def start_child(
    kit: Kit,
    source: Path,
    *,
    name: str | None = None,
    slugs: list[str] | None = None,
    options: GradingOptions | None = None,
) -> ChildGrading:
    """Fork a child that grades `source` with a fresh pytest and writes its scorecard."""
    options = options or GradingOptions()
    slugs = slugs or [ex.slug for ex in kit.exercises]
    name = name or submission_id(source)
    fd, out = tempfile.mkstemp(prefix="fslab-card-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(kit, source, name, slugs, options, out, os.getpid()), daemon=False
    )
    process.start()
    return ChildGrading(kit, source, name, slugs, options, process, Path(out), time.monotonic())


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


def error_scorecard(
    kit: Kit, name: str, slugs: list[str], reason: str, seconds: float
) -> Scorecard:
    """A scorecard for a submission that could not be graded at all."""
    return Scorecard(
        submission=name,
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
        isolation="full" if bwrap_works() else "reduced",
    )
