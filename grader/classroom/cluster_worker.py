"""The worker side of `grade batch --scheduler`: what runs on a Dask worker.

A worker grades with its own installed kit (`FSLAB_KIT`, else the folder it was started in)
and never sees the client's paths: each task carries one submission's exercise files as data
(`ShippedSubmission`) and returns its scorecard as JSON bytes.

Warm grading: the `GraderPlugin` starts one *grading server* per worker process, a
single-threaded child process (`python -m grader.classroom.cluster_worker`) that launches one
warm sandbox factory (`grader.sandbox.warm.Zygote`) per grading slot, imports Feast once, and
then grades each submission in a forked child exactly as the local batch does. It lives as long
as the worker. The server exists because forking grading children straight from a Dask worker
(an event loop and a thread pool) could copy a lock some other thread holds; a process that
only ever runs our loop forks safely. A worker has as many slots as threads (`--nthreads`), so
Dask never gives it more submissions at once than it can grade.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import os
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import grader
from grader.course import datagen
from grader.course.kit import Kit, KitError, load_kit
from grader.grading.oracle import default_cache_dir
from grader.grading.staging import ShippedSubmission, SubmissionError
from grader.grading.suites import suite_digest
from grader.sandbox import typeguard_cache
from grader.sandbox.bubblewrap import bwrap_works, shares_one_user

PLUGIN_NAME = "fslab-grader"
KIT_ENV = "FSLAB_KIT"
"""Environment variable naming the worker's kit folder (default: the worker's cwd)."""


class ServerLost(Exception):
    """The worker's grading server ended while a submission was being graded."""


def worker_kit() -> Kit:
    """The kit this worker grades with: `$FSLAB_KIT`, else the kit around the cwd."""
    root = os.environ.get(KIT_ENV)
    return load_kit(Path(root) if root else None)


def kit_identity(kit: Kit) -> dict[str, Any]:
    """What must be equal on the client and every worker: grader version, suites, data; and
    whether the kit's reference repo is set up (the suites read Feast's answers from it)."""
    return {
        "grader_version": grader.__version__,
        "suite_digest": suite_digest(kit),
        "data_manifest": datagen.read_manifest(kit.data_dir),
        "set_up": (kit.feature_repo / "data" / "registry.db").is_file(),
    }


def identity_difference(ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """One line saying how `theirs` differs from `ours`, or None when they are equal."""
    if theirs.get("error"):
        return str(theirs["error"])
    if theirs.get("grader_version") != ours["grader_version"]:
        return f"grader {theirs.get('grader_version')}, the client has {ours['grader_version']}"
    if theirs.get("suite_digest") != ours["suite_digest"]:
        return (
            f"suite digest {str(theirs.get('suite_digest'))[:19]}..., the client has "
            f"{ours['suite_digest'][:19]}... (other suites or course.toml)"
        )
    if theirs.get("data_manifest") != ours["data_manifest"]:

        def brief(m: Any) -> str:
            return "no data" if not m else f"seed {m.get('seed')}, version {m.get('version')}"

        return (
            f"its data ({brief(theirs.get('data_manifest'))}) differ from the client's "
            f"({brief(ours['data_manifest'])}): run `grade setup` there with the same seed"
        )
    if not theirs.get("set_up"):
        return "its kit is not set up (no Feast registry): run `grade setup` there"
    return None


def worker_identity() -> dict[str, Any]:
    """Run on each worker (`Client.run`): its kit identity, or an `error` line."""
    try:
        kit = worker_kit()
    except KitError as exc:
        return {"error": f"no kit ({exc}); set {KIT_ENV} to the worker's kit folder"}
    return kit_identity(kit)


class GradingServer:
    """The worker process's handle on its grading server (thread-safe)."""

    def __init__(self, kit: Kit, slots: int) -> None:
        self.kit, self.slots = kit, slots
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.classroom.cluster_worker", str(kit.root),
             str(slots), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
        )  # fmt: skip
        theirs.close()
        self._lock = threading.Lock()
        self._waiting: dict[int, concurrent.futures.Future] = {}
        self._next = 0
        self.ready = concurrent.futures.Future()
        self._reader = threading.Thread(target=self._read, daemon=True, name="fslab-server")
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if message.get("op") == "ready":
                        self.ready.set_result(message)
                        continue
                    with self._lock:
                        future = self._waiting.pop(int(message["id"]), None)
                    if future is not None:
                        future.set_result(message["card"])
        except (OSError, ValueError, KeyError):
            pass
        lost = ServerLost(f"the grading server ended (exit {self.proc.wait()})")
        if not self.ready.done():
            self.ready.set_exception(lost)
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(lost)

    def grade(self, request: dict[str, Any]) -> dict[str, Any]:
        """Grade one submission (`name`, `submission`, `options`); returns its scorecard dict."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._next += 1
            ident = self._next
            self._waiting[ident] = future
            line = json.dumps({**request, "id": ident}).encode() + b"\n"
            try:
                self.sock.sendall(line)
            except OSError as exc:
                self._waiting.pop(ident, None)
                raise ServerLost(f"the grading server is gone ({exc})") from None
        return future.result()

    def close(self) -> None:
        """End the server: the end of its socket makes it stop its children and exit."""
        # shutdown, not just close: our reader thread is blocked in recv on this socket, and
        # a close alone would neither wake it nor let the server see the end.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _plugin_base() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    return WorkerPlugin


class GraderPlugin(_plugin_base()):  # type: ignore[misc]
    """Starts the worker's grading server when the plugin is registered and keeps it for the
    worker's lifetime (a new one if it ever dies); stops it when the worker closes."""

    name = PLUGIN_NAME

    def setup(self, worker: Any) -> None:
        self.kit = worker_kit()
        self.identity = kit_identity(self.kit)
        self.slots = max(1, int(getattr(worker.state, "nthreads", 0) or worker.nthreads or 1))
        if shares_one_user(bwrap_works()):  # one sandbox user: one submission at a time
            self.slots = 1
        self._lock = threading.Lock()
        self._server = GradingServer(self.kit, self.slots)

    def server(self) -> GradingServer:
        with self._lock:
            if self._server.proc.poll() is not None:
                self._server = GradingServer(self.kit, self.slots)
            return self._server

    def teardown(self, worker: Any) -> None:
        self._server.close()


def grade_task(request: bytes) -> bytes:
    """The Dask task: grade one submission on this worker; JSON bytes in and out.

    The answer is `{"card": {...}}`, or `{"mismatch": "..."}` when this worker's kit differs
    from the client's (a worker that joined after the client checked them all).
    """
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins[PLUGIN_NAME]
    data = json.loads(request)
    difference = identity_difference(data["expected"], plugin.identity)
    if difference:
        return json.dumps({"mismatch": f"worker {worker.address}: {difference}"}).encode()
    server = plugin.server()
    ready = server.ready.result()
    card = server.grade({k: data[k] for k in ("name", "submission", "options")})
    return json.dumps({"card": card, "warm": ready.get("warm", 0)}).encode()


def _serve(kit: Kit, slots: int, sock: socket.socket) -> None:
    """The grading server's loop: requests in, scorecards out, one forked child per
    submission and slot, as in the local batch (`grader.classroom.batch._run_local`)."""
    from grader.classroom.batch import _launch_zygotes, _ready
    from grader.grading.child import ChildGrading, start_child
    from grader.grading.options import GradingOptions, options_from_dict

    zygotes = _launch_zygotes(kit, slots, GradingOptions())
    import feast  # noqa: F401  (inherited by every forked grading child)
    import pyarrow  # noqa: F401

    gc.freeze()
    zygotes = [_ready(z) for z in zygotes]
    sock.sendall(json.dumps({"op": "ready", "warm": sum(z is not None for z in zygotes)}).encode())
    sock.sendall(b"\n")
    queue: deque[dict[str, Any]] = deque()
    free = list(range(len(zygotes)))
    running: dict[int, tuple[int, ChildGrading]] = {}
    buffer = b""
    try:
        while True:
            ready = wait([sock, *(c.process.sentinel for _, c in running.values())], timeout=1.0)
            if sock in ready:
                data = sock.recv(1 << 20)
                if not data:
                    return  # the worker closed us (or died): stop everything
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    queue.append(json.loads(line))
            while queue and free:
                request, slot = queue.popleft(), free.pop(0)
                try:
                    submission = ShippedSubmission.from_dict(request["submission"], kit)
                except SubmissionError as exc:
                    submission = ShippedSubmission({}, str(exc))
                options = replace(
                    options_from_dict(
                        {**request["options"], "cache_dir": str(default_cache_dir())}
                    ),
                    zygote=zygotes[slot],
                )
                child = start_child(kit, submission, name=str(request["name"]), options=options)
                running[slot] = (int(request["id"]), child)
            for slot, (ident, child) in list(running.items()):
                if child.process.is_alive() and not child.overdue:
                    continue
                if child.process.is_alive():
                    child.kill()
                child.process.join()
                del running[slot]
                if zygotes[slot] is not None:
                    zygotes[slot].kill_all()
                card = child.result()
                if zygotes[slot] is not None:  # nothing of this submission's left for the next
                    zygotes[slot].clear()
                free.append(slot)
                answer = {"id": ident, "card": card.to_dict()}
                sock.sendall(json.dumps(answer).encode() + b"\n")
    finally:
        for _, child in running.values():
            child.kill()
        for zygote in zygotes:
            if zygote is not None:
                zygote.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.classroom.cluster_worker KIT SLOTS FD`: the grading server."""
    root, slots, fd = (sys.argv[1:] if argv is None else argv)[:3]
    typeguard_cache.install(record=True)  # trusted: it only ever forks sandboxed jobs
    sock = socket.socket(fileno=int(fd))
    try:
        _serve(load_kit(Path(root)), int(slots), sock)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
