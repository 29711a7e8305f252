"""A notebook submission turned into the Python module it stands for, by parsing only.

A student may hand in `pit_join.ipynb` instead of `pit_join.py`. Its code cells, in order, are
the module; IPython-only lines are dropped because plain Python cannot compile them and the
grader never runs a shell for a student: line magics (`%time ...`), shell lines (`!pip ...`,
`files = !ls`) and whole cell-magic cells (`%%bash`, `%%writefile`: the body belongs to the
magic). Nothing in the notebook is executed here; this runs on the trusted side as JSON parsing
with size caps, and a notebook that cannot be parsed is one line of error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_NOTEBOOK_BYTES = 8 << 20
"""Notebooks carry outputs (images, tables): a larger cap than a .py file, still bounded."""
MAX_CELLS = 5000

# `x = !ls` and `x = %time f()` assign a magic's result: IPython-only too.
_ASSIGNED_MAGIC = re.compile(r"^\s*[A-Za-z_][\w, ]*=\s*[!%]")


class NotebookError(Exception):
    """The notebook cannot be read as one (one line, for the learner)."""


@dataclass(frozen=True)
class NotebookModule:
    """The module built from a notebook."""

    source: str
    """The code cells joined, IPython-only lines blanked (so line numbers still count)."""
    cell_starts: tuple[tuple[int, int], ...]
    """(first line in `source`, cell number counting every cell from 1), per code cell."""

    def cell_of(self, line: int) -> tuple[int, int] | None:
        """The (cell number, line within that cell) of `source` line `line` (1-based)."""
        found = None
        for start, cell in self.cell_starts:
            if start <= line:
                found = (cell, line - start + 1)
        return found


def _ipython_only(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(("%", "!")) or bool(_ASSIGNED_MAGIC.match(line))


def notebook_to_module(name: str, data: bytes) -> NotebookModule:
    """The module of the notebook file `name` whose bytes are `data`.

    Raises `NotebookError` (one line) when `data` is too large, not UTF-8, not JSON or not a
    notebook (nbformat 4, or 3 upgraded by nbformat).
    """
    import nbformat

    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise NotebookError(f"{name} is not a notebook: it is not valid JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list):
        raise NotebookError(f"{name} is not a notebook: no list of cells")
    if len(raw.get("cells", [])) > MAX_CELLS:
        raise NotebookError(f"{name} has more than {MAX_CELLS} cells")
    try:
        # nbformat's reader and converter, not `nbformat.reads`: that one validates against the
        # full schema and only logs what it finds; the structure this needs is checked below.
        notebook = nbformat.convert(nbformat.reader.reads(text), 4)
    except Exception as exc:  # nbformat raises many kinds; each means "not a notebook"
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise NotebookError(f"{name} is not a readable notebook ({why})") from None
    lines: list[str] = []
    starts: list[tuple[int, int]] = []
    for number, cell in enumerate(notebook.get("cells", []), 1):
        if not isinstance(cell, dict):
            raise NotebookError(f"{name}: cell {number} is not a cell")
        if cell.get("cell_type") != "code":
            continue
        if "source" not in cell:
            raise NotebookError(f"{name}: code cell {number} has no source")
        body = cell["source"]
        if isinstance(body, list):  # nbformat joins these; a forged notebook may not
            body = "".join(str(part) for part in body)
        if not isinstance(body, str):
            raise NotebookError(f"{name}: code cell {number} has no text source")
        cell_lines = body.splitlines()
        if cell_lines and cell_lines[0].lstrip().startswith("%%"):
            cell_lines = [""] * len(cell_lines)
        starts.append((len(lines) + 1, number))
        lines += ["" if _ipython_only(line) else line for line in cell_lines]
        lines.append("")  # cells end with a blank line, like a module's blocks
    return NotebookModule("\n".join(lines) + "\n", tuple(starts))
