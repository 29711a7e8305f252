"""`grade similarity`: which submissions share unusually much code, exercise by exercise.

Each exercise file is fingerprinted with copydetect (winnowing over k-grams of the token stream
with identifiers, strings and comments normalised away, so renamed variables and reordered
functions still match), the stub the students started from is passed as boilerplate so the
starter code counts for nothing, and every pair of submissions is compared. The result is a
ranking to look at, never a verdict: two good solutions to a small, well-specified task can be
alike, and the page says so.

Submissions are read with the grading's own staging rules (`read_exercise_sources`): the same
file a grade was given for is the file compared, notebooks included. Student code is only read,
never run, and everything from it is escaped on the page.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from html import escape
from itertools import combinations
from pathlib import Path

from grader.classroom.batch import BatchError, find_submissions
from grader.course.kit import Kit
from grader.grading.safe_text import csv_text
from grader.grading.staging import SubmissionError, read_exercise_sources

NOISE_TOKENS = 25
"""k-gram length in filtered characters: matches shorter than this are noise (copydetect's)."""
GUARANTEE_TOKENS = 30
"""Matches at least this long are always found (sets the winnowing window)."""
MIN_OWN_CHARACTERS = 100
"""A file with less normalised code than this beyond the stub (a line or two filled in) is not
compared: the k-grams around any edit of the stub are alike in every such file."""


class SimilarityError(Exception):
    """Bad input for `grade similarity` (one line, for the user)."""


@dataclass(frozen=True)
class Pair:
    """Two submissions' files of one exercise, compared."""

    slug: str
    a: str
    b: str
    similarity_a: float
    """Share of `a`'s fingerprinted code (beyond the stub) also found in `b`."""
    similarity_b: float
    shared_tokens: int
    slices_a: tuple[tuple[int, int], ...] = ()
    """Character ranges of `a`'s source that are shared."""
    slices_b: tuple[tuple[int, int], ...] = ()

    @property
    def score(self) -> float:
        """The mean of the two shares. Not the larger one: a short file (a bare signature
        rewritten the usual way) shares most of itself with everyone, and would outrank the
        copies; a copy padded with extra code still scores half of what it took."""
        return (self.similarity_a + self.similarity_b) / 2


@dataclass
class ExerciseSimilarity:
    """The comparison of one exercise across the class."""

    slug: str
    module: str
    pairs: list[Pair] = field(default_factory=list)
    """Every pair sharing anything, highest score first."""
    sources: dict[str, str] = field(default_factory=dict)
    """Submission id -> source, for the files that were compared."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Submission id -> why its file was not compared (missing, unreadable, only the stub)."""


@dataclass
class SimilarityResult:
    submissions: list[str]
    exercises: list[ExerciseSimilarity]
    threshold: float


def resolve_submissions(path: Path) -> Path:
    """The submissions folder: `path` itself, or the one a batch results folder was graded from
    (its `summary.json` records it)."""
    summary = path / "summary.json"
    if summary.is_file():
        try:
            source = json.loads(summary.read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        if not source:
            raise SimilarityError(
                f"{path} is a results folder that does not name its submissions folder; "
                "pass the submissions folder instead"
            )
        return Path(source)
    return path


def _fingerprint(name: str, text: str, boilerplate):
    from copydetect import CodeFingerprint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CodeFingerprint(
            name,
            NOISE_TOKENS,
            GUARANTEE_TOKENS - NOISE_TOKENS + 1,
            boilerplate=boilerplate,
            fp=io.StringIO(text),
        )


def _slices(array) -> tuple[tuple[int, int], ...]:
    if len(array) == 0 or len(array[0]) == 0:
        return ()
    return tuple((int(s), int(e)) for s, e in zip(array[0], array[1], strict=True))


def compare_exercise(
    slug: str, module: str, sources: dict[str, str], stub: str | None
) -> ExerciseSimilarity:
    """Compare every pair of `sources` (id -> code) of one exercise, `stub` as boilerplate."""
    import numpy as np
    from copydetect import compare_files

    result = ExerciseSimilarity(slug, module)
    boilerplate = np.array(sorted(_fingerprint(module, stub, None).hashes)) if stub else None
    prints = {}
    for sid, text in sources.items():
        fp = _fingerprint(module, text, boilerplate)
        if not fp.hashes or not fp.token_coverage:
            result.skipped[sid] = "nothing beyond the starter code"
            continue
        if fp.token_coverage < MIN_OWN_CHARACTERS:
            result.skipped[sid] = "too little beyond the starter code to compare"
            continue
        prints[sid] = fp
        result.sources[sid] = text
    for a, b in combinations(sorted(prints), 2):
        shared, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
        if shared <= 0:
            continue
        result.pairs.append(
            Pair(slug, a, b, float(sim_a), float(sim_b), int(shared),
                 _slices(slices_a), _slices(slices_b))
        )  # fmt: skip
    result.pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return result


def run_similarity(
    kit: Kit, path: Path, *, threshold: float = 0.5, out: Path | None = None
) -> SimilarityResult:
    """Compare the class in `path` (a submissions folder or a batch's results folder).

    `out`, the page to be written, must not be inside the submissions: they are only read."""
    folder = resolve_submissions(path)
    if out is not None and folder.resolve() in out.resolve().parents:
        raise SimilarityError(
            f"{out} is inside the submissions folder {folder}; write it elsewhere"
        )
    try:
        # find_submissions wants an output folder outside the submissions: none is written.
        entries = find_submissions(folder, folder.resolve().parent / f"{folder.name}.unused")
    except BatchError as exc:
        raise SimilarityError(str(exc)) from None
    per_slug: dict[str, dict[str, str]] = {ex.slug: {} for ex in kit.exercises}
    skipped: dict[str, dict[str, str]] = {ex.slug: {} for ex in kit.exercises}
    for entry in entries:
        try:
            found = read_exercise_sources(entry.path, kit)
        except SubmissionError as exc:
            for ex in kit.exercises:
                skipped[ex.slug][entry.id] = str(exc)
            continue
        for ex in kit.exercises:
            data = found[ex.slug]
            if data is None:
                skipped[ex.slug][entry.id] = f"{ex.module} not found"
            elif isinstance(data, str):
                skipped[ex.slug][entry.id] = data
            else:
                try:
                    per_slug[ex.slug][entry.id] = data.decode("utf-8")
                except UnicodeDecodeError:
                    skipped[ex.slug][entry.id] = f"{ex.module} is not UTF-8 text"
    exercises = []
    for ex in kit.exercises:
        stub_path = kit.root / "exercises" / ex.slug / ex.module
        stub = stub_path.read_text(encoding="utf-8") if stub_path.is_file() else None
        compared = compare_exercise(ex.slug, ex.module, per_slug[ex.slug], stub)
        compared.skipped.update(skipped[ex.slug])
        exercises.append(compared)
    return SimilarityResult([e.id for e in entries], exercises, threshold)


def pairs_csv(result: SimilarityResult) -> str:
    """Every pair that shares code: exercise, the two ids, both shares, shared size, flagged."""
    rows: list[list[object]] = [
        ["exercise", "submission_a", "submission_b", "similarity_a", "similarity_b",
         "shared_tokens", "flagged"]
    ]  # fmt: skip
    for ex in result.exercises:
        for p in ex.pairs:
            flagged = "yes" if p.score >= result.threshold else "no"
            rows.append(
                [ex.slug, p.a, p.b, round(p.similarity_a, 4), round(p.similarity_b, 4),
                 p.shared_tokens, flagged]
            )  # fmt: skip
    return csv_text(rows)


def _highlighted(text: str, slices: tuple[tuple[int, int], ...]) -> str:
    """`text` escaped, the shared ranges in <mark>: every character of it goes through escape."""
    parts, at = [], 0
    for start, end in sorted(slices):
        start, end = max(start, at), min(end, len(text))
        if end <= start:
            continue
        parts.append(escape(text[at:start]))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        at = end
    parts.append(escape(text[at:]))
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;color:#1f2937;line-height:1.4;padding:0 1rem}
.note{border-left:4px solid #f59e0b;background:#fffbeb;padding:.6rem 1rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.2rem;font-size:.9rem}
th,td{border-bottom:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.num,th.num{text-align:right}.flag{color:#b45309;font-weight:600}
.side{display:flex;gap:.6rem}.side>div{flex:1;min-width:0}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:.5rem;overflow:auto;max-height:32rem;
font-size:.78rem;white-space:pre-wrap;word-break:break-word}
mark{background:#fde68a}details{margin:.4rem 0 1rem}summary{cursor:pointer}
"""

# Nothing on the page may load or run anything, even if escaping were ever to fail.
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def build_page(result: SimilarityResult, *, top: int = 10, title: str | None = None) -> str:
    """The self-contained HTML page: per exercise, the top flagged pairs side by side."""
    title = title or "Feature Store Lab: code similarity"
    sections = []
    for ex in result.exercises:
        flagged = [p for p in ex.pairs if p.score >= result.threshold]
        rows = "".join(
            f"<tr><td>{escape(p.a)}</td><td>{escape(p.b)}</td>"
            f"<td class=num>{p.similarity_a:.0%}</td><td class=num>{p.similarity_b:.0%}</td>"
            f"<td class=num>{p.shared_tokens}</td></tr>"
            for p in flagged[:top]
        )
        details = "".join(
            f"<details><summary>{escape(p.a)} and {escape(p.b)}: "
            f"{p.score:.0%} shared</summary><div class=side>"
            f"<div><b>{escape(p.a)}</b><pre>{_highlighted(ex.sources[p.a], p.slices_a)}</pre>"
            f"</div><div><b>{escape(p.b)}</b>"
            f"<pre>{_highlighted(ex.sources[p.b], p.slices_b)}</pre></div></div></details>"
            for p in flagged[:top]
        )
        highest = f"{ex.pairs[0].score:.0%}" if ex.pairs else "none"
        if rows:
            table = (
                "<table><thead><tr><th>submission</th><th>submission</th>"
                "<th class=num>share of first</th><th class=num>share of second</th>"
                f"<th class=num>shared size</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        else:
            table = "<p>No pair at or above the threshold.</p>"
        skipped = "".join(
            f"<li>{escape(sid)}: {escape(why)}</li>" for sid, why in sorted(ex.skipped.items())
        )
        sections.append(
            f"<section><h2>{escape(ex.slug)} <small>({escape(ex.module)})</small></h2>"
            f"<p>{len(ex.sources)} files compared, {len(ex.pairs)} pairs share some code, "
            f"<span class=flag>{len(flagged)} at or above {result.threshold:.0%}</span>; "
            f"highest {highest}.</p>{table}{details}"
            + (f"<details><summary>Not compared ({len(ex.skipped)})</summary><ul>{skipped}"
               "</ul></details>" if skipped else "")
            + "</section>"
        )  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{escape(title)}</title><style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p class="note"><b>This page flags, it does not accuse.</b> It ranks pairs of submissions by
how much of their code (beyond the starter code) they share, after renaming and reordering are
ignored. Similar code is a reason to look closer, never proof of copying: short, well-specified
exercises have few good answers, and students may have worked together as allowed. Read the
shared regions, and talk with the students, before drawing any conclusion.</p>
<p>{len(result.submissions)} submissions; threshold {result.threshold:.0%} (the mean of the
two shares); fingerprints: copydetect winnowing, k = {NOISE_TOKENS}, matches of
{GUARANTEE_TOKENS}+ characters of normalised code always found.</p>
{"".join(sections)}
</body></html>
"""


def pairs_csv_path(html_path: Path) -> Path:
    """Where the CSV of pairs goes: beside the page, same stem."""
    return html_path.with_suffix(".csv")


def flagged_counts(result: SimilarityResult) -> dict[str, int]:
    """Exercise slug -> number of pairs at or above the threshold."""
    return {ex.slug: sum(p.score >= result.threshold for p in ex.pairs) for ex in result.exercises}
