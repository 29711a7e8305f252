"""`grade bench` / `make bench`: the speed figures of issue "fast grading", one JSON line each.

Every figure is a ratio of two timings taken in the same run on the same machine, so machine
noise mostly cancels; the raw seconds are printed too. Benchmarks are not tests: nothing here
asserts, and `make test` does not run it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

from grader.course.kit import Kit
from grader.course.reference_repo import REDIS_ENV, open_store, run_setup

TARGETS = {
    "batch_per_submission_vs_import_feast": 0.75,
    "check_ex2_vs_import_feast": 1.0,
    "pit_join_1m_vs_feast_duckdb": 0.2,
    "batch_peak_memory_gib": 4.0,
    "check_all_exercises_vs_import_feast": 2.0,
    "check_ex1_vs_import_feast": 1.2,
    "watch_regrade_ex1_fraud_design_vs_import_feast": 0.5,
    "watch_regrade_ex2_pit_join_vs_import_feast": 0.15,
    "watch_regrade_ex3_freshness_vs_import_feast": 0.5,
    "watch_regrade_ex4_feast_e2e_vs_import_feast": 0.5,
    "cluster_per_submission_vs_local_batch": 1.25,
}


def _wall(cmd: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def import_feast_seconds() -> float:
    """Wall time of `python -c "import feast"` (best of two, to skip a cold disk cache)."""
    return min(_wall([sys.executable, "-c", "import feast"]) for _ in range(2))


class PeakMemory(threading.Thread):
    """Samples the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self.stop = interval, 0, threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)


def line(name: str, value: float, **raw: float) -> dict:
    """One figure: its value, its target (where it has one) and the raw timings."""
    target = TARGETS.get(name)
    out = {"figure": name, "value": round(value, 4)}
    if target is not None:
        out |= {"target": target, "met": value <= target}
    out["raw"] = {k: round(v, 4) for k, v in raw.items()}
    return out


def bench_batch(kit: Kit, import_s: float, copies: int = 12) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="fslab-bench-") as tmp:
        subs = Path(tmp) / "subs"
        for i in range(copies):
            shutil.copytree(kit.root / "solutions", subs / f"copy{i:02d}")
        out = Path(tmp) / "out"
        memory = PeakMemory()
        memory.start()
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "grader.cli", "--kit", str(kit.root), "batch", str(subs),
             "--out", str(out), "--workers", "2"],
            check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        memory.stop.set()
        memory.join()
        scores = [json.loads(p.read_text())["score"] for p in out.glob("copy*.json")]
    per = seconds / copies
    return [
        line("batch_per_submission_vs_import_feast", per / import_s, batch_s=seconds,
             per_submission_s=per, import_feast_s=import_s, all_full_marks=float(
                 all(s == kit.total_points for s in scores))),
        line("batch_peak_memory_gib", memory.peak / 2**30),
    ]  # fmt: skip


@contextmanager
def loopback_cluster(kit: Kit, workers: int) -> Iterator[str]:
    """A throw-away Dask scheduler and `workers` single-threaded workers on loopback, grading
    with `kit`; yields the scheduler's address."""
    ports = []
    for _ in range(workers + 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    address = f"tcp://127.0.0.1:{ports[0]}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": kit.root}
    env = {**os.environ, "FSLAB_KIT": str(kit.root)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports[0]),
                "--no-dashboard",
            ],
            **quiet,
        )  # fmt: skip
    ]
    try:
        for port in ports[1:]:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--worker-port",
                        str(port),
                    ],
                    env=env,
                    **quiet,
                )  # fmt: skip
            )
        for port in ports:  # every process listens before the clock starts
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.1)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bench_cluster(kit: Kit, copies: int = 12, slots: int = 2) -> list[dict]:
    """Seconds per submission of `grade batch --scheduler` on a loopback cluster of `slots`
    single-threaded workers against the local warm batch with `--workers slots`, on the same
    submissions in the same run. Both include starting their warm factories; the cluster's
    worker processes are started (not timed) before its batch, as a real cluster's are."""
    with tempfile.TemporaryDirectory(prefix="fslab-bench-") as tmp:
        subs = Path(tmp) / "subs"
        for i in range(copies):
            shutil.copytree(kit.root / "solutions", subs / f"copy{i:02d}")
        batch = [sys.executable, "-m", "grader.cli", "--kit", str(kit.root), "batch", str(subs)]
        local_s = _wall([*batch, "--out", str(Path(tmp) / "local"), "--workers", str(slots)])
        with loopback_cluster(kit, slots) as address:
            memory = PeakMemory()  # the client, the scheduler, the workers and all they start
            memory.start()
            cluster_s = _wall([*batch, "--out", str(Path(tmp) / "dask"), "--scheduler", address])
            memory.stop.set()
            memory.join()
        same = all(
            json.loads((Path(tmp) / "dask" / p.name).read_text())["score"]
            == json.loads(p.read_text())["score"]
            for p in (Path(tmp) / "local").glob("copy*.json")
        )
    return [
        line("cluster_per_submission_vs_local_batch", cluster_s / local_s,
             cluster_per_submission_s=cluster_s / copies, local_per_submission_s=local_s / copies,
             slots=slots, same_scores=float(same)),
        line("cluster_peak_memory_gib_per_slot", memory.peak / 2**30 / slots),
    ]  # fmt: skip


def _check(kit: Kit, *slugs: str) -> float:
    """Wall time of `grade check SLUGS --submission solutions`."""
    with tempfile.TemporaryDirectory() as tmp:
        return _wall(
            [sys.executable, "-m", "grader.cli", "--kit", str(kit.root), "check", *slugs,
             "--submission", str(kit.root / "solutions"), "--json", str(Path(tmp) / "s.json")],
        )  # fmt: skip


def fill_oracle_cache(kit: Kit) -> dict:
    """Grade the solutions once, so that every oracle (Feast's answers, ex3's repos) is in the
    cache: the figures below are the steady state of a kit in use, where the cache is built
    once per data and suite version. This first run's time is reported as it is."""
    return line("first_check_all_exercises_s", _check(kit))


def bench_check(kit: Kit, import_s: float) -> dict:
    seconds = _check(kit, "ex2_pit_join")
    return line("check_ex2_vs_import_feast", seconds / import_s, check_s=seconds,
                import_feast_s=import_s)  # fmt: skip


def bench_cold_check(kit: Kit, import_s: float) -> list[dict]:
    """A cold `grade check` (a new process, oracle cache warm) of all four and of ex1."""
    every = _check(kit)
    ex1 = _check(kit, "ex1_fraud_design")
    return [
        line("check_all_exercises_vs_import_feast", every / import_s, check_s=every,
             import_feast_s=import_s),
        line("check_ex1_vs_import_feast", ex1 / import_s, check_s=ex1, import_feast_s=import_s),
    ]  # fmt: skip


def watch_regrades(kit_root: str, submission: str, out: str) -> None:
    """In a fresh process, as `grade watch` runs: start the session, grade everything once,
    then time a one-exercise regrade of each exercise; writes {slug: [seconds, score]}."""
    from grader.course.kit import load_kit
    from grader.grading.options import GradingOptions
    from grader.grading.session import Session

    kit = load_kit(Path(kit_root))
    slugs = [ex.slug for ex in kit.exercises]
    session = Session(kit, Path(submission), slugs, GradingOptions()).start()
    timings = {}
    try:
        session.grade(slugs)
        for slug in slugs:
            started = time.perf_counter()
            card = session.grade([slug])
            timings[slug] = [time.perf_counter() - started, card.score]
    finally:
        session.close()
    Path(out).write_text(json.dumps(timings))


def bench_watch(kit: Kit, import_s: float) -> list[dict]:
    """A one-exercise regrade in `grade watch` of each exercise (the solutions)."""
    with tempfile.TemporaryDirectory(prefix="fslab-bench-watch-") as tmp:
        out = Path(tmp) / "watch.json"
        code = "import sys; from grader.classroom import bench; bench.watch_regrades(*sys.argv[1:])"
        subprocess.run(
            [sys.executable, "-c", code, str(kit.root), str(kit.root / "solutions"), str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        timings = json.loads(out.read_text())
    return [
        line(f"watch_regrade_{slug}_vs_import_feast", seconds / import_s, regrade_s=seconds,
             import_feast_s=import_s, score=score)
        for slug, (seconds, score) in timings.items()
    ]  # fmt: skip


def _entity_frame(kit: Kit, rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": rng.integers(1, 520, rows),
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 95 * 86_400, rows), "s"),
        }
    )


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` timings of `work()` (the usual way to time code: noise only adds)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def bench_pit_join(kit: Kit, rows: int = 1_000_000) -> list[dict]:
    import importlib.util

    import pandas as pd

    path = kit.root / "solutions" / "ex2_pit_join" / "pit_join.py"
    spec = importlib.util.spec_from_file_location("bench_pit_join", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entity = _entity_frame(kit, rows)
    features = pd.read_parquet(kit.data_dir / "user_features.parquet")
    names = ["daily_spend", "num_sessions", "avg_session_duration_min", "items_viewed",
             "items_purchased", "is_premium"]  # fmt: skip
    ours = best_of(
        3,
        lambda: module.point_in_time_join(
            entity, features, ttl=pd.Timedelta(days=7), feature_names=names
        ),
    )
    store = open_store(kit)
    refs = [f"user_activity:{n}" for n in names]
    feast_s = best_of(
        3, lambda: store.get_historical_features(entity_df=entity, features=refs).to_df()
    )
    small = _entity_frame(kit, 100_000)
    started = time.perf_counter()
    store.get_historical_features(entity_df=small, features=refs).to_df()
    hist_s = time.perf_counter() - started
    return [
        line("pit_join_1m_vs_feast_duckdb", ours / feast_s, reference_s=ours, feast_s=feast_s),
        line("historical_retrieval_100k_rows_s", hist_s),
    ]


def _latencies(get: Callable[[], object], n: int = 1000) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        get()
        samples.append((time.perf_counter() - started) * 1000)
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throw-away redis-server on a free loopback port, or None where it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_online(kit: Kit) -> list[dict]:
    refs = ["user_activity:daily_spend", "user_activity:num_sessions"]
    out = []
    store = open_store(kit)
    p50, p99 = _latencies(lambda: store.get_online_features(refs, [{"user_id": 7}]).to_dict())
    out.append(line("online_lookup_sqlite_ms", p50, p50_ms=p50, p99_ms=p99))
    with redis_server() as address:
        if address:
            os.environ[REDIS_ENV] = address
            with redirect_stdout(sys.stderr):
                run_setup(kit, online="redis", echo=lambda _l: None)
            rstore = open_store(kit, "redis")
            p50, p99 = _latencies(
                lambda: rstore.get_online_features(refs, [{"user_id": 7}]).to_dict()
            )
            out.append(line("online_lookup_redis_ms", p50, p50_ms=p50, p99_ms=p99))
    return out


def run_bench(kit: Kit, emit: Callable[[dict], None], *, quick: bool = False) -> None:
    """Measure every figure and `emit` each as soon as it is known."""
    with redirect_stdout(sys.stderr):  # Feast prints materialization progress
        run_setup(kit, echo=lambda _l: None)
    import_s = import_feast_seconds()
    emit(line("import_feast_s", import_s))
    emit(fill_oracle_cache(kit))
    emit(bench_check(kit, import_s))
    for figure in bench_cold_check(kit, import_s) + bench_watch(kit, import_s):
        emit(figure)
    for figure in bench_pit_join(kit, 200_000 if quick else 1_000_000):
        emit(figure)
    for figure in bench_online(kit):
        emit(figure)
    for figure in bench_batch(kit, import_s, copies=4 if quick else 12):
        emit(figure)
    for figure in bench_cluster(kit, copies=4 if quick else 12):
        emit(figure)
