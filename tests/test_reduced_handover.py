"""Reduced isolation (no bubblewrap): the private folder is handed to the sandbox user once,
before any student code, and never walked as root again (a walk could be raced into ours)."""

from __future__ import annotations

import os

import pytest

from grader.sandbox import bubblewrap
from grader.sandbox.bubblewrap import Limits, Worker, WorkerError, sandbox_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder over needs root")


def _spawn(workdir, monkeypatch):
    monkeypatch.setattr(bubblewrap, "can_drop_privileges", lambda: True)
    worker = Worker(workdir, limits=Limits(start_timeout_s=5), use_bwrap=False)
    try:
        worker.spawn()  # the user may not reach this Python: only the hand-over matters here
    except (WorkerError, OSError):
        pass
    finally:
        worker.close()


def test_the_first_hand_over_gives_the_staged_files_to_the_sandbox_user(tmp_path, monkeypatch):
    uid, _gid = sandbox_user()
    work = tmp_path / "submission"
    (work / "ex2").mkdir(parents=True)
    (work / "ex2" / "pit_join.py").write_text("x = 1\n")
    _spawn(work, monkeypatch)
    assert os.lstat(work).st_uid == uid
    assert os.lstat(work / "ex2" / "pit_join.py").st_uid == uid


def test_a_later_worker_never_follows_what_student_code_left_in_the_folder(tmp_path, monkeypatch):
    uid, gid = sandbox_user()
    victim = tmp_path / "victim"
    (victim / "inner").mkdir(parents=True)
    (victim / "secret").write_text("hidden suite\n")
    work = tmp_path / "submission"
    work.mkdir()
    os.chown(work, uid, gid)  # handed over already: student code may have run in it
    (work / "link").symlink_to(victim)
    (work / "dir").symlink_to(victim / "inner", target_is_directory=True)
    # What a swap raced in mid-walk would look like: an entry of ours inside the folder.
    (work / "raced").mkdir()
    (work / "raced" / "results.json").write_text("{}\n")
    _spawn(work, monkeypatch)
    for path in (victim, victim / "inner", victim / "secret", work / "raced",
                 work / "raced" / "results.json"):  # fmt: skip
        assert os.lstat(path).st_uid == 0, f"{path} was given to the sandbox user"
