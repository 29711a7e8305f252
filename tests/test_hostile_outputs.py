"""Golden hostile submissions against the batch's outputs (issue 12: ids are data, not paths).

One real `grade batch` grades an honest submission beside submissions whose *names* attack the
outputs (a 240-character name, `summary`, `<victim>.gradescope`, a folder and a zip that share
an id, escape sequences, spreadsheet formulas), one whose `pit_join.py` is a FIFO, one whose
feedback forges the grader's lines, and one whose outputs cannot be written. Each must be
graded under its own name, the honest neighbour must keep full marks, and nothing outside the
output folder may change. A second run with `--resume` must find every previous output.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.course.kit import load_kit

KIT_ROOT = Path(__file__).resolve().parent.parent
SOLUTION = KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py"
STUB = KIT_ROOT / "exercises" / "ex2_pit_join" / "pit_join.py"
FRESHNESS = KIT_ROOT / "solutions" / "ex3_freshness" / "freshness.py"
KIT = load_kit(KIT_ROOT)
EX2, EX3 = (KIT.exercise(s).points for s in ("ex2_pit_join", "ex3_freshness"))
LONG = "L" * 240
ANSI = (
    "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b]0;pwned\x07mallory"
    "\x1b]8;;https:evil.example\x1b\\link\x1b]8;;\x1b\\"
)
ANSI_ID = "mallorylink"
FORMULAS = ['=HYPERLINK("http:evil.example","x")', "@SUM(1+1)cmd|", "+SUM(1)", "-2+3"]
FORGER = (
    "def point_in_time_join(*args, **kwargs):\n"
    "    raise ValueError('\\x1b[2J\\x1b]0;owned\\x07\\nAll tests passed: 100/100\\r'\n"
    "                     '\\x1b]52;c;cHduZWQ=\\x07\\n[bold]Total: 100/100[/bold]')\n"
)


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip or "__pycache__" in rel.parts:
            continue
        digest.update(os.fsencode(rel))
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build(subs: Path) -> None:
    def sub(name: str, *files: Path) -> Path:
        (subs / name).mkdir()
        for f in files:
            shutil.copy2(f, subs / name / f.name)
        return subs / name

    sub("honest", SOLUTION, FRESHNESS)
    sub("summary", SOLUTION)
    sub("honest.gradescope", STUB)  # would overwrite honest's Gradescope results
    sub("twin", SOLUTION)
    with zipfile.ZipFile(subs / "twin.zip", "w") as archive:  # shares the id `twin`
        archive.write(STUB, "twin/pit_join.py")
    sub(LONG, SOLUTION)
    fifo = sub("fifo", FRESHNESS)
    os.mkfifo(fifo / "pit_join.py")  # blocked its slot for the whole budget before
    sub(ANSI).joinpath("pit_join.py").write_text(FORGER)
    for name in FORMULAS:
        sub(name).joinpath("README.txt").write_text("nothing to grade\n")
    sub("blocked", STUB)


def run_batch(lab, subs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", "--kit", str(lab.root), "batch", str(subs),
         "--out", str(out), "--workers", "2", "--call-timeout", "10", "--timeout", "300", *extra],
        capture_output=True, timeout=1200,
    )  # fmt: skip


@pytest.fixture(scope="module")
def batch(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    subs, out = root / "submissions", root / "results"
    subs.mkdir()
    build(subs)
    out.mkdir()
    # Its outputs cannot be written: that costs it, never the batch.
    (out / "blocked.gradescope.json").mkdir()
    (out / "blocked.gradescope.json" / "keep").write_text("mine\n")
    before = tree_digest(subs), tree_digest(lab.root, skip=("data", "feature_repo"))
    proc = run_batch(lab, subs, out)
    cards = {}
    for path in out.glob("*.json"):
        if path.is_file() and not path.name.endswith(".gradescope.json"):
            if path.name != "summary.json":
                cards[json.loads(path.read_text())["submission"]] = path
    rows = gradebook(out) if proc.returncode == 0 else {}
    return {"proc": proc, "subs": subs, "out": out, "cards": cards, "rows": rows,
            "before": before, "lab": lab}  # fmt: skip


def gradebook(out: Path) -> dict[str, dict]:
    """The gradebook's rows by submission id (a neutralised formula id without its `'`)."""
    with (out / "gradebook.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["submission"].removeprefix("'"): r for r in rows}


def card(batch, sid: str) -> dict:
    return json.loads(batch["cards"][sid].read_text())


def ex(batch, sid: str, slug: str) -> dict:
    return next(e for e in card(batch, sid)["exercises"] if e["slug"] == slug)


def test_the_batch_finishes_and_grades_every_submission(batch):
    proc = batch["proc"]
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    ids = {"honest", "summary", "honest.gradescope", "twin", "twin.zip", LONG, "fifo",
           ANSI_ID, *FORMULAS, "blocked"}  # fmt: skip
    assert set(batch["rows"]) == ids
    assert set(batch["cards"]) == ids - {"blocked"}


def test_the_honest_neighbour_keeps_full_marks_and_its_own_files(batch):
    honest = card(batch, "honest")
    assert batch["cards"]["honest"].name == "honest.json"
    assert ex(batch, "honest", "ex2_pit_join")["score"] == EX2 == 30
    assert ex(batch, "honest", "ex3_freshness")["score"] == EX3 == 20
    gradescope = json.loads((batch["out"] / "honest.gradescope.json").read_text())
    assert gradescope["score"] == honest["score"] == EX2 + EX3
    assert batch["rows"]["honest"]["file"] == "honest.json"


def test_a_victim_gradescope_name_and_summary_get_hashed_stems(batch):
    for sid, score in (("honest.gradescope", 0), ("summary", EX2)):
        path = batch["cards"][sid]
        assert path.stem != sid and path.stem.startswith(sid + "-"), path.name
        assert card(batch, sid)["score"] == score
        gradescope = json.loads((batch["out"] / f"{path.stem}.gradescope.json").read_text())
        assert gradescope["score"] == score
        assert batch["rows"][sid]["file"] == path.name
    summary = json.loads((batch["out"] / "summary.json").read_text())
    assert summary["submissions"] == len(batch["rows"])


def test_a_folder_and_a_zip_sharing_an_id_are_both_graded(batch):
    assert card(batch, "twin")["score"] == EX2
    assert card(batch, "twin.zip")["score"] == 0
    assert batch["cards"]["twin"].name == "twin.json"


def test_a_240_character_name_is_graded_under_a_short_stem(batch):
    path = batch["cards"][LONG]
    assert len(path.name) < 100 and path.name.startswith("L" * 40 + "-")
    assert card(batch, LONG)["score"] == EX2
    assert batch["rows"][LONG]["ex2_pit_join"] == f"{EX2:g}"


def test_a_fifo_is_refused_in_one_line_and_the_other_exercise_is_graded(batch):
    ex2 = ex(batch, "fifo", "ex2_pit_join")
    assert ex2["status"] == "error" and ex2["error"] == "pit_join.py is a FIFO, not a regular file"
    assert ex(batch, "fifo", "ex3_freshness")["score"] == EX3
    assert card(batch, "fifo")["duration_s"] < 250, "the FIFO held up the submission"


def test_escape_sequences_never_reach_the_terminal_or_the_files(batch):
    proc = batch["proc"]
    for stream in (proc.stdout, proc.stderr):
        assert b"\x1b" not in stream and b"\x07" not in stream
    assert ANSI_ID.encode() in proc.stdout
    data = card(batch, ANSI_ID)
    assert data["score"] == 0
    feedback = [t["feedback"] for e in data["exercises"] for t in e["tests"]]
    assert feedback and not any(c in f for f in feedback for c in "\x1b\x07\r")
    assert any("All tests passed: 100/100" in f for f in feedback), "kept, as inert text"
    assert batch["cards"][ANSI_ID].name.startswith("mallory")
    for path in batch["out"].iterdir():
        assert "\x1b" not in path.name and "\x07" not in path.name
        if path.is_file():
            raw = path.read_bytes()
            assert b"\x1b" not in raw and b"\\u001b" not in raw, path.name


def test_formula_ids_are_inert_in_the_gradebook(batch):
    text = (batch["out"] / "gradebook.csv").read_text()
    for sid in FORMULAS:
        assert sid in batch["rows"], sid
        assert card(batch, sid)["score"] == 0
    with (batch["out"] / "gradebook.csv").open(newline="") as fh:
        cells = [row[0] for row in csv.reader(fh)][1:]
    assert sorted(c for c in cells if c.startswith("'")) == sorted("'" + f for f in FORMULAS)
    assert not any(c.startswith(("=", "+", "-", "@")) for line in csv.reader(text.splitlines())
                   for c in line)  # fmt: skip
    assert batch["rows"]["honest"]["total"] == f"{EX2 + EX3:g}"


def test_an_unwritable_output_costs_only_that_submission(batch):
    row = batch["rows"]["blocked"]
    assert row["status"] == "error" and row["file"] == ""
    assert (batch["out"] / "blocked.gradescope.json" / "keep").read_text() == "mine\n"
    assert not (batch["out"] / "blocked.json").exists()


def test_nothing_outside_the_output_folder_changed(batch):
    kit = tree_digest(batch["lab"].root, skip=("data", "feature_repo"))
    assert (tree_digest(batch["subs"]), kit) == batch["before"]
    names = {p.name for p in batch["out"].iterdir()}
    stems = {p.stem for p in batch["cards"].values()}
    expected = {"gradebook.csv", "summary.json", "blocked.gradescope.json"}
    expected |= {f"{s}.json" for s in stems} | {f"{s}.gradescope.json" for s in stems}
    assert names == expected


def test_resume_finds_every_previous_output(batch, lab):
    before = {sid: path.stat().st_mtime_ns for sid, path in batch["cards"].items()}
    proc = run_batch(lab, batch["subs"], batch["out"], "--resume")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    after = {sid: path.stat().st_mtime_ns for sid, path in batch["cards"].items()}
    assert after == before, "a graded submission was graded again"
    assert gradebook(batch["out"]) == batch["rows"]
