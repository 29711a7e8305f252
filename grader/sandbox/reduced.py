"""Reduced isolation: what protects the grader where bubblewrap cannot run.

In a container that refuses user namespaces and mounts (Gradescope's, most likely) the worker
sees the real filesystem. It runs as the unprivileged `fslab-student` user (see
`grader.sandbox.bubblewrap.sandbox_user`) that owns only the worker's private folder, so the
file permissions decide the rest: before any student code runs, the trusted side makes what
the worker must not read or change (hidden suites, solutions, the oracle cache, the results
and the original submission) reachable by root alone. The seccomp filter refuses new sockets
(no network, no local services) and System V and POSIX IPC (whose objects would outlive the
submission), and the usual limits apply; the worker's process group, and every process the
memory watchdog saw in its tree, is killed at the end.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def lock_away(*paths: Path) -> list[Path]:
    """Make each existing path reachable by its owner only (mode 0700 for folders, 0600 for
    files; a folder's contents are then out of reach whatever their own modes). Returns the
    paths changed. Symlinks are left alone (their target is not ours to change)."""
    changed = []
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)
            changed.append(path)
    return changed


def open_to_all(folder: Path) -> int:
    """Make `folder`'s tree readable by every user (folders gain 0755, files 0444;
    symlinks left alone): the generated data the worker must read, which a root process
    wrote through private temp files. Returns how many entries changed."""
    changed = 0
    for path in [folder, *folder.rglob("*")]:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        want = mode | (0o755 if stat.S_ISDIR(info.st_mode) else 0o444)
        if mode != want:
            os.chmod(path, want)
            changed += 1
    return changed


def readable_by_others(path: Path) -> bool:
    """Whether a user other than the owner (and not in its group) could open `path`: every
    folder above it traversable by others and the path itself readable by them."""
    try:
        for folder in path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False
