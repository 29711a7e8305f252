"""Running untrusted code: a worker process under bubblewrap, with limits, that can be killed whole.

`Worker` starts `python -I -m grader.sandbox.worker` in a fresh filesystem view that holds only the
Python installation (read-only), the `grader` package without its suites (read-only), the data
folders a call needs (read-only) and one private writable folder. It has no network, its own
PID namespace (killing it kills everything it started), an unprivileged uid, and resource
limits (address space, CPU, file size, open files; a pids cgroup where we may create one).

Without `bwrap` the worker still gets the limits, its own session, the seccomp filter with IP
sockets refused and, when we are root and the Python installation is world-readable, the
dedicated unprivileged user `fslab-student` (or `nobody` where it does not exist), which owns
only the worker's private folder; `isolation` then says "reduced". See `grader.sandbox.reduced`
for what the trusted side locks away from that user before any student code runs.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grader
from grader.sandbox import protocol
from grader.sandbox.memwatch import MemoryWatch, kill_seen, oom_kills

NOBODY = 65534
SANDBOX_USER = "fslab-student"
_cgroup_counter = 0


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed worker."""

    call_timeout_s: float = 60.0
    """Wall-clock seconds one call may take before the worker is killed."""
    start_timeout_s: float = 120.0
    """Wall-clock seconds the worker may take to start and import its libraries."""
    memory_bytes: int = 4 << 30
    """Address-space limit (RLIMIT_AS) of every process in the worker."""
    cpu_seconds: int = 900
    """CPU-time limit (RLIMIT_CPU) of every process in the worker."""
    file_size_bytes: int = 256 << 20
    """Largest file a worker may write (RLIMIT_FSIZE)."""
    max_processes: int = 256
    """Tasks (processes and threads) in the worker's pids cgroup, where one can be made."""
    output_bytes: int = 64 << 10
    """Raw stdout/stderr bytes kept per worker; the rest is read and dropped."""
    rss_bytes: int = 0
    """Resident memory of the worker's whole process tree, kept by a watchdog on the trusted
    side (`grader.sandbox.memwatch`); 0: no watchdog (see `grader.sandbox.container`)."""


class WorkerError(Exception):
    """The worker could not answer: it died, hung, or spoke nonsense."""


class WorkerTimeout(WorkerError):
    """A call took longer than its wall-clock budget; the worker has been killed."""


class WorkerOutOfMemory(WorkerError):
    """The worker used more memory than its budget and was killed (by us or the kernel)."""


def sandbox_user() -> tuple[int, int]:
    """(uid, gid) a worker runs as without bubblewrap: `fslab-student` where it exists
    (made by the Gradescope bundle's setup.sh), else `nobody`."""
    import pwd

    try:
        entry = pwd.getpwnam(SANDBOX_USER)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return NOBODY, NOBODY


@functools.cache
def bwrap_works() -> bool:
    """True when `bwrap` is installed and can create the namespaces we ask for here."""
    path = shutil.which("bwrap")
    if not path:
        return False
    try:
        probe = subprocess.run(
            [path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _world_readable(path: Path) -> bool:
    """Whether `nobody` could reach `path`: every parent folder world-executable."""
    for folder in [path, *path.parents]:
        try:
            if not folder.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def can_drop_privileges() -> bool:
    """Whether a worker without bubblewrap can run as `sandbox_user()`: we are root and that
    user can reach the Python installation."""
    return os.geteuid() == 0 and all(_world_readable(p) for p in _python_roots())


def _python_roots() -> list[Path]:
    """Folders the worker's Python needs: the interpreter's prefix and the venv's."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    return sorted(roots)


def _cgroup_root() -> Path | None:
    """A pids cgroup folder we may create children in (v1 or v2), or None."""
    if os.geteuid() != 0:
        return None
    for candidate in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if (candidate / "cgroup.procs").exists() and os.access(candidate, os.W_OK):
            if candidate.name == "pids" or "pids" in _read(candidate / "cgroup.controllers"):
                return candidate
    return None


def make_cgroup(max_processes: int) -> Path | None:
    """A fresh pids cgroup allowing `max_processes` tasks, or None where we cannot make one."""
    global _cgroup_counter
    root = _cgroup_root()
    if root is None:
        return None
    _cgroup_counter += 1
    path = root / f"fslab-{os.getpid()}-{_cgroup_counter}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max_processes))
        return path
    except OSError:
        return None


def kill_cgroup(path: Path) -> None:
    """Kill every process in the cgroup `path`, then remove it."""
    for _ in range(50):
        pids = _read(path / "cgroup.procs").split()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        time.sleep(0.02)
    try:
        path.rmdir()
    except OSError:
        pass


def rlimits(limits: Limits) -> dict[str, int]:
    """The `resource` limits of a worker, by name."""
    return {
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.file_size_bytes,
        "RLIMIT_NOFILE": 1024,
        "RLIMIT_CORE": 0,
    }


def worker_env(workdir: Path, *, no_network: bool = False) -> dict[str, str]:
    """The whole environment of a worker: nothing of ours leaks in. `no_network` asks the
    worker's seccomp filter to refuse IP sockets too (no network namespace to do it)."""
    extra = {"FSLAB_SECCOMP_NO_INET": "1"} if no_network else {}
    return {
        **extra,
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        # Feast checks for updates and sends usage data unless told not to.
        "FEAST_USAGE": "False",
    }


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def python_command(module: str, *args: str) -> list[str]:
    """Run `module.main()` with this Python in isolated mode (-I: no PYTHONPATH, no user
    site, no cwd on sys.path, so a shadow pandas.py stays unimported), importing the very
    grader package this process runs."""
    python = str(Path(sys.prefix) / "bin" / "python")
    package = Path(grader.__file__).resolve().parent
    boot = f"import sys; sys.path.insert(0, {str(package.parent)!r}); " + (
        f"from {module} import main; sys.exit(main())"
    )
    return [python, "-I", "-c", boot, *args]


def bwrap_prefix(
    writable: Path,
    readonly: list[Path],
    *,
    caps: list[str],
    extra: tuple[str, ...] = (),
    uid: int = NOBODY,
) -> list[str]:
    """bubblewrap arguments: a fresh view holding /usr, Python, the grader package without its
    suites, `readonly` folders, and one `writable` folder (the cwd); no network.

    `uid` is the user inside the sandbox. Any uid but 0 makes bubblewrap nest a second user
    namespace, which locks the sandbox's mounts for its processes (a warm factory needs uid
    0, without capabilities but CAP_SYS_ADMIN, to give each job its own /proc)."""
    package = Path(grader.__file__).resolve().parent
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", *caps]
    argv += ["--unshare-user", "--uid", str(uid), "--gid", str(uid)]
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    for etc in ("/etc/localtime", "/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache"):
        if Path(etc).exists():
            argv += ["--ro-bind", etc, etc]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in _python_roots():
        argv += ["--ro-bind", str(root), str(root)]
    # The grader package is importable, but its suites (hidden tests) are not there.
    argv += ["--ro-bind", str(package), str(package)]
    if (package / "suites").is_dir():
        argv += ["--tmpfs", str(package / "suites")]
    for path in readonly:
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(writable), str(writable), "--chdir", str(writable)]
    # The sandbox's own root (mount points only) becomes read-only too.
    return argv + [*extra, "--remount-ro", "/"]


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping the first `limit` bytes, so the writer never blocks."""

    def __init__(self, stream: Any, limit: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.limit, self.kept = stream, limit, bytearray()
        self.start()

    def run(self) -> None:
        try:
            while chunk := self.stream.read1(65536):
                room = self.limit - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        return self.kept.decode(errors="replace")


class Worker:
    """One sandboxed worker process; `request` sends a message and waits for the answer."""

    def __init__(
        self,
        workdir: Path,
        *,
        readonly: list[Path] | tuple[Path, ...] = (),
        limits: Limits | None = None,
        preload: tuple[str, ...] = ("pandas", "pyarrow"),
        use_bwrap: bool | None = None,
        trusted: bool = False,
    ) -> None:
        self.workdir = workdir.resolve()
        self.trusted = trusted
        """Runs our own code (the reference solution): without bubblewrap it keeps the
        grader's uid, so the student's user cannot read what it reads."""
        self.readonly = [Path(p).resolve() for p in readonly]
        self.limits = limits or Limits()
        self.preload = preload
        self.use_bwrap = bwrap_works() if use_bwrap is None else use_bwrap
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroup: Path | None = None
        self.isolation = "full" if self.use_bwrap else "reduced"
        self._to_worker = self._from_worker = -1
        self._err: _Drain | None = None
        self._watch: MemoryWatch | None = None
        self._oom_before = 0

    # -- life cycle ---------------------------------------------------------------------------

    def _argv(self, in_fd: int, out_fd: int) -> list[str]:
        cmd = python_command("grader.sandbox.worker", str(in_fd), str(out_fd), *self.preload)
        if not self.use_bwrap:
            return cmd
        return bwrap_prefix(self.workdir, self.readonly, caps=["--cap-drop", "ALL"]) + cmd

    def _drop_privileges(self) -> bool:
        """In reduced mode, whether we can and should run the worker as `sandbox_user()`."""
        return not self.trusted and can_drop_privileges()

    def start(self) -> None:
        """Start the worker and wait until it has imported its libraries."""
        self.cgroup = make_cgroup(self.limits.max_processes)
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        limits, cgroup = self.limits, self.cgroup
        as_nobody = not self.use_bwrap and self._drop_privileges()
        uid, gid = sandbox_user() if as_nobody else (NOBODY, NOBODY)
        if as_nobody:  # its private folder, and nothing else, becomes the user's
            for folder, _dirs, files in os.walk(self.workdir):
                os.chown(folder, uid, gid)
                for name in files:
                    os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)

        def preexec() -> None:  # runs in the child between fork and exec
            import resource

            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            for name, value in rlimits(limits).items():
                resource.setrlimit(getattr(resource, name), (value, value))
            # The kernel's first victim if the container runs out of memory, not the grader.
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")
            if as_nobody:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

        env = worker_env(self.workdir, no_network=not self.use_bwrap)
        self._oom_before = oom_kills()
        self.proc = subprocess.Popen(
            self._argv(to_r, from_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(to_r, from_w),
            cwd=self.workdir,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
        os.close(to_r)
        os.close(from_w)
        if limits.rss_bytes:
            self._watch = MemoryWatch(self.proc.pid, limits.rss_bytes, self._kill_cgroup)
            self._watch.start()
        self._to_worker, self._from_worker = to_w, from_r
        self._out = _Drain(self.proc.stdout, self.limits.output_bytes)
        self._err = _Drain(self.proc.stderr, self.limits.output_bytes)
        try:
            self._read(time.monotonic() + self.limits.start_timeout_s)
        except WorkerError as exc:
            self.close()
            raise WorkerError(f"the sandboxed worker did not start: {exc}") from None

    def _read(self, deadline: float) -> tuple[dict[str, Any], list[bytes]]:
        try:
            return protocol.read_message(self._from_worker, deadline)
        except TimeoutError:
            self.kill()
            raise WorkerTimeout("no answer in time") from None
        except protocol.ProtocolError as exc:
            code = self._exit_code()
            self.kill()
            self._raise_if_out_of_memory(code)
            raise WorkerError(self._death_reason(code, str(exc))) from None

    def _exit_code(self) -> int | None:
        """The ended worker's exit code (negative: killed by that signal), if known."""
        try:
            return self.proc.wait(timeout=5) if self.proc else None
        except subprocess.TimeoutExpired:
            return None

    def _raise_if_out_of_memory(self, code: int | None) -> None:
        """Raise `WorkerOutOfMemory` if the worker died for its memory: our watchdog
        killed it, or it was SIGKILLed while the kernel's OOM killer was at work."""
        if not self.limits.rss_bytes:
            return
        watched = self._watch is not None and self._watch.exceeded is not None
        oom = code == -signal.SIGKILL and oom_kills() > self._oom_before
        if watched or oom:
            mib = self.limits.rss_bytes >> 20
            raise WorkerOutOfMemory(f"used more than {mib} MiB of memory and was stopped")

    def _death_reason(self, code: int | None, fallback: str) -> str:
        if code is None:
            return fallback
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {
                "SIGKILL": " (killed: too much memory, or the CPU limit)",
                "SIGXCPU": " (CPU time limit)",
                "SIGXFSZ": " (wrote a file larger than the limit)",
                "SIGSEGV": " (crashed)",
            }.get(name, "")
            return f"the worker was ended by {name}{hint}"
        err = self._err.text().strip().splitlines() if self._err else []
        last = f": {err[-1][:300]}" if err else ""
        return f"the worker exited with code {code}{last}"

    def request(
        self, header: dict[str, Any], blobs: list[bytes] | None = None, timeout: float | None = None
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request and wait at most `timeout` seconds (default: the call timeout)."""
        if self._to_worker < 0:
            self.start()
        deadline = time.monotonic() + (self.limits.call_timeout_s if timeout is None else timeout)
        try:
            protocol.write_message(self._to_worker, header, blobs or [], deadline)
        except TimeoutError:  # the worker stopped reading (busy in another thread)
            self.kill()
            raise WorkerTimeout("no answer in time") from None
        except OSError:
            code = self._exit_code()
            self.kill()
            self._raise_if_out_of_memory(code)
            raise WorkerError(self._death_reason(code, "the worker is gone")) from None
        return self._read(deadline)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything it started."""
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._watch is not None:  # also what left the session (no cgroup may hold it)
            self._watch.stop()
            kill_seen(self._watch.seen)
        self._kill_cgroup()
        for fd in (self._to_worker, self._from_worker):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_worker = self._from_worker = -1

    def _kill_cgroup(self) -> None:
        if self.cgroup is not None:
            kill_cgroup(self.cgroup)
            self.cgroup = None

    def close(self) -> None:
        """Ask the worker to exit, then make sure nothing it started is left."""
        if self.alive and self._to_worker >= 0:
            try:
                protocol.write_message(self._to_worker, {"op": "exit"}, [], time.monotonic() + 5)
                assert self.proc is not None
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):  # TimeoutError is an OSError
                pass
        self.kill()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
