"""Fitting the grader into its container: how much memory there is, and each worker's share.

A Gradescope autograder gets 768 MB by default and is "Killed" whole when it goes over, so
the grader reads the limit it actually runs under and gives its workers only what is left
after the trusted side's own needs. The limit is the smallest of: the cgroup v2 `memory.max`
of this process's cgroup and its parents, the cgroup v1 `memory.limit_in_bytes` of its
memory cgroup and its parents, and the machine's total RAM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 writes "no limit" as a huge page-aligned number (2**63 - 4096 on 4 KiB pages).
_UNLIMITED_V1 = 1 << 60

TRUSTED_RESERVE_BYTES = 256 * MIB
"""Memory kept for the trusted side (the grading process with pytest, pandas and pyarrow,
and the interpreter that started it), measured at under 200 MiB on the reference solutions."""
REFERENCE_WORKER_BYTES = 160 * MIB
"""Room kept for the reference solution's worker (pandas and pyarrow, no Feast), which runs
next to the student's during ex2's timing test."""
MIN_WORKER_BYTES = 256 * MIB
"""Below this a worker cannot import Feast: refuse to pretend."""
MAX_WORKER_BYTES = 4 << 30
"""The worker limit where memory is plentiful (the sandbox's default)."""


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _own_cgroups(proc_cgroup: str) -> dict[str, str]:
    """`/proc/self/cgroup` as {controller or "" for v2: path}."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            out[""] = path
        for name in controllers.split(","):
            if name:
                out[name] = path
    return out


def _limits_up(folder: Path, top: Path, filename: str) -> list[int]:
    """The numeric `filename` values from `folder` up to `top` (inclusive)."""
    values: list[int] = []
    while True:
        text = _read(folder / filename)
        if text.isdigit():
            values.append(int(text))
        if folder == top or top not in folder.parents:
            return values
        folder = folder.parent


def cgroup_memory_limit(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> int | None:
    """The memory limit of this process's cgroup (v2 `memory.max`, v1
    `memory.limit_in_bytes`, the smallest along the path to the root), or None when none is
    set or none can be read."""
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))
    groups = _own_cgroups(proc_cgroup)
    values: list[int] = []
    if "" in groups:
        v2 = root / groups[""].lstrip("/")
        values += _limits_up(v2, root, "memory.max")  # "max" is not a digit: no limit
    if "memory" in groups:
        v1_root = root / "memory"
        v1 = v1_root / groups["memory"].lstrip("/")
        values += [v for v in _limits_up(v1, v1_root, "memory.limit_in_bytes") if v < _UNLIMITED_V1]
    return min(values) if values else None


def total_ram() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def container_memory(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> int:
    """Bytes of memory this process tree may use: its cgroup's limit, else the total RAM."""
    limit = cgroup_memory_limit(root, proc_cgroup)
    ram = total_ram()
    return min(limit, ram) if limit is not None else ram


@dataclass(frozen=True)
class MemoryBudget:
    """How the container's memory is shared out."""

    container_bytes: int
    """What the whole grader may use (see `container_memory`)."""
    worker_bytes: int
    """Resident memory one student worker (its whole process tree) may use."""
    reserve_bytes: int
    """Kept for the trusted side and the reference worker."""

    @property
    def worker_mib(self) -> int:
        return self.worker_bytes // MIB


class BudgetError(Exception):
    """The container is too small to grade in (one line, for the instructor)."""


def memory_budget(container_bytes: int | None = None, *, workers: int = 1) -> MemoryBudget:
    """Each of `workers` concurrent student workers' share of `container_bytes` (default:
    this container's memory), after the trusted side's reserve, at most `MAX_WORKER_BYTES`.

    Raises `BudgetError` when that share is below `MIN_WORKER_BYTES`."""
    total = container_memory() if container_bytes is None else container_bytes
    reserve = TRUSTED_RESERVE_BYTES + REFERENCE_WORKER_BYTES * workers
    share = min(MAX_WORKER_BYTES, (total - reserve) // max(1, workers))
    if share < MIN_WORKER_BYTES:
        raise BudgetError(
            f"{total // MIB} MiB of memory is too little to grade in: each of {workers} "
            f"worker(s) needs {MIN_WORKER_BYTES // MIB} MiB beyond {reserve // MIB} MiB kept "
            "for the grader itself"
        )
    return MemoryBudget(total, share - share % MIB, reserve)
