"""Gradescope: the autograder bundle (`grade gradescope-bundle`) and what runs inside it.

The bundle is a zip with `setup.sh` and `run_autograder` at its root and the whole kit
(solutions and hidden suites included: the bundle is for Gradescope, never for students)
under `kit/`. On Gradescope, `run_autograder` calls `python -m grader.classroom.gradescope`,
which grades `/autograder/submission` and writes `/autograder/results/results.json`: memory
sized to the container, and where bubblewrap cannot run (most likely there) the reduced
isolation of `grader.sandbox.reduced`. `setup.sh` installs the kit, makes the `fslab-student`
user and fills the oracle cache. For trials and tests, `AUTOGRADER_ROOT` moves `/autograder`
and `AUTOGRADER_PYTHON` names the interpreter; `HIDDEN_VISIBILITY` overrides when hidden tests
are shown. `grader.classroom.gradescope_try` runs the whole bundle locally.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from grader.classroom.release import ReleaseError, copy_kit_files
from grader.course.kit import Kit, KitError, load_kit
from grader.grading.gradescope_results import plain
from grader.grading.options import GradingOptions
from grader.grading.scorecard import write_json_atomic
from grader.sandbox import typeguard_cache
from grader.sandbox.bubblewrap import (
    SANDBOX_USER,
    Limits,
    bwrap_works,
    can_drop_privileges,
    root_refusal,
)
from grader.sandbox.container import BudgetError, MemoryBudget, memory_budget
from grader.sandbox.reduced import lock_away, open_to_all

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (Ubuntu, as root).
# `grade gradescope-bundle --try` runs it too, with AUTOGRADER_ROOT (a temp folder instead of
# /autograder) and AUTOGRADER_PYTHON (an interpreter that has the kit's packages already):
# then it skips the system packages and `make install`.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
KIT="$ROOT/source/kit"
if [ -z "${AUTOGRADER_PYTHON:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3.11 python3.11-venv make bubblewrap redis-server >/dev/null \\
    || apt-get install -y -qq python3 python3-venv make bubblewrap redis-server >/dev/null
  PY=$(command -v python3.11 || command -v python3)
  make -C "$KIT" install PYTHON="$PY"
  PYTHON="$KIT/.venv/bin/python"
else
  PYTHON="$AUTOGRADER_PYTHON"
fi
# Where bubblewrap cannot run, student code runs as this user, which owns nothing else.
if [ "$(id -u)" = 0 ] && ! id -u %(user)s >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin %(user)s
fi
cd "$KIT"
export PYTHONPATH="$KIT" FSLAB_CACHE_DIR="$KIT/%(cache)s"
"$PYTHON" -c 'from grader.cli import main; main()' setup
# The generated data is not secret, and a worker without bubblewrap must read it.
chmod -R a+rX data
# Grade the solutions once: the oracle cache then holds every expected value (Feast runs
# included), so grading a submission never imports Feast on the trusted side.
"$PYTHON" -c 'from grader.cli import main; main()' check --submission solutions \\
  --json "$ROOT/setup-check.json" >/dev/null
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
KIT="$ROOT/source/kit"
export HIDDEN_VISIBILITY="${HIDDEN_VISIBILITY:-%(visibility)s}"
export PYTHONPATH="$KIT" FSLAB_CACHE_DIR="${FSLAB_CACHE_DIR:-$KIT/%(cache)s}"
exec "${AUTOGRADER_PYTHON:-$KIT/.venv/bin/python}" -m grader.classroom.gradescope "$KIT" "$ROOT"
"""

CACHE_DIR = ".oracle-cache"
"""The oracle cache inside the bundle's kit (filled by setup.sh, root's alone)."""
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class BundleError(Exception):
    """The bundle cannot be written (one line, for the user)."""


def build_bundle(kit: Kit, out_zip: Path, *, hidden_visibility: str = "after_due_date") -> int:
    """Write the autograder zip; returns the number of files in it."""
    if hidden_visibility not in VISIBILITIES:
        raise BundleError(f"hidden visibility must be one of {', '.join(VISIBILITIES)}")
    out_zip = out_zip.resolve()
    if out_zip.suffix.lower() != ".zip":
        raise BundleError(f"{out_zip.name} must end in .zip")
    if kit.root in out_zip.parents:
        raise BundleError(f"{out_zip} is inside the kit; choose a path outside {kit.root}")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "kit"
        try:
            files = copy_kit_files(kit, staging, private=True)
        except ReleaseError as exc:
            raise BundleError(str(exc)) from None
        fd, part = tempfile.mkstemp(prefix=f".{out_zip.name}.", dir=out_zip.parent)
        os.close(fd)
        try:
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
                values = {"visibility": hidden_visibility, "cache": CACHE_DIR, "user": SANDBOX_USER}
                for name, text in (
                    ("setup.sh", SETUP_SH % values),
                    ("run_autograder", RUN_AUTOGRADER % values),
                ):
                    info = zipfile.ZipInfo(name)
                    info.external_attr = 0o755 << 16
                    archive.writestr(info, text)
                for rel in files:
                    archive.write(staging / rel, f"kit/{rel}")
            os.replace(part, out_zip)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise
    return len(files) + 2


def protect(kit_root: Path, root: Path, cache_dir: Path | None = None) -> list[Path]:
    """Before any student code runs, without bubblewrap: make the hidden suites, the
    solutions, the oracle cache, the results folder and the original submission root's
    alone, so the worker's unprivileged user can neither read nor change them, and the
    generated data readable to it. Returns what was locked away."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    open_to_all(kit_root / "data")
    return lock_away(
        kit_root / "solutions",
        kit_root / "grader" / "suites",
        kit_root / CACHE_DIR,
        *([cache_dir] if cache_dir is not None else []),
        root / "results",
        root / "submission",
    )


def grading_options(container_bytes: int | None = None) -> tuple[GradingOptions, MemoryBudget]:
    """Options that fit this container: the worker's memory budget from its limit (see
    `grader.sandbox.container`), one submission and so one student worker at a time."""
    budget = memory_budget(container_bytes, workers=1)
    limits = Limits(rss_bytes=budget.worker_bytes)
    return GradingOptions(limits=limits), budget


def error_results(message: str, seconds: float) -> dict:
    """A results.json that says grading failed (Gradescope shows it; never "no results")."""
    return {
        "score": 0.0,
        "execution_time": round(seconds, 2),
        "output": plain(f"The autograder could not grade this submission: {message}"),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": "Grading",
                "number": "1.00",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": plain(message),
                "output_format": "text",
                "visibility": "visible",
            }
        ],
    }


def run_autograder(kit_root: Path, root: Path) -> dict:
    """Grade `root/submission` with every suite; write `root/results/results.json`.

    Fits the container (see `grading_options`); without bubblewrap, `protect` runs first.
    Whatever happens, results.json is written."""
    from grader.grading.child import grade_in_child

    started = time.monotonic()
    out = root / "results" / "results.json"
    visibility = os.environ.get("HIDDEN_VISIBILITY", "after_due_date")
    try:
        kit = load_kit(kit_root)
        options, budget = grading_options()
        print(
            f"memory: {budget.container_bytes >> 20} MiB here, {budget.worker_mib} MiB per "
            "student worker"
        )
        if not bwrap_works():
            refusal = root_refusal(False)
            if refusal:  # the student's code would run as root: grade nothing
                print(refusal)
                results = error_results(refusal, time.monotonic() - started)
                write_json_atomic(out, results)
                return results
            changed = protect(kit.root, root, options.cache_dir)
            print(f"isolation: reduced (no bubblewrap); locked away {len(changed)} paths")
            if not can_drop_privileges():
                print(
                    f"WARNING: student code runs as uid {os.geteuid()}, not {SANDBOX_USER}: "
                    "switching needs root and a Python installation other users can read"
                )
        card = grade_in_child(kit, root / "submission", name="submission", options=options)
        titles = {ex.slug: ex.title for ex in kit.exercises}
        results = card.to_gradescope(hidden_visibility=visibility, titles=titles)
    except (KitError, BudgetError) as exc:
        results = error_results(str(exc), time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - Gradescope must get results, whatever broke
        results = error_results(f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    write_json_atomic(out, results)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    typeguard_cache.install(record=True)
    kit_root, root = Path(argv[0]), Path(argv[1])
    results = run_autograder(kit_root, root)
    print(f"score {results['score']:g}; results in {root / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
