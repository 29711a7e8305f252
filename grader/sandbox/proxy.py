"""The trusted side's handle on a student's module: calls go to a sandboxed worker.

Suites use `student.point_in_time_join(...)` as if it were the function; the proxy sends the
arguments as data, waits (with a timeout), and gives back decoded values or raises one of the
exceptions below, whose text is written for the learner.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.sandbox import protocol
from grader.sandbox.bubblewrap import (
    Limits,
    Worker,
    WorkerError,
    WorkerOutOfMemory,
    WorkerTimeout,
)

MAX_TIMEOUTS = 2
"""After this many timed-out calls, an exercise's remaining calls fail at once."""
SLOW_CALL_FACTOR = 3.0
"""A suite may give a known-slow Feast call (`feast apply`, materialize, historical retrieval)
up to this multiple of `--call-timeout` with `_timeout=`, never more: `--call-timeout 10` bounds
every call at 30 s. Asking for less than `--call-timeout` is always honoured."""


class StudentProblem(Exception):
    """Base of everything a student's code can do wrong besides returning a wrong value."""


class SubmissionProblem(StudentProblem):
    """The exercise file is missing or cannot be loaded; every test of the exercise fails."""


class StudentError(StudentProblem):
    """The student's function raised an exception."""

    def __init__(self, function: str, error: dict[str, Any]) -> None:
        self.function = function
        self.type_name = str(error.get("type", "Exception"))
        self.mro = [str(n) for n in error.get("mro", [])]
        self.message = str(error.get("message", ""))
        self.where = error.get("where")
        where = f" ({self.where})" if self.where else ""
        super().__init__(f"{function} raised {self.type_name}: {self.message}{where}")

    def is_a(self, name: str) -> bool:
        """Whether the raised exception is an instance of the built-in class called `name`."""
        return name in self.mro

    @property
    def not_implemented(self) -> bool:
        return self.is_a("NotImplementedError")


class StudentTimeout(StudentProblem):
    """A call ran out of time."""


class StudentCrash(StudentProblem):
    """The worker died during a call (exit, signal, memory)."""


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value >= 0 else None


@dataclass
class CallResult:
    """The last call's side information."""

    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    """Wall-clock seconds of the round trip, measured on the trusted side."""
    cpu_seconds: float | None = None
    """CPU seconds of the worker process during the call, as it reports them (trust it only
    for the reference solution: other processes cannot inflate it, as they can wall time)."""
    args_after: list[Any] | None = None
    """The arguments as the function left them (when asked for, to detect mutation)."""


class SharedWorker:
    """One sandboxed worker shared by the exercises of a submission, restarted when it dies.

    Exercises of one submission need no isolation from each other, and starting a worker
    (importing pandas, pyarrow, Feast) is the expensive part of grading.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        readonly: tuple[Path, ...] = (),
        limits: Limits | None = None,
        preload: tuple[str, ...] = ("pandas", "pyarrow"),
        use_bwrap: bool | None = None,
        zygote: Any = None,
        trusted: bool = False,
    ) -> None:
        self.workdir = workdir
        self.trusted = trusted
        """Runs the reference solution (see `Worker.trusted`)."""
        self.zygote = zygote
        """A warm `grader.sandbox.warm.Zygote` to fork workers from, or None for cold starts."""
        self.readonly = readonly
        self.limits = limits or Limits()
        self.preload = preload
        self.use_bwrap = use_bwrap
        self.worker: Worker | None = None
        self.loaded: set[str] = set()
        """Modules loaded in the current worker."""
        self._lock = threading.Lock()
        self._spawned: Worker | None = None
        """A worker `prestart` spawned that nobody has waited for yet."""

    def prestart(self) -> None:
        """Spawn the cold worker now (its imports take seconds), so that it is ready, or
        nearly, when the first test asks for it; `get` waits for it. Only libraries load: no
        student code. A failure here is left for the first `get` to meet again and report."""
        with self._lock:
            if self.worker is not None or self._spawned is not None or self.zygote is not None:
                return
            worker = self._cold_worker()
            try:
                worker.spawn()
            except (WorkerError, OSError):
                worker.close()
                return
            self._spawned = worker

    def get(self) -> Worker:
        """The live worker, started (or restarted after a crash or timeout) when needed."""
        with self._lock:
            return self._get()

    def _get(self) -> Worker:
        if self.worker is not None and self.worker.alive:
            return self.worker
        if self.worker is not None:
            self.worker.close()
        self.loaded = set()
        if self.zygote is not None:
            from grader.sandbox.warm import ZygoteWorker

            warm = ZygoteWorker(self.zygote, self.workdir, limits=self.limits)
            try:
                warm.start()
                self.worker = warm
                return warm
            except WorkerError:
                self.zygote = None  # the factory is broken: cold workers from now on
        worker, self._spawned = self._spawned, None
        try:
            if worker is not None:
                worker.wait_ready()
            else:
                worker = self._cold_worker()
                worker.start()
        except WorkerError as exc:
            raise StudentCrash(str(exc)) from None
        self.worker = worker
        return worker

    def _cold_worker(self) -> Worker:
        return Worker(
            self.workdir,
            readonly=list(self.readonly),
            limits=self.limits,
            preload=self.preload,
            use_bwrap=self.use_bwrap,
            trusted=self.trusted,
        )

    @property
    def isolation(self) -> str:
        return self.worker.isolation if self.worker else "full"

    def close(self) -> None:
        with self._lock:
            for worker in (self.worker, self._spawned):
                if worker is not None:
                    worker.close()
            self.worker = self._spawned = None
            self.loaded = set()


class StudentProxy:
    """Calls into one exercise module of one submission (or of the reference solution)."""

    def __init__(
        self,
        slug: str,
        module_file: Path | None,
        *,
        problem: str | None = None,
        shared: SharedWorker | None = None,
        readonly: tuple[Path, ...] = (),
        limits: Limits | None = None,
        deadline: float | None = None,
        preload: tuple[str, ...] = ("pandas", "pyarrow"),
        use_bwrap: bool | None = None,
    ) -> None:
        self.slug = slug
        self.module_file = module_file
        self.module = module_file.stem if module_file else ""
        self.problem = problem
        self.limits = limits or Limits()
        self.deadline = deadline
        self.owns_worker = shared is None
        if shared is None:
            workdir = module_file.parent if module_file else Path(".")
            shared = SharedWorker(
                workdir, readonly=readonly, limits=self.limits, preload=preload,
                use_bwrap=use_bwrap,
            )  # fmt: skip
        self.shared = shared
        self.last = CallResult()
        self.timed_out = False
        self.timeouts = 0
        self.jobs: SharedWorker | None = None
        """The worker of `job` calls (never loads student code), started on the first."""
        self.over_budget: str | None = None
        """Why the exercise is an error: its worker went over the memory budget."""
        self.out_of_memory: str | None = None
        """Why a call was stopped for its memory (the exercise is then an `error`)."""

    @property
    def workdir(self) -> Path:
        """The private folder the worker may write in (host path, same path inside)."""
        if self.module_file is None:
            raise SubmissionProblem(self.problem or "no module")
        return self.module_file.parent

    @property
    def isolation(self) -> str:
        return self.shared.isolation

    def _ensure_worker(self) -> Worker:
        if self.problem:
            raise SubmissionProblem(self.problem)
        worker = self.shared.get()
        if self.module not in self.shared.loaded:
            assert self.module_file is not None
            header = {"op": "load", "path": str(self.module_file), "module": self.module}
            answer, _ = self._send(header)
            if "error" in answer:
                err = StudentError(f"importing {self.module_file.name}", answer["error"])
                self.problem = str(err)
                raise SubmissionProblem(self.problem)
            self.shared.loaded.add(self.module)
        return worker

    def _timeout(self, requested: float | None) -> float:
        """The seconds the next call may take: `requested` (or `--call-timeout`), capped at
        `SLOW_CALL_FACTOR` times `--call-timeout` and by the submission's deadline."""
        if self.out_of_memory:  # it would only run out again, at the other exercises' cost
            raise StudentCrash(f"not run: an earlier call {self.out_of_memory}")
        if self.timeouts >= MAX_TIMEOUTS:
            # A submission that hangs should not burn its whole budget one test at a time.
            raise StudentTimeout(
                f"not run: {MAX_TIMEOUTS} earlier calls of this exercise ran out of time"
            )
        base = self.limits.call_timeout_s
        timeout = base if requested is None else min(float(requested), base * SLOW_CALL_FACTOR)
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                raise StudentTimeout("the submission's time budget is used up")
            timeout = min(timeout, left)
        return timeout

    def _send(self, header: dict[str, Any], blobs: list[bytes] | None = None, timeout=None):
        worker = self.shared.worker
        assert worker is not None
        limit = self._timeout(timeout)
        ooms = worker.oom_kills()
        try:
            answer = worker.request(header, blobs, timeout=limit)
        except WorkerTimeout:
            # A call that lost processes to the memory budget on the way is over budget,
            # whatever else it then did (its parent may wait for children the kernel killed).
            self._check_budget(worker, ooms)
            self.timed_out = True
            self.timeouts += 1
            raise StudentTimeout(f"no answer within {limit:.0f} s: the call was stopped") from None
        except WorkerOutOfMemory as exc:
            self.out_of_memory = str(exc)
            raise StudentCrash(f"The call {exc}.") from None
        except WorkerError as exc:
            self._check_budget(worker, ooms)
            raise StudentCrash(str(exc)) from None
        self._check_budget(worker, ooms)
        return answer

    def _check_budget(self, worker: Worker, before: int) -> None:
        """The kernel killed a process of this call for memory (the worker itself or one it
        started): the call failed, whatever it answered."""
        if worker.oom_kills() > before:
            self.over_budget = f"the submission {worker.over_budget()} (its budget)"
            raise StudentCrash(f"{self.over_budget}: the call was stopped")

    def _run(self, header: dict[str, Any], name: str, args, kwargs, timeout) -> Any:
        self._ensure_worker()
        blobs: list[bytes] = []
        header["args"] = protocol.encode(list(args), blobs)
        header["kwargs"] = protocol.encode(dict(kwargs), blobs)
        started = time.monotonic()
        answer, out_blobs = self._send(header, blobs, timeout)
        seconds = time.monotonic() - started
        budget = [protocol.MAX_DECODED_BYTES]  # one answer's frames share it
        try:
            after = answer.get("args_after")
            self.last = CallResult(
                stdout=str(answer.get("stdout", "")),
                stderr=str(answer.get("stderr", "")),
                seconds=seconds,
                cpu_seconds=_seconds(answer.get("cpu_s")),
                args_after=protocol.decode(after, out_blobs, budget) if after is not None else None,
            )
            if "error" in answer:
                raise StudentError(name, answer["error"])
            return protocol.decode(answer.get("value"), out_blobs, budget)
        except protocol.ProtocolError as exc:
            raise StudentCrash(f"{name} returned data the grader cannot read: {exc}") from None

    def call(
        self,
        function: str,
        *args: Any,
        _timeout: float | None = None,
        _return_args: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call `function(*args, **kwargs)` in the worker and return its decoded result."""
        header = {
            "op": "call",
            "module": self.module,
            "function": function,
            "return_args": _return_args,
        }
        return self._run(header, function, args, kwargs, _timeout)

    def harness(self, target: str, *args: Any, _timeout: float | None = None, **kwargs: Any):
        """Run the trusted helper `grader.harness.<target>` on the module inside the worker."""
        header = {"op": "harness", "module": self.module, "target": target}
        return self._run(header, target.partition(":")[2], args, kwargs, _timeout)

    def job(self, target: str, *args: Any, _timeout: float | None = None, **kwargs: Any) -> Any:
        """Run `grader.harness.<target>(*args, **kwargs)` in this exercise's job worker.

        The job worker is a second sandboxed worker that sees the same private folder but
        never loads the submission's module, so what a helper reads from the submission's
        files (a registry, a config) was produced by code the student could not replace. It
        is started on the first job (with no heavy preload) and kept for this exercise's
        later jobs; `close` stops it.
        """
        if self.problem:
            raise SubmissionProblem(self.problem)
        if self.jobs is None:
            shared = self.shared
            self.jobs = SharedWorker(
                shared.workdir, readonly=shared.readonly, limits=shared.limits, preload=(),
                use_bwrap=shared.use_bwrap, zygote=shared.zygote,
            )  # fmt: skip
        name = target.partition(":")[2]
        blobs: list[bytes] = []
        header = {
            "op": "job",
            "target": target,
            "args": protocol.encode(list(args), blobs),
            "kwargs": protocol.encode(dict(kwargs), blobs),
        }
        limit = self._timeout(_timeout)
        worker = self.jobs.get()
        try:
            answer, out_blobs = worker.request(header, blobs, timeout=limit)
        except WorkerTimeout:
            self.jobs.close()
            raise StudentTimeout(f"{name}: no answer within {limit:.0f} s") from None
        except WorkerError as exc:
            self.jobs.close()
            raise StudentCrash(str(exc)) from None
        if "error" in answer:
            raise StudentError(name, answer["error"])
        try:
            return protocol.decode(answer.get("value"), out_blobs)
        except protocol.ProtocolError as exc:
            raise StudentCrash(f"{name} answered data the grader cannot read: {exc}") from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def close(self) -> None:
        """Stop the job worker, and the worker if this proxy owns it (a shared one is closed
        by its owner)."""
        if self.jobs is not None:
            self.jobs.close()
            self.jobs = None
        if self.owns_worker:
            self.shared.close()
