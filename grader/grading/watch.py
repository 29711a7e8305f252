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

import ast
import importlib
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.child import ChildGrading, start_child
from grader.grading.options import GradingOptions
from grader.grading.scorecard import ExerciseResult, Scorecard, read_scorecard
from grader.grading.suites import suite_files, suites_dir


def suite_imports(files: Iterable[Path]) -> list[str]:
    """The modules the suite files import at their top level, in order (read, not run)."""
    names: list[str] = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [node.module]
            else:
                continue
            names += [n for n in found if n not in names and n != "__future__"]
    return names


def preimport_suites(kit: Kit, slugs: list[str], include_hidden: bool) -> None:
    """Import here what the suites of `slugs` import (pytest, pandas, the harness, ...), so
    that every forked grading child starts with them. Feast is not among them: the suites
    never import it in the trusted process."""
    import pytest  # noqa: F401

    files = [path for _, _, path in suite_files(kit, slugs, include_hidden)]
    files.append(suites_dir(kit) / "conftest.py")
    for name in suite_imports(files):
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the suite will say so itself when it runs


class Session:
    """What stays alive between two regrades: the options and a warm worker factory."""

    def __init__(self, kit: Kit, source: Path, slugs: list[str], options: GradingOptions):
        self.kit = kit
        self.source = source
        self.slugs = slugs
        self.options = options
        self.zygote = None
        self.ready = False
        self.child: ChildGrading | None = None

    def _launch(self) -> None:
        """Start a factory (not waiting for its imports); none where bubblewrap does not work
        (then workers start cold, as `grade check` does without it)."""
        from grader.sandbox.bubblewrap import WorkerError, bwrap_works
        from grader.sandbox.warm import Zygote

        self.zygote, self.ready = None, False
        if self.options.use_bwrap is False or not bwrap_works():
            return
        preload: list[str] = []
        for slug in self.slugs:
            preload += [m for m in self.kit.exercise(slug).imports if m not in preload]
        try:
            self.zygote = Zygote(
                readonly=(self.kit.data_dir,), preload=tuple(preload), limits=self.options.limits
            ).start()
        except (WorkerError, OSError):
            self.zygote = None

    def _factory(self):
        """The warm factory, ready; started again if it died since the last regrade."""
        from grader.sandbox.bubblewrap import WorkerError

        zygote = self.zygote
        if zygote is not None and (zygote.proc is None or zygote.proc.poll() is not None):
            zygote.close()
            zygote = self.zygote = None
        if zygote is None:
            self._launch()
        if self.zygote is not None and not self.ready:
            try:
                self.zygote.wait_ready()
                self.ready = True
            except (WorkerError, OSError):  # it closed itself: cold workers this time
                self.zygote = None
        return self.zygote

    def start(self) -> Session:
        """Start the factory, pay the trusted side's imports meanwhile (two cores), and wait
        for the factory's."""
        self._launch()
        preimport_suites(self.kit, self.slugs, self.options.include_hidden)
        self._factory()
        return self

    def grade(self, slugs: list[str]) -> Scorecard:
        """Grade `slugs` of the submission once, with workers forked from the factory."""
        options = replace(self.options, zygote=self._factory())
        child = self.child = start_child(self.kit, self.source, slugs=slugs, options=options)
        try:
            child.process.join(options.submission_timeout_s + 60)
            if child.process.is_alive():
                child.kill()
            return child.result()
        except BaseException:  # Ctrl-C mid-regrade: the child goes first
            child.kill()
            raise
        finally:
            self.child = None
            if options.zygote is not None:
                options.zygote.kill_all()  # nothing of this regrade survives it

    def close(self) -> None:
        """End the running regrade (if any), the factory and all its jobs."""
        if self.child is not None:
            self.child.kill()
            self.child = None
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


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
