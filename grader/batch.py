"""`grade batch`: grade a folder of submissions in parallel child processes.

Every entry of the folder (a sub-folder or a `.zip`) is one submission. Each gets its own
forked grading process; at most `workers` run at once. Outputs, each written atomically:
`OUT/<id>.json`, `OUT/<id>.gradescope.json`, `OUT/gradebook.csv`, `OUT/summary.json`.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from grader.grading import ChildGrading, GradingOptions, start_child
from grader.kit import Kit
from grader.scorecard import Scorecard, write_json_atomic, write_text_atomic
from grader.submission import submission_id


class BatchError(Exception):
    """Bad batch input (one line, for the user)."""


@dataclass(frozen=True)
class Entry:
    id: str
    path: Path


def find_submissions(folder: Path, out: Path) -> list[Entry]:
    """The submissions in `folder`, sorted by id; refuses bad layouts with `BatchError`."""
    if not folder.is_dir():
        raise BatchError(f"{folder} is not a folder of submissions")
    folder, out = folder.resolve(), out.resolve()
    if out == folder or folder in out.parents:
        raise BatchError(f"the output folder {out} must not be inside the submissions folder")
    entries: dict[str, Entry] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__MACOSX")):
            continue
        if path.is_symlink():
            continue  # never followed: a link could point at anyone's files
        if not (path.is_dir() or path.suffix.lower() == ".zip"):
            continue
        sid = submission_id(path)
        if sid in entries:
            raise BatchError(f"two submissions are both called {sid!r} (a folder and a .zip?)")
        entries[sid] = Entry(sid, path)
    if not entries:
        raise BatchError(f"{folder} holds no submissions (sub-folders or .zip files)")
    return list(entries.values())


def gradebook_csv(kit: Kit, cards: list[Scorecard]) -> str:
    """One row per submission, one column per exercise, then the total and the status."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    slugs = [ex.slug for ex in kit.exercises]
    writer.writerow(["submission", *slugs, "total", "max_score", "status"])
    for card in sorted(cards, key=lambda c: c.submission):
        scores = {ex.slug: ex.score for ex in card.exercises}
        row = [f"{scores.get(s, 0.0):g}" for s in slugs]
        writer.writerow(
            [card.submission, *row, f"{card.score:g}", f"{card.max_score:g}", card.status]
        )
    return buffer.getvalue()


def summary(kit: Kit, cards: list[Scorecard], seconds: float, workers: int) -> dict:
    """Class-level figures: counts, mean and median, per-exercise means, per-test pass rates."""
    scores = [c.score for c in cards]
    tests: dict[str, dict] = {}
    statuses: dict[str, int] = {}
    for card in cards:
        for ex in card.exercises:
            statuses[ex.status] = statuses.get(ex.status, 0) + 1
            for t in ex.tests:
                entry = tests.setdefault(
                    t.id, {"id": t.id, "visibility": t.visibility, "max_points": t.max_points,
                           "runs": 0, "passed": 0}
                )  # fmt: skip
                entry["runs"] += 1
                entry["passed"] += t.status == "passed"
    for entry in tests.values():
        entry["pass_rate"] = round(entry["passed"] / entry["runs"], 4) if entry["runs"] else None
    per_exercise = {}
    for ex in kit.exercises:
        values = [e.score for c in cards for e in c.exercises if e.slug == ex.slug]
        per_exercise[ex.slug] = {
            "max_score": ex.points,
            "mean": round(statistics.fmean(values), 4) if values else None,
        }
    return {
        "submissions": len(cards),
        "graded": sum(c.status == "graded" for c in cards),
        "errors": sum(c.status == "error" for c in cards),
        "exercise_statuses": statuses,
        "max_score": kit.total_points,
        "mean": round(statistics.fmean(scores), 4) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "per_exercise": per_exercise,
        "tests": sorted(tests.values(), key=lambda t: (t["pass_rate"] or 0, t["id"])),
        "duration_s": round(seconds, 3),
        "seconds_per_submission": round(seconds / len(cards), 3) if cards else None,
        "workers": workers,
    }


def run_batch(
    kit: Kit,
    folder: Path,
    out: Path,
    *,
    workers: int = 2,
    options: GradingOptions | None = None,
    on_done: Callable[[Scorecard, int, int], None] | None = None,
) -> list[Scorecard]:
    """Grade every submission of `folder` into `out`; returns the scorecards by id.

    One bad submission never stops the batch: whatever happens to its grading process, it
    gets a scorecard. `on_done(card, done, total)` reports progress.
    """
    options = options or GradingOptions()
    entries = find_submissions(folder, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder {out}: {exc.strerror}") from None
    started = time.monotonic()
    pending = list(entries)
    running: list[ChildGrading] = []
    cards: list[Scorecard] = []
    while pending or running:
        while pending and len(running) < max(1, workers):
            entry = pending.pop(0)
            running.append(start_child(kit, entry.path, name=entry.id, options=options))
        wait([c.process.sentinel for c in running], timeout=1.0)
        for child in list(running):
            if child.process.is_alive() and not child.overdue:
                continue
            if child.process.is_alive():
                child.kill()
            child.process.join()
            running.remove(child)
            card = child.result()
            card.write(out / f"{card.submission}.json")
            write_json_atomic(out / f"{card.submission}.gradescope.json", card.to_gradescope())
            cards.append(card)
            if on_done:
                on_done(card, len(cards), len(entries))
    cards.sort(key=lambda c: c.submission)
    write_text_atomic(out / "gradebook.csv", gradebook_csv(kit, cards))
    write_json_atomic(
        out / "summary.json", summary(kit, cards, time.monotonic() - started, workers)
    )
    return cards
