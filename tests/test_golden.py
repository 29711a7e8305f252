"""Golden submissions graded by a real `grade batch` (exercism's test-runner style).

One batch grades the reference solutions, the stubs, one plausible mistake per exercise
(expected scorecards in `tests/golden/*.expected.json`, checked test by test) and one attack
of each kind SPEC section 4 names. Every submission must get a scorecard, the attacks must
score 0 on the exercise they attack, and nothing outside the workers' folders may change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
KIT_ROOT = Path(__file__).resolve().parent.parent
HIDDEN_EX2 = KIT_ROOT / "grader" / "suites" / "ex2_pit_join" / "test_hidden.py"
CALL_TIMEOUT = 10

# Attacks on ex2 (`pit_join.py`); each submission holds only that file, unless noted.
ATTACKS = {
    "attack_hang": "def point_in_time_join(*args, **kwargs):\n    while True:\n        pass\n",
    "attack_memory": (
        "def point_in_time_join(*args, **kwargs):\n"
        "    hog = []\n"
        "    while True:\n"
        "        hog.append(bytearray(512 * 1024 * 1024))\n"
    ),
    "attack_exit": "import os\ndef point_in_time_join(*args, **kwargs):\n    os._exit(0)\n",
    "attack_kill_parent": (
        "import os, signal\n"
        "def point_in_time_join(*args, **kwargs):\n"
        "    for pid in (os.getppid(), 1):\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os.killpg(0, signal.SIGKILL)\n"
    ),
    "attack_rigged_eq": (
        "import pandas as pd\n"
        "class Liar(pd.DataFrame):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def equals(self, other):\n"
        "        return True\n"
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n"
        "    return Liar(entity_df)\n"
    ),
    "attack_monkeypatch": (
        "import pandas, pandas.testing, pytest\n"
        "pandas.testing.assert_frame_equal = lambda *a, **k: None\n"
        "pandas.DataFrame.equals = lambda self, other: True\n"
        "pytest.approx = lambda *a, **k: True\n"
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n"
        "    return entity_df.copy()\n"
    ),
    "attack_read_hidden": (
        "def point_in_time_join(*args, **kwargs):\n"
        f"    text = open({str(HIDDEN_EX2)!r}).read()\n"
        "    raise ValueError(text)\n"
    ),
    "attack_fork": (
        "import os\n"
        "def point_in_time_join(*args, **kwargs):\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    ),
    "attack_flood": (
        "import sys, os\n"
        "def point_in_time_join(entity_df, feature_df, **kwargs):\n"
        "    for _ in range(5000):\n"
        "        print('spam' * 2500)\n"
        "        sys.stderr.write('junk' * 2500)\n"
        "    os.write(1, b'x' * 20_000_000)\n"
        "    raise ValueError('flooded')\n"
    ),
}
# Detached writer: filled in with the output folder's path at run time.
DETACHED = (
    "import subprocess\n"
    "def point_in_time_join(*args, **kwargs):\n"
    "    script = 'sleep 2; echo pwned > {target}; sleep 300 # fslab-golden'\n"
    "    subprocess.Popen(['sh', '-c', script], start_new_session=True)\n"
    "    raise ValueError('started a detached writer')\n"
)


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in skip or "__pycache__" in rel.parts:
            continue
        digest.update(str(rel).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_submissions(folder: Path, out: Path) -> None:
    shutil.copytree(KIT_ROOT / "solutions", folder / "solutions")
    shutil.copytree(KIT_ROOT / "exercises", folder / "stubs")
    for expected in GOLDEN.glob("*.expected.json"):
        name = expected.name.removesuffix(".expected.json")
        shutil.copytree(GOLDEN / name, folder / name)
    for name, source in ATTACKS.items():
        (folder / name).mkdir()
        (folder / name / "pit_join.py").write_text(source)
    (folder / "attack_detached").mkdir()
    (folder / "attack_detached" / "pit_join.py").write_text(
        DETACHED.format(target=out / "pwned.txt")
    )
    # Shadow modules next to a correct answer: never copied, never imported.
    shadow = folder / "attack_shadow"
    shadow.mkdir()
    shutil.copy2(KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py", shadow / "pit_join.py")
    (shadow / "pandas.py").write_text("raise SystemExit('shadow pandas imported')\n")
    (shadow / "conftest.py").write_text(
        f"open({str(folder.parent / 'conftest-ran')!r}, 'w').write('x')\n"
    )
    # A symlink to the reference solution: not followed, so the exercise is missing.
    (folder / "attack_symlink").mkdir()
    (folder / "attack_symlink" / "pit_join.py").symlink_to(
        KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py"
    )
    with zipfile.ZipFile(folder / "attack_zipslip.zip", "w") as archive:
        archive.writestr("../../pit_join.py", "def point_in_time_join(*a, **k):\n    return 1\n")
    (folder / "attack_corrupt.zip").write_bytes(b"PK\x03\x04 definitely not a zip file")


@pytest.fixture(scope="module")
def batch(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    subs, out = root / "submissions", root / "results"
    subs.mkdir()
    build_submissions(subs, out)
    before_subs = tree_digest(subs)
    before_kit = tree_digest(lab.root, skip=("data", "feature_repo"))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", "--kit", str(lab.root), "batch", str(subs),
         "--out", str(out), "--workers", "2", "--call-timeout", str(CALL_TIMEOUT),
         "--timeout", "300"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    seconds = time.monotonic() - started
    time.sleep(3)  # give a detached writer the chance it must not have
    return {
        "proc": proc, "subs": subs, "out": out, "root": root, "seconds": seconds,
        "before_subs": before_subs, "before_kit": before_kit, "kit": lab.root,
    }  # fmt: skip


def card(batch, name: str) -> dict:
    return json.loads((batch["out"] / f"{name}.json").read_text())


def exercise(batch, name: str, slug: str) -> dict:
    return next(e for e in card(batch, name)["exercises"] if e["slug"] == slug)


def test_the_batch_finishes_and_every_submission_has_a_scorecard(batch):
    assert batch["proc"].returncode == 0, batch["proc"].stderr[-2000:]
    names = sorted(p.name.removesuffix(".zip") for p in batch["subs"].iterdir())
    for name in names:
        data = card(batch, name)
        assert data["schema_version"] == 1 and data["submission"] == name
        gradescope = json.loads((batch["out"] / f"{name}.gradescope.json").read_text())
        assert gradescope["score"] == data["score"]
    rows = (batch["out"] / "gradebook.csv").read_text().splitlines()
    assert rows[0].startswith("submission,ex1_fraud_design,ex2_pit_join,ex3_freshness,ex4")
    assert sorted(r.split(",")[0] for r in rows[1:]) == names
    summary = json.loads((batch["out"] / "summary.json").read_text())
    assert summary["submissions"] == len(names)


def test_the_reference_solutions_score_full_marks(batch):
    data = card(batch, "solutions")
    failing = [t for e in data["exercises"] for t in e["tests"] if t["status"] != "passed"]
    assert data["score"] == data["max_score"] == 100, failing[:3]


def test_the_stubs_score_zero_and_say_not_done_yet(batch):
    data = card(batch, "stubs")
    assert data["score"] == 0
    feedback = [t["feedback"] for e in data["exercises"] for t in e["tests"]]
    assert feedback and all(t for t in feedback)
    assert any("NotImplementedError" in f for f in feedback)


@pytest.mark.parametrize("expected", sorted(GOLDEN.glob("*.expected.json")), ids=lambda p: p.name)
def test_plausible_mistakes_get_the_expected_partial_scorecard(batch, expected):
    name = expected.name.removesuffix(".expected.json")
    for slug, want in json.loads(expected.read_text()).items():
        got = exercise(batch, name, slug)
        statuses = {t["id"].split("::", 1)[1]: t["status"] for t in got["tests"]}
        assert statuses == want["tests"], (slug, statuses)
        assert got["score"] == want["score"] and got["status"] == want["status"]
        assert 0 < got["score"] < got["max_score"]
        for t in got["tests"]:
            if t["status"] != "passed":
                assert len(t["feedback"]) > 20, t


@pytest.mark.parametrize(
    "name, statuses",
    [
        ("attack_hang", {"timeout"}),
        ("attack_memory", {"error", "failed", "timeout"}),
        ("attack_exit", {"error"}),
        ("attack_kill_parent", {"error", "failed", "timeout"}),
        ("attack_rigged_eq", {"failed", "error"}),
        ("attack_monkeypatch", {"failed", "error"}),
        ("attack_read_hidden", {"failed", "error"}),
        ("attack_fork", {"error", "failed", "timeout"}),
        ("attack_flood", {"failed", "error"}),
        ("attack_detached", {"failed", "error"}),
        ("attack_symlink", {"missing"}),
        ("attack_zipslip", {"error"}),
        ("attack_corrupt", {"error"}),
    ],
)
def test_attacks_score_zero_on_the_exercise_they_attack(batch, name, statuses):
    ex2 = exercise(batch, name, "ex2_pit_join")
    assert ex2["score"] == 0
    assert ex2["status"] in statuses, ex2["status"]
    if name == "attack_read_hidden" and HIDDEN_EX2.is_file():
        text = (batch["out"] / f"{name}.json").read_text()
        distinctive = [line.strip() for line in HIDDEN_EX2.read_text().splitlines()]
        distinctive = [line for line in distinctive if len(line) > 40]
        assert distinctive and not any(line in text for line in distinctive)
    if name == "attack_flood":
        assert (batch["out"] / f"{name}.json").stat().st_size < 200_000


def test_shadow_modules_in_a_submission_are_never_imported(batch):
    assert exercise(batch, "attack_shadow", "ex2_pit_join")["score"] == 30
    assert not (batch["root"] / "conftest-ran").exists()


def test_nothing_outside_the_workers_changed(batch):
    assert tree_digest(batch["subs"]) == batch["before_subs"]
    assert tree_digest(batch["kit"], skip=("data", "feature_repo")) == batch["before_kit"]
    assert not (batch["out"] / "pwned.txt").exists()
    expected = {"gradebook.csv", "summary.json"}
    for sub in batch["subs"].iterdir():
        name = sub.name.removesuffix(".zip")
        expected |= {f"{name}.json", f"{name}.gradescope.json"}
    assert {p.name for p in batch["out"].iterdir()} == expected
    leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "fslab-golden" not in leftovers
