"""The `grade` command line: help, examples, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cli

KIT_ROOT = Path(__file__).resolve().parent.parent
VERBS = [
    "check", "list", "hint", "setup", "quiz", "batch", "verify", "release", "report",
    "gradescope-bundle", "bench", "similarity", "export", "watch",
]  # fmt: skip


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or KIT_ROOT,
        timeout=300,
    )


def test_help_lists_every_verb():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in VERBS:
        assert verb in result.output


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb):
    result = CliRunner().invoke(cli, [verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output or "example" in result.output, result.output


def test_list_shows_the_manifest_in_order():
    result = CliRunner().invoke(cli, ["--kit", str(KIT_ROOT), "list"])
    assert result.exit_code == 0
    positions = [result.output.index(s) for s in ("ex1_fraud", "ex2_pit", "ex3_fresh", "ex4_feast")]
    assert positions == sorted(positions)
    assert "100 points" in result.output


def test_hint_gives_one_hint_or_all():
    one = CliRunner().invoke(cli, ["--kit", str(KIT_ROOT), "hint", "ex2_pit_join", "1"])
    assert one.exit_code == 0 and "Hint 1/" in one.output and "Hint 2/" not in one.output
    every = CliRunner().invoke(cli, ["--kit", str(KIT_ROOT), "hint", "ex2_pit_join"])
    assert "Hint 1/" in every.output and "Hint 2/" in every.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["hint", "ex9_nope"], "unknown exercise"),
        (["hint", "ex2_pit_join", "99"], "has hints 1.."),
        (["check", "ex9_nope"], "unknown exercise"),
        (["check", "--submission", "/nonexistent/folder"], "does not exist"),
        (["batch", "/nonexistent/folder", "--out", "/tmp/x"], "not a folder"),
        (["release", "."], "inside the kit"),
        (["watch", "ex9_nope"], "unknown exercise"),
        (["watch", "--submission", "/nonexistent/folder"], "is not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_verbs_outside_a_kit_say_so(tmp_path):
    proc = run("list", cwd=tmp_path)
    assert proc.returncode == 2 and "course.toml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_batch_refuses_an_empty_folder_and_an_output_inside_it(tmp_path):
    empty = tmp_path / "subs"
    empty.mkdir()
    proc = run("batch", str(empty), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "no submissions" in proc.stderr
    (empty / "alice").mkdir()
    proc = run("batch", str(empty), "--out", str(empty / "results"))
    assert proc.returncode == 2 and "must not be inside" in proc.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["alice"]


def test_release_leaves_out_solutions_and_hidden_suites(tmp_path):
    out = tmp_path / "student-kit"
    proc = run("release", str(out))
    assert proc.returncode == 0, proc.stderr
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert "course.toml" in files and "Makefile" in files and "README.md" in files
    assert not any(f.startswith("solutions") for f in files)
    assert not any(f.endswith("test_hidden.py") for f in files)
    assert not any(f.endswith("equivalent_mutants.toml") for f in files)  # describes solutions
    assert any(f.endswith("test_public.py") for f in files)
    # No solution body survives anywhere in the release (the reference Feast repo is public
    # on purpose, so lines it shares with a solution do not count).
    # The grader's own code shares library boilerplate with solutions; it is checked by name.
    released = {
        line.strip()
        for f in files
        if not f.startswith("grader/")
        for line in (out / f).read_text(errors="ignore").splitlines()
    }
    public = {
        line.strip()
        for path in (KIT_ROOT / "feature_repo").glob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
    }
    for solution in (KIT_ROOT / "solutions").rglob("*.py"):
        stub = (KIT_ROOT / "exercises" / solution.relative_to(KIT_ROOT / "solutions")).read_text()
        stub_lines = {line.strip() for line in stub.splitlines()}
        own = [
            line.strip()
            for line in solution.read_text().splitlines()
            if len(line.strip()) > 30 and line.strip() not in stub_lines | public
        ]
        leaked = [line for line in own if line in released]
        assert not leaked, (solution.name, leaked[:3])
    again = run("release", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run("release", str(out), "--force").returncode == 0
