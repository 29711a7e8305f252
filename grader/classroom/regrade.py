"""What a regrade changed: old scorecards against new ones, decreases first.

A batch regrades a class after a suite fix when its `--out` folder holds scorecards made by other
suites (another `suite_digest`), or when `--compare OLD_OUT` names an earlier results folder.
The old scorecards are read before anything is overwritten; after grading, `regrade.csv` (for
people, spreadsheet-safe) and `regrade.json` (for `grade report`) list each exercise whose score
or tests changed. A score that went down is the change students complain about, so decreases
come first and are flagged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.grading.safe_text import csv_text, printable
from grader.grading.scorecard import Scorecard, write_json_atomic, write_text_atomic

CSV_NAME = "regrade.csv"
JSON_NAME = "regrade.json"


@dataclass(frozen=True)
class Change:
    """One exercise of one submission whose score or tests changed in the regrade."""

    submission: str
    exercise: str
    """An exercise slug, or `(submission)` for a submission only one side has."""
    old: float | None
    """None when the old grading had no such submission or exercise."""
    new: float | None
    """None when the submission is no longer in the class."""
    tests_changed: tuple[str, ...] = ()
    """`test id: old status -> new status`, per test whose status changed."""

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else round(self.new - self.old, 6)

    @property
    def kind(self) -> str:
        """`decrease`, `increase`, `tests` (same score, other tests), `new` or `gone`."""
        if self.old is None:
            return "new"
        if self.new is None:
            return "gone"
        delta = self.delta or 0.0
        return "decrease" if delta < 0 else "increase" if delta > 0 else "tests"


@dataclass
class Regrade:
    """The changes of one regrade, decreases first."""

    old_digests: list[str]
    new_digest: str
    compared: int
    """Submissions present in both gradings."""
    changes: list[Change] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.changes)

    def to_dict(self) -> dict:
        return {
            "old_digests": self.old_digests,
            "new_digest": self.new_digest,
            "compared": self.compared,
            "changes": [{**asdict(c), "delta": c.delta, "kind": c.kind} for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Regrade:
        changes = [
            Change(c["submission"], c["exercise"], c["old"], c["new"], tuple(c["tests_changed"]))
            for c in data.get("changes", [])
        ]
        return cls(data["old_digests"], data["new_digest"], data["compared"], changes)


def previous_scorecards(folder: Path, digest: str, *, other_digest_only: bool) -> list[Scorecard]:
    """The scorecards in `folder` (by their `submission`, whatever their file name), read now,
    before a batch overwrites them. With `other_digest_only`, only those made by suites other
    than `digest` (a rerun with the same suites is not a regrade)."""
    cards = []
    if not folder.is_dir():
        return cards
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("schema_version") != 1:
                continue  # Gradescope files, summary.json, regrade.json
            card = Scorecard.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError):
            continue  # an unreadable old scorecard is no baseline
        if other_digest_only and card.suite_digest == digest:
            continue
        cards.append(card)
    return cards


def _test_changes(old: dict[str, str], new: dict[str, str]) -> tuple[str, ...]:
    out = []
    for test_id in sorted(set(old) | set(new)):
        before, after = old.get(test_id, "absent"), new.get(test_id, "absent")
        if before != after:
            out.append(f"{test_id}: {before} -> {after}")
    return tuple(out)


def diff(old_cards: list[Scorecard], new_cards: list[Scorecard], new_digest: str) -> Regrade:
    """Compare two gradings of a class, exercise by exercise."""
    old = {c.submission: c for c in old_cards}
    new = {c.submission: c for c in new_cards}
    changes: list[Change] = []
    for sid in sorted(set(old) & set(new)):
        before = {e.slug: e for e in old[sid].exercises}
        after = {e.slug: e for e in new[sid].exercises}
        for slug in [*after, *(s for s in before if s not in after)]:
            b, a = before.get(slug), after.get(slug)
            tests = _test_changes(
                {t.id: t.status for t in b.tests} if b else {},
                {t.id: t.status for t in a.tests} if a else {},
            )
            b_score = b.score if b else None
            a_score = a.score if a else None
            if b_score != a_score or tests:
                changes.append(Change(sid, slug, b_score, a_score, tests))
    for sid in sorted(set(new) - set(old)):
        changes.append(Change(sid, "(submission)", None, new[sid].score))
    for sid in sorted(set(old) - set(new)):
        changes.append(Change(sid, "(submission)", old[sid].score, None))
    order = {"decrease": 0, "increase": 1, "tests": 2, "new": 3, "gone": 4}
    changes.sort(key=lambda c: (order[c.kind], c.delta or 0.0, c.submission, c.exercise))
    digests = sorted({c.suite_digest for c in old_cards})
    return Regrade(digests, new_digest, len(set(old) & set(new)), changes)


def regrade_csv(regrade: Regrade) -> str:
    """`regrade.csv`: submission, exercise, old, new, delta, change, tests that changed."""
    rows: list[list[object]] = [
        ["submission", "exercise", "old", "new", "delta", "change", "tests_changed"]
    ]
    for c in regrade.changes:
        rows.append(
            [c.submission, c.exercise, "" if c.old is None else c.old,
             "" if c.new is None else c.new, "" if c.delta is None else c.delta,
             c.kind.upper() if c.kind == "decrease" else c.kind, "; ".join(c.tests_changed)]
        )  # fmt: skip
    return csv_text(rows)


def write_regrade(out: Path, regrade: Regrade) -> None:
    """Write `regrade.csv` and `regrade.json` into `out`, each atomically."""
    write_text_atomic(out / CSV_NAME, regrade_csv(regrade))
    write_json_atomic(out / JSON_NAME, regrade.to_dict())


def clear_regrade(out: Path) -> None:
    """Remove a previous run's regrade files: this run compared nothing, so they would lie."""
    for name in (CSV_NAME, JSON_NAME):
        (out / name).unlink(missing_ok=True)


def read_regrade(folder: Path) -> Regrade | None:
    """The regrade written into `folder`, or None when there is none (or it is unreadable)."""
    try:
        return Regrade.from_dict(json.loads((folder / JSON_NAME).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def summary_lines(regrade: Regrade, *, limit: int = 20) -> list[str]:
    """The terminal summary: counts, then the decreases (flagged), then the increases."""
    old = ", ".join(d[:19] for d in regrade.old_digests) or "none"
    lines = [
        f"Regrade: suites {regrade.new_digest[:19]} against {old}; {regrade.compared} "
        f"submissions compared: {regrade.count('decrease')} scores went down, "
        f"{regrade.count('increase')} went up, {regrade.count('tests')} changed tests only, "
        f"{regrade.count('new')} new, {regrade.count('gone')} gone"
    ]
    shown = [c for c in regrade.changes if c.kind in ("decrease", "increase")][:limit]
    for c in shown:
        mark = "!! DECREASE" if c.kind == "decrease" else "   increase"
        more = " ..." if len(c.tests_changed) > 3 else ""
        tests = f"  [{printable('; '.join(c.tests_changed[:3]))}{more}]"
        lines.append(
            f"{mark} {printable(c.submission)} {c.exercise}: {c.old:g} -> {c.new:g} ({c.delta:+g})"
            + (tests if c.tests_changed else "")
        )
    rest = regrade.count("decrease") + regrade.count("increase") - len(shown)
    if rest > 0:
        lines.append(f"... and {rest} more in {CSV_NAME}")
    return lines
