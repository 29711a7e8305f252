"""Warm pools: a pre-imported worker factory per batch slot (the trusted side).

A `Zygote` is one bubblewrap sandbox, started once per batch slot, that has imported pandas,
pyarrow and Feast (see `grader.sandbox.zygote`). Every worker a submission needs is then a fork
of it (`ZygoteWorker`), isolated in its own namespaces with only its own folder visible, instead
of a fresh interpreter that pays the imports again. The pool folder is the only writable folder
the zygote sees; each job gets a sub-folder of it. Where we are root the pool is a tmpfs of
`Limits.disk_bytes` (one submission at a time per slot: the submission's disk budget), and
the factory runs as the unprivileged host uid `budgets.SANDBOX_UID`.

Each job gets a control group of its own (`grader.sandbox.budgets`): the factory hands us the
job's pidfd with its "spawned" answer, we read the job's host pid from it and move the job
into its group before sending it any request (no student code has run yet).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.sandbox import budgets
from grader.sandbox.bubblewrap import (
    Limits,
    Reach,
    Worker,
    WorkerError,
    _Drain,
    bwrap_prefix,
    close_fds,
    enter,
    python_command,
    rlimits,
    sandbox_uid_for,
    worker_env,
)
from grader.sandbox.zygote import HOLD


class Zygote:
    """A warm worker factory in its own bubblewrap sandbox (one per batch slot)."""

    def __init__(
        self,
        *,
        readonly: tuple[Path, ...] = (),
        preload: tuple[str, ...] = ("pandas", "pyarrow"),
        limits: Limits | None = None,
    ) -> None:
        self.pool = Path(tempfile.mkdtemp(prefix="fslab-pool-")).resolve()
        self.readonly = [Path(p).resolve() for p in readonly]
        self.preload = preload
        self.limits = limits or Limits()
        self.uid = sandbox_uid_for(self.readonly)
        self.sized_pool = budgets.private_tmpfs(
            self.pool, self.limits.disk_bytes, self.limits.disk_inodes, uid=self.uid
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.cgroup: budgets.Cgroup | None = None
        self.ended: dict[int, int] = {}
        self.reach: Reach | None = None
        self.pidfds: dict[int, int] = {}
        """Job pid (in the factory's namespace) -> its pidfd, until it is put in its group."""
        self.owner = os.getpid()

    def start(self) -> Zygote:
        """Launch the factory; `wait_ready` waits for its imports."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The factory's own group: room for a job's fork bomb until the job is in its group.
        self.cgroup = budgets.Cgroup.create(max_processes=self.limits.max_processes * 2)
        cgroup, uid = self.cgroup, self.uid
        if uid is not None:
            os.chown(self.pool, uid, uid)

        # CAP_SYS_ADMIN builds each job's mounts; CAP_SETPCAP lets a job empty its bounding set.
        caps = ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        reach = Reach(uid) if uid is not None else None
        argv = bwrap_prefix(
            self.pool, self.readonly, caps=caps, extra=("--dir", HOLD), uid=0, reach=reach
        )
        argv += python_command(
            "grader.sandbox.zygote", str(theirs.fileno()), str(self.pool), *self.preload
        )
        self.reach = reach
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
            env=worker_env(self.pool),
            start_new_session=True,
            preexec_fn=lambda: enter(cgroup, None, uid, reach),
        )
        theirs.close()
        self.sock = ours
        self._err = _Drain(self.proc.stderr, self.limits.output_bytes)
        self._out = _Drain(self.proc.stdout, self.limits.output_bytes)
        self.started = time.monotonic()
        return self

    def wait_ready(self) -> Zygote:
        """Wait until the factory has imported its libraries (start several, then wait)."""
        message = self._receive(self.started + self.limits.start_timeout_s)
        if self.reach is not None:  # bubblewrap has made its binds (or failed)
            self.reach.close()
        if message is None or message.get("op") != "ready":
            self.close()
            raise WorkerError(f"the warm worker factory did not start: {self._err.text()[-300:]}")
        return self

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The next control message, or None at the deadline or when the zygote is gone."""
        assert self.sock is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            message = self._take()
            if message is None:
                return None
            return message

    def _take(self) -> dict[str, Any] | None:
        """Read one control message (a "spawned" one carries the job's pidfd)."""
        assert self.sock is not None
        data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, 1)
        if not data:
            close_fds(list(fds))
            return None
        message = json.loads(data)
        if message.get("op") == "ended":
            self.ended[int(message["pid"])] = int(message["code"])
        if message.get("op") == "spawned" and fds and message.get("pid"):
            old = self.pidfds.pop(int(message["pid"]), None)
            close_fds([old] if old is not None else [])
            self.pidfds[int(message["pid"])] = fds.pop()
        close_fds(list(fds))
        return message

    def _drain(self) -> None:
        """Read every pending control message (job endings) without waiting."""
        while self.sock is not None:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready or self._take() is None:
                return

    def clear(self) -> None:
        """Empty the pool (after a submission, whatever became of its grading process): the
        next submission of this slot gets the whole disk budget."""
        import shutil

        for path in self.pool.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def new_folder(self, name: str) -> Path:
        """A fresh folder in the pool (the only place a job can be given)."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.pool))

    def spawn(self, job_dir: Path, limits: Limits) -> tuple[int, int, int, int]:
        """Fork a job working in `job_dir`; returns (pid, fd to it, fd from it, its output)."""
        assert self.sock is not None
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        out_r, out_w = os.pipe()
        ours, theirs = (to_w, from_r, out_r), (to_r, from_w, out_w)
        # A token per request: a late answer to an earlier, abandoned spawn is not ours.
        token = f"{os.getpid()}-{time.monotonic_ns()}"
        request = {"op": "spawn", "dir": str(job_dir), "limits": rlimits(limits), "token": token}
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], list(theirs))
        except OSError as exc:
            for fd in ours + theirs:
                os.close(fd)
            raise WorkerError(f"the warm worker factory is gone ({exc})") from None
        for fd in theirs:
            os.close(fd)
        deadline = time.monotonic() + 30
        while True:
            message = self._receive(deadline)
            if message is not None and message.get("op") == "spawned":
                if message.get("token") != token:  # abandoned earlier: end it, wait for ours
                    if message.get("pid"):
                        self.sock.send(json.dumps({"op": "kill", "pid": message["pid"]}).encode())
                    continue
            if message is None or message.get("op") == "spawned" and not message.get("pid"):
                for fd in ours:
                    os.close(fd)
                raise WorkerError(
                    f"the warm worker factory could not start a job: {self._err.text()[-300:]}"
                )
            if message.get("op") == "spawned":
                pid = int(message["pid"])
                self.ended.pop(pid, None)  # an earlier job that had the same pid
                return pid, to_w, from_r, out_r

    def host_pid(self, pid: int) -> int | None:
        """The host pid of job `pid`, read from the pidfd the factory sent (race-free: a
        pidfd names one process, never a later one with the same number)."""
        fd = self.pidfds.pop(pid, None)
        if fd is None:
            return None
        try:
            for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
                if line.startswith("Pid:"):
                    found = int(line.split()[1])
                    return found if found > 0 else None
            return None
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)

    def is_ended(self, pid: int) -> bool:
        self._drain()
        return pid in self.ended

    def kill(self, pid: int, timeout: float = 10) -> int | None:
        """Kill job `pid` (its whole PID namespace) and return its exit code."""
        if self.sock is None:
            return None
        self._drain()
        if pid not in self.ended:
            try:
                self.sock.send(json.dumps({"op": "kill", "pid": pid}).encode())
            except OSError:
                return None
            deadline = time.monotonic() + timeout
            while pid not in self.ended and self._receive(deadline) is not None:
                pass
        return self.ended.get(pid)

    def wait_ended(self, pid: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while pid not in self.ended and self.sock is not None:
            if self._receive(deadline) is None:
                break
        return self.ended.get(pid)

    def kill_all(self) -> None:
        """Kill every job still running (after a submission, whatever became of it)."""
        if self.sock is not None:
            try:
                self.sock.send(json.dumps({"op": "killall"}).encode())
            except OSError:
                pass

    def close(self) -> None:
        """Stop the factory and every job it still runs; remove the pool."""
        if os.getpid() != self.owner:
            return  # a forked grading child must not tear down its parent's factory
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
            self.proc = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        close_fds(list(self.pidfds.values()))
        if self.reach is not None:
            self.reach.close()
        if self.sized_pool:
            budgets.release_tmpfs(self.pool)
        import shutil

        shutil.rmtree(self.pool, ignore_errors=True)


class ZygoteWorker(Worker):
    """A `Worker` forked from a warm `Zygote` instead of started from scratch."""

    def __init__(self, zygote: Zygote, workdir: Path, *, limits: Limits | None = None) -> None:
        super().__init__(workdir, limits=limits, use_bwrap=True)
        self.zygote = zygote
        self.pid: int | None = None

    def start(self) -> None:
        uid = self.zygote.uid
        if uid is not None:  # the job's own folder (see runner for what is in it)
            os.chown(self.workdir, uid, uid)
        self.pid, self._to_worker, self._from_worker, output = self.zygote.spawn(
            self.workdir, self.limits
        )
        self._err = _Drain(os.fdopen(output, "rb"), self.limits.output_bytes)
        host_pid = self.zygote.host_pid(self.pid)
        if budgets.available():  # a job that cannot be budgeted is never given student code
            self.cgroup = self.new_group() if host_pid is not None else None
            try:
                if self.cgroup is None:
                    raise OSError("no control group")
                self.cgroup.add(host_pid)  # type: ignore[arg-type]
            except OSError as exc:
                self.close()
                raise WorkerError(f"the sandboxed worker could not be budgeted: {exc}") from None
        try:
            self._read(time.monotonic() + self.limits.start_timeout_s)
        except WorkerError as exc:
            self.close()
            raise WorkerError(f"the sandboxed worker did not start: {exc}") from None
        self._budget_from_now()

    def _exit_code(self) -> int | None:
        return self.zygote.wait_ended(self.pid, 5) if self.pid is not None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None and not self.zygote.is_ended(self.pid)

    def kill(self) -> None:
        if self.pid is not None:
            self.zygote.kill(self.pid)
        self._kill_cgroup()
        for fd in (self._to_worker, self._from_worker):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_worker = self._from_worker = -1

    def close(self) -> None:
        if self.alive and self._to_worker >= 0:
            try:
                from grader.sandbox import protocol

                protocol.write_message(self._to_worker, {"op": "exit"}, [], time.monotonic() + 5)
                self.zygote.wait_ended(self.pid, 5)  # type: ignore[arg-type]
            except OSError:
                pass
        self.kill()
