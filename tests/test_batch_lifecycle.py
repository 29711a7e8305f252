"""A batch that is killed takes everything it started with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children of all its threads, recursively)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(p) for p in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += children - found
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]
    except OSError:
        return False


@pytest.mark.parametrize("mode", ["--warm", "--cold"])
def test_killing_a_batch_leaves_no_grading_child_or_worker_behind(lab, tmp_path, mode):
    subs = tmp_path / "subs"
    (subs / "spinner").mkdir(parents=True)
    (subs / "spinner" / "pit_join.py").write_text(
        "def point_in_time_join(*args, **kwargs):\n    while True:\n        pass\n"
    )
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "--kit", str(lab.root), "batch", str(subs),
         "--out", str(tmp_path / "out"), "--call-timeout", "600", mode],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        # Wait until the spinning student call runs: a process below the batch at full CPU.
        deadline = time.monotonic() + 120
        spinning = False
        while time.monotonic() < deadline and not spinning:
            time.sleep(1)
            below = _descendants(batch.pid)
            spinning = len(below) >= 4 and (tmp_path / "out").is_dir()
        time.sleep(5)
        started = _descendants(batch.pid)
        assert len(started) >= 4, "the batch never got to grading"
    finally:
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.2)
    left = {p for p in started if _alive(p)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of {len(started)} processes outlived the batch"
