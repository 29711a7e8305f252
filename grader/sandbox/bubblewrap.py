"""Running untrusted code: a worker process under bubblewrap, with limits, that can be killed whole.

`Worker` starts `python -I -m grader.sandbox.worker` in a fresh filesystem view that holds only the
Python installation (read-only), the `grader` package without its suites (read-only), the data
folders a call needs (read-only) and one private writable folder. It has no network, its own
PID namespace (killing it kills everything it started), an unprivileged uid, resource limits
(address space, CPU, file size, open files), and a control group of its own where we may make
one (`grader.sandbox.budgets`): memory of all its processes together, tasks, one CPU share.
When the grader is root, bubblewrap itself runs as the unprivileged host uid
`budgets.SANDBOX_UID` (the folders it binds are opened by us and handed over as descriptors),
so nothing made inside belongs to the host's root.

Without `bwrap` the worker still gets the limits, its own session, the seccomp filter with new
sockets and System V / POSIX IPC refused (it shares the host's namespaces) and, when we are
root, the dedicated unprivileged user `fslab-student` (refused without it, or when that user
cannot reach this Python), which owns only the worker's private folder; `isolation` then
says "reduced", as it does when no control group can be made. See `grader.sandbox.reduced`
for what the trusted side locks away from that user before any student code runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grader
from grader.sandbox import budgets, protocol
from grader.sandbox import zygote as ns  # its mount helpers (standard library only)
from grader.sandbox.memwatch import MemoryWatch, kill_seen, oom_kills

NOBODY = 65534
SANDBOX_USER = "fslab-student"
STARTUP_MEMORY_BYTES = 1 << 30
"""Room a worker has, beyond the submission's budget, to import its libraries."""


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
    """Tasks (processes and threads) in the worker's control group, where one can be made."""
    budget_memory_bytes: int = 1024 << 20
    """Memory of a worker and everything it starts, together (its control group): anonymous
    memory, memfds, tmpfs and /dev/shm pages, no swap. `grade --memory MiB`."""
    disk_bytes: int = 256 << 20
    """Size of a submission's private folder (a tmpfs of its own where we are root),
    `grade --disk MiB`."""
    disk_inodes: int = 20_000
    """Files and folders a submission's private folder may hold."""
    grader_memory_bytes: int = 2048 << 20
    """Memory of the trusted grading process of one submission (decoding its answers)."""
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


def root_refusal(use_bwrap: bool) -> str | None:
    """Why student code may not run here, or None. As root without bubblewrap a worker runs
    as the dedicated `fslab-student`: where that user does not exist (`nobody` runs system
    daemons, which a submission could signal, and whose processes we could not end), or
    cannot reach this Python (a venv under a 0700 `/root`, so the worker would run as root
    with every file of the grader open to it): refuse."""
    if use_bwrap or os.geteuid() != 0:
        return None
    if dedicated_user() is None:
        return (
            "refusing to run student code as root without bubblewrap: the sandbox user "
            f"{SANDBOX_USER} does not exist; run `make install` as root (it creates that "
            "user), or make bubblewrap work"
        )
    if can_drop_privileges():
        return None
    blocked = next(p for p in _python_roots() if not _world_readable(p))
    return (
        "refusing to run student code as root: bubblewrap cannot run here and the sandbox "
        f"user cannot reach this Python ({blocked}); install the grader where every user "
        "can read it (a venv outside /root), or make bubblewrap work"
    )


def dedicated_user() -> int | None:
    """The uid of `fslab-student` where it exists: a user that runs nothing but our workers,
    so all its processes may be counted and ended (`nobody` runs system daemons too)."""
    uid, _gid = sandbox_user()
    return None if uid == NOBODY else uid


def shares_one_user(use_bwrap: bool) -> bool:
    """Whether every worker here runs as the one `sandbox_user()` (root without bubblewrap):
    then one submission at a time, so that ending that user's processes ends only its own and
    no submission can read or signal another's."""
    return not use_bwrap and os.geteuid() == 0


def end_user_processes(uid: int, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL every process of host user `uid` (we are root) and wait until none is left:
    what a submission started and hid from its worker's tree (a new session, a sibling made
    with CLONE_PARENT). Only for reduced isolation, where that user runs one submission at a
    time. Returns the pids still alive after `timeout_s` (none, unless processes of `uid`
    fork faster than they are killed).

    We kill as root, pid by pid, through pidfds: a helper that became `uid` to `kill(-1)`
    could itself be stopped by a SIGSTOP loop of that user and hang us; a pidfd opened and
    then checked to be `uid`'s cannot be signalled as someone else's reused pid."""
    if os.geteuid() != 0 or uid == 0:
        return []
    deadline = time.monotonic() + timeout_s
    while True:
        alive = _live_processes_of(uid)
        if not alive or time.monotonic() > deadline:
            return alive
        for pid in alive:
            _kill_if_owned(pid, uid)
        time.sleep(0.02)


def _kill_if_owned(pid: int, uid: int) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone already
        return
    try:
        if _real_uid(_status(pid)) == uid:  # still the one we listed: the pidfd holds it
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def _status(pid: int | str) -> dict[str, str]:
    """`/proc/<pid>/status` as {field: value}; empty when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def _real_uid(status: dict[str, str]) -> int | None:
    uids = status.get("Uid", "").split()
    return int(uids[0]) if uids and uids[0].isdigit() else None


def _live_processes_of(uid: int) -> list[int]:
    """Pids of the processes of host user `uid` that have not exited (zombies aside)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _status(entry)
        if _real_uid(status) == uid and not status.get("State", "").strip().startswith(("Z", "X")):
            pids.append(int(entry))
    return pids


SHARED_TMP = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock"))
"""World-writable folders every user can leave files in, outside the private folder."""


def remove_user_files(uid: int, roots: tuple[Path, ...] = SHARED_TMP) -> int:
    """Delete what host user `uid` left under `roots`; return how many top entries went.

    Reduced isolation has no private /tmp: a submission could leave files there for the next
    one (its answers, a planted module) or fill it. Run after `end_user_processes`, when
    nothing of `uid` runs any more to race us. Only entries `uid` owns go (a folder of its
    own goes whole, by `shutil.rmtree`'s fd-based walk, which never follows a symlink); other
    users' world-writable folders are searched a few levels down, the rest is not entered.
    """
    if uid == 0:
        return 0
    removed = 0
    for root in roots:
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            removed += _sweep(fd, uid, depth=3)
        finally:
            os.close(fd)
    return removed


def _sweep(fd: int, uid: int, depth: int) -> int:
    removed = 0
    try:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
    except OSError:
        return 0
    for name in names:
        try:
            st = os.lstat(name, dir_fd=fd)
            is_dir = stat.S_ISDIR(st.st_mode)
            if st.st_uid == uid:
                if is_dir:
                    shutil.rmtree(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)
                removed += 1
            elif is_dir and st.st_mode & stat.S_IWOTH and depth > 1:
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    removed += _sweep(sub, uid, depth - 1)
                finally:
                    os.close(sub)
        except (OSError, RecursionError):  # gone already; or a tree too deep to walk here
            continue
    return removed


def _python_roots() -> list[Path]:
    """Folders the worker's Python needs: the interpreter's prefix and the venv's."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    return sorted(roots)


def rlimits(limits: Limits) -> dict[str, int]:
    """The `resource` limits of a worker, by name."""
    return {
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.file_size_bytes,
        "RLIMIT_NOFILE": 1024,
        "RLIMIT_CORE": 0,
    }


def worker_env(workdir: Path, *, host_namespaces: bool = False) -> dict[str, str]:
    """The whole environment of a worker: nothing of ours leaks in. `host_namespaces` asks
    the worker's seccomp filter to refuse new sockets and IPC objects too (it shares the
    host's network and IPC namespaces, so nothing else does)."""
    extra = {"FSLAB_SECCOMP_HOST_NS": "1"} if host_namespaces else {}
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


class Reach:
    """Folders an unprivileged bubblewrap could not reach (under a 0700 /root, say), made
    reachable for it: `source` binds them at `<stage>/<n>`, and `mount` (in the launching child,
    as root, before it drops to the sandbox uid) does so in a mount namespace of the child's
    own, so the host sees nothing but one empty folder. bubblewrap 0.8 resolves `--bind-fd`
    descriptors back to paths, so descriptors do not help here."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        # In /tmp, not $TMPDIR: the stage itself must be reachable (a 0700 $TMPDIR is not).
        self.stage = Path(tempfile.mkdtemp(prefix="fslab-reach-", dir="/tmp"))
        self.binds: list[tuple[str, str]] = []

    def source(self, path: str | Path) -> str:
        """The path bubblewrap should bind for `path`."""
        if _reachable(Path(path), self.uid):
            return str(path)
        staged = f"{self.stage}/{len(self.binds)}"
        self.binds.append((str(path), staged))
        return staged

    def mount(self) -> None:
        """In the child before exec (root): a private mount namespace holding the binds."""
        if not self.binds:
            return
        ns._check(ns.libc.unshare(ns.CLONE_NEWNS), "unshare")
        ns._mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
        ns._mount("tmpfs", str(self.stage), "tmpfs", ns.MS_NOSUID, "mode=755,size=64k")
        for source, staged in self.binds:
            if os.path.isdir(source):
                os.mkdir(staged)
            else:
                open(staged, "w").close()
            ns._mount(source, staged, None, ns.MS_BIND | ns.MS_REC)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stage.rmdir()


def readable_by_others(paths: list[Path] | tuple[Path, ...]) -> bool:
    """Whether every file under `paths` is world-readable (and every folder world-listable):
    only then can a sandbox running as the unprivileged `budgets.SANDBOX_UID` read them. A kit
    whose data files are 0600 keeps the old mapping to our own uid (see `sandbox_uid_for`)."""
    for root in paths:
        for folder, _dirs, files in os.walk(root):
            if os.stat(folder).st_mode & 0o005 != 0o005:
                return False
            for name in files:
                try:
                    if not os.stat(os.path.join(folder, name)).st_mode & 0o004:
                        return False
                except OSError:
                    continue
    return True


def sandbox_uid_for(readonly: list[Path] | tuple[Path, ...]) -> int | None:
    """The host uid a bubblewrap sandbox reading `readonly` runs as (None: our own)."""
    uid = budgets.sandbox_uid()
    return uid if uid is not None and readable_by_others(readonly) else None


def _reachable(path: Path, uid: int) -> bool:
    """Whether `uid` (no groups) may look up `path`: every parent folder searchable by it."""
    for folder in path.parents:
        try:
            st = folder.stat()
        except OSError:
            return False
        if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)):
            return False
    return True


def bwrap_prefix(
    writable: Path,
    readonly: list[Path],
    *,
    caps: list[str],
    extra: tuple[str, ...] = (),
    uid: int = NOBODY,
    reach: Reach | None = None,
) -> list[str]:
    """bubblewrap arguments: a fresh view holding /usr, Python, the grader package without its
    suites, `readonly` folders, and one `writable` folder (the cwd); no network.

    `uid` is the user inside the sandbox. Any uid but 0 makes bubblewrap nest a second user
    namespace, which locks the sandbox's mounts for its processes (a warm factory needs uid
    0, without capabilities but CAP_SYS_ADMIN, to give each job its own /proc).

    With `reach`, bubblewrap runs as the unprivileged `reach.uid`: folders it could not look
    up are bound from where `reach` puts them (see `Reach`)."""
    package = Path(grader.__file__).resolve().parent

    def bind(kind: str, source: str | Path, target: str | Path | None = None) -> list[str]:
        target = str(source if target is None else target)
        return [f"--{kind}", reach.source(source) if reach else str(source), target]

    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", *caps]
    argv += ["--unshare-user", "--uid", str(uid), "--gid", str(uid)]
    argv += bind("ro-bind", "/usr")
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += bind("ro-bind", target)
    for etc in ("/etc/localtime", "/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache"):
        if Path(etc).exists():
            argv += bind("ro-bind", etc)
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in _python_roots():
        argv += bind("ro-bind", root)
    # The grader package is importable, but its suites (hidden tests) are not there.
    argv += bind("ro-bind", package)
    if (package / "suites").is_dir():
        argv += ["--tmpfs", str(package / "suites")]
    for path in readonly:
        argv += bind("ro-bind", path)
    argv += [*bind("bind", writable), "--chdir", str(writable)]
    # The sandbox's own root (mount points only) becomes read-only too.
    return argv + [*extra, "--remount-ro", "/"]


def close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def enter(
    group: budgets.Cgroup | None,
    limits: Limits | None,
    uid: int | None,
    reach: Reach | None,
    *,
    gid: int | None = None,
) -> None:
    """In a child between fork and exec: join `group`, take the limits, make the folders
    bubblewrap binds reachable, become `uid` (group `gid`, default `uid`)."""
    import resource

    if group is not None:
        group.add(os.getpid())
    if reach is not None:
        reach.mount()
    for name, value in (rlimits(limits) if limits else {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid if gid is None else gid)
        os.setuid(uid)


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
        self.cgroup: budgets.Cgroup | None = None
        self.isolation = "full" if self.use_bwrap and budgets.available() else "reduced"
        self._to_worker = self._from_worker = -1
        self._err: _Drain | None = None
        self._ooms = self._peak = 0
        self._reach: Reach | None = None
        self._spawned_at = 0.0
        self._watch: MemoryWatch | None = None
        self._oom_before = 0

    # -- life cycle ---------------------------------------------------------------------------

    def _argv(self, in_fd: int, out_fd: int, reach: Reach | None) -> list[str]:
        cmd = python_command("grader.sandbox.worker", str(in_fd), str(out_fd), *self.preload)
        if not self.use_bwrap:
            return cmd
        prefix = bwrap_prefix(self.workdir, self.readonly, caps=["--cap-drop", "ALL"], reach=reach)
        return prefix + cmd

    def _drop_privileges(self) -> bool:
        """In reduced mode, whether we can and should run the worker as `sandbox_user()`."""
        return not self.trusted and can_drop_privileges()

    def new_group(self) -> budgets.Cgroup | None:
        """This worker's control group, inside its submission's when there is one. Until the
        worker is ready (our imports, no student code yet) it may use `STARTUP_MEMORY_BYTES`
        more than the budget; `_budget_from_now` then sets the budget proper."""
        return budgets.Cgroup.create(
            parent=budgets.submission_group(),
            memory_bytes=self.limits.budget_memory_bytes + STARTUP_MEMORY_BYTES,
            max_processes=self.limits.max_processes,
        )

    def _budget_from_now(self) -> None:
        """The worker is ready: from now on the submission may use its memory budget on top of
        what the worker holds (the libraries it imported are ours, not the submission's; a
        warm job holds next to nothing of its own, its imports are the factory's)."""
        if self.cgroup is not None:
            try:
                self.cgroup.set_memory(self.cgroup.usage_bytes() + self.limits.budget_memory_bytes)
            except OSError as exc:
                self.close()
                raise WorkerError(f"the sandboxed worker could not be budgeted: {exc}") from None

    def start(self) -> None:
        """Start the worker and wait until it has imported its libraries."""
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the worker process without waiting for it (`wait_ready` does).

        Call it on a thread that outlives the worker (the main one): bubblewrap's
        `--die-with-parent` is tied to the thread that forked it, so a worker spawned from a
        short-lived thread is killed when that thread ends."""
        refusal = None if self.trusted else root_refusal(self.use_bwrap)
        if refusal:
            raise WorkerError(refusal)
        self.cgroup = self.new_group()
        if self.cgroup is None and budgets.available():
            raise WorkerError("the sandboxed worker could not be budgeted (no control group)")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        limits, cgroup = self.limits, self.cgroup
        uid = sandbox_uid_for(self.readonly) if self.use_bwrap else None
        gid = uid
        as_user = not self.use_bwrap and self._drop_privileges()
        if as_user:  # its private folder, and nothing else, becomes the user's
            uid, gid = sandbox_user()
            # Only at the first hand-over, when nothing but what we staged is in it. Once the
            # user owns the folder, student code may have run there (a later worker, a job, a
            # restart): walking it as root then could be raced into a folder of ours.
            if os.lstat(self.workdir).st_uid != uid:
                for folder, _dirs, files in os.walk(self.workdir):
                    os.chown(folder, uid, gid, follow_symlinks=False)
                    for name in files:
                        os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
        elif uid is not None:  # its own folder (what is in it was staged for it: see runner)
            os.chown(self.workdir, uid, uid)

        def preexec() -> None:  # runs in the child between fork and exec
            import resource

            # The kernel's first victim if the container runs out of memory, not the grader.
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")
            if as_user:  # the one process cap without bwrap (and maybe without cgroups)
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes,) * 2)
            enter(cgroup, limits, uid, reach, gid=gid)

        env = worker_env(self.workdir, host_namespaces=not self.use_bwrap)
        reach = Reach(uid) if uid is not None and self.use_bwrap else None
        self._oom_before = oom_kills()
        try:
            self.proc = subprocess.Popen(
                self._argv(to_r, from_w, reach),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(to_r, from_w),
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
            )
        except BaseException:
            if reach is not None:
                reach.close()
            raise
        os.close(to_r)
        os.close(from_w)
        if limits.rss_bytes:
            strays = dedicated_user() if as_user else None
            self._watch = MemoryWatch(self.proc.pid, limits.rss_bytes, self._kill_group, uid=strays)
            self._watch.start()
        self._to_worker, self._from_worker = to_w, from_r
        self._out = _Drain(self.proc.stdout, self.limits.output_bytes)
        self._err = _Drain(self.proc.stderr, self.limits.output_bytes)
        self._reach = reach
        self._spawned_at = time.monotonic()

    def wait_ready(self) -> None:
        """Wait until the spawned worker has imported its libraries, then set its budget."""
        reach, self._reach = self._reach, None
        try:
            self._read(self._spawned_at + self.limits.start_timeout_s)
        except WorkerError as exc:
            self.close()
            raise WorkerError(f"the sandboxed worker did not start: {exc}") from None
        finally:  # bubblewrap has made its binds (or failed): the stage folder can go
            if reach is not None:
                reach.close()
        self._budget_from_now()

    def oom_kills(self) -> int:
        """Processes of this worker the kernel killed for going over the memory budget (the
        count stays readable after the worker and its group are gone)."""
        if self.cgroup is not None:
            self._ooms = max(self._ooms, self.cgroup.oom_kills())
        return self._ooms

    def peak_bytes(self) -> int:
        """The most memory this worker's group held at once (0 without a group)."""
        if self.cgroup is not None:
            self._peak = max(self._peak, self.cgroup.peak_bytes())
        return self._peak

    def over_budget(self) -> str:
        """The learner's message for a worker that went over its memory budget."""
        return f"used more than {self.limits.budget_memory_bytes >> 20} MiB of memory"

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
        if self.oom_kills():
            return f"the worker {self.over_budget()} and was stopped"
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

    def _kill_group(self) -> None:
        """Kill what the worker's control group holds (the watchdog's second stroke)."""
        group = self.cgroup
        if group is not None:
            group.kill()

    def _kill_cgroup(self) -> None:
        if self.cgroup is not None:
            self.oom_kills()
            self.peak_bytes()
            self.cgroup.remove()
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
        if self._reach is not None:  # spawned, never waited for
            self._reach.close()
            self._reach = None

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
