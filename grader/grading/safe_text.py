"""Text that came from a submission, made safe for a terminal, a CSV cell or a plain-text page.

Ids, feedback, exception text, captured output and roster names are untrusted data. A terminal
would obey the escape sequences they may carry (clear the screen, set the window title, write
the clipboard with OSC 52, hide a link with OSC 8, move the cursor, overwrite a line with a bare
CR) and a spreadsheet would run a cell that begins with `=`, `+`, `-`, `@`, a tab or a CR
(CSV or formula injection: `=HYPERLINK(...)`, `=cmd|...`). `clean_line`/`clean_text` return
plain text with none of that: escape sequences are dropped whole, every other control character
(C0, DEL, C1) and the invisible bidirectional overrides are removed, and a lone surrogate (an
undecodable byte of a file name) becomes U+FFFD; `clean` is `clean_text`, `plain` the same as a
rich `Text` (printed literally, never parsed as markup), `printable` shows control characters
as `?` instead. Every CSV the grader writes passes its cells through `csv_cell` (rows: `csv_text`).
None of it interprets or emits markup.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from rich.text import Text

# ECMA-48 sequences, 7-bit (ESC ...) and 8-bit (C1) forms. String sequences (OSC, DCS, SOS,
# PM, APC) run to their terminator (BEL or ST) or, unterminated, to the end of the text: a
# terminal would swallow that text too, so nothing readable is lost by dropping it.
_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?        # CSI ... final
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|$)  # OSC/DCS/SOS/PM/APC
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                                  # other ESC sequences
    """,
    re.VERBOSE | re.DOTALL,
)
# Control characters a terminal acts on, and the bidi overrides that make text display in
# another order than it reads ("Trojan source"). Newline and tab are handled by the callers.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ELLIPSIS = "…"


def _strip(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATES.sub("\ufffd", text)
    return _ESCAPES.sub("", text)


def _cap(text: str, max_chars: int | None) -> str:
    if max_chars is not None and len(text) > max_chars:
        return text[: max(0, max_chars - 1)] + ELLIPSIS
    return text


def clean_line(value: object, max_chars: int | None = None) -> str:
    """`value` as one line of plain text: no escape sequences, no control characters.

    Line breaks and tabs become spaces; at most `max_chars` characters (an ellipsis ends a cut).
    """
    text = _LINE_BREAKS.sub(" ", _strip(value)).replace("\t", " ")
    return _cap(_CONTROLS.sub("", text), max_chars)


def clean_text(value: object, max_chars: int | None = None) -> str:
    """`value` as plain multi-line text: like `clean_line`, but line breaks are kept as `\\n`.

    A bare CR (which would move the cursor back and let a line overwrite the one before it)
    is a line break too; tabs are kept.
    """
    return _cap(_CONTROLS.sub("", _LINE_BREAKS.sub("\n", _strip(value))), max_chars)


def clean(value: object) -> str:
    """`value` as text without escape sequences or control characters (tab and newline kept;
    a carriage return ends a line, so it cannot overwrite what came before): `clean_text`."""
    return clean_text(value)


def plain(value: object, style: str = "") -> Text:
    """`clean(value)` as a rich `Text`: printed literally, never parsed as markup."""
    return Text(clean(value), style=style)


def indent_block(text: str, prefix: str = "  | ") -> str:
    """`text` cleaned, every line behind `prefix`: quoted text cannot pass for the grader's own
    lines (a forged "All tests passed: 100/100" stays visibly inside the quote)."""
    return "\n".join(prefix + line for line in clean_text(text).split("\n"))


def csv_cell(value: object) -> str:
    """`value` as a CSV cell a spreadsheet shows as text, never evaluates.

    Numbers (int, float) pass unchanged (floats written with `.15g`), so negative scores and
    deltas stay numbers; `None` is an empty cell; any other value is turned into text, and
    text whose first character (after any leading spaces) a spreadsheet would read as a formula
    gets a leading `'` (the OWASP advice: spreadsheets hide the quote and show the rest).
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return format(value, ".15g") if isinstance(value, float) else str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" ").startswith(FORMULA_STARTS) else text


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


_PLAIN_ID = re.compile(r"[\w.-]+")


def shown_id(value: object, max_chars: int = 80) -> str:
    """A submission id for a line of terminal output: `clean_line`d, and quoted (JSON-style)
    unless it is a plain word, so an id cannot pose as the rest of the grader's line."""
    text = clean_line(value, max_chars)
    if _PLAIN_ID.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
