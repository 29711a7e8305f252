"""Budgets per submission, enforced by the kernel (issue 12, "budgets and privileges").

One golden hostile submission per finding, graded by a real `grade batch --workers 2
--memory 256 --disk 64` beside two honest submissions (the reference solutions), inside a
control group of the test's own so that the batch's peak memory is the kernel's figure:
five forked children allocating, memfd hoarding, filling the private folder with GBs and
200,000 files, a storm of 96 spinning processes, a huge valid Arrow answer. Each attack
reports what it achieved in its own error message, so the scorecard shows that the budget held.
The setuid finding, the grading child's own memory cap and the protocol's decoded-size cap
are tested directly (quicker, and exact).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from grader.sandbox import budgets, protocol
from grader.sandbox.bubblewrap import Limits, Worker, WorkerError, bwrap_works

KIT_ROOT = Path(__file__).resolve().parent.parent
MEMORY_MIB, DISK_MIB = 256, 64

needs_budgets = pytest.mark.skipif(
    not (budgets.available() and bwrap_works() and os.geteuid() == 0),
    reason="needs root, bubblewrap and cgroups (the grader reports reduced isolation then)",
)

# Attacks on ex2 (`pit_join.py`); each submission holds only that file. Each attacks once (a
# marker file in its folder), then fails fast, so that a batch of them stays quick.
ONCE = (
    "import os\n"
    "def first():\n"
    "    if os.path.exists('attacked'):\n"
    "        raise ValueError('attacked already')\n"
    "    open('attacked', 'w').close()\n"
)
ATTACKS = {
    "attack_children": ONCE
    + (
        "import time\n"
        "def point_in_time_join(*args, **kwargs):\n"
        "    first()\n"
        "    kids = []\n"
        "    for _ in range(5):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            hog = bytearray(200 << 20)\n"
        "            for i in range(0, len(hog), 4096):\n"
        "                hog[i] = 1\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "    codes = [os.waitpid(pid, 0)[1] for pid in kids]\n"
        "    raise ValueError(f'children ended with {codes}')\n"
    ),
    "attack_memfd": ONCE
    + (
        "def point_in_time_join(*args, **kwargs):\n"
        "    first()\n"
        "    fds, held = [], 0\n"
        "    for _ in range(40):\n"
        "        fd = os.memfd_create('hoard')\n"
        "        os.write(fd, b'x' * (32 << 20))\n"
        "        fds.append(fd)\n"
        "        held += 32\n"
        "    raise ValueError(f'held {held} MiB in memfds')\n"
    ),
    "attack_disk": ONCE
    + (
        "def point_in_time_join(*args, **kwargs):\n"
        "    first()\n"
        "    mib = files = 0\n"
        "    try:\n"
        "        with open('big.bin', 'wb') as out:\n"
        "            for _ in range(3 << 10):\n"
        "                out.write(b'x' * (1 << 20))\n"
        "                out.flush()\n"
        "                mib += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    os.remove('big.bin')\n"
        "    try:\n"
        "        for i in range(200_000):\n"
        "            open(f'f{i}', 'w').close()\n"
        "            files += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    raise ValueError(f'wrote {mib} MiB and {files} files')\n"
    ),
    "attack_spin": (
        "import os, time\n"
        "def point_in_time_join(*args, **kwargs):\n"
        "    if not os.path.exists('spinning'):\n"
        "        open('spinning', 'w').close()\n"
        "        for _ in range(96):\n"
        "            if os.fork() == 0:\n"
        "                os.setsid()\n"
        "                while True:\n"
        "                    pass\n"
        "    time.sleep(3)\n"
        "    raise ValueError('spinning')\n"
    ),
    "attack_arrow": ONCE
    + (
        "import numpy as np, pandas as pd, pyarrow as pa\n"
        "ROWS = 6_000_000\n"
        "def point_in_time_join(*args, **kwargs):\n"
        "    first()\n"
        "    times = pa.array(np.zeros(ROWS, 'int64')).cast(pa.time64('us'))\n"
        "    columns = {'t': pd.arrays.ArrowExtensionArray(times)}\n"
        "    for i in range(12):\n"
        "        columns[f'n{i}'] = pd.arrays.ArrowExtensionArray(pa.nulls(ROWS))\n"
        "    return pd.DataFrame(columns)\n"
    ),
}
HONEST = KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py"


def _mounts() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def _file_names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.iterdir()}


@pytest.fixture(scope="module")
def batch(lab, tmp_path_factory):
    if not (budgets.available() and bwrap_works() and os.geteuid() == 0):
        pytest.skip("needs root, bubblewrap and cgroups")
    root = tmp_path_factory.mktemp("budgets")
    subs, out = root / "submissions", root / "results"
    subs.mkdir()
    # Sorted ids decide the order: the spin storm starts beside an honest submission.
    for name in ("a_honest", "c_honest"):
        (subs / name).mkdir()
        shutil.copy2(HONEST, subs / name / "pit_join.py")
    for name, source in ATTACKS.items():
        folder = subs / ("b_" + name if name == "attack_spin" else name)
        folder.mkdir()
        (folder / "pit_join.py").write_text(source)
    # The batch's temp folders (pools, work folders, stages) go here: all gone afterwards.
    tmp = root / "tmp"
    tmp.mkdir()
    mounts_before = _mounts()
    group = budgets.Cgroup.create(inner=True)
    assert group is not None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "grader.cli", "--kit", str(lab.root), "batch", str(subs),
             "--out", str(out), "--workers", "2", "--call-timeout", "20", "--timeout", "900",
             "--memory", str(MEMORY_MIB), "--disk", str(DISK_MIB)],
            capture_output=True, text=True, timeout=1800, env={**os.environ, "TMPDIR": str(tmp)},
            preexec_fn=lambda: group.add(os.getpid()),
        )  # fmt: skip
        peak = group.peak_bytes()
        inner = sorted(p for f in group.folders.values() for p in f.iterdir() if p.is_dir())
        left = group.procs()
    finally:
        group.remove()
    time.sleep(1)
    return {
        "proc": proc, "out": out, "peak": peak, "inner_groups": inner, "left": left,
        "new_tmp": _file_names(tmp),
        "new_mounts": {m for m in _mounts() - mounts_before if "fslab" in m},
    }  # fmt: skip


def exercise(batch, name: str, slug: str = "ex2_pit_join") -> dict:
    card = json.loads((batch["out"] / f"{name}.json").read_text())
    return next(e for e in card["exercises"] if e["slug"] == slug)


def card(batch, name: str) -> dict:
    return json.loads((batch["out"] / f"{name}.json").read_text())


def feedback(batch, name: str) -> str:
    ex = exercise(batch, name)
    return " ".join([ex["error"] or "", *(t["feedback"] for t in ex["tests"])])


def test_the_batch_grades_everyone_and_the_honest_neighbours_keep_full_marks(batch):
    assert batch["proc"].returncode == 0, batch["proc"].stderr[-2000:]
    for name in ("a_honest", "c_honest"):
        ex = exercise(batch, name)
        failing = [t for t in ex["tests"] if t["status"] != "passed"]
        assert ex["score"] == ex["max_score"] == 30 and ex["status"] == "passed", failing[:3]
        assert card(batch, name)["isolation"] == "full"


@pytest.mark.parametrize("name", ["attack_children", "attack_memfd"])
def test_memory_of_forked_children_and_memfds_counts_against_one_budget(batch, name):
    ex = exercise(batch, name)
    assert ex["score"] == 0 and ex["status"] == "error", ex
    assert f"used more than {MEMORY_MIB} MiB" in ex["error"], ex["error"]
    # The attack's own report of success never reached the grader.
    assert "held 1280 MiB" not in feedback(batch, name)


def test_the_private_folder_holds_at_most_its_disk_and_inode_budget(batch):
    text = feedback(batch, "attack_disk")
    found = re.search(r"wrote (\d+) MiB and (\d+) files", text)
    assert found, text[:500]
    mib, files = int(found[1]), int(found[2])
    assert 0 < mib <= DISK_MIB and 0 < files <= Limits().disk_inodes
    assert exercise(batch, "attack_disk")["score"] == 0


def test_a_spin_storm_costs_its_own_points_only(batch):
    ex = exercise(batch, "b_attack_spin")
    assert ex["score"] == 0
    # The honest submissions graded beside it passed their speed test (checked above too).
    for name in ("a_honest", "c_honest"):
        speed = [
            t
            for t in exercise(batch, name)["tests"]
            if t["id"].endswith("vectorised_not_row_by_row")
        ]
        assert speed and speed[0]["status"] == "passed", speed


def test_a_huge_valid_arrow_answer_is_refused_by_its_decoded_size(batch):
    ex = exercise(batch, "attack_arrow")
    assert ex["score"] == 0
    assert "too large to read" in feedback(batch, "attack_arrow")
    assert card(batch, "attack_arrow")["status"] == "graded"  # the grading child lived


def test_the_batch_stays_within_its_budgets_and_leaves_nothing_behind(batch):
    # Two slots' budgets, plus the grader itself: the batch process, two warm factories
    # (Feast imported) and two grading children (their own pages only; the rest is shared).
    grader_own = 1536 << 20
    assert 0 < batch["peak"] <= 2 * (MEMORY_MIB << 20) + grader_own, batch["peak"] >> 20
    assert batch["inner_groups"] == [] and batch["left"] == []
    assert batch["new_mounts"] == set()
    assert batch["new_tmp"] == set()
    expected = {"gradebook.csv", "summary.json"}
    for name in [*ATTACKS, "a_honest", "c_honest"]:
        name = "b_" + name if name == "attack_spin" else name
        expected |= {f"{name}.json", f"{name}.gradescope.json"}
    assert {p.name for p in batch["out"].iterdir()} == expected


# ---------------------------------------------------------------------- privileges


SETUID = """
import os
def make():
    with open("suid.bin", "w") as out:
        out.write("#!/bin/sh\\n")
    os.chmod("suid.bin", 0o4755)
    return os.stat("suid.bin").st_uid
"""


@needs_budgets
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_setuid_file_made_inside_is_not_roots_on_the_host(tmp_path, warm):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "evil.py").write_text(SETUID)
    pid_groups = set(budgets.leftover_groups(os.getpid()))
    if warm:
        from grader.sandbox.warm import Zygote, ZygoteWorker

        zygote = Zygote(preload=(), limits=Limits()).start().wait_ready()
        folder = zygote.new_folder("grade") / "job"
        folder.mkdir()
        (folder / "evil.py").write_text(SETUID)
        budgets.chown_tree(folder.parent, budgets.SANDBOX_UID)
        worker: Worker = ZygoteWorker(zygote, folder)
    else:
        zygote = None
        worker = Worker(folder, preload=())
    try:
        worker.start()
        worker.request({"op": "load", "path": str(folder / "evil.py"), "module": "evil"})
        answer, _ = worker.request({"op": "call", "module": "evil", "function": "make"})
        assert "value" in answer, answer
        made = (folder / "suid.bin").stat()
        assert made.st_mode & 0o4000  # the bit is there ...
        assert made.st_uid == budgets.SANDBOX_UID != 0  # ... on a file nobody privileged owns
        assert made.st_gid == budgets.SANDBOX_UID
    finally:
        worker.close()
        if zygote is not None:
            zygote.close()
    assert set(budgets.leftover_groups(os.getpid())) == pid_groups


@needs_budgets
def test_worker_groups_are_removed_after_a_close_and_after_a_crash(tmp_path):
    (tmp_path / "m.py").write_text("import os\ndef die():\n    os._exit(3)\n")
    before = set(budgets.leftover_groups(os.getpid()))
    worker = Worker(tmp_path, preload=())
    worker.start()
    assert worker.cgroup is not None and worker.cgroup.procs()
    folders = list(worker.cgroup.folders.values())
    worker.request({"op": "load", "path": str(tmp_path / "m.py"), "module": "m"})
    with pytest.raises(WorkerError, match="exited with code 3"):
        worker.request({"op": "call", "module": "m", "function": "die"})
    assert not any(f.exists() for f in folders)
    worker = Worker(tmp_path, preload=())
    worker.start()
    folders = list(worker.cgroup.folders.values())
    worker.close()
    assert not any(f.exists() for f in folders)
    assert set(budgets.leftover_groups(os.getpid())) == before


@needs_budgets
def test_a_bomb_in_the_grading_child_costs_that_submission_only(lab):
    from grader.grading.child import start_child
    from grader.grading.options import GradingOptions

    # A grading child capped far below what grading needs stands in for one that decodes a
    # bomb: the kernel ends it, the submission gets an error card saying why, nothing stays.
    options = GradingOptions(limits=Limits(grader_memory_bytes=48 << 20))
    child = start_child(lab, KIT_ROOT / "solutions", name="bomb", slugs=["ex2_pit_join"],
                        options=options)  # fmt: skip
    folders = list(child.group.folders.values()) if child.group else []
    assert folders
    child.process.join(600)
    card = child.result()
    assert card.status == "error"
    assert "the grader needed more than 48 MiB" in (card.error or "")
    assert not any(f.exists() for f in folders)


# ---------------------------------------------------------------------- the trusted side


def _ipc(table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_a_huge_valid_arrow_frame_is_refused_before_any_object_is_built():
    import numpy as np
    import pyarrow as pa

    rows = 20_000_000
    table = pa.table(
        {
            "n0": pa.nulls(rows),
            "n1": pa.nulls(rows),
            "t": pa.array(np.zeros(rows, dtype="int64")).cast(pa.time64("us")),
        }
    )
    blob = _ipc(table)
    del table
    tracemalloc.start()
    try:
        with pytest.raises(protocol.ProtocolError, match="too large to read"):
            protocol.decode({"$frame": 0}, [blob])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # no Python object per cell was made


def test_one_blob_named_many_times_counts_many_times():
    import numpy as np
    import pyarrow as pa

    rows = 2_000_000  # one copy is fine (~128 MiB decoded), ten are not
    blob = _ipc(pa.table({"x": pa.array(np.arange(rows)), "s": pa.nulls(rows)}))
    assert len(protocol.decode({"$frame": 0}, [blob])) == rows
    with pytest.raises(protocol.ProtocolError, match="too large to read"):
        protocol.decode([{"$frame": 0}] * 10, [blob])


def test_ordinary_frames_still_decode_with_their_types():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "user_id": [1, 2],
            "name": ["a", None],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "x": [1.5, None],
        }
    )
    blobs: list[bytes] = []
    got = protocol.decode(protocol.encode(frame, blobs), blobs)
    pd.testing.assert_frame_equal(got, frame)
    assert protocol.decoded_bytes(__import__("pyarrow").Table.from_pandas(frame)) > 0


# ---------------------------------------------------------------------- the CLI


def test_check_and_batch_take_memory_and_disk_budgets(tmp_path):
    from click.testing import CliRunner

    from grader.cli import cli

    runner = CliRunner()
    for verb in ("check", "batch"):
        result = runner.invoke(cli, [verb, "--help"])
        assert result.exit_code == 0
        assert "--memory MiB" in result.output and "--disk MiB" in result.output
    bad = runner.invoke(cli, ["--kit", str(KIT_ROOT), "check", "--memory", "10"])
    assert bad.exit_code == 2 and "--memory" in bad.output


def test_budget_options_reach_the_workers_limits():
    from grader.cli import _options

    options = _options(60.0, 600.0, memory_mib=300, disk_mib=40)
    assert options.limits.budget_memory_bytes == 300 << 20
    assert options.limits.disk_bytes == 40 << 20
    from grader.grading.options import options_from_dict, options_to_dict

    assert options_from_dict(options_to_dict(options)).limits == options.limits


# ---------------------------------------------------------------------- cgroup v2


def test_cgroup_v2_files_are_the_ones_written_and_read(tmp_path, monkeypatch):
    """This machine runs v1; the v2 names are checked on a stand-in cgroupfs (plain files)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(budgets, "CGROUP_ROOT", root)
    monkeypatch.setattr(budgets, "V1_CONTROLLERS", ("nonexistent-controller",))
    monkeypatch.setattr(budgets, "_own_path", lambda controller: "/")
    monkeypatch.setattr(budgets.os, "geteuid", lambda: 0)
    budgets.layout.cache_clear()
    try:
        assert budgets.layout() == ("v2", {"": root})
        assert "+memory +pids +cpu" in (root / "cgroup.subtree_control").read_text()
        group = budgets.Cgroup.create("sub", inner=True)
        assert group is not None and group.folders == {"": root / "sub"}
        assert (root / "sub" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
        job = budgets.Cgroup.create("job", parent=group, memory_bytes=5 << 20, max_processes=7)
        assert job is not None
        folder = root / "sub" / "job"
        assert (folder / "memory.max").read_text() == str(5 << 20)
        assert (folder / "memory.swap.max").read_text() == "0"
        assert (folder / "pids.max").read_text() == "7"
        (folder / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
        (folder / "memory.peak").write_text("1234\n")
        (folder / "cgroup.procs").write_text("")
        assert job.oom_kills() == 2 and job.peak_bytes() == 1234 and job.procs() == []
    finally:
        budgets.layout.cache_clear()


def test_without_root_or_delegation_there_are_no_budgets_and_isolation_is_reduced(monkeypatch):
    monkeypatch.setattr(budgets.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(budgets.os, "access", lambda path, mode: False)
    budgets.layout.cache_clear()
    try:
        assert budgets.layout() is None and not budgets.available()
        assert budgets.Cgroup.create() is None
        assert budgets.sandbox_uid() is None
        assert Worker(Path("/tmp"), use_bwrap=True).isolation == "reduced"
    finally:
        budgets.layout.cache_clear()


def test_the_value_and_the_arguments_of_one_answer_share_the_decoded_budget():
    import numpy as np
    import pyarrow as pa

    rows = 6_000_000  # ~430 MiB decoded (estimate): once fits, value + args_after do not
    blob = _ipc(pa.table({"s": pa.nulls(rows), "x": pa.array(np.arange(rows))}))
    budget = [protocol.MAX_DECODED_BYTES]
    assert len(protocol.decode({"$frame": 0}, [blob], budget)) == rows
    with pytest.raises(protocol.ProtocolError, match="too large to read"):
        protocol.decode({"$frame": 0}, [blob], budget)
