"""A worker's resident-memory budget: a greedy call is stopped with "used more than N MiB",
its exercise's later calls are not run, and a fresh worker serves everything else."""

from __future__ import annotations

import os
import textwrap

import pytest

from grader.sandbox.bubblewrap import Limits
from grader.sandbox.memwatch import oom_kills
from grader.sandbox.proxy import StudentCrash, StudentProxy

HOG = """
import os
def hog():
    blocks = []
    while True:
        blocks.append(bytearray(32 * 1024 * 1024))
def oom_score():
    return open("/proc/self/oom_score_adj").read().strip()
def fine():
    return 42
"""


def proxy(tmp_path, name: str, **kwargs) -> StudentProxy:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "greedy.py").write_text(textwrap.dedent(HOG))
    limits = Limits(call_timeout_s=60, rss_bytes=300 << 20)
    return StudentProxy("greedy", folder / "greedy.py", limits=limits, **kwargs)


@pytest.mark.parametrize("use_bwrap", [True, False], ids=["bubblewrap", "reduced"])
def test_a_call_over_its_memory_budget_is_stopped_with_the_figure(request, tmp_path, use_bwrap):
    if not use_bwrap and os.geteuid() == 0:  # as the sandbox user, in a folder it can reach
        tmp_path = request.getfixturevalue("as_student")
    greedy = proxy(tmp_path, "a", use_bwrap=use_bwrap)
    try:
        # The kernel's first choice should the container itself run out.
        assert greedy.oom_score() == "1000"
        with pytest.raises(StudentCrash, match="used more than 300 MiB"):
            greedy.hog()
        assert greedy.out_of_memory and "300 MiB" in greedy.out_of_memory
        with pytest.raises(StudentCrash, match="not run: an earlier call used more"):
            greedy.fine()
    finally:
        greedy.close()
    other = proxy(tmp_path, "b", use_bwrap=use_bwrap)
    try:
        assert other.fine() == 42
    finally:
        other.close()


def test_oom_kills_reads_the_v1_and_v2_counters(tmp_path):
    (tmp_path / "memory" / "g").mkdir(parents=True)
    (tmp_path / "memory" / "g" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
    )
    assert oom_kills("4:memory:/g\n", tmp_path) == 3
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    assert oom_kills("0::/h\n", tmp_path) == 1
    assert oom_kills("0::/missing\n", tmp_path) == 0
