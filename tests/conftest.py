"""Shared fixtures of the kit's own test suite.

`lab` is a private copy of the kit (manifest and reference repo) in a temp folder, with its
data generated and its reference repo applied and materialized into SQLite once per session,
so tests never touch the working tree's `data/` or registry.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.kit import Kit, load_kit
from grader.repo_setup import run_setup

KIT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kit_root() -> Path:
    """The kit checkout under test."""
    return KIT_ROOT


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


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def import_file(path: Path, name: str | None = None):
    """Import the Python file at `path` as a fresh module (exercise folders are not packages)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name or f"_kit_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
