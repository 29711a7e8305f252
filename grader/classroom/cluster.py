"""`grade batch --scheduler ADDRESS`: the same batch on an existing Dask cluster.

Each submission is one Dask task. On the worker, the task grades in a fresh Python process
(`python -m grader.classroom.cluster`, all sandbox rules apply there) and returns the scorecard
as plain data; the client writes every output file, exactly as the local batch does. The workers
must see the kit and the submissions at the same paths (one machine, or a shared filesystem). A
task whose worker is lost is rescheduled by Dask; a task that fails is retried twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.course.kit import Kit, load_kit
from grader.grading.options import GradingOptions, options_to_dict
from grader.grading.runner import error_scorecard
from grader.grading.scorecard import Scorecard


class ClusterError(Exception):
    """The Dask scheduler cannot be reached (one line, for the user)."""


def grade_remote(kit_root: str, source: str, name: str, options: dict[str, Any]) -> dict:
    """Runs on a Dask worker: grade one submission in a fresh process, return the scorecard."""
    with tempfile.TemporaryDirectory(prefix="fslab-dask-") as tmp:
        out, opts = Path(tmp) / "card.json", Path(tmp) / "options.json"
        opts.write_text(json.dumps(options), encoding="utf-8")
        budget = float(options["submission_timeout_s"]) + 120
        cmd = [
            sys.executable,
            "-m",
            "grader.classroom.cluster",
            kit_root,
            source,
            name,
            str(out),
            str(opts),
        ]
        try:
            subprocess.run(cmd, capture_output=True, timeout=budget, check=False)
            return json.loads(out.read_text(encoding="utf-8"))
        except (subprocess.TimeoutExpired, OSError, ValueError):
            kit = load_kit(Path(kit_root))
            slugs = [ex.slug for ex in kit.exercises]
            reason = "the grading process on the Dask worker ended without a scorecard"
            return error_scorecard(kit, name, slugs, reason, budget).to_dict()


def run_on_dask(
    kit: Kit,
    entries: list,
    scheduler: str,
    options: GradingOptions,
    on_card: Callable[[Scorecard], None],
) -> None:
    """Grade `entries` (with `.id`, `.path`) on the cluster at `scheduler`, calling `on_card`."""
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=15)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    try:
        data = options_to_dict(options)
        futures = [
            client.submit(
                grade_remote,
                str(kit.root),
                str(e.path.resolve()),
                e.id,
                data,
                key=f"grade-{e.id}",
                pure=False,
                retries=2,
            )  # fmt: skip
            for e in entries
        ]
        for future in as_completed(futures):
            on_card(Scorecard.from_dict(future.result()))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.classroom.cluster KIT SUBMISSION NAME OUT.json OPTIONS.json`: grade one
    submission in this fresh process (forking inside a threaded Dask worker is unsafe)."""
    from grader.grading.options import options_from_dict
    from grader.grading.runner import grade_submission
    from grader.grading.scorecard import write_json_atomic

    kit_root, source, name, out, options_file = (sys.argv[1:] if argv is None else argv)[:5]
    options = options_from_dict(json.loads(Path(options_file).read_text(encoding="utf-8")))
    card = grade_submission(load_kit(Path(kit_root)), Path(source), name=name, options=options)
    write_json_atomic(Path(out), card.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
