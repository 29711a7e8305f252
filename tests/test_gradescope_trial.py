"""The Gradescope bundle tried here as Gradescope runs it: setup.sh, then run_autograder under a
768 MiB memory cgroup, one CPU and a bwrap that fails its probe (reduced isolation, the worker
as an unprivileged user). The solutions score 100, the stubs 0, and a hostile submission
(stealing solutions and hidden suites, forging results, the network, a fork bomb, unbounded
memory) scores only what it earned honestly, changes nothing and still gets a results.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import psutil
import pytest

from grader.classroom.gradescope_try import Trial, render_trial
from grader.course.kit import load_kit
from grader.grading.gradescope_results import SCHEMA_PATH
from grader.sandbox.bubblewrap import SANDBOX_USER, sandbox_user

from kit_helpers import stealing_pit_join

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the trial's memory cgroup and user need root"),
]
SCHEMA = json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def trial(kit_root, lab) -> Iterator[Trial]:
    # The bundle of the kit under test (its own grader and suites), the session's data, in a
    # folder the student user can reach (pytest's own temp folders are root's alone).
    kit = load_kit(kit_root)
    folder = Path(tempfile.mkdtemp(prefix="fslab-trial-"))
    try:
        trial = Trial(kit, folder, data_dir=lab.data_dir)
        trial.setup(echo=lambda _line: None)
        yield trial
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _by_exercise(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in results["tests"]:
        key = test["number"].split(".")[0]
        scores[key] = scores.get(key, 0.0) + test["score"]
    return scores


def test_setup_makes_the_unprivileged_user_the_worker_runs_as(trial):
    uid, _gid = sandbox_user()
    assert uid != 0 and uid == __import__("pwd").getpwnam(SANDBOX_USER).pw_uid


def test_the_solutions_score_100_within_the_memory_target(trial, lab):
    run = trial.run(lab.root / "solutions")
    shown = render_trial(run)
    assert run.results is not None, shown
    jsonschema.validate(run.results, SCHEMA)
    lost = [t for t in run.results["tests"] if t["score"] < t["max_score"]]
    # One CPU for everything on a busy 2-core machine: ex2's speed test (the submission's
    # wall time against 20 x the reference's CPU time) is the one check load can fail.
    assert all(
        "large join runs vectorised" in t["name"] and "it took" in t["output"] for t in lost
    ), shown
    assert run.results["score"] >= 99, shown
    assert run.results["extra_data"]["isolation"] == "reduced"
    assert "memory cgroup 768 MiB" in shown and "1 CPU" in shown
    # The whole trial ran inside the 768 MiB container (results, not "Killed"). The issue's
    # 600 MiB proportional-memory target is a figure to measure, not a unit test: it is not
    # met yet (835 MiB in one CI-like run) and is tracked on issue 16.
    assert run.peak_pss_bytes > 0, shown


def test_the_stubs_score_zero(trial, lab):
    run = trial.run(lab.root / "exercises")
    assert run.results is not None, render_trial(run)
    jsonschema.validate(run.results, SCHEMA)
    assert run.results["score"] == 0
    assert any("NotImplementedError" in t["output"] for t in run.results["tests"])


def steal(root: Path, host: Path) -> str:
    """An ex2 answer that steals from the trial's /autograder (`root`) and the checkout it was
    built from (`host`), and forges results."""
    return stealing_pit_join(
        prelude=f"ROOT, HOST = {str(root)!r}, {str(host)!r}",
        targets="""[ROOT + "/source/kit/solutions/ex2_pit_join/pit_join.py",
           HOST + "/solutions/ex2_pit_join/pit_join.py",
           ROOT + "/source/kit/grader/suites/ex2_pit_join/test_hidden.py",
           HOST + "/grader/suites/ex2_pit_join/test_hidden.py",
           *glob.glob("/tmp/fslab-grade-*/reference/ex2_pit_join/pit_join.py"),
           *glob.glob(ROOT + "/source/kit/.oracle-cache/*/*")]""",
        after_reading="""
for path, text in [(ROOT + "/results/results.json", '{"score": 100, "tests": []}'),
                   (ROOT + "/results/forged.txt", "x"),
                   (ROOT + "/source/kit/course.toml", "forged"),
                   (ROOT + "/source/kit/grader/suites/ex2_pit_join/test_hidden.py", "")]:
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError:
        pass""",
        failure="nothing to steal as uid {os.getuid()}",
    )


NETWORK_AND_FORK_BOMB = """
import os, socket
def check_freshness(*args, **kwargs):
    for family, address in [(socket.AF_INET, ("127.0.0.1", {port})),
                            (socket.AF_INET6, ("::1", {port}))]:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(address)
                sock.sendall(b"stolen")
        except OSError:
            pass
    while True:
        try:
            os.fork()
        except OSError:
            pass
def format_alerts(report):
    raise NotImplementedError
def main(argv=None):
    raise NotImplementedError
"""

MEMORY_HOG = """
def write_repo(repo_dir, data_path):
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))
def apply_repo(repo_dir):
    raise NotImplementedError
def materialize_online(repo_dir, start, end):
    raise NotImplementedError
def training_frame(repo_dir, entity_df, features):
    raise NotImplementedError
def online_features(repo_dir, user_ids, features):
    raise NotImplementedError
"""


class _Listener(threading.Thread):
    """A loopback TCP server that records every connection it gets."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass


def test_a_hostile_submission_scores_only_its_honest_exercise_and_changes_nothing(
    trial, lab, tmp_path, kit_root
):
    kit = trial.root / "source" / "kit"
    assert (kit / "grader" / "suites" / "ex2_pit_join" / "test_hidden.py").is_file()
    assert (kit / "solutions" / "ex2_pit_join" / "pit_join.py").is_file()
    before = {name: _tree_digest(kit / name) for name in ("solutions", "grader", "feature_repo")}
    course = (kit / "course.toml").read_bytes()
    listener = _Listener()
    sub = tmp_path / "hostile"
    sub.mkdir()
    shutil.copy2(lab.root / "solutions" / "ex1_fraud_design" / "fraud_design.py", sub)
    (sub / "pit_join.py").write_text(steal(trial.root, kit_root))
    (sub / "freshness.py").write_text(NETWORK_AND_FORK_BOMB.format(port=listener.port))
    (sub / "feast_e2e.py").write_text(MEMORY_HOG)
    try:
        run = trial.run(sub)
    finally:
        listener.done.set()
    shown = render_trial(run)
    results = run.results
    assert results is not None, shown  # complete results within 768 MiB, not "Killed"
    jsonschema.validate(results, SCHEMA)
    scores = _by_exercise(results)
    uid, _ = sandbox_user()
    ex2 = [t["output"] for t in results["tests"] if t["number"].startswith("2.")]
    assert any(f"nothing to steal as uid {uid}" in out for out in ex2), shown
    assert scores == {"1": 25.0, "2": 0.0, "3": 0.0, "4": 0.0}, shown
    assert results["score"] == 25.0
    ex4 = [line for line in results["output"].splitlines() if line.startswith("4. ")]
    assert ex4 and "(error)" in ex4[0] and "used more than" in ex4[0] and "MiB" in ex4[0], shown
    assert listener.connections == 0
    assert not (trial.root / "results" / "forged.txt").exists()
    assert (kit / "course.toml").read_bytes() == course
    after = {name: _tree_digest(kit / name) for name in ("solutions", "grader", "feature_repo")}
    assert after == before
    # Live ones: a killed orphan stays a zombie until the machine's init reaps it.
    leftovers = [
        p.pid
        for p in psutil.process_iter(["uids", "status"])
        if p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
    ]
    assert leftovers == []
