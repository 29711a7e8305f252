"""Budgets the kernel enforces for a submission as a whole: control groups and a sized tmpfs.

A `Cgroup` is one group in every hierarchy we use: on cgroup v1 one folder per controller
(memory, pids, cpu), on v2 one folder. It caps memory (every process in it together, with
their memfds, tmpfs and /dev/shm pages, without swap), tasks, and gives the group one CPU
share, so 96 spinning processes weigh as much as one honest process in the other slot.

Groups are made under the group this process is in (the delegation rule of v2, and a v1 host
that puts us in a group of its own keeps counting our workers in it), named `fslab-<pid>-<n>`,
and removed with everything in them (`Cgroup.remove`). A grading process gets one group per
submission, holding a `grader` leaf for the trusted grading child and one leaf per sandboxed
worker; the parent removes the whole tree after the child ends, however it ended.

`private_tmpfs` mounts a tmpfs with `size=` and `nr_inodes=` over a folder (needs root), so a
submission's private folder cannot take the host's disk or inodes.

Where none of this is possible (not root, no delegation, no memory controller) the functions
return None and the grader reports reduced isolation.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
SANDBOX_UID = 65533
"""The host uid sandboxed workers run as when the grader is root: no file, process or
capability of the host belongs to it (Debian leaves 65000-65533 unallocated), so a setuid file
made inside is nobody's that matters."""
_counter = itertools.count(1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_path(controller: str | None) -> str:
    """This process's group in the v1 hierarchy of `controller`, or in v2 (None)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        number, names, path = line.split(":", 2)
        if controller is None and number == "0" and names == "":
            return path
        if controller is not None and controller in names.split(","):
            return path
    return "/"


@functools.cache
def layout() -> tuple[str, dict[str, Path]] | None:
    """("v1" or "v2", base folder per controller) where we may make groups, or None.

    v1 needs the memory, pids and cpu hierarchies; v2 needs those controllers in our group's
    `cgroup.controllers` and the right to enable them for children (`cgroup.subtree_control`,
    which v2 refuses in a group that holds processes itself unless it is the root)."""
    v1 = {c: CGROUP_ROOT / c for c in V1_CONTROLLERS}
    if all((p / "cgroup.procs").is_file() for p in v1.values()):
        bases = {c: root / _own_path(c).lstrip("/") for c, root in v1.items()}
        if all(os.access(b, os.W_OK) for b in bases.values()):
            return "v1", bases
        return None
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        base = CGROUP_ROOT / _own_path(None).lstrip("/")
        if not {"memory", "pids", "cpu"} <= set(_read(base / "cgroup.controllers").split()):
            return None
        if not os.access(base, os.W_OK):  # not root, and not delegated to us
            return None
        try:
            (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        except OSError:
            return None
        return "v2", {"": base}
    return None


def available() -> bool:
    """Whether per-submission groups (memory, processes, CPU share) can be made here."""
    return layout() is not None


@dataclass
class Cgroup:
    """One control group: a folder per v1 controller, or one v2 folder."""

    version: str
    folders: dict[str, Path]
    """Controller name (v1) or "" (v2) -> the group's folder."""

    @classmethod
    def create(
        cls,
        name: str | None = None,
        *,
        parent: Cgroup | None = None,
        memory_bytes: int | None = None,
        max_processes: int | None = None,
        inner: bool = False,
    ) -> Cgroup | None:
        """A fresh group under `parent` (default: the group we are in), or None if we cannot.

        `memory_bytes` caps its memory with swap off; `max_processes` its tasks. Its CPU
        share is the default one, equal to its siblings'. An `inner` group holds groups, not
        processes (v2 allows no processes in a group whose children have controllers)."""
        found = layout()
        if found is None:
            return None
        version, bases = found
        name = name or f"fslab-{os.getpid()}-{next(_counter)}"
        folders = {c: (parent.folders[c] if parent else base) / name for c, base in bases.items()}
        group = cls(version, {})
        try:
            for controller, folder in folders.items():
                folder.mkdir()
                group.folders[controller] = folder
            if version == "v2" and inner:
                group._write("", "cgroup.subtree_control", "+memory +pids +cpu")
            if memory_bytes is not None:
                group._set_memory(memory_bytes)
            if max_processes is not None:
                group._write("pids", "pids.max", str(max_processes))
        except OSError:
            group.remove()
            return None
        return group

    def _folder(self, controller: str) -> Path:
        return self.folders["" if self.version == "v2" else controller]

    def _write(self, controller: str, file: str, value: str) -> None:
        (self._folder(controller) / file).write_text(value)

    def usage_bytes(self) -> int:
        """The memory the group holds now (its processes' pages, the page cache it read)."""
        if self.version == "v2":
            return int(_read(self._folder("") / "memory.current").strip() or 0)
        return int(_read(self._folder("memory") / "memory.usage_in_bytes").strip() or 0)

    def set_memory(self, limit: int) -> None:
        """Cap the group's memory at `limit` bytes (swap off)."""
        self._set_memory(limit)

    def _set_memory(self, limit: int) -> None:
        if self.version == "v2":
            self._write("", "memory.max", str(limit))
            with contextlib.suppress(OSError):  # no swap accounting: there is no swap to use
                self._write("", "memory.swap.max", "0")
            return
        self._write("memory", "memory.limit_in_bytes", str(limit))
        with contextlib.suppress(OSError):  # memsw exists only with swap accounting on
            self._write("memory", "memory.memsw.limit_in_bytes", str(limit))
        with contextlib.suppress(OSError):
            self._write("memory", "memory.swappiness", "0")

    def add(self, pid: int) -> None:
        """Move process `pid` (a host pid) into this group, in every hierarchy."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(pid))

    def procs(self) -> list[int]:
        """Host pids of the processes in this group and its children."""
        found: set[int] = set()
        for folder in self.folders.values():
            for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
                found.update(int(p) for p in _read(path / "cgroup.procs").split())
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for going over the memory limit."""
        if self.version == "v2":
            text = _read(self._folder("") / "memory.events")
        else:
            text = _read(self._folder("memory") / "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_bytes(self) -> int:
        """The most memory the group has held at once."""
        if self.version == "v2":
            return int(_read(self._folder("") / "memory.peak").strip() or 0)
        return int(_read(self._folder("memory") / "memory.max_usage_in_bytes").strip() or 0)

    def kill(self) -> None:
        """SIGKILL every process in the group and its children until none is left (~5 s)."""
        if self.version == "v2":
            with contextlib.suppress(OSError):  # cgroup.kill: the kernel does it, race-free
                self._write("", "cgroup.kill", "1")
        for _ in range(250):
            pids = self.procs()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> bool:
        """Kill everything in the group and remove it and its children; True when gone."""
        self.kill()
        gone = True
        for folder in self.folders.values():
            inner = sorted(
                (p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            )
            for path in [*inner, folder]:
                gone = _rmdir(path) and gone
        return gone


def _rmdir(path: Path) -> bool:
    """Remove an empty group folder, waiting a little for exiting tasks to leave it."""
    for _ in range(100):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.02)
    return False


_submission: Cgroup | None = None


def set_submission_group(group: Cgroup | None) -> None:
    """Make `group` the parent of every worker group this process makes from now on (the
    grading child calls it with its submission's group)."""
    global _submission
    _submission = group


def submission_group() -> Cgroup | None:
    """The group of the submission this process grades, if any."""
    return _submission


def leftover_groups(pid: int | None = None) -> list[Path]:
    """Groups named `fslab-<pid>-*` (any pid when None) under our own group, in any hierarchy
    (a test's way to prove that nothing was left behind)."""
    found = layout()
    if found is None:
        return []
    prefix = f"fslab-{pid}-" if pid is not None else "fslab-"
    return sorted(p for base in found[1].values() for p in base.glob(prefix + "*"))


# ------------------------------------------------------------------------------ disk


_libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_REC, MS_SLAVE = 2, 4, 16384, 1 << 19
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000
_private_mounts = False


def private_mounts() -> bool:
    """Give this process a mount namespace of its own (needs root; a grading child does it
    first thing), where the host's mounts still appear but ours stay: a sized private folder
    mounted here vanishes with the process, however it ends. True once done."""
    global _private_mounts
    if not _private_mounts and os.geteuid() == 0 and _libc.unshare(CLONE_NEWNS) == 0:
        _private_mounts = _libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) == 0
    return _private_mounts


def has_private_mounts() -> bool:
    """Whether `private_mounts` has been done in this process."""
    return _private_mounts


def private_tmpfs(folder: Path, size_bytes: int, inodes: int, uid: int | None = None) -> bool:
    """Mount a tmpfs of `size_bytes` and `inodes` files over the empty `folder`, owned by
    `uid` (default: us); False where we may not mount (not root). The mount is the caller's to
    release (`release_tmpfs`), or goes with its mount namespace (`private_mounts`)."""
    if os.geteuid() != 0:
        return False
    owner = os.geteuid() if uid is None else uid
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={owner},gid={owner}"
    result = _libc.mount(
        b"tmpfs", str(folder).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()
    )
    return result == 0


def release_tmpfs(folder: Path) -> None:
    """Unmount the tmpfs at `folder` (its files go with it) and remove the folder."""
    _libc.umount2(str(folder).encode(), MNT_DETACH)
    shutil.rmtree(folder, ignore_errors=True)


def sandbox_uid() -> int | None:
    """The host uid sandboxed workers run as: `SANDBOX_UID` when we are root, else None (an
    ordinary user's sandbox is already that user's)."""
    return SANDBOX_UID if os.geteuid() == 0 else None


def chown_tree(folder: Path, uid: int) -> None:
    """Give `folder` and everything in it (the trusted side staged it) to `uid`, without
    following links."""
    os.chown(folder, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
