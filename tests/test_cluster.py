"""`grade batch --scheduler` on a real loopback Dask cluster whose workers share nothing with
the client: a scheduler and single-threaded workers started in another folder, from a second
copy of the grader at another path, in a private mount namespace where the client's kit, its
submissions and its outputs (this test session's temp folders) and the checkout's own
`grader/` package are hidden under empty tmpfs mounts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.classroom.batch import BatchError, run_batch
from grader.cli import cli
from grader.course.reference_repo import run_setup
from grader.grading.options import GradingOptions
from grader.sandbox.bubblewrap import Limits, bwrap_works

from kit_helpers import KIT_ROOT, copy_kit, free_port

pytestmark = pytest.mark.slow

OPTIONS = GradingOptions(limits=Limits(call_timeout_s=60), submission_timeout_s=300)


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nothing listens on port {port} (exit {proc.poll()})")
            time.sleep(0.1)


@dataclass
class Cluster:
    """A loopback scheduler and the workers started on it, none of them seeing `hidden`."""

    root: Path
    """The workers' side: their installed grader, their kit, cache and Dask folders."""
    env: dict[str, str]
    hidden: list[Path]
    scheduler_port: int = 0
    scheduler: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.scheduler_port}"

    def _spawn(self, argv: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            self.command([sys.executable, "-m", *argv]), cwd=self.root / "kit", env=env,
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(self.root / "logs.txt", "ab"),  # noqa: SIM115
        )  # fmt: skip

    def command(self, argv: list[str]) -> list[str]:
        """`argv` in a new mount namespace with every `hidden` folder covered by a tmpfs."""
        mounts = " && ".join(f'mount -t tmpfs -o size=1m,mode=0700 fslab-hidden "${i + 1}"'
                             for i in range(len(self.hidden)))  # fmt: skip
        script = f'{mounts} && shift {len(self.hidden)} && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                *map(str, self.hidden), *argv]  # fmt: skip

    def start_scheduler(self) -> None:
        self.scheduler_port = self.scheduler_port or free_port()
        self.scheduler = self._spawn(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
             str(self.scheduler_port), "--no-dashboard"], self.env,
        )  # fmt: skip
        _wait_port(self.scheduler_port, self.scheduler)

    def start_worker(self, name: str, kit: str = "kit") -> str:
        """A single-threaded worker grading with the kit at `root/kit`; returns its address."""
        port = free_port()
        env = {**self.env, "FSLAB_KIT": str(self.root / kit)}
        self.workers[name] = self._spawn(
            ["distributed.cli.dask_worker", self.address, "--name", name, "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--worker-port", str(port),
             "--local-directory", str(self.root / "dask")], env,
        )  # fmt: skip
        _wait_port(port, self.workers[name])
        return f"tcp://127.0.0.1:{port}"

    def kill(self, proc: subprocess.Popen | None) -> None:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            self.kill(proc)


def _install_worker_side(lab, root: Path) -> None:
    """The worker's kit: a copy of the grader package at `root/site` (on the workers'
    PYTHONPATH, so it shadows the checkout's editable install), the course files, and the same
    generated data. (A pip install would need a newer setuptools than this venv's.)"""
    shutil.copytree(
        KIT_ROOT / "grader", root / "site" / "grader", ignore=shutil.ignore_patterns("__py*")
    )
    kit = copy_kit(root / "kit")
    shutil.copytree(lab.data_dir, kit.data_dir, dirs_exist_ok=True)
    run_setup(kit, seed=42, online="sqlite", echo=lambda _line: None)  # data kept: current
    # A kit whose data were generated with another seed: the mismatch to refuse.
    copy_kit(root / "odd-kit")
    shutil.copytree(lab.data_dir, root / "odd-kit" / "data", dirs_exist_ok=True)
    manifest = root / "odd-kit" / "data" / "generated.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "seed": 7}))
    for folder in ("cache", "dask", "home"):
        (root / folder).mkdir()


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory) -> Iterator[Cluster]:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("hiding the client's folders from the workers needs root and unshare")
    root = Path(tempfile.mkdtemp(prefix="fslab-cluster-", dir="/tmp"))
    try:
        _install_worker_side(lab, root)
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(root / "site"),
            "HOME": str(root / "home"),
            "FSLAB_CACHE_DIR": str(root / "cache"),
        }
        hidden = [tmp_path_factory.getbasetemp(), KIT_ROOT / "grader"]
        cluster = Cluster(root, env, hidden)
        cluster.start_scheduler()
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        yield cluster
    finally:
        if "cluster" in locals():
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def klass(lab, tmp_path_factory) -> Path:
    """Six submissions, as folders and zips, one of them crashing its own grading."""
    folder = tmp_path_factory.mktemp("cluster-class") / "subs"
    good = lab.root / "solutions" / "ex2_pit_join" / "pit_join.py"
    (folder / "good" / "deep").mkdir(parents=True)
    shutil.copy2(good, folder / "good" / "deep")
    with zipfile.ZipFile(folder / "zipped.zip", "w") as archive:
        archive.write(good, "work/pit_join.py")
        archive.write(lab.root / "exercises" / "ex3_freshness" / "freshness.py", "freshness.py")
    (folder / "wrong").mkdir()
    (folder / "wrong" / "pit_join.py").write_text(
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n    return entity_df.copy()\n"
    )
    (folder / "crash").mkdir()
    (folder / "crash" / "pit_join.py").write_text(
        "import os\n\ndef point_in_time_join(*args, **kwargs):\n    os.kill(os.getpid(), 9)\n"
    )
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (folder / "empty").mkdir()
    (folder / "empty" / "notes.txt").write_text("nothing here yet")
    return folder


@pytest.fixture(scope="module")
def local_cards(lab, klass, tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster-local") / "out"
    return {c.submission: c for c in run_batch(lab, klass, out, workers=2, options=OPTIONS)}


def comparable(card) -> dict:
    """What must not depend on where a submission was graded."""
    return {
        "status": card.status,
        "score": card.score,
        "exercises": [
            (e.slug, e.status, e.score, [(t.id, t.status, t.points) for t in e.tests])
            for e in card.exercises
        ],
    }


def differences(cards, local_cards) -> list[str]:
    """Where `cards` differ from the local batch's, one readable line each."""
    found = []
    by_name = {c.submission: c for c in cards}
    if set(by_name) != set(local_cards):
        found.append(f"submissions {sorted(by_name)} != {sorted(local_cards)}")
    for name in sorted(set(by_name) & set(local_cards)):
        ours, local = by_name[name], local_cards[name]
        if (ours.status, ours.score) != (local.status, local.score):
            found.append(f"{name}: {ours.status} {ours.score} ({ours.error}) != "
                         f"{local.status} {local.score} ({local.error})")  # fmt: skip
        for a, b in zip(ours.exercises, local.exercises, strict=True):
            for t, u in zip(a.tests, b.tests, strict=False):
                if (t.id, t.status, t.points) != (u.id, u.status, u.points):
                    found.append(f"{name} {t.id}: {t.status} {t.feedback[:200]!r} != "
                                 f"{u.id} {u.status} {u.feedback[:200]!r}")  # fmt: skip
        if comparable(ours) != comparable(local) and not found:
            found.append(f"{name}: {comparable(ours)} != {comparable(local)}")
    return found


def test_the_workers_run_their_own_grader_and_cannot_see_the_client_files(lab, cluster, klass):
    probe = subprocess.run(
        cluster.command([sys.executable, "-c", "import grader, sys; print(grader.__file__); "
                         "import os; os.listdir(sys.argv[1])", str(klass)]),
        env=cluster.env, capture_output=True, text=True, cwd=cluster.root,
    )  # fmt: skip
    assert probe.stdout.startswith(str(cluster.root / "site" / "grader")), probe.stderr
    assert probe.returncode != 0 and "FileNotFoundError" in probe.stderr
    assert klass.is_dir() and lab.root.is_dir()  # ... which the client does see


def test_a_cluster_batch_gives_the_local_scorecards(lab, cluster, klass, local_cards, tmp_path):
    out = tmp_path / "out"
    cards = run_batch(lab, klass, out, options=OPTIONS, scheduler=cluster.address)
    assert differences(cards, local_cards) == []
    by_name = {c.submission: c for c in cards}
    assert by_name["good"].exercises[1].status == "passed" and by_name["good"].score > 0
    assert by_name["crash"].exercises[1].status in ("error", "failed")
    assert by_name["broken"].status == "error" and "zip" in by_name["broken"].error
    expected = "full" if bwrap_works() else "reduced"
    assert {c.isolation for c in cards} == {expected}
    for card in cards:  # the client wrote every output file
        assert json.loads((out / f"{card.submission}.json").read_text())["score"] == card.score
        assert (out / f"{card.submission}.gradescope.json").is_file()
    assert len((out / "gradebook.csv").read_text().splitlines()) == len(cards) + 1


def test_a_worker_killed_mid_batch_loses_nothing(lab, cluster, klass, local_cards, tmp_path):
    killed = threading.Event()

    def on_done(card, done, total) -> None:
        if not killed.is_set():  # the first scorecard is in: the other worker is grading
            killed.set()
            cluster.kill(cluster.workers["w1"])

    out = tmp_path / "out"
    cards = run_batch(lab, klass, out, options=OPTIONS, scheduler=cluster.address, on_done=on_done)
    assert killed.is_set() and cluster.workers["w1"].poll() is not None
    assert differences(cards, local_cards) == []
    assert sorted(p.stem for p in out.glob("*.gradescope.json")) == sorted(
        f"{name}.gradescope" for name in local_cards
    )


def test_a_worker_with_other_data_is_refused_by_name(lab, cluster, klass, tmp_path):
    odd = cluster.start_worker("odd", kit="odd-kit")
    try:
        out = tmp_path / "out"
        result = CliRunner().invoke(
            cli,
            ["--kit", str(lab.root), "batch", str(klass), "--out", str(out),
             "--scheduler", cluster.address],
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        message = result.output.strip().splitlines()[-1]
        assert odd in message and "seed 7" in message, message
        assert not list(out.glob("*.json"))  # refused before grading anything
        with pytest.raises(BatchError, match=odd):
            run_batch(lab, klass, out, options=OPTIONS, scheduler=cluster.address)
    finally:
        cluster.kill(cluster.workers.pop("odd"))


def test_a_lost_scheduler_ends_the_batch_in_one_line_and_resume_finishes_it(
    lab, cluster, klass, local_cards, tmp_path
):
    def on_done(card, done, total) -> None:
        if done == 1:
            cluster.kill(cluster.scheduler)

    out = tmp_path / "out"
    with pytest.raises(BatchError, match="lost the Dask scheduler .* --resume"):
        run_batch(lab, klass, out, options=OPTIONS, scheduler=cluster.address, on_done=on_done)
    written = [p for p in out.glob("*.json") if not p.name.endswith(".gradescope.json")]
    assert written  # the scorecards that came back before are written
    # --resume keeps what was graded; an error card (the broken zip) is graded again.
    graded = [p for p in written if json.loads(p.read_text())["status"] == "graded"]
    kept = {p.name: p.stat().st_mtime_ns for p in graded}
    kept |= {f"{p.stem}.gradescope.json": (out / f"{p.stem}.gradescope.json").stat().st_mtime_ns
             for p in graded}  # fmt: skip
    cluster.start_scheduler()  # same address; the old workers are gone with the old scheduler
    cluster.start_worker("w3")
    cards = run_batch(lab, klass, out, options=OPTIONS, scheduler=cluster.address, resume=True)
    assert differences(cards, local_cards) == []
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept
