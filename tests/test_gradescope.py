"""The Gradescope bundle grades a submission laid out like /autograder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import jsonschema
from click.testing import CliRunner

from grader.cli import cli
from grader.grading.gradescope_results import SCHEMA_PATH


def test_run_autograder_writes_results_json(lab, kit_root, tmp_path):
    bundle = tmp_path / "autograder.zip"
    result = CliRunner().invoke(
        cli, ["--kit", str(kit_root), "gradescope-bundle", str(bundle), "--hidden-visibility",
              "hidden"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert {"setup.sh", "run_autograder", "kit/course.toml", "kit/grader/cli.py"} <= set(names)
        assert any(n.startswith("kit/solutions/") for n in names)
        archive.extractall(root / "source")
    kit = root / "source" / "kit"
    # setup.sh would run `grade setup`; reuse the session's generated data instead.
    shutil.copytree(lab.data_dir, kit / "data", dirs_exist_ok=True)
    # ... and its applied reference repo (ex2 compares with Feast when the cache is cold).
    shutil.copytree(lab.root / "feature_repo" / "data", kit / "feature_repo" / "data")
    (root / "submission" / "nested").mkdir(parents=True)
    shutil.copy2(
        lab.root / "solutions" / "ex2_pit_join" / "pit_join.py",
        root / "submission" / "nested" / "pit_join.py",
    )
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    env["FSLAB_CACHE_DIR"] = os.environ["FSLAB_CACHE_DIR"]  # the session's warm cache
    proc = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text()))
    tests = results["tests"]
    ex2 = [t for t in tests if t["number"].startswith("2.")]
    others = [t for t in tests if not t["number"].startswith("2.")]
    failing = [(t["name"], t["output"][:300]) for t in ex2 if t["status"] != "passed"]
    assert ex2 and not failing, failing
    assert all(t["name"].startswith("2. A point-in-time join") for t in ex2)
    assert sum(t["score"] for t in ex2) == 30 == results["score"]
    assert others and all(t["score"] == 0 for t in others)
    visibilities = {t["visibility"] for t in tests}
    assert "visible" in visibilities and visibilities <= {"visible", "hidden"}
    assert "MiB per student worker" in proc.stdout


def test_gradescope_bundle_help_shows_an_example_of_the_trial():
    result = CliRunner().invoke(cli, ["gradescope-bundle", "--help"])
    assert result.exit_code == 0
    assert "--try" in result.output and "grade gradescope-bundle --try" in result.output


def test_gradescope_bundle_without_a_zip_or_a_trial_is_a_usage_error(kit_root, tmp_path):
    result = CliRunner().invoke(cli, ["--kit", str(kit_root), "gradescope-bundle"])
    assert result.exit_code == 2 and "OUT.zip" in result.output
    missing = tmp_path / "nope"
    result = CliRunner().invoke(
        cli, ["--kit", str(kit_root), "gradescope-bundle", "--try", str(missing)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_run_autograder_writes_results_even_when_it_cannot_grade(tmp_path):
    from grader.classroom.gradescope import run_autograder

    root = tmp_path / "autograder"
    results = run_autograder(tmp_path / "no-kit-here", root)
    written = json.loads((root / "results" / "results.json").read_text())
    assert written == results and results["score"] == 0
    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text()))
    assert "could not grade" in results["output"]
