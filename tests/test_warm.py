"""The warm worker factory: forked workers are as isolated as cold ones."""

from __future__ import annotations

import subprocess
import time

import pytest

from grader.sandbox.bubblewrap import Limits, WorkerError, WorkerTimeout
from grader.sandbox.warm import Zygote, ZygoteWorker

SOURCE = """
import os, subprocess
def look():
    pool = os.path.dirname(os.getcwd())
    status = open("/proc/self/status").read()
    return {
        "pool": sorted(os.listdir(pool)),
        "pid": os.getpid(),
        "caps": status.split("CapEff:")[1].split()[0],
        "tmp": sorted(os.listdir("/tmp")),
        "fds": len(os.listdir("/proc/self/fd")),
    }
def leave_traces():
    try:
        open("/tmp/secret.txt", "w").write("from the first job")
        wrote_tmp = True
    except OSError:
        wrote_tmp = False
    import tempfile
    with open(os.path.join(tempfile.gettempdir(), "mine.txt"), "w") as fh:
        fh.write("scratch space works")
    subprocess.Popen(["sh", "-c", "sleep 300 # fslab-warm-marker"], start_new_session=True)
    return wrote_tmp
def remount():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.umount2(os.path.dirname(os.getcwd()).encode(), 2), ctypes.get_errno()
def spin():
    while True:
        pass
def privileges():
    child = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in child.splitlines())
    return {key: int(fields[key].strip(), 16) for key in ("CapEff", "CapPrm", "CapBnd")}
def processes():
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
def reach_other_jobs():
    # Every folder of the pool this job can list through any process's root or cwd.
    pool, mine = os.path.split(os.getcwd())
    found = set()
    for pid in range(1, 4096):
        for path in (f"/proc/{pid}/root{pool}", f"/proc/{pid}/cwd/.."):
            try:
                found.update(os.listdir(path))
            except OSError:
                pass
    return sorted(found - {mine})
def share_memory(text):
    seen = sorted(os.listdir("/dev/shm"))
    open("/dev/shm/note", "w").write(text)
    return seen
def write_dev():
    try:
        open("/dev/note", "w").write("for the next job")
        return "written"
    except OSError as exc:
        return exc.errno
def keyring():
    import ctypes, platform
    from grader.sandbox.seccomp import _ARCHES
    libc = ctypes.CDLL(None, use_errno=True)
    number = _ARCHES[platform.machine()][1]["add_key"]
    return libc.syscall(number, b"user", b"fslab", b"answers", 7, -3), ctypes.get_errno()
def fork_bomb():
    import time
    children = 0
    while True:
        try:
            if os.fork() == 0:
                time.sleep(300)
                os._exit(0)
            children += 1
        except OSError:
            return children
def escape_kill():
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # clear PR_SET_PDEATHSIG
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    subprocess.Popen(["sh", "-c", "trap '' TERM HUP; sleep 300 # fslab-escape-marker"])
    return os.getpid()
"""


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(preload=("pandas", "feast"), limits=Limits(call_timeout_s=10)).start().wait_ready()
    yield z
    z.close()


def job(zygote: Zygote, name: str) -> ZygoteWorker:
    folder = zygote.new_folder(name)
    (folder / "probe.py").write_text(SOURCE)
    worker = ZygoteWorker(zygote, folder, limits=Limits(call_timeout_s=3))
    worker.start()
    answer, _ = worker.request({"op": "load", "path": str(folder / "probe.py"), "module": "probe"})
    assert "error" not in answer, answer
    return worker


def call(worker: ZygoteWorker, function: str, timeout: float | None = None):
    answer, _ = worker.request(
        {"op": "call", "module": "probe", "function": function}, timeout=timeout
    )
    assert "error" not in answer, answer
    return answer["value"]


def test_a_job_sees_only_its_own_folder_no_capabilities_and_is_pid_1(zygote):
    first, second = job(zygote, "alice"), job(zygote, "bob")
    try:
        seen = call(second, "look")
        assert seen["pool"] == [second.workdir.name]
        assert seen["pid"] == 1
        assert int(seen["caps"], 16) == 0
        assert seen["fds"] <= 6  # stdio, its two pipes, the listing itself: nothing inherited
        # Feast's metrics stay in memory: no memory-mapped files every job would share.
        assert list(zygote.pool.glob("feast_metrics_*/*")) == []
        code, errno = call(second, "remount")
        assert code != 0 and errno != 0
    finally:
        first.close()
        second.close()


def test_nothing_of_a_job_survives_it_not_even_in_tmp(zygote):
    first = job(zygote, "carol")
    assert call(first, "leave_traces") is False  # /tmp is shared by jobs: read-only
    assert (first.workdir / "mine.txt").is_file()  # TMPDIR is the job's own folder
    first.close()
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "fslab-warm-marker" not in ps
    second = job(zygote, "dave")
    try:
        assert "secret.txt" not in call(second, "look")["tmp"]
    finally:
        second.close()


def test_a_hung_job_is_killed_and_the_factory_keeps_working(zygote):
    worker = job(zygote, "erin")
    with pytest.raises(WorkerTimeout):
        call(worker, "spin", timeout=1)
    assert not worker.alive
    again = job(zygote, "frank")
    try:
        assert call(again, "look")["pid"] == 1
    finally:
        again.close()


def test_a_job_cannot_regain_capabilities_by_exec(zygote):
    worker = job(zygote, "grace")
    try:
        assert call(worker, "privileges") == {"CapEff": 0, "CapPrm": 0, "CapBnd": 0}
    finally:
        worker.close()


def test_a_job_sees_only_its_own_processes_and_no_other_job_through_proc(zygote):
    reference, student = job(zygote, "reference"), job(zygote, "heidi")
    try:
        assert call(student, "processes") == [1]
        # The reference job is running; its folder must not be reachable through /proc.
        assert call(student, "reach_other_jobs", timeout=30) == []
    finally:
        reference.close()
        student.close()


def test_dev_shm_is_private_to_each_job(zygote):
    first, second = job(zygote, "ivan"), job(zygote, "judy")
    try:
        answer, _ = first.request(
            {"op": "call", "module": "probe", "function": "share_memory", "args": ["a"]}
        )
        assert answer["value"] == []
        answer, _ = second.request(
            {"op": "call", "module": "probe", "function": "share_memory", "args": ["b"]}
        )
        assert answer["value"] == []  # the first job's note is not there
    finally:
        first.close()
        second.close()


def test_a_job_that_ignores_signals_and_clears_its_death_signal_is_killed_whole(zygote):
    worker = job(zygote, "mallory")
    call(worker, "escape_kill")
    worker.kill()
    assert not worker.alive
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "fslab-escape-marker" not in ps


def test_dev_is_read_only_and_keyrings_are_refused(zygote):
    import errno

    worker = job(zygote, "oscar")
    try:
        assert call(worker, "write_dev") == errno.EROFS
        assert call(worker, "keyring") == [-1, errno.EPERM]
    finally:
        worker.close()


def test_a_job_that_uses_up_the_process_limit_cannot_break_the_factory(zygote):
    bomber = job(zygote, "peggy")
    assert 10 < call(bomber, "fork_bomb", timeout=60) < Limits().max_processes
    if bomber.cgroup is not None:  # the bomb fills its own group only: others still start
        other = job(zygote, "while-the-bomb-runs")
        assert call(other, "look")["pid"] == 1
        other.close()
    else:
        with pytest.raises(WorkerError):
            job(zygote, "while-the-bomb-runs")  # refused cleanly: no room for another process
    bomber.kill()
    again = job(zygote, "trent")  # the factory survived and has room again
    try:
        assert call(again, "look")["pid"] == 1
    finally:
        again.close()
