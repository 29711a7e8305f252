"""Text from a submission, made safe to print on a terminal.

Feedback, test ids, exception messages and captured output can all carry text a student
wrote. Printed as it is, an escape sequence could move the cursor, rewrite earlier lines (a
fake "25/25"), retitle the window, or set the clipboard (OSC 52); printed through rich, a
`[bold red]` would be read as markup. Everything that comes from a submission goes through
`clean()` (for plain strings) or `plain()` (for rich), here and in every other renderer.
"""

from __future__ import annotations

import re

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
