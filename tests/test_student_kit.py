"""The student kit from `grade release`: its README is the student's, and every command it
names works in a fresh release installed into its own `.venv`, as a student would."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pexpect
import pytest

from grader.classroom.release import build_release
from grader.course.kit import load_kit

from kit_helpers import interruptible

KIT_ROOT = Path(__file__).resolve().parent.parent


def _make_targets(readme: str) -> list[str]:
    return sorted(set(re.findall(r"`make (\w+)`", readme)))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student") / "kit"
    build_release(load_kit(KIT_ROOT), out)
    return out


def test_the_release_readme_is_the_students_and_names_only_what_is_there(release):
    readme = (release / "README.md").read_text()
    assert "student kit" in readme.lower()
    assert "grade watch" in readme
    for instructor_only in ("grade batch", "grade release", "solutions/", "make bench"):
        assert instructor_only not in readme, instructor_only
    assert {"run", "test", "lint", "watch"} <= set(_make_targets(readme))
    for path in re.findall(r"`((?:exercises|grader|feature_repo|data)/[\w/.*-]*)`", readme):
        if "<" not in path and "*" not in path and not path.startswith("data/"):
            assert (release / path).exists(), path


def test_every_make_target_of_the_readme_names_only_folders_the_kit_has(release):
    readme = (release / "README.md").read_text()
    for target in _make_targets(readme):
        proc = subprocess.run(
            ["make", "-n", target], cwd=release, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, (target, proc.stderr)
        for word in re.findall(r"\b(tests|solutions)\b", proc.stdout):
            pytest.fail(f"make {target} uses {word}/, which the student kit does not have")


@pytest.mark.slow
def test_each_readme_command_works_in_a_fresh_install(release):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "FSLAB_"))}
    env["PYTHON"] = "python3"  # the machine's, as a student has it; not this .venv's
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )

    def make(target: str) -> str:
        proc = subprocess.run(
            ["make", target], cwd=release, capture_output=True, text=True, timeout=2400, env=env
        )
        assert proc.returncode == 0, (target, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout

    run = make("run")
    assert (release / ".venv" / "bin" / "grade").is_file()
    overview = [line for line in run.splitlines() if "not started" in line]
    assert len(overview) == 4, run[-3000:]
    test = make("test")
    assert "Total: 0/100" in test, test[-2000:]
    make("lint")
    grade = str(release / ".venv" / "bin" / "grade")
    for args in (["list"], ["hint", "ex2_pit_join", "1"], ["quiz", "--list"]):
        proc = subprocess.run(
            [grade, *args], cwd=release, capture_output=True, text=True, timeout=600, env=env
        )
        assert proc.returncode == 0, (args, proc.stderr)
    listing = subprocess.run(
        [grade, "list"], cwd=release, capture_output=True, text=True, timeout=600, env=env
    ).stdout
    assert listing.count("not started") == 4, listing
    watch = pexpect.spawn(
        "make", ["watch"], cwd=str(release), env=env, encoding="utf-8", timeout=600,
        dimensions=(40, 80), preexec_fn=interruptible,
    )  # fmt: skip
    watch.expect("Total:")
    watch.sendintr()
    watch.expect("Stopped watching.")
    watch.expect(pexpect.EOF)
