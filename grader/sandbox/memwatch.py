"""A resident-memory budget for one worker, kept from the trusted side.

An address-space limit (RLIMIT_AS) cannot stand in for memory: a worker that has imported
Feast maps gigabytes it never touches. Where the grader may not create memory cgroups (a
Gradescope container), `MemoryWatch` samples the resident memory of the worker's whole
process tree and kills it, whole, the moment it passes its budget, so one greedy submission
costs its exercise and never the container. Two backstops cover what sampling can miss:
the worker is the kernel's first choice when the container runs out (`oom_score_adj` 1000,
set in the worker's pre-exec), and `oom_kills` tells afterwards whether the kernel killed it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

INTERVAL_S = 0.02


def tree_rss(root: psutil.Process, seen: dict[int, float] | None = None) -> int:
    """Resident bytes of `root` and every process below it (0 once they are gone); adds
    each process to `seen` (pid: start time)."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            if seen is not None and proc.pid not in seen:
                seen[proc.pid] = proc.create_time()
        except psutil.Error:
            pass
    return total


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


class MemoryWatch(threading.Thread):
    """Kills process group `pid` (after calling `kill`, if given) when its tree's resident
    memory passes `limit_bytes`; `exceeded` then holds the figure it saw."""

    def __init__(self, pid: int, limit_bytes: int, kill: Callable[[], None] | None = None) -> None:
        super().__init__(daemon=True, name=f"memwatch-{pid}")
        self.pid, self.limit_bytes, self._kill = pid, limit_bytes, kill
        self.exceeded: int | None = None
        self.peak = 0
        self._halt = threading.Event()
        self.seen: dict[int, float] = {}
        """Every process seen in the tree (pid: start time), to end them all later."""
        try:
            self._root: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._root = None

    def run(self) -> None:
        while self._root is not None and not self._halt.wait(INTERVAL_S):
            rss = tree_rss(self._root, self.seen)
            self.peak = max(self.peak, rss)
            if rss > self.limit_bytes:
                self.exceeded = rss
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
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
