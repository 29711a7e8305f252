"""`grade export`: scorecards joined to a roster, in the file an LMS imports.

The roster is a CSV with one row per student: `submission` (the submission id the batch
graded), `student_id` (the institution's id: Canvas's "SIS User ID", Moodle's "ID number"),
`name`, and optionally `section`, `login_id` (Canvas's "SIS Login ID"), `email`, `canvas_id`
(Canvas's own numeric user "ID"). Formats:

- `canvas`: Canvas's gradebook import CSV: `Student, ID, SIS User ID, SIS Login ID, Section`,
  then one column per exercise (or one for the whole assignment with `assignment=`), and a
  `Points Possible` row as Canvas's own export has. A student without a submission gets an
  empty cell (Canvas leaves it ungraded), not 0.
- `moodle`: a CSV for Moodle's "Import grades > CSV file": `ID number, Full name, Email address,
  Group`, then the grade columns; map "ID number" to the user's idnumber when importing.
- `csv`: every roster column, the submission, each exercise, total, max score, status.

Nothing is dropped silently: submissions no roster row claims and students without a
submission are returned in `Export.unmatched` / `Export.absent` for the command to report (the
`csv` format also keeps unmatched submissions as rows without a student). Every cell goes
through the formula-injection guard.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.safe_text import csv_text
from grader.grading.scorecard import Scorecard

FORMATS = ("canvas", "moodle", "csv")
REQUIRED = ("submission", "student_id", "name")
OPTIONAL = ("section", "login_id", "email", "canvas_id")
MAX_ROSTER_BYTES = 16 << 20


class ExportError(Exception):
    """Bad roster or results (one line, for the user)."""


@dataclass(frozen=True)
class Student:
    submission: str
    student_id: str
    name: str
    section: str = ""
    login_id: str = ""
    email: str = ""
    canvas_id: str = ""


@dataclass
class Export:
    text: str
    """The file's content."""
    rows: int
    """Students (and, in `csv`, unmatched submissions) written."""
    unmatched: list[str] = field(default_factory=list)
    """Submission ids that no roster row names."""
    absent: list[Student] = field(default_factory=list)
    """Roster students whose submission has no scorecard."""


def read_roster(path: Path) -> list[Student]:
    """The roster at `path`; raises `ExportError` for a missing column, a duplicate submission
    id or student id, or a file that is not UTF-8 CSV. Headers are matched case-insensitively;
    a row with an empty `submission` is a student who has not handed anything in."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read the roster {path}: {exc.strerror}") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise ExportError(f"the roster {path} is larger than {MAX_ROSTER_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(f"the roster {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ExportError(
                f"the roster {path} lacks the column(s) {', '.join(missing)} "
                f"(needs {', '.join(REQUIRED)}; optional {', '.join(OPTIONAL)})"
            )
        where = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}
        students: list[Student] = []
        seen_sub: dict[str, int] = {}
        seen_id: dict[str, int] = {}
        for line, row in enumerate(reader, 2):
            if not any(cell.strip() for cell in row):
                continue
            values = {n: (row[i].strip() if i < len(row) else "") for n, i in where.items()}
            student = Student(**values)
            if not student.student_id:
                raise ExportError(f"the roster {path}, line {line}: empty student_id")
            if student.student_id in seen_id:
                raise ExportError(
                    f"the roster {path}, line {line}: student_id {student.student_id!r} "
                    f"is also on line {seen_id[student.student_id]}"
                )
            seen_id[student.student_id] = line
            if student.submission:
                if student.submission in seen_sub:
                    raise ExportError(
                        f"the roster {path}, line {line}: submission {student.submission!r} "
                        f"is also on line {seen_sub[student.submission]}"
                    )
                seen_sub[student.submission] = line
            students.append(student)
    except csv.Error as exc:
        raise ExportError(f"the roster {path} is not valid CSV ({exc})") from None
    if not students:
        raise ExportError(f"the roster {path} has no students")
    return students


def latest_by_submission(cards: list[Scorecard]) -> dict[str, Scorecard]:
    """One scorecard per submission id: the most recently graded one."""
    out: dict[str, Scorecard] = {}
    for card in sorted(cards, key=lambda c: c.graded_at):
        out[card.submission] = card
    return out


def _score(card: Scorecard | None, slug: str | None) -> object:
    if card is None:
        return ""
    if slug is None:
        return round(card.score, 4)
    for ex in card.exercises:
        if ex.slug == slug:
            return round(ex.score, 4)
    return 0.0


def export_grades(
    kit: Kit,
    cards: list[Scorecard],
    roster: list[Student],
    fmt: str,
    *,
    assignment: str | None = None,
) -> Export:
    """The `fmt` file for `cards` joined to `roster` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")
    by_sub = latest_by_submission(cards)
    claimed = {s.submission for s in roster if s.submission}
    unmatched = sorted(set(by_sub) - claimed)
    absent = [s for s in roster if s.submission not in by_sub]
    if assignment:
        columns: list[tuple[str, str | None, float]] = [(assignment, None, kit.total_points)]
    else:
        columns = [(ex.slug, ex.slug, ex.points) for ex in kit.exercises]
    rows: list[list[object]] = []
    if fmt == "canvas":
        rows.append(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                     *(name for name, _, _ in columns)])  # fmt: skip
        rows.append(["Points Possible", "", "", "", "", *(pts for _, _, pts in columns)])
        for s in roster:
            card = by_sub.get(s.submission)
            rows.append([s.name, s.canvas_id, s.student_id, s.login_id, s.section,
                         *(_score(card, slug) for _, slug, _ in columns)])  # fmt: skip
    elif fmt == "moodle":
        names = [name for name, _, _ in columns]
        if not assignment:
            names.append("Total")
        rows.append(["ID number", "Full name", "Email address", "Group", *names])
        for s in roster:
            card = by_sub.get(s.submission)
            scores = [_score(card, slug) for _, slug, _ in columns]
            if not assignment:
                scores.append(_score(card, None))
            rows.append([s.student_id, s.name, s.email, s.section, *scores])
    else:
        slugs = [ex.slug for ex in kit.exercises]
        rows.append(["student_id", "name", "section", "login_id", "email", "submission",
                     *slugs, "total", "max_score", "status"])  # fmt: skip
        listed = [(s, by_sub.get(s.submission)) for s in roster]
        listed += [(Student(sid, "", ""), by_sub[sid]) for sid in unmatched]
        for s, card in listed:
            status = card.status if card else ("no submission" if not s.submission else "absent")
            rows.append([s.student_id, s.name, s.section, s.login_id, s.email, s.submission,
                         *(_score(card, slug) for slug in slugs), _score(card, None),
                         card.max_score if card else kit.total_points, status])  # fmt: skip
    return Export(csv_text(rows), len(rows) - (2 if fmt == "canvas" else 1), unmatched, absent)
