"""Helpers shared by the kit's tests (a module with a unique name, unlike `conftest`)."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import string
from pathlib import Path

from grader.course.kit import Kit, load_kit

KIT_ROOT = Path(__file__).resolve().parent.parent


def copy_kit(dest: Path) -> Kit:
    """Copy the kit (manifest, reference repo, exercises, solutions) to `dest` and load it."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(KIT_ROOT / "course.toml", dest / "course.toml")
    shutil.copytree(
        KIT_ROOT / "feature_repo",
        dest / "feature_repo",
        ignore=shutil.ignore_patterns("data", "__pycache__"),
    )
    for folder in ("exercises", "solutions"):
        if (KIT_ROOT / folder).is_dir():
            shutil.copytree(
                KIT_ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__")
            )
    return load_kit(dest)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def import_file(path: Path, name: str | None = None):
    """Import the Python file at `path` as a fresh module (exercise folders are not packages)."""
    spec = importlib.util.spec_from_file_location(name or f"_kit_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interruptible() -> None:
    """`preexec_fn` for a terminal child that a test stops with Ctrl-C: SIGINT back to its
    default action. A shell runs background jobs with SIGINT ignored and children inherit
    that, so without this a test started with `&` could never interrupt its child."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


STEALING_PIT_JOIN = string.Template("""
import glob, os
$prelude
TARGETS = $targets
STOLEN = {}
for path in TARGETS:
    try:
        with open(path) as fh:
            STOLEN[path] = fh.read()
    except (OSError, UnicodeDecodeError):
        pass
$after_reading
code = STOLEN.get(TARGETS[0]) or STOLEN.get(TARGETS[1])
if code:
    exec(code)
else:
    def point_in_time_join(*args, **kwargs):
        raise RuntimeError(f"$failure")
""")


def stealing_pit_join(
    targets: str, failure: str, *, prelude: str = "", after_reading: str = ""
) -> str:
    """Source of a hostile ex2 answer: it reads every file of `targets` (a Python list
    expression; the first two are solutions) that it can, runs `after_reading`, then runs
    the first solution it stole; with none, its `point_in_time_join` raises RuntimeError
    with `failure` (an f-string body: `STOLEN` and `os` are in scope)."""
    return STEALING_PIT_JOIN.substitute(
        prelude=prelude, targets=targets, after_reading=after_reading, failure=failure
    )
