"""Shared fixtures of the kit's own test suite.

`lab` is a private copy of the kit (manifest and reference repo) in a temp folder, with its
data generated and its reference repo applied and materialized into SQLite once per session,
so tests never touch the working tree's `data/` or registry.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.classroom.gradescope_try import _interpreter
from grader.course.kit import Kit, load_kit
from grader.course.reference_repo import run_setup
from grader.sandbox import bubblewrap, typeguard_cache
from grader.sandbox.bubblewrap import SANDBOX_USER

# None of the imports above loads Feast: this trusted test process may add to the cache.
typeguard_cache.install(record=True)

# The grader's oracle cache: private to this test session (subprocesses inherit it).
os.environ["FSLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="fslab-test-cache-")

from kit_helpers import KIT_ROOT, copy_kit, free_port, import_file  # noqa: E402, F401


@pytest.fixture(scope="session")
def kit_root() -> Path:
    """The kit checkout under test."""
    return KIT_ROOT


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """A kit copy with data generated (seed 42) and the reference repo set up on SQLite."""
    kit = copy_kit(tmp_path_factory.mktemp("lab"))
    run_setup(kit, seed=42, online="sqlite", echo=lambda _line: None)
    return kit


@pytest.fixture(scope="session")
def data_dir(lab: Kit) -> Path:
    """The generated `data/` folder of the session's lab kit (read-only for tests)."""
    return lab.data_dir


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away `redis-server` on a free loopback port; yields its connection string."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make install` (apt package redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def solution(kit_root: Path):
    """`solution(slug)` imports the reference solution module of exercise `slug`."""
    kit = load_kit(kit_root)

    def load(slug: str):
        return import_file(kit_root / "solutions" / slug / kit.exercise(slug).module)

    return load


@pytest.fixture(scope="session")
def stub(kit_root: Path):
    """`stub(slug)` imports the student stub module of exercise `slug`."""
    kit = load_kit(kit_root)

    def load(slug: str):
        return import_file(kit_root / "exercises" / slug / kit.exercise(slug).module)

    return load


@pytest.fixture(scope="session")
def student_python() -> Iterator[tuple[Path, Path]]:
    """(prefix, base prefix) of a Python the dedicated sandbox user can run (a thin venv over
    the system's where ours is out of its reach), and that user, made as setup.sh does."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    try:
        pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SANDBOX_USER],
            check=True,
        )  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="fslab-reduced-"))
    os.chmod(folder, 0o755)
    python, how = _interpreter(folder)
    assert "stay root" not in how, how  # CI has Debian's python3.11 for the thin venv
    thin = python != sys.executable
    base = Path(python).resolve().parent.parent if thin else Path(sys.base_prefix)
    yield Path(python).parent.parent, base
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def as_student(student_python, monkeypatch):
    """Workers without bubblewrap, on the reachable Python: they run as the sandbox user."""
    prefix, base = student_python
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(sys, "base_prefix", str(base))
    assert bubblewrap.can_drop_privileges()
    folder = Path(tempfile.mkdtemp(prefix="fslab-reduced-work-"))
    os.chmod(folder, 0o711)  # as the runner makes its work root: passable, not listable
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
