"""A resident-memory budget for one worker, kept from the trusted side.

An address-space limit (RLIMIT_AS) cannot stand in for memory: a worker that has imported
Feast maps gigabytes it never touches. Where the grader may not create memory cgroups (a
Gradescope container), `MemoryWatch` samples the memory of the worker's whole process tree
(its proportional set size, so libraries it shares with the grader count in part, as they
do in the container's own accounting) and kills it, whole, the moment it passes its
budget, so one greedy submission costs its exercise and never the container. Two
backstops cover what sampling can miss:
the worker is the kernel's first choice when the container runs out (`oom_score_adj` 1000,
set in the worker's pre-exec), and `oom_kills` tells afterwards whether the kernel killed it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

INTERVAL_S = 0.02
PSS_MIN_INTERVAL_S = 0.05
"""PSS costs a page-table walk per process (a fork bomb has hundreds): measured at most this
often, and never more than a fifth of the time (the pause after one is four times its cost)."""


def tree_memory(
    root: psutil.Process, seen: dict[int, float] | None = None, *, proportional: bool = False
) -> int:
    """Resident bytes of `root` and every process below it (0 once they are gone), or with
    `proportional` their PSS (shared pages split between the processes sharing them: a
    library mapped by the grader too, or a fork's copy-on-write pages, count in part).
    Adds each process to `seen` (pid: start time)."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            if proportional:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
            else:
                total += proc.memory_info().rss
            if seen is not None and proc.pid not in seen:
                seen[proc.pid] = proc.create_time()
        except psutil.Error:
            pass
    return total


def strays(uid: int, roots: set[int]) -> list[psutil.Process]:
    """The processes of host user `uid` that no watched tree holds: not one of `roots` and
    with a parent of another user (a student's sibling made with CLONE_PARENT is the grader's
    child; a double fork's orphan is init's). Their own children are in their trees."""
    found = []
    for proc in psutil.process_iter(["uids", "ppid"]):
        try:
            if proc.info["uids"] is None or proc.info["uids"].real != uid or proc.pid in roots:
                continue
            if psutil.Process(proc.info["ppid"]).uids().real != uid:
                found.append(proc)
        except (psutil.Error, ValueError):  # gone meanwhile, or ppid 0
            continue
    return found


def kill_seen(seen: dict[int, float]) -> None:
    """SIGKILL every process in `seen` that still runs (same pid and start time: a reused
    pid is left alone), including those that left the worker's session or tree."""
    for pid, started in seen.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started:
                proc.kill()
        except psutil.Error:
            pass


STRAY_EVERY = 10
"""Look for strays (a scan of every process) once in this many samples."""


class MemoryWatch(threading.Thread):
    """Kills process group `pid` (then calls `kill`, if given) when its tree's proportional
    memory (PSS) passes `limit_bytes`; `exceeded` then holds the figure it saw.

    With `uid` (the host user the worker runs as, which runs nothing else meanwhile), the
    processes of that user outside every watched tree (`strays`) count too, and are killed
    with it: a process that left the tree does not leave the budget."""

    _roots: set[int] = set()
    """The pids of every running watch's worker, so that no watch counts another's tree."""

    def __init__(
        self,
        pid: int,
        limit_bytes: int,
        kill: Callable[[], None] | None = None,
        *,
        uid: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"memwatch-{pid}")
        self.pid, self.limit_bytes, self._kill, self.uid = pid, limit_bytes, kill, uid
        self._strays: list[psutil.Process] = []
        MemoryWatch._roots.add(pid)  # before the thread runs: no other watch may count it
        self.exceeded: int | None = None
        self.peak = 0
        self._halt = threading.Event()
        self.seen: dict[int, float] = {}
        """Every process seen in the tree (pid: start time), to end them all later."""
        try:
            self._root: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._root = None

    def _used(self, *, proportional: bool = False) -> int:
        trees = [self._root, *self._strays] if self._root is not None else self._strays
        return sum(tree_memory(t, self.seen, proportional=proportional) for t in trees)

    def run(self) -> None:
        try:
            self._watch()
        finally:
            MemoryWatch._roots.discard(self.pid)

    def _watch(self) -> None:
        next_pss = 0.0
        samples = 0
        while self._root is not None and not self._halt.wait(INTERVAL_S):
            if self.uid is not None and samples % STRAY_EVERY == 0:
                self._strays = strays(self.uid, MemoryWatch._roots)
            samples += 1
            # RSS is cheap and never below PSS; PSS (a page-table walk) only when RSS is over.
            used = self._used()
            if used > self.limit_bytes:
                began = time.monotonic()
                if began < next_pss:
                    continue
                used = self._used(proportional=True)
                spent = time.monotonic() - began
                next_pss = began + max(PSS_MIN_INTERVAL_S, 5 * spent)
            self.peak = max(self.peak, used)
            if used > self.limit_bytes:
                self.exceeded = used
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                kill_seen(self.seen)  # strays too, and what left the session
                if self._kill is not None:
                    self._kill()
                return
            if not self._root.is_running():
                return

    def stop(self) -> None:
        self._halt.set()


def oom_kills(proc_cgroup: str | None = None, root: Path = Path("/sys/fs/cgroup")) -> int:
    """How many processes the kernel's OOM killer has ended in this process's memory cgroup
    (v2 `memory.events`, v1 `memory.oom_control`); 0 where that cannot be read."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return 0
    for line in proc_cgroup.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            files = [root / path.lstrip("/") / "memory.events"]
        elif "memory" in controllers.split(","):
            files = [root / "memory" / path.lstrip("/") / "memory.oom_control"]
        else:
            continue
        for file in files:
            try:
                for entry in file.read_text().splitlines():
                    key, _, value = entry.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit():
                        return int(value)
            except OSError:
                pass
    return 0
