"""Text from untrusted sources made safe for the files instructors open.

Submission ids, feedback and roster names end up in CSV files that instructors open in a
spreadsheet. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a
formula there (CSV or formula injection: `=HYPERLINK(...)`, `=cmd|...`), so every CSV the grader
writes passes its cells through `csv_cell`, and writes rows with `csv_rows`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """`value` as a CSV cell a spreadsheet shows as text, never evaluates.

    Numbers (int, float) pass unchanged, so negative scores and deltas stay numbers; any other
    value is turned into text, and text starting with a formula character gets a leading `'`
    (the OWASP advice: spreadsheets hide the quote and show the rest as text).
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """The CSV text of `rows` (header included), every cell passed through `csv_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()


def printable(value: object) -> str:
    """`value` as text with control characters (escape sequences, newlines) shown as `?`, so
    an id from a submission cannot rewrite the instructor's terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))
