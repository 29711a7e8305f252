"""Reduced isolation as root (no bubblewrap, as on Gradescope): student code never runs as
root, a process that leaves its worker's tree still counts against the memory budget and is
ended with it, and batches grade one submission at a time (one sandbox user for all)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import textwrap
import time

import psutil
import pytest
from click.testing import CliRunner

from grader.classroom import batch, gradescope
from grader.classroom.batch import BatchError, run_batch
from grader.cli import cli
from grader.sandbox import bubblewrap
from grader.sandbox.bubblewrap import SANDBOX_USER, Limits, Worker, WorkerError
from grader.sandbox.proxy import StudentCrash, StudentProxy

from kit_helpers import copy_kit, stealing_pit_join

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
REFUSED = "refusing to run student code as root"


@pytest.fixture(params=["python out of reach", "no sandbox user"])
def python_out_of_reach(request, monkeypatch):
    """No bubblewrap, and either this Python as one the sandbox user cannot reach (a venv
    under a 0700 /root) or no dedicated sandbox user at all (`nobody` runs system daemons)."""
    for module in (bubblewrap, batch, gradescope):
        monkeypatch.setattr(module, "bwrap_works", lambda: False)
    if request.param == "no sandbox user":
        monkeypatch.setattr(bubblewrap, "SANDBOX_USER", "fslab-no-such-user")
        return "does not exist"
    monkeypatch.setattr(bubblewrap, "can_drop_privileges", lambda: False)
    return "cannot reach this Python"


def test_a_worker_that_would_run_as_root_is_refused(tmp_path, python_out_of_reach):
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(WorkerError, match=REFUSED) as refused:
        Worker(tmp_path, limits=Limits(start_timeout_s=5), use_bwrap=False).spawn()
    assert python_out_of_reach in str(refused.value)


def test_check_and_batch_refuse_in_one_line_and_write_nothing(lab, tmp_path, python_out_of_reach):
    subs = tmp_path / "subs"
    shutil.copytree(lab.root / "solutions", subs / "alice")
    before = sorted(p.relative_to(subs) for p in subs.rglob("*"))
    runner = CliRunner()
    for args in (
        ["check", "--submission", str(subs / "alice"), "--json", str(tmp_path / "card.json")],
        ["batch", str(subs), "--out", str(tmp_path / "out")],
    ):
        result = runner.invoke(cli, ["--kit", str(lab.root), *args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert REFUSED in lines[-1] and "Traceback" not in result.output, result.output
    assert not (tmp_path / "card.json").exists() and not (tmp_path / "out").exists()
    assert sorted(p.relative_to(subs) for p in subs.rglob("*")) == before
    with pytest.raises(BatchError, match=REFUSED):
        run_batch(lab, subs, tmp_path / "out2")


def test_gradescope_gets_results_that_say_why_nothing_was_graded(
    lab, tmp_path, python_out_of_reach
):
    root = tmp_path / "autograder"
    shutil.copytree(lab.root / "solutions", root / "submission")
    (root / "results").mkdir()
    results = gradescope.run_autograder(lab.root, root)
    assert results["score"] == 0 and REFUSED in results["output"]
    assert json.loads((root / "results" / "results.json").read_text()) == results


HIDE = """
import ctypes, os, signal, time
CLONE_PARENT = 0x00008000
def hide(how):
    # A child outside the worker's tree and session, holding 400 MiB.
    if how == "clone_parent":
        libc = ctypes.CDLL(None, use_errno=True)
        pid = libc.syscall(56, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)  # x86-64 clone
    else:
        pid = os.fork()
        if pid == 0 and os.fork() != 0:
            os._exit(0)  # the middle one: its child is orphaned
    if pid == 0:
        os.setsid()
        hog = b"x" * (400 << 20)
        while True:
            time.sleep(1)
    if how == "double_fork":
        os.waitpid(pid, 0)
    return os.getuid()
def wait():
    time.sleep(60)
    return "not stopped"
def fine():
    return 42
"""


def _user_processes(uid: int) -> list[int]:
    """The live processes of `uid` (a killed CLONE_PARENT child stays our zombie: dead)."""
    return [
        p.pid
        for p in psutil.process_iter(["uids", "status"])
        if p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the raw clone call is x86-64's")
@pytest.mark.parametrize("how", ["clone_parent", "double_fork"])
def test_a_process_that_leaves_the_tree_still_counts_and_is_ended(as_student, how):
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    work = as_student / "sub"
    work.mkdir()
    (work / "hide.py").write_text(textwrap.dedent(HIDE))
    limits = Limits(call_timeout_s=60, rss_bytes=300 << 20)
    proxy = StudentProxy("hide", work / "hide.py", limits=limits, preload=(), use_bwrap=False)
    try:
        assert proxy.hide(how) == uid  # the student's code ran as the sandbox user
        began = time.monotonic()
        with pytest.raises(StudentCrash, match="used more than 300 MiB"):
            proxy.wait()
        assert time.monotonic() - began < 30  # stopped by the budget, not the call's end
    finally:
        proxy.close()
    deadline = time.monotonic() + 10
    while _user_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _user_processes(uid) == []
    neighbour = StudentProxy("hide", work / "hide.py", limits=limits, preload=(), use_bwrap=False)
    try:
        assert neighbour.fine() == 42
    finally:
        neighbour.close()


def test_the_end_of_a_submission_ends_every_process_of_the_sandbox_user(as_student):
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    sleeper = subprocess.Popen(["sleep", "300"], user=uid, group=uid, start_new_session=True)
    try:
        bubblewrap.end_user_processes(uid)
        assert sleeper.wait(timeout=10) == -9
    finally:
        sleeper.kill()


def test_batches_grade_one_submission_at_a_time(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(bubblewrap, "can_drop_privileges", lambda: True)
    seen = []
    monkeypatch.setattr(
        batch, "_run_local", lambda kit, pending, workers, *a, **k: seen.append(workers)
    )
    subs = tmp_path / "subs"
    for name in ("a", "b", "c"):
        shutil.copytree(lab.root / "exercises", subs / name)
    options = batch.GradingOptions(use_bwrap=False)
    run_batch(lab, subs, tmp_path / "out", workers=2, options=options)
    assert seen == [1]
    run_batch(lab, subs, tmp_path / "out", workers=2, options=batch.GradingOptions())
    assert seen == [1, 2 if bubblewrap.bwrap_works() else 1]


def test_what_the_sandbox_user_left_in_shared_folders_is_removed(student_python, as_student):
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    os.chmod(as_student, 0o755)
    shared = as_student / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a /tmp of our own, same rules
    keep = as_student / "keep.txt"
    keep.write_text("ours")
    (shared / "root-owned.txt").write_text("ours too")
    script = textwrap.dedent(f"""
        import os
        os.makedirs("{shared}/answers/deep/er")
        open("{shared}/answers/deep/er/ex2.py", "w").write("leaked")
        open("{shared}/planted.py", "w").write("x = 1")
        os.symlink("{keep}", "{shared}/link")
        os.mkdir("{shared}/open", 0o777)
    """)
    python = student_python[0] / "bin" / "python"
    subprocess.run([str(python), "-c", script], user=uid, group=uid, check=True)
    os.chmod(shared / "open", 0o777)
    os.chown(shared / "open", 0, 0)  # another user's world-writable folder, with uid's file in it
    subprocess.run(["touch", str(shared / "open" / "inside")], user=uid, group=uid, check=True)
    assert bubblewrap.remove_user_files(uid, roots=(shared,)) == 4
    assert sorted(p.name for p in shared.rglob("*")) == ["open", "root-owned.txt"]
    assert keep.read_text() == "ours"  # the link went, not what it pointed to


HIDE_AT_IMPORT = """
import os, time
if os.fork() == 0:  # a grandchild in a session of its own: outside the worker's tree
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
time.sleep(300)
"""


def test_a_killed_grading_child_still_has_the_sandbox_users_processes_ended(
    lab, tmp_path, as_student, monkeypatch
):
    # No control groups (as on Gradescope): only ending the sandbox user's processes stops
    # what a submission hid. The grading child that would do it is killed first, so its
    # parent must.
    from grader.grading.child import start_child
    from grader.grading.options import GradingOptions
    from grader.sandbox import budgets

    monkeypatch.setattr(budgets, "layout", lambda: None)
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    sub = tmp_path / "hider"
    sub.mkdir()
    (sub / "pit_join.py").write_text(HIDE_AT_IMPORT)
    child = start_child(
        lab, sub, name="hider", slugs=["ex2_pit_join"], options=GradingOptions(use_bwrap=False)
    )
    try:
        deadline = time.monotonic() + 120
        while len(_user_processes(uid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_user_processes(uid)) >= 2  # the worker and the one it hid
        child.kill()
        card = child.result()
        assert card.status == "error" and card.score == 0
        assert _user_processes(uid) == []
    finally:
        child.kill()
        bubblewrap.end_user_processes(uid)


def test_a_batch_run_by_the_one_sandbox_user_keeps_each_submission_from_the_others(lab, as_student):
    # Every worker is the same host user here: without its folders locked away, one
    # submission could copy its neighbour's answer, the solutions or the hidden suites.
    from grader.grading.suites import suites_dir

    kit = copy_kit(as_student / "kit")
    shutil.copytree(lab.data_dir, kit.data_dir, dirs_exist_ok=True)
    for name in ("data", "feature_store.yaml"):  # the reference repo as `grade setup` left it
        source = lab.root / "feature_repo" / name
        if source.is_dir():
            shutil.copytree(source, kit.root / "feature_repo" / name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, kit.root / "feature_repo" / name)
    subs = as_student / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "mallory").mkdir()
    honest = subs / "alice" / "pit_join.py"
    shutil.copy2(kit.root / "solutions" / "ex2_pit_join" / "pit_join.py", honest)
    os.chmod(subs, 0o755)
    solution = kit.root / "solutions" / "ex2_pit_join" / "pit_join.py"
    hidden = suites_dir(kit) / "ex2_pit_join" / "test_hidden.py"
    (subs / "mallory" / "pit_join.py").write_text(
        stealing_pit_join(
            targets=repr([str(honest), str(solution), str(hidden)]),
            failure="read {len(STOLEN)} files as uid {os.getuid()}",
        )
    )
    before = honest.read_bytes()
    cards = {
        c.submission: c
        for c in run_batch(
            kit, subs, as_student / "out", options=batch.GradingOptions(use_bwrap=False)
        )
    }
    ex2 = {
        name: next(e for e in c.exercises if e.slug == "ex2_pit_join") for name, c in cards.items()
    }
    assert ex2["alice"].score == ex2["alice"].max_score > 0
    assert ex2["mallory"].score == 0
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    feedback = " ".join([ex2["mallory"].error or "", *(t.feedback for t in ex2["mallory"].tests)])
    assert f"read 0 files as uid {uid}" in feedback, feedback
    assert honest.read_bytes() == before and _user_processes(uid) == []


STOP_EVERYONE = """
import os, signal, time
if os.fork() == 0:  # two of them: each stops the other and whatever ends them as this user
    os.setsid()
while True:
    try:
        os.kill(-1, signal.SIGSTOP)
    except OSError:
        pass
    time.sleep(0.001)
"""


def test_processes_that_stop_every_process_of_their_user_are_still_ended(student_python):
    # Found by an attacker review: a helper that became the sandbox user to kill(-1) was
    # stopped by such a loop, and the grader waited for it forever.
    uid = pwd.getpwnam(SANDBOX_USER).pw_uid
    python = student_python[0] / "bin" / "python"
    stopper = subprocess.Popen([str(python), "-c", STOP_EVERYONE], user=uid, group=uid)
    deadline = time.monotonic() + 10
    while len(_user_processes(uid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_user_processes(uid)) >= 2
    began = time.monotonic()
    assert bubblewrap.end_user_processes(uid) == []
    assert time.monotonic() - began < 10 and _user_processes(uid) == []
    assert stopper.wait(timeout=10) == -9
