"""The warm worker factory: forked workers are as isolated as cold ones."""

from __future__ import annotations

import subprocess
import time

import pytest

from grader.sandbox import Limits, WorkerTimeout
from grader.warm import Zygote, ZygoteWorker

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
"""


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(preload=("pandas",), limits=Limits(call_timeout_s=10)).start().wait_ready()
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
