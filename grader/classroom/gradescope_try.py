"""`grade gradescope-bundle --try SUBMISSION`: run the autograder bundle here as Gradescope would.

A `Trial` lays out `/autograder` in a folder of its own (`AUTOGRADER_ROOT`), unpacks the
bundle into `source/`, runs `setup.sh` against it and then `run_autograder` for each
submission, under the limits of a Gradescope container that this machine can impose:

* memory: a memory cgroup (768 MiB by default) under this process's own cgroup, when we are
  root and one can be made (cgroup v1 or v2); the peak is read from it and also sampled
  (resident and proportional memory of the whole process tree);
* CPU: one CPU (`sched_setaffinity`, as `taskset -c` does);
* isolation: a `bwrap` on PATH that fails the probe, as it does in a container that refuses
  user namespaces, so the reduced isolation is what gets tried;
* time: Gradescope's default 10 minutes.

Quick where it can be: `setup.sh` skips the system packages and `make install` and uses an
interpreter that has the kit's packages already (this one; or, when this one lives where
the unprivileged `fslab-student` user cannot read it, a thin venv over the system's Python
of the same version that reuses this one's site-packages), and generated data that is current
is copied instead of generated again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import psutil

from grader.classroom.gradescope import build_bundle
from grader.course import datagen
from grader.course.kit import Kit
from grader.grading.options import GradingOptions
from grader.grading.runner import private_paths
from grader.sandbox.bubblewrap import _world_readable
from grader.sandbox.reduced import lock_away

MIB = 1 << 20
GRADESCOPE_MEMORY_MIB = 768
GRADESCOPE_TIMEOUT_S = 600.0
FAILING_BWRAP = """#!/bin/sh
# Stands in for bubblewrap in a container that refuses user namespaces.
echo "bwrap: No permissions to create new namespace" >&2
exit 1
"""


class TrialError(Exception):
    """The trial cannot run (one line, for the user)."""


@dataclass
class TrialRun:
    """One submission through `run_autograder`."""

    results: dict | None
    """results.json as written, or None when there was none."""
    returncode: int
    seconds: float
    peak_rss_bytes: int
    """Largest sampled sum of resident memory over run_autograder's process tree."""
    peak_pss_bytes: int
    """Largest sampled sum of proportional memory (shared pages split between processes)."""
    peak_cgroup_bytes: int | None
    """The memory cgroup's own peak (includes page cache), where there was one."""
    peak_trusted_pss_bytes: int = 0
    """Largest sampled PSS of the trusted processes alone (all but the workers)."""
    peak_worker_pss_bytes: int = 0
    """Largest sampled PSS of the workers alone."""
    stdout: str = ""
    limits: list[str] = field(default_factory=list)
    """The Gradescope limits this run was under, in words."""


def _interpreter(folder: Path) -> tuple[str, str]:
    """(python, how): an interpreter with the kit's packages that `fslab-student` can run."""
    roots = [Path(sys.base_prefix).resolve(), Path(sys.prefix)]
    if os.geteuid() != 0 or all(_world_readable(p) for p in roots):
        return sys.executable, f"reused {sys.executable}"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin:/bin")
    site = Path(sys.prefix) / "lib" / version / "site-packages"
    if system and _world_readable(Path(system).resolve()) and _world_readable(site):
        venv = folder / "venv"
        subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True)
        (venv / "lib" / version / "site-packages" / "fslab-reuse.pth").write_text(f"{site}\n")
        return str(venv / "bin" / "python"), f"thin venv over {system} reusing {site}"
    return sys.executable, (
        f"reused {sys.executable}, which the student user cannot read: workers stay root"
    )


def _own_memory_cgroup() -> tuple[Path, str] | None:
    """(folder, "v1"|"v2") of this process's memory cgroup, when we may make children."""
    if os.geteuid() != 0:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (folder / "memory.limit_in_bytes").exists():
                return folder, "v1"
    for line in lines:
        if line.startswith("0::"):
            folder = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            if "memory" in (folder / "cgroup.subtree_control").read_text():
                return folder, "v2"
    return None


class MemoryCgroup:
    """A child memory cgroup of our own with a hard limit (removed by `close`)."""

    def __init__(self, limit_bytes: int) -> None:
        found = _own_memory_cgroup()
        if found is None:
            raise OSError("no memory cgroup can be made here")
        parent, self.version = found
        self.path = parent / f"fslab-try-{os.getpid()}-{time.monotonic_ns()}"
        self.path.mkdir()
        try:
            if self.version == "v1":
                (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                swap = self.path / "memory.memsw.limit_in_bytes"
                if swap.exists():  # no swap either, as in a container with --memory
                    with contextlib.suppress(OSError):
                        swap.write_text(str(limit_bytes))
            else:
                (self.path / "memory.max").write_text(str(limit_bytes))
                (self.path / "memory.swap.max").write_text("0")
        except OSError:
            self.close()
            raise

    def add_self(self) -> None:
        """Move the calling process in (a pre-exec hook)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int | None:
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        for _ in range(100):
            try:
                pids = (self.path / "cgroup.procs").read_text().split()
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self.path.rmdir()


class _Sampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.rss = self.pss = 0
        self.trusted_pss = self.worker_pss = 0
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            rss = pss = worker = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                    if "grader.sandbox.worker" in " ".join(proc.cmdline()):
                        worker += getattr(info, "pss", info.rss)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.trusted_pss = max(self.trusted_pss, pss - worker)
            self.worker_pss = max(self.worker_pss, worker)


def _copy_submission(source: Path, dest: Path) -> None:
    """Lay out `source` (a folder, or a .zip unpacked as Gradescope does) in `dest`."""
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True)
        return
    if source.is_file() and source.suffix.lower() == ".zip":
        dest.mkdir(parents=True)
        try:
            with zipfile.ZipFile(source) as archive:
                for info in archive.infolist():
                    name = PurePosixPath(info.filename)
                    if info.is_dir() or name.is_absolute() or ".." in name.parts:
                        continue
                    target = dest.joinpath(*name.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(info))
        except (zipfile.BadZipFile, OSError) as exc:
            raise TrialError(f"cannot unpack {source}: {exc}") from None
        return
    raise TrialError(f"{source} is neither a folder nor a .zip")


class Trial:
    """An /autograder layout in `folder` with the bundle of `kit`, set up once, graded often."""

    def __init__(
        self,
        kit: Kit,
        folder: Path,
        *,
        memory_mib: int = GRADESCOPE_MEMORY_MIB,
        timeout_s: float = GRADESCOPE_TIMEOUT_S,
        hidden_visibility: str = "after_due_date",
        data_dir: Path | None = None,
    ) -> None:
        """`data_dir`: generated data to copy into the bundle's kit when it is current
        (default: the kit's own `data/`), instead of generating it again."""
        self.kit, self.root = kit, folder.resolve() / "autograder"
        self.data_dir = data_dir or kit.data_dir
        self.memory_mib, self.timeout_s = memory_mib, timeout_s
        self.hidden_visibility = hidden_visibility
        self.python = sys.executable
        self.notes: list[str] = []

    def _env(self) -> dict[str, str]:
        fake = self.root.parent / "no-bwrap"
        # The bundle's own oracle cache, as on Gradescope (not the caller's).
        env = {k: v for k, v in os.environ.items() if k != "FSLAB_CACHE_DIR"}
        return {
            **env,
            "PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "AUTOGRADER_ROOT": str(self.root),
            "AUTOGRADER_PYTHON": self.python,
            "HIDDEN_VISIBILITY": self.hidden_visibility,
        }

    def setup(self, echo=print) -> None:
        """Unpack the bundle into `source/` and run its setup.sh (quick path, see above)."""
        self.root.mkdir(parents=True)
        for folder in (self.root.parent, self.root):  # mkdtemp is 0700: the user must pass
            os.chmod(folder, 0o755)
        if os.geteuid() == 0 and not _world_readable(self.root):
            # Else the worker could not reach its own folder as fslab-student and would
            # silently stay root: not what Gradescope runs.
            raise TrialError(
                f"{self.root.parent} is not reachable by other users: choose a folder "
                "whose parents are (e.g. under /tmp)"
            )
        fake = self.root.parent / "no-bwrap"
        fake.mkdir()
        (fake / "bwrap").write_text(FAILING_BWRAP)
        (fake / "bwrap").chmod(0o755)
        bundle = self.root.parent / "autograder.zip"
        build_bundle(self.kit, bundle, hidden_visibility=self.hidden_visibility)
        source = self.root / "source"
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(source)
        for script in ("setup.sh", "run_autograder"):
            (source / script).chmod(0o755)
        if datagen.is_current(self.data_dir, 42):  # what setup.sh generates
            shutil.copytree(self.data_dir, source / "kit" / "data", dirs_exist_ok=True)
            self.notes.append(f"copied the current generated data of {self.data_dir}")
        self.python, how = _interpreter(self.root.parent)
        self.notes.append(how)
        if os.geteuid() == 0:
            # On Gradescope the checkout the bundle came from is not there; here it is, and
            # the student user must not read its solutions, suites or oracle cache either.
            locked = lock_away(*private_paths(self.kit, GradingOptions()))
            if locked:
                self.notes.append(f"locked away {len(locked)} private folders of {self.kit.root}")
        echo(f"setup.sh ({'; '.join(self.notes)}) ...")
        proc = subprocess.run(
            ["bash", str(source / "setup.sh")],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise TrialError(f"setup.sh failed (exit {proc.returncode}): {' | '.join(tail)}")

    def run(self, submission: Path) -> TrialRun:
        """`run_autograder` on `submission` under the Gradescope limits this machine has."""
        for name in ("submission", "results"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        _copy_submission(submission, self.root / "submission")
        limits = ["bwrap fails its probe (reduced isolation)"]
        cgroup = None
        try:
            cgroup = MemoryCgroup(self.memory_mib * MIB)
            limits.append(f"memory cgroup {self.memory_mib} MiB ({cgroup.version})")
        except OSError as exc:
            limits.append(f"no memory cgroup ({exc}): the limit is not enforced")
        cpu = max(os.sched_getaffinity(0))
        limits.append(f"1 CPU (cpu {cpu})")

        def preexec() -> None:
            os.setsid()
            if cgroup is not None:
                cgroup.add_self()
            os.sched_setaffinity(0, {cpu})

        started = time.monotonic()
        proc = subprocess.Popen(
            [str(self.root / "source" / "run_autograder")],
            cwd=self.root,
            env=self._env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec,
        )
        sampler = _Sampler(proc.pid)
        try:
            stdout, _ = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            stdout, _ = proc.communicate()
            stdout += f"\n[killed after {self.timeout_s:.0f} s, as Gradescope would]"
        seconds = time.monotonic() - started
        sampler.halt.set()
        sampler.join(5)
        peak = cgroup.peak() if cgroup is not None else None
        if cgroup is not None:
            cgroup.close()
        try:
            results = json.loads((self.root / "results" / "results.json").read_text())
        except (OSError, ValueError):
            results = None
        return TrialRun(
            results, proc.returncode, seconds, sampler.rss, sampler.pss, peak,
            sampler.trusted_pss, sampler.worker_pss, stdout, limits,
        )  # fmt: skip


def render_trial(run: TrialRun) -> str:
    """The run as Gradescope shows it: the score, the output, then every test."""
    lines = [f"Gradescope limits here: {'; '.join(run.limits)}"]
    peaks = f"peak memory {run.peak_pss_bytes / MIB:.0f} MiB PSS, {run.peak_rss_bytes / MIB:.0f}"
    peaks += f" MiB RSS (process tree; PSS trusted side {run.peak_trusted_pss_bytes / MIB:.0f}"
    peaks += f" MiB, workers {run.peak_worker_pss_bytes / MIB:.0f} MiB)"
    if run.peak_cgroup_bytes is not None:
        peaks += f", {run.peak_cgroup_bytes / MIB:.0f} MiB cgroup (page cache included)"
    lines.append(f"run_autograder: exit {run.returncode} in {run.seconds:.0f} s; {peaks}")
    if run.results is None:
        lines += ["", "No results.json: Gradescope would show the student no results.", ""]
        lines += run.stdout.strip().splitlines()[-10:]
        return "\n".join(lines)
    results = run.results
    total = sum(t["max_score"] for t in results.get("tests", []))
    lines += ["", f"Autograder Score  {results['score']:g} / {total:g}", ""]
    lines += [results.get("output", ""), ""]
    for test in sorted(results.get("tests", []), key=lambda t: t["number"]):
        mark = "passed" if test["status"] == "passed" else "FAILED"
        shown = "" if test["visibility"] == "visible" else f"  [{test['visibility']}]"
        lines.append(
            f"{test['number']:>6}  {mark}  {test['score']:g}/{test['max_score']:g}  "
            f"{test['name']}{shown}"
        )
        if test["status"] != "passed" and test.get("output"):
            lines += [f"{'':14}{line}" for line in test["output"].splitlines()[:6]]
    return "\n".join(lines)


def try_bundle(
    kit: Kit,
    submission: Path,
    *,
    memory_mib: int = GRADESCOPE_MEMORY_MIB,
    keep: Path | None = None,
    echo=print,
) -> TrialRun:
    """Set up a trial in a temp folder (or in `keep`, left in place) and grade `submission`."""
    if not submission.exists():
        raise TrialError(f"{submission} does not exist")
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise TrialError(f"{keep} is not empty")
    folder = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="fslab-try-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        trial = Trial(kit, folder, memory_mib=memory_mib)
        trial.setup(echo)
        return trial.run(submission.resolve())
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
