"""A grading session: a warm sandboxed worker factory kept for one or more gradings.

`Session` starts a factory (`grader.sandbox.warm.Zygote`, the batch's design) and, while it
imports Feast, imports in this trusted process what the suites import; each `grade` is then a
forked grading child (a fresh pytest) whose sandboxed workers are forks of the factory, so it
pays for its tests only. `grade check` grades once in a session (the factory's import overlaps
ours), `grade watch` regrades in one on every save. Where bubblewrap does not work there is no
factory and workers start cold. Student code never runs in this process.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.child import ChildGrading, start_child
from grader.grading.options import GradingOptions
from grader.grading.scorecard import Scorecard
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
