"""The sandboxed worker holds against hostile student code (called directly, no suites)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from grader.grading.suites import PACKAGE_DIR
from grader.sandbox.bubblewrap import Limits, bwrap_works
from grader.sandbox.proxy import StudentCrash, StudentError, StudentProxy, StudentTimeout

KIT_ROOT = Path(__file__).resolve().parent.parent


def make_proxy(tmp_path: Path, source: str, **kwargs) -> StudentProxy:
    folder = tmp_path / "work"
    folder.mkdir()
    path = folder / "attack.py"
    path.write_text(textwrap.dedent(source))
    limits = kwargs.pop("limits", Limits(call_timeout_s=20))
    return StudentProxy("attack", path, limits=limits, **kwargs)


@pytest.fixture
def proxy_factory(tmp_path):
    made: list[StudentProxy] = []

    def make(source: str, **kwargs) -> StudentProxy:
        proxy = make_proxy(tmp_path, source, **kwargs)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def test_bubblewrap_is_available_for_full_isolation():
    # make install provides it; without it every test below would run in reduced mode.
    assert bwrap_works(), "bwrap is missing or cannot create namespaces here"


def test_frames_round_trip_as_real_dataframes(proxy_factory):
    proxy = proxy_factory(
        """
        import pandas as pd
        def double(df, factor):
            return df.assign(y=df["x"] * factor)
        """
    )
    got = proxy.double(pd.DataFrame({"x": [1, 2]}, index=[10, 20]), 3)
    assert type(got) is pd.DataFrame
    assert got["y"].tolist() == [3, 6] and got.index.tolist() == [10, 20]


def test_a_rigged_eq_cannot_reach_the_grader(proxy_factory):
    proxy = proxy_factory(
        """
        import pandas as pd
        class Liar(pd.DataFrame):
            def __eq__(self, other):
                return True
            def equals(self, other):
                return True
        class Anything:
            def __eq__(self, other):
                return True
        def frame():
            return Liar({"x": [0]})
        def thing():
            return Anything()
        """
    )
    got = proxy.frame()
    assert type(got) is pd.DataFrame
    assert not got.equals(pd.DataFrame({"x": [1]}))
    with pytest.raises(StudentError) as info:
        proxy.thing()
    assert "cannot read" in str(info.value)


def test_a_hang_is_stopped_by_the_call_timeout(proxy_factory):
    proxy = proxy_factory(
        "def spin():\n    while True:\n        pass\n", limits=Limits(call_timeout_s=2)
    )
    started = time.monotonic()
    with pytest.raises(StudentTimeout):
        proxy.spin()
    assert time.monotonic() - started < 15


def test_exit_and_memory_hogs_crash_only_their_worker(proxy_factory):
    proxy = proxy_factory(
        """
        import os, sys
        def leave():
            os._exit(3)
        def hog():
            blocks = []
            while True:
                blocks.append(bytearray(256 * 1024 * 1024))
        def polite_exit():
            sys.exit(0)
        def fine():
            return 42
        """,
        limits=Limits(call_timeout_s=30, memory_bytes=2 << 30),
    )
    with pytest.raises(StudentCrash):
        proxy.leave()
    assert proxy.fine() == 42  # a fresh worker takes over
    with pytest.raises((StudentError, StudentCrash)):
        proxy.hog()
    with pytest.raises(StudentError):
        proxy.polite_exit()
    assert proxy.fine() == 42


def test_the_sandbox_hides_the_kit_suites_solutions_and_network(proxy_factory):
    hidden = PACKAGE_DIR / "suites" / "ex2_pit_join" / "test_public.py"
    proxy = proxy_factory(
        f"""
        import os, socket
        def peek():
            seen = {{}}
            for path in [{str(hidden)!r}, {str(KIT_ROOT / "solutions")!r},
                         {str(KIT_ROOT / "course.toml")!r}, {str(KIT_ROOT / ".git")!r},
                         "/home", "/etc/passwd", "/etc/shadow"]:
                seen[path] = os.path.exists(path)
            try:
                socket.create_connection(("127.0.0.1", 22), timeout=1)
                seen["net"] = True
            except OSError:
                seen["net"] = False
            seen["uid"] = os.getuid()
            return seen
        """
    )
    seen = proxy.peek()
    assert not any(v for k, v in seen.items() if k != "uid"), seen
    assert seen["uid"] != 0


def test_output_floods_are_truncated(proxy_factory):
    proxy = proxy_factory(
        """
        import os
        def shout():
            for _ in range(20000):
                print("x" * 1000)
            os.write(1, b"y" * 10_000_000)
            return "done"
        """
    )
    assert proxy.shout() == "done"
    assert len(proxy.last.stdout) < 70_000 and "more characters not shown" in proxy.last.stdout


def _processes_matching(word: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if word in line and "ps -eo" not in line]


def test_detached_processes_and_fork_bombs_die_with_the_worker(proxy_factory, tmp_path):
    target = tmp_path / "outside.txt"
    proxy = proxy_factory(
        f"""
        import os, subprocess
        def detach():
            script = "sleep 3; echo pwned > {target}; sleep 600 # fslab-marker"
            subprocess.Popen(["sh", "-c", script], start_new_session=True)
            return os.getpid()
        def bomb():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """,
        limits=Limits(call_timeout_s=3),
    )
    proxy.detach()
    with pytest.raises((StudentTimeout, StudentCrash)):
        proxy.bomb()
    proxy.close()
    time.sleep(4)
    assert not target.exists()
    assert _processes_matching("fslab-marker") == []


def test_monkeypatching_pandas_in_the_worker_does_not_touch_the_grader(proxy_factory):
    proxy = proxy_factory(
        """
        import pandas, pandas.testing
        pandas.testing.assert_frame_equal = lambda *a, **k: None
        pandas.DataFrame.equals = lambda self, other: True
        def frame():
            return pandas.DataFrame({"x": [0]})
        """
    )
    got = proxy.frame()
    assert not got.equals(pd.DataFrame({"x": [1]}))
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(got, pd.DataFrame({"x": [1]}))


def test_the_worker_can_write_only_its_private_folder(proxy_factory):
    proxy = proxy_factory(
        f"""
        import os
        def scribble():
            results = {{}}
            for path in ["here.txt", {str(KIT_ROOT / "scribble.txt")!r}, "/usr/scribble.txt",
                         {str(Path(os.__file__).parent / "scribble.txt")!r}]:
                try:
                    with open(path, "w") as fh:
                        fh.write("x")
                    results[path] = True
                except OSError:
                    results[path] = False
            return results
        """
    )
    results = proxy.scribble()
    assert results.pop("here.txt") is True
    assert os.path.exists(proxy.workdir / "here.txt")
    # Python's and the system's folders are read-only inside; nothing reaches the host.
    assert not any(v for k, v in results.items() if "/usr/" in k or "python3" in k), results
    assert not (KIT_ROOT / "scribble.txt").exists()


KEYRING_ATTACK = """
import ctypes, platform
from grader.sandbox.seccomp import _ARCHES
def keyring_and_namespaces():
    libc = ctypes.CDLL(None, use_errno=True)
    numbers = _ARCHES[platform.machine()][1]
    add = libc.syscall(numbers["add_key"], b"user", b"fslab", b"answers", 7, -3)
    add_errno = ctypes.get_errno()
    new_user_ns = libc.unshare(0x10000000)
    return [add, add_errno, new_user_ns, ctypes.get_errno()]
"""


def test_keyrings_and_new_namespaces_are_refused_to_student_code(proxy_factory):
    # The session keyring is the grader's own; a key stored there would outlive the worker.
    import errno

    assert proxy_factory(KEYRING_ATTACK).keyring_and_namespaces() == [
        -1, errno.EPERM, -1, errno.EPERM
    ]  # fmt: skip


def test_calls_report_the_workers_cpu_time_apart_from_wall_time(proxy_factory):
    # A timing baseline in CPU seconds cannot be inflated by other busy processes.
    proxy = proxy_factory(
        """
        import time
        def wait():
            time.sleep(1)
        def work():
            end = time.process_time() + 0.5
            while time.process_time() < end:
                pass
        """
    )
    proxy.wait()
    assert proxy.last.seconds >= 1 and proxy.last.cpu_seconds < 0.3
    proxy.work()
    assert 0.5 <= proxy.last.cpu_seconds <= proxy.last.seconds
