"""The scorecard as Gradescope's `results.json` (its "Autograder Specifications" format).

Top level: `score`, `execution_time`, `output` with `output_format`, `visibility`,
`stdout_visibility`, `extra_data` and `tests`. Each test has a `name` written for people
("2. A point-in-time join by hand, task 1: a feature row stamped exactly at the entity
timestamp is used"), a `number` that sorts ("2.01"), `score`, `max_score`, `status`, `output`
(`output_format` "text") and `visibility`. Everything is plain text: feedback quotes what a
submission printed or raised, so control characters (terminal escapes, NULs, lone
surrogates) are removed before anything reaches Gradescope's page.

`SCHEMA_PATH` is a JSON Schema of exactly what `render` writes; the kit's tests check it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.grading.safe_text import clean

if TYPE_CHECKING:
    from grader.grading.scorecard import Scorecard

SCHEMA_PATH = Path(__file__).with_name("gradescope_results.schema.json")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates (invalid in UTF-8).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_OUTPUT_LIMIT = 8000
_STATUS_WORDS = {"error": "Error", "timeout": "Timed out", "failed": "Failed"}


def plain(text: object, limit: int = _OUTPUT_LIMIT) -> str:
    """`text` as plain text Gradescope can show: no control characters, `\\r\\n` as `\\n`,
    at most `limit` characters."""
    value = _CONTROL.sub("", clean(text))  # whole escape sequences first, then what is left
    return value if len(value) <= limit else value[: limit - 1] + "…"


def sentence(test_id: str) -> str:
    """`ex2_pit_join::test_a_row_from_the_future_is_never_used[case]` ->
    `A row from the future is never used (case)`: the test's name as the sentence it is."""
    name = test_id.rpartition("::")[2]
    name, _, param = name.partition("[")
    words = name.removeprefix("test_").replace("_", " ").strip() or name
    text = words[:1].upper() + words[1:]
    return f"{text} ({param.rstrip(']')})" if param else text


def _test_name(position: int, title: str, task: object, test_id: str) -> str:
    where = f"{position}. {title}"
    if isinstance(task, int) and not isinstance(task, bool):
        where += f", task {task}"
    return plain(f"{where}: {sentence(test_id)}", 400)


def _test_output(status: str, feedback: str) -> str:
    word = _STATUS_WORDS.get(status)
    text = feedback.strip()
    if word and not text.lower().startswith(word.lower()):
        text = f"{word}: {text}" if text else word + "."
    return plain(text or "Passed.")


def render(
    card: Scorecard,
    *,
    hidden_visibility: str = "after_due_date",
    titles: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Gradescope `results.json` for `card`.

    `hidden_visibility` is when students see hidden tests (public ones are always
    `visible`); `titles` maps exercise slugs to their titles (default: the slug). A test may
    carry a `task` number (its README task); it is named when present. An exercise that
    has no test results (it could not be graded at all) gets one entry worth its points,
    so the totals still add up and the student sees why.
    """
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden visibility must be one of {', '.join(VISIBILITIES)}")
    titles = titles or {}
    tests: list[dict[str, Any]] = []
    lines: list[str] = []
    if card.error:
        lines.append(f"Grading error: {card.error}")
    for position, ex in enumerate(card.exercises, start=1):
        title = titles.get(ex.slug, ex.slug)
        line = f"{position}. {title}: {ex.score:g}/{ex.max_score:g} ({ex.status})"
        if ex.error:
            line += f": {ex.error}"
        lines.append(line)
        width = max(2, len(str(len(ex.tests))))
        for index, t in enumerate(ex.tests, start=1):
            tests.append(
                {
                    "name": _test_name(position, title, getattr(t, "task", None), t.id),
                    "number": f"{position}.{index:0{width}d}",
                    "score": t.points,
                    "max_score": t.max_points,
                    "status": "passed" if t.status == "passed" else "failed",
                    "output": _test_output(t.status, t.feedback),
                    "output_format": "text",
                    "name_format": "text",
                    "visibility": "visible" if t.visibility == "public" else hidden_visibility,
                }
            )
        if not ex.tests:
            tests.append(
                {
                    "name": plain(f"{position}. {title}: could not be graded", 400),
                    "number": f"{position}.{0:0{width}d}",
                    "score": 0.0,
                    "max_score": ex.max_score,
                    "status": "failed",
                    "output": plain(ex.error or f"{ex.slug} was not graded."),
                    "output_format": "text",
                    "name_format": "text",
                    "visibility": "visible",
                }
            )
    lines.append(f"Total: {card.score:g}/{card.max_score:g}")
    if card.isolation == "reduced":
        lines.append("Isolation: reduced (bubblewrap could not run here).")
    return {
        "score": card.score,
        "execution_time": round(card.duration_s, 2),
        "output": plain("\n".join(lines)),
        "output_format": "text",
        # Gradescope's default for tests is `simple_format`, which renders some HTML.
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "submission": plain(card.submission, 200),
            "status": card.status,
            "isolation": card.isolation,
            "grader_version": card.grader_version,
            "suite_digest": card.suite_digest,
        },
        "tests": tests,
    }
