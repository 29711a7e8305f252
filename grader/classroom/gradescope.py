"""Gradescope: the autograder bundle (`grade gradescope-bundle`) and what runs inside it.

The bundle is a zip with `setup.sh` and `run_autograder` at its root and the whole kit
(solutions and hidden suites included: the bundle is for Gradescope, never for students)
under `kit/`. On Gradescope, `run_autograder` calls `python -m grader.classroom.gradescope`,
which grades `/autograder/submission` and writes `/autograder/results/results.json`. For tests,
`AUTOGRADER_ROOT` moves `/autograder` and `AUTOGRADER_PYTHON` names the interpreter;
`HIDDEN_VISIBILITY` overrides when hidden tests are shown.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path

from grader.classroom.release import ReleaseError, copy_kit_files
from grader.course.kit import Kit, load_kit
from grader.grading.scorecard import write_json_atomic

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (Ubuntu, as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3.11 python3.11-venv make bubblewrap redis-server >/dev/null \\
  || apt-get install -y -qq python3 python3-venv make bubblewrap redis-server >/dev/null
PY=$(command -v python3.11 || command -v python3)
cd /autograder/source/kit
make install PYTHON="$PY"
.venv/bin/grade setup
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
KIT="$ROOT/source/kit"
export HIDDEN_VISIBILITY="${HIDDEN_VISIBILITY:-%(visibility)s}"
export PYTHONPATH="$KIT"
exec "${AUTOGRADER_PYTHON:-$KIT/.venv/bin/python}" -m grader.classroom.gradescope "$KIT" "$ROOT"
"""

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
                for name, text in (
                    ("setup.sh", SETUP_SH),
                    ("run_autograder", RUN_AUTOGRADER % {"visibility": hidden_visibility}),
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


def run_autograder(kit_root: Path, root: Path) -> dict:
    """Grade `root/submission` with every suite; write `root/results/results.json`."""
    from grader.grading.child import grade_in_child

    kit = load_kit(kit_root)
    card = grade_in_child(kit, root / "submission", name="submission")
    visibility = os.environ.get("HIDDEN_VISIBILITY", "after_due_date")
    results = card.to_gradescope(hidden_visibility=visibility)
    write_json_atomic(root / "results" / "results.json", results)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kit_root, root = Path(argv[0]), Path(argv[1])
    results = run_autograder(kit_root, root)
    print(f"score {results['score']:g}; results in {root / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
