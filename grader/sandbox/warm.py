"""Warm pools: a pre-imported worker factory per batch slot (the trusted side).

A `Zygote` is one bubblewrap sandbox, started once per batch slot, that has imported pandas,
pyarrow and Feast (see `grader.sandbox.zygote`). Every worker a submission needs is then a fork
of it (`ZygoteWorker`), isolated in its own namespaces with only its own folder visible, instead
of a fresh interpreter that pays the imports again. The pool folder is the only writable folder
the zygote sees; each job gets a sub-folder of it.
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

from grader.sandbox.bubblewrap import (
    Limits,
    Worker,
    WorkerError,
    _Drain,
    bwrap_prefix,
    kill_cgroup,
    make_cgroup,
    python_command,
    rlimits,
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
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.cgroup: Path | None = None
        self.ended: dict[int, int] = {}
        self.owner = os.getpid()

    def start(self) -> Zygote:
        """Launch the factory; `wait_ready` waits for its imports."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Room for a fork bomb to be stopped, shared by the jobs of this slot (one at a time).
        self.cgroup = make_cgroup(self.limits.max_processes * 2)
        cgroup = self.cgroup

        def preexec() -> None:
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))

        # CAP_SYS_ADMIN builds each job's mounts; CAP_SETPCAP lets a job empty its bounding set.
        caps = ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        argv = bwrap_prefix(self.pool, self.readonly, caps=caps, extra=("--dir", HOLD), uid=0)
        argv += python_command(
            "grader.sandbox.zygote", str(theirs.fileno()), str(self.pool), *self.preload
        )
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
            env=worker_env(self.pool),
            start_new_session=True,
            preexec_fn=preexec,
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
            data = self.sock.recv(65536)
            if not data:
                return None
            message = json.loads(data)
            if message.get("op") == "ended":
                self.ended[int(message["pid"])] = int(message["code"])
            return message

    def _drain(self) -> None:
        """Read every pending control message (job endings) without waiting."""
        while self.sock is not None:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                return
            data = self.sock.recv(65536)
            if not data:
                return
            message = json.loads(data)
            if message.get("op") == "ended":
                self.ended[int(message["pid"])] = int(message["code"])

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
            kill_cgroup(self.cgroup)
            self.cgroup = None
        import shutil

        shutil.rmtree(self.pool, ignore_errors=True)


class ZygoteWorker(Worker):
    """A `Worker` forked from a warm `Zygote` instead of started from scratch."""

    def __init__(self, zygote: Zygote, workdir: Path, *, limits: Limits | None = None) -> None:
        super().__init__(workdir, limits=limits, use_bwrap=True)
        self.zygote = zygote
        self.pid: int | None = None

    def start(self) -> None:
        self.pid, self._to_worker, self._from_worker, output = self.zygote.spawn(
            self.workdir, self.limits
        )
        self._err = _Drain(os.fdopen(output, "rb"), self.limits.output_bytes)
        try:
            self._read(time.monotonic() + self.limits.start_timeout_s)
        except WorkerError as exc:
            self.close()
            raise WorkerError(f"the sandboxed worker did not start: {exc}") from None

    def _exit_code(self) -> int | None:
        return self.zygote.wait_ended(self.pid, 5) if self.pid is not None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None and not self.zygote.is_ended(self.pid)

    def kill(self) -> None:
        if self.pid is not None:
            self.zygote.kill(self.pid)
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
