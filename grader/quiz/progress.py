"""Spaced review: per-user Leitner boxes kept in a small JSON file.

Every question the learner has seen sits in a box from 1 to `MAX_BOX`. A pass (score at least
`PASS_MARK`) moves it up one box, a miss sends it back to box 1. A question is due again
`INTERVAL_DAYS[box]` days after it was last asked, so box 1 (missed) is due at once and well-known
questions come back rarely.

The file lives in the platform's user-data folder unless `--progress FILE` (or the environment
variable `PROGRESS_ENV`) names another one. It is rewritten atomically (temp file + rename) after
each answer so that Ctrl-C never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from platformdirs import user_data_path

from grader.quiz.errors import ProgressError
from grader.quiz.scoring import PASS_MARK

APP_NAME = "feature-store-lab"
FILE_NAME = "quiz-progress.json"
PROGRESS_ENV = "FEATURE_STORE_LAB_QUIZ_PROGRESS"
FORMAT_VERSION = 1
MAX_BOX = 5
INTERVAL_DAYS = {1: 0, 2: 1, 3: 3, 4: 7, 5: 21}
"""Days until a question in each box is due again."""


def default_progress_path() -> Path:
    """The per-user progress file in the platform's user-data folder (not created here)."""
    return user_data_path(APP_NAME, appauthor=False) / FILE_NAME


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Card:
    """The learner's record for one question."""

    box: int = 1
    """Leitner box, 1 (just missed or new) to `MAX_BOX` (well known)."""
    due: str = ""
    """ISO-8601 UTC time from which the question is due for review."""
    seen: int = 0
    """How many times it was asked."""
    passed: int = 0
    """How many of those answers reached the pass mark."""
    last_score: float = 0.0
    """Score of the latest answer, 0..1."""
    last_seen: str = ""
    """ISO-8601 UTC time of the latest answer."""

    @property
    def due_at(self) -> datetime:
        return datetime.fromisoformat(self.due)


@dataclass
class Progress:
    """All cards of one learner; `path` is where `save()` writes (None: do not persist)."""

    path: Path | None
    cards: dict[str, Card] = field(default_factory=dict)

    def record(self, qid: str, score: float, now: datetime | None = None) -> Card:
        """Update the card of `qid` after an answer scoring `score` (0..1) and return it."""
        now = now or _now()
        card = self.cards.get(qid) or Card()
        card.box = min(card.box + 1, MAX_BOX) if score >= PASS_MARK else 1
        card.seen += 1
        card.passed += score >= PASS_MARK
        card.last_score = round(score, 4)
        card.last_seen = now.isoformat()
        card.due = (now + timedelta(days=INTERVAL_DAYS[card.box])).isoformat()
        self.cards[qid] = card
        return card

    def due_ids(self, ids: Iterable[str], now: datetime | None = None) -> list[str]:
        """The ids among `ids` that were seen and are due, lowest box then longest overdue first."""
        now = now or _now()
        due = [(self.cards[i].box, self.cards[i].due_at, i) for i in ids if self.is_due(i, now)]
        return [i for _, _, i in sorted(due)]

    def is_due(self, qid: str, now: datetime | None = None) -> bool:
        """True when `qid` was seen and its due time has come."""
        card = self.cards.get(qid)
        return card is not None and card.due_at <= (now or _now())

    def box(self, qid: str) -> int:
        """The box of `qid`, 0 when never seen."""
        card = self.cards.get(qid)
        return card.box if card else 0

    def to_dict(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "cards": {k: asdict(v) for k, v in self.cards.items()}}

    def save(self) -> None:
        """Write the file atomically; raises `ProgressError` when it cannot be written."""
        if self.path is None:
            return
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".quiz-progress-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ProgressError(f"cannot write the progress file {self.path}: {exc}") from None


def _card(raw: Any) -> Card:
    if not isinstance(raw, dict):
        raise ValueError("a card is not an object")
    card = Card(**{k: raw[k] for k in Card.__dataclass_fields__ if k in raw})
    if not (isinstance(card.box, int) and 1 <= card.box <= MAX_BOX):
        raise ValueError(f"box {card.box!r} is not 1..{MAX_BOX}")
    card.due_at  # noqa: B018 - validates the timestamp
    return card


def load_progress(path: Path | None = None) -> Progress:
    """Read the progress file at `path` (default: the per-user one); a missing file is empty.

    Raises `ProgressError` when the file exists but cannot be read or is not a progress file;
    it is never overwritten in that case, so nothing is lost.
    """
    path = path or default_progress_path()
    if not path.exists():
        return Progress(path)
    try:
        data = json.loads(path.read_text("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("cards"), dict):
            raise ValueError("no 'cards' object")
        cards = {str(k): _card(v) for k, v in data["cards"].items()}
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProgressError(
            f"the progress file {path} is not usable ({msg}); move it away or pass --progress"
        ) from None
    return Progress(path, cards)


@dataclass(frozen=True)
class SectionStats:
    """Mastery of one section, as shown by `grade quiz --stats`."""

    section: str
    """Section id."""
    title: str
    """Section title from the bank."""
    questions: int
    """Questions in the section."""
    seen: int
    """Questions answered at least once."""
    due: int
    """Seen questions due for review now."""
    mastered: int
    """Questions in box `MASTERED_BOX` or higher."""
    mastery: float
    """Mean of (box - 1) / (MAX_BOX - 1) over the section; unseen questions count 0. 0..1."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MASTERED_BOX = 4
"""A question counts as mastered from this box on (passed three times in a row)."""


def section_stats(
    sections: dict[str, str],
    question_sections: dict[str, str],
    progress: Progress,
    now: datetime | None = None,
) -> list[SectionStats]:
    """Per-section mastery. `question_sections` maps each question id to its section id."""
    now = now or _now()
    out = []
    for section, title in sections.items():
        ids = [q for q, s in question_sections.items() if s == section]
        boxes = [progress.box(q) for q in ids]
        out.append(
            SectionStats(
                section=section,
                title=title,
                questions=len(ids),
                seen=sum(b > 0 for b in boxes),
                due=len(progress.due_ids(ids, now)),
                mastered=sum(b >= MASTERED_BOX for b in boxes),
                mastery=round(
                    sum(max(b - 1, 0) for b in boxes) / ((MAX_BOX - 1) * len(ids)) if ids else 0.0,
                    4,
                ),
            )
        )
    return out
