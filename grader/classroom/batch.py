"""`grade batch`: grade a folder of submissions in parallel child processes.

Every entry of the folder (a sub-folder or a `.zip`) is one submission. Each gets its own
forked grading process; at most `workers` run at once. Outputs, each written atomically:
`OUT/<stem>.json`, `OUT/<stem>.gradescope.json`, `OUT/gradebook.csv`, `OUT/summary.json`, where
`<stem>` is the submission's id when that is a safe, unique file name and `<slug>-<hash8>`
otherwise (`grader.classroom.outputs`).
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path

from grader.classroom import regrade
from grader.classroom.outputs import assign_stems, gradescope_name, scorecard_name, unique_ids
from grader.course.kit import Kit
from grader.grading.child import ChildGrading, start_child
from grader.grading.options import GradingOptions
from grader.grading.runner import lock_away_from_workers
from grader.grading.safe_text import clean_line, csv_cell
from grader.grading.scorecard import Scorecard, read_scorecard, write_json_atomic, write_text_atomic
from grader.grading.suites import suite_digest
from grader.sandbox.bubblewrap import bwrap_works, root_refusal, shares_one_user


class BatchError(Exception):
    """Bad batch input (one line, for the user)."""


@dataclass(frozen=True)
class Entry:
    id: str
    """The submission's id (data: scorecards and the gradebook show it)."""
    path: Path
    stem: str = ""
    """The safe file stem of its outputs in the batch's folder."""


def find_submissions(folder: Path, out: Path) -> list[Entry]:
    """The submissions in `folder`, sorted by id, each with a unique id and output stem.

    Refuses bad layouts (no folder, no submissions, `out` inside `folder`) with `BatchError`.
    """
    if not folder.is_dir():
        raise BatchError(f"{folder} is not a folder of submissions")
    folder, out = folder.resolve(), out.resolve()
    if out == folder or folder in out.parents:
        raise BatchError(f"the output folder {out} must not be inside the submissions folder")
    paths = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__MACOSX")):
            continue
        if path.is_symlink():
            continue  # never followed: a link could point at anyone's files
        if not (path.is_dir() or path.suffix.lower() == ".zip"):
            continue
        paths.append(path)
    if not paths:
        raise BatchError(f"{folder} holds no submissions (sub-folders or .zip files)")
    ids = unique_ids(paths)
    stems = assign_stems(list(ids.values()))
    entries = [Entry(ids[p], p, stems[ids[p]]) for p in paths]
    return sorted(entries, key=lambda e: e.id)


def current_scorecard(path: Path, digest: str, sid: str | None = None) -> Scorecard | None:
    """The scorecard at `path` if it is readable, graded, made by the suites `digest` and (given
    `sid`) for that submission."""
    try:
        card = read_scorecard(path)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if sid is not None and card.submission != sid:
        return None
    return card if card.suite_digest == digest and card.status == "graded" else None


def gradebook_csv(kit: Kit, cards: list[Scorecard], files: dict[str, str] | None = None) -> str:
    """One row per submission, one column per exercise, then the total, the status and the
    scorecard's file name (`files` maps ids to it; empty where none was written).

    Every text cell goes through `csv_cell`: a spreadsheet never runs an id as a formula.
    """
    files = files or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    slugs = [ex.slug for ex in kit.exercises]
    writer.writerow(["submission", *slugs, "total", "max_score", "status", "file"])
    for card in sorted(cards, key=lambda c: c.submission):
        scores = {ex.slug: ex.score for ex in card.exercises}
        row = [scores.get(s, 0.0) for s in slugs]
        cells = [card.submission, *row, card.score, card.max_score, card.status]
        writer.writerow([csv_cell(c) for c in [*cells, files.get(card.submission, "")]])
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


def write_outputs(out: Path, stem: str, card: Scorecard, titles: dict[str, str]) -> None:
    """A submission's Gradescope results and scorecard, each written atomically.

    `titles` maps exercise slugs to the titles Gradescope shows (as `run_autograder` does).
    The scorecard comes last: `--resume` takes it as the sign that the submission is done.
    """
    write_json_atomic(out / gradescope_name(stem), card.to_gradescope(titles=titles))
    card.write(out / scorecard_name(stem))


def unwritten(card: Scorecard, exc: OSError) -> Scorecard:
    """`card` marked as an error: its outputs could not be written (it keeps its scores)."""
    reason = f"its outputs could not be written: {exc.strerror or exc}"
    return replace(card, status="error", error=clean_line(reason))


def run_batch(
    kit: Kit,
    folder: Path,
    out: Path,
    *,
    workers: int = 2,
    options: GradingOptions | None = None,
    resume: bool = False,
    scheduler: str | None = None,
    warm: bool = True,
    on_done: Callable[[Scorecard, int, int], None] | None = None,
    compare: Path | None = None,
) -> list[Scorecard]:
    """Grade every submission of `folder` into `out`; returns the scorecards by id.

    One bad submission never stops the batch: whatever happens to its grading process, it
    gets a scorecard. With `resume`, a submission whose scorecard in `out` was made by the same
    suites (equal `suite_digest`) and graded is kept, not regraded. `on_done(card, done,
    total)` reports progress. With `scheduler`, the submissions are graded on that Dask
    cluster instead of local child processes. With `warm` (and bubblewrap), each slot keeps a
    pre-imported worker factory that forks the sandboxed workers (`grader.sandbox.warm`);
    without, every submission starts its workers from scratch. When `out` holds scorecards
    of other suites, or `compare` names an earlier results folder, the change is written to
    `out/regrade.csv` and `out/regrade.json` (`grader.classroom.regrade`). As root without
    bubblewrap one submission is graded at a time (every worker is the one sandbox user),
    and nothing at all where that user cannot run this Python (`BatchError`).
    """
    options = options or GradingOptions()
    if not scheduler:  # a cluster's workers decide for themselves
        use_bwrap = options.uses_bwrap()
        refusal = root_refusal(use_bwrap)
        if refusal:
            raise BatchError(refusal)
        if shares_one_user(use_bwrap):
            workers = 1
    entries = find_submissions(folder, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder {out}: {exc.strerror}") from None
    if not scheduler:
        # Where one sandbox user runs every submission (root without bubblewrap), none may
        # read another's files or outputs; the kit's own private folders go too.
        lock_away_from_workers(kit, options, folder, out)
    started = time.monotonic()
    cards: list[Scorecard] = []
    pending = []
    digest = suite_digest(kit)
    previous = regrade.previous_scorecards(compare or out, digest, other_digest_only=not compare)
    if compare is not None and not previous:
        raise BatchError(f"{compare} holds no scorecards to compare with")
    files: dict[str, str] = {}
    stems = {e.id: e.stem for e in entries}
    titles = {ex.slug: ex.title for ex in kit.exercises}
    for entry in entries:
        done = None
        if resume:
            done = current_scorecard(out / scorecard_name(entry.stem), digest, entry.id)
        if done is None:
            pending.append(entry)
            continue
        cards.append(done)
        files[entry.id] = scorecard_name(entry.stem)
        if on_done:
            on_done(done, len(cards), len(entries))

    def finished(card: Scorecard) -> None:
        # The child names the card with the id it was given: the entry's, cleaned already.
        stem = stems.get(card.submission)
        try:
            if stem is None:
                raise OSError(f"no output name for {card.submission!r}")
            write_outputs(out, stem, card, titles)
            files[card.submission] = scorecard_name(stem)
        except OSError as exc:  # costs this submission, never the batch
            card = unwritten(card, exc)
        cards.append(card)
        if on_done:
            on_done(card, len(cards), len(entries))

    if scheduler:
        from grader.classroom.cluster import ClusterError, run_on_dask

        try:
            run_on_dask(kit, pending, scheduler, options, finished)
        except ClusterError as exc:
            raise BatchError(str(exc)) from None
    else:
        _run_local(kit, pending, workers, options, finished, warm=warm)
    cards.sort(key=lambda c: c.submission)
    try:
        write_text_atomic(out / "gradebook.csv", gradebook_csv(kit, cards, files))
        figures = summary(kit, cards, time.monotonic() - started, workers)
        figures["source"] = str(folder.resolve())  # lets `grade similarity RESULTS` find the code
        write_json_atomic(out / "summary.json", figures)
    except OSError as exc:
        raise BatchError(f"cannot write the gradebook or summary in {out}: {exc}") from None
    if compare is not None or previous:
        regrade.write_regrade(out, regrade.diff(previous, cards, digest))
    else:
        regrade.clear_regrade(out)
    return cards


def _run_local(
    kit: Kit,
    pending: list[Entry],
    workers: int,
    options: GradingOptions,
    finished: Callable[[Scorecard], None],
    *,
    warm: bool,
) -> None:
    """Grade `pending` in forked children, at most `workers` at once."""
    zygotes = _launch_zygotes(kit, workers, options) if warm else [None] * max(1, workers)
    # Pay for the heavy imports once here, while the factories pay theirs: every forked
    # grading child inherits them.
    import gc

    import feast  # noqa: F401
    import pyarrow  # noqa: F401

    # Everything imported so far is shared by the children: keep the collector off it, so
    # their collections stay short and their memory pages stay shared.
    gc.freeze()

    slots = [replace(options, zygote=_ready(z)) for z in zygotes]
    free = list(range(len(slots)))
    pending = list(pending)
    running: dict[int, ChildGrading] = {}
    try:
        while pending or running:
            while pending and free:
                slot = free.pop(0)
                entry = pending.pop(0)
                running[slot] = start_child(kit, entry.path, name=entry.id, options=slots[slot])
            wait([c.process.sentinel for c in running.values()], timeout=1.0)
            for slot, child in list(running.items()):
                if child.process.is_alive() and not child.overdue:
                    continue
                if child.process.is_alive():
                    child.kill()
                child.process.join()
                del running[slot]
                if slots[slot].zygote is not None:
                    slots[slot].zygote.kill_all()
                card = child.result()  # also removes the submission's control group
                if slots[slot].zygote is not None:
                    slots[slot].zygote.clear()
                free.append(slot)
                finished(card)
    finally:
        for child in running.values():  # interrupted: nothing we started may outlive us
            child.kill()
            child.release()
        for options_ in slots:
            if options_.zygote is not None:
                options_.zygote.close()


def _launch_zygotes(kit: Kit, workers: int, options: GradingOptions) -> list:
    """One warm worker factory per slot where bubblewrap works (None where not), launched."""

    count = max(1, workers)
    if options.use_bwrap is False or not bwrap_works():
        return [None] * count
    from grader.sandbox.bubblewrap import WorkerError
    from grader.sandbox.warm import Zygote

    preload: list[str] = []
    for ex in kit.exercises:
        preload += [m for m in ex.imports if m not in preload]
    zygotes = []
    for _ in range(count):
        try:
            zygote = Zygote(readonly=(kit.data_dir,), preload=tuple(preload), limits=options.limits)
            zygotes.append(zygote.start())
        except (WorkerError, OSError):
            zygotes.append(None)
    return zygotes


def _ready(zygote):
    """The factory once it is ready, or None (cold workers) if it failed to start."""
    from grader.sandbox.bubblewrap import WorkerError

    if zygote is None:
        return None
    try:
        return zygote.wait_ready()
    except (WorkerError, OSError):
        return None
