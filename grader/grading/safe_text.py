"""Text from a submission, made safe for the terminal and for the files instructors open.

Feedback, test ids, exception messages and captured output can all carry text a student
wrote. Printed as it is, an escape sequence could move the cursor, rewrite earlier lines (a
fake "25/25"), retitle the window, or set the clipboard (OSC 52); printed through rich, a
`[bold red]` would be read as markup. Everything that comes from a submission goes through
`clean()` (for plain strings) or `plain()` (for rich), here and in every other renderer.

Submission ids, feedback and roster names also end up in CSV files that instructors open in a
spreadsheet. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a
formula there (CSV or formula injection: `=HYPERLINK(...)`, `=cmd|...`), so every CSV the grader
writes passes its cells through `csv_cell`, and writes rows with `csv_text`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from rich.text import Text

# Whole escape sequences first, so that no parameter bytes are left behind as text:
# OSC / DCS / SOS / PM / APC strings up to their terminator (BEL or ST), CSI sequences, the
# 8-bit C1 forms of both, and the short two-byte ESC sequences.
_SEQUENCES = re.compile(
    r"""
    (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|$)   # string sequences
    | (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?            # CSI
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                                      # other ESC sequences
    """,
    re.VERBOSE | re.DOTALL,
)
# What is left that a terminal acts on: C0 controls but tab and newline, DEL, C1 controls,
# and the Unicode bidi overrides and isolates that reorder what the reader sees.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: object) -> str:
    """`value` as text without escape sequences or control characters (tab and newline kept;
    a carriage return ends a line, so it cannot overwrite what came before)."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))


def plain(value: object, style: str = "") -> Text:
    """`clean(value)` as a rich `Text`: printed literally, never parsed as markup."""
    return Text(clean(value), style=style)


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
        return format(value, ".15g") if isinstance(value, float) else str(value)
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
