"""`grade watch`: the student's loop. Save a file, see its exercise regraded in place.

A `Session` keeps a warm sandboxed worker factory (`grader.sandbox.warm.Zygote`, the batch's
design) alive between regrades, and has imported in this trusted process what the suites
import, so one regrade pays for its tests only: a forked grading child (a fresh pytest, as
for `grade check`) whose sandboxed workers are forks of the factory, Feast already imported.

Student code never runs here. A broken or hostile file costs its own regrade: the child and
its workers are killed with it, and a factory that died is started again for the next save.
`close()` (also on Ctrl-C) ends the child, the factory and every job it still runs.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.options import GradingOptions
from grader.grading.scorecard import ExerciseResult, Scorecard, read_scorecard
from grader.grading.session import Session


def changed_slugs(kit: Kit, slugs: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The exercises (of `slugs`, in course order) whose module file is among `paths`.

    A submission's files are found by name (SPEC 4), so a file counts wherever it is."""
    names = {Path(p).name for p in paths}
    wanted = set(slugs)
    return [ex.slug for ex in kit.exercises if ex.slug in wanted and ex.module in names]


def merge_into(path: Path, card: Scorecard) -> Scorecard:
    """The scorecard at `path` with `card`'s exercises replacing its own (the others kept, when
    the same suites graded them), written back atomically: `grade list` shows every
    exercise's latest score though a regrade grades one."""
    try:
        old = read_scorecard(path)
    except (OSError, ValueError, TypeError, KeyError):
        old = None
    if old is None or old.suite_digest != card.suite_digest:
        merged = card
    else:
        fresh: dict[str, ExerciseResult] = {ex.slug: ex for ex in card.exercises}
        exercises = [fresh.pop(ex.slug, ex) for ex in old.exercises] + list(fresh.values())
        merged = replace(
            card,
            exercises=exercises,
            score=round(sum(ex.score for ex in exercises), 4),
            max_score=float(sum(ex.max_score for ex in exercises)),
            status="error" if card.status == "error" or old.status == "error" else "graded",
        )
    merged.write(path)
    return merged


class FileEvents:
    """Change sets from `watchfiles` on a thread, queued from the moment it starts: a save
    made while a regrade runs (or before the first grading ends) is not lost."""

    def __init__(self, folder: Path) -> None:
        import watchfiles

        self.queue: queue.Queue[set] = queue.Queue()
        self.stop = threading.Event()
        self.started = threading.Event()

        def run() -> None:
            # Editors save in several steps (a temp file, a rename): one debounced set a save.
            # An empty set every half second (yield_on_timeout) tells that inotify is set up.
            changes = watchfiles.watch(
                folder, debounce=300, step=50, stop_event=self.stop, raise_interrupt=False,
                rust_timeout=500, yield_on_timeout=True,
            )  # fmt: skip
            for batch in changes:
                self.started.set()
                if batch:
                    self.queue.put(batch)

        self.thread = threading.Thread(target=run, name="grade-watch-files", daemon=True)
        self.thread.start()
        self.started.wait(10)

    def __iter__(self) -> Iterator[set]:
        while not self.stop.is_set():
            try:
                batch = self.queue.get(timeout=0.5)  # short: Ctrl-C is seen at once
            except queue.Empty:
                continue
            while not self.queue.empty():  # everything saved meanwhile, in one regrade
                batch |= self.queue.get_nowait()
            yield batch

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def watch(
    session: Session,
    on_result: Callable[[Scorecard, list[str]], None],
    changes: Iterable[set],
) -> None:
    """Grade every watched exercise once, then regrade the ones whose file changed, on each
    set of `changes` (`(change, path)` pairs, as `watchfiles` gives), calling
    `on_result(card, regraded_slugs)` after each grading. Runs until `changes` ends or the
    caller is interrupted (KeyboardInterrupt reaches the caller; `session.close()` is its)."""
    on_result(session.grade(session.slugs), session.slugs)
    for batch in changes:
        slugs = changed_slugs(session.kit, session.slugs, (path for _change, path in batch))
        if slugs:
            on_result(session.grade(slugs), slugs)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_watch(
    kit: Kit,
    source: Path,
    slugs: list[str],
    options: GradingOptions,
    *,
    scorecard: Path,
    verbose: bool = False,
) -> None:
    """`grade watch`: start the session, grade, then regrade on each save and show the result
    in place, merging each result into `scorecard`; returns on Ctrl-C (or SIGTERM, SIGHUP)
    with every process it started ended."""
    from grader.grading.render import console, render_watch

    out = console()
    # A closed terminal or a `kill` must clean up as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    session = Session(kit, source, slugs, options)
    warned: list[str] = []

    def show(card: Scorecard, regraded: list[str]) -> None:
        try:
            overview = merge_into(scorecard, card)
        except OSError as exc:
            if not warned:
                warned.append(f"cannot write {scorecard}: {exc.strerror}")
            overview = card
        render_watch(out, overview, card, regraded, source=source, verbose=verbose)
        for line in warned:
            out.print(line, style="yellow", markup=False)

    events = None
    try:
        out.print("grade watch: starting the sandbox (its imports are paid once) ...")
        events = FileEvents(source)
        session.start()
        watch(session, show, events)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        if events is not None:
            events.close()
    out.print("Stopped watching.")
