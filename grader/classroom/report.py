# ruff: noqa: E501  (SVG and HTML markup reads better on one line)
"""`grade report`: one self-contained HTML page about a class's scorecards, for instructors.

Pictures are hand-written inline SVG (a histogram and bar charts), so the page needs no
network and no plotting library; tables carry the detail: per-test pass rates worst first with
the most common feedback (what the class misses), and every error and timeout with its reason.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import quote

from grader.classroom.regrade import Regrade, read_regrade
from grader.grading.scorecard import Scorecard

BAR = "#3b82f6"
BAD = "#ef4444"


class ReportError(Exception):
    """The scorecards cannot be read (one line, for the user)."""


def load_scorecards(paths: list[Path]) -> list[Scorecard]:
    """Scorecards from files and folders (every `*.json` scorecard in a folder)."""
    cards: list[Scorecard] = []
    for path in paths:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not path.exists():
            raise ReportError(f"{path} does not exist")
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ReportError(f"{file} is not readable JSON ({exc})") from None
            if not isinstance(data, dict) or data.get("schema_version") != 1:
                continue  # summary.json, Gradescope files and other JSON are not scorecards
            try:
                cards.append(Scorecard.from_dict(data))
            except TypeError as exc:
                raise ReportError(f"{file} is not a valid scorecard ({exc})") from None
    if not cards:
        raise ReportError("no scorecards found (files with schema_version 1)")
    return cards


@dataclass
class ReportExtras:
    """Optional sections: the similarity page's summary and link, and the last regrade."""

    similarity_href: str | None = None
    """Link to the similarity page, relative to the report when it can be."""
    similarity_flagged: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Exercise -> (pairs flagged, highest share), from the CSV beside the page."""
    regrade: Regrade | None = None


def _similarity_summary(page: Path) -> dict[str, tuple[int, float]]:
    """Per exercise, flagged pairs and the highest share, from the CSV `grade similarity`
    wrote beside `page` (empty when it is absent or unreadable)."""
    out: dict[str, tuple[int, float]] = {}
    try:
        rows = list(csv.DictReader(page.with_suffix(".csv").open(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, csv.Error):
        return out
    for row in rows:
        try:
            share = (float(row["similarity_a"]) + float(row["similarity_b"])) / 2
        except (KeyError, TypeError, ValueError):
            continue
        flagged, top = out.get(row.get("exercise") or "?", (0, 0.0))
        out[row.get("exercise") or "?"] = (flagged + (row.get("flagged") == "yes"), max(top, share))
    return out


def find_extras(paths: list[Path], out: Path, similarity: Path | None = None) -> ReportExtras:
    """The extras for a report written to `out` from `paths`: `similarity` (or a
    `similarity.html` in one of the folders) and a folder's `regrade.json`."""
    folders = [p for p in paths if p.is_dir()]
    if similarity is None:
        similarity = next(
            (f / "similarity.html" for f in folders if (f / "similarity.html").is_file()), None
        )
    extras = ReportExtras()
    if similarity is not None:
        try:
            href = os.path.relpath(similarity.resolve(), out.resolve().parent)
        except ValueError:
            href = similarity.resolve().as_uri()
        extras.similarity_href = href if href.startswith("file:") else quote(Path(href).as_posix())
        extras.similarity_flagged = _similarity_summary(similarity)
    for folder in folders:
        extras.regrade = extras.regrade or read_regrade(folder)
    return extras


def _extras_html(extras: ReportExtras) -> str:
    parts = []
    if extras.similarity_href:
        rows = "".join(
            f"<tr><td>{escape(slug)}</td><td class=num>{n}</td><td class=num>{top:.0%}</td></tr>"
            for slug, (n, top) in sorted(extras.similarity_flagged.items())
        )
        table = (
            "<table><thead><tr><th>exercise</th><th class=num>pairs flagged</th>"
            f"<th class=num>highest share</th></tr></thead><tbody>{rows}</tbody></table>"
            if rows else ""
        )  # fmt: skip
        parts.append(
            "<section><h2>Similarity</h2><p>Pairs of submissions that share unusually much "
            "code, for a closer look (flags, not verdicts): "
            f'<a href="{escape(extras.similarity_href, quote=True)}">the similarity page</a>.</p>'
            f"{table}</section>"
        )
    if extras.regrade is not None:
        r = extras.regrade
        moved = [c for c in r.changes if c.kind in ("decrease", "increase")]
        rows = (
            "".join(
                f"<tr><td>{escape(c.submission)}</td><td>{escape(c.exercise)}</td>"
                f"<td class=num>{c.old:g}</td><td class=num>{c.new:g}</td>"
                f"<td class='num{' low' if c.kind == 'decrease' else ''}'>{c.delta:+g}</td>"
                f"<td><code>{escape('; '.join(c.tests_changed[:6]))}</code></td></tr>"
                for c in moved[:200]
            )
            or "<tr><td colspan=6>No score changed.</td></tr>"
        )
        parts.append(
            "<section><h2>Regrade: what changed</h2>"
            f"<p>Suites {escape(r.new_digest[:19])} against "
            f"{escape(', '.join(d[:19] for d in r.old_digests) or 'none')}; {r.compared} "
            f"submissions compared: <b class=low>{r.count('decrease')} scores went down</b>, "
            f"{r.count('increase')} went up, {r.count('tests')} changed tests only, "
            f"{r.count('new')} new, {r.count('gone')} gone. Decreases first.</p>"
            "<table><thead><tr><th>submission</th><th>exercise</th><th class=num>old</th>"
            "<th class=num>new</th><th class=num>change</th><th>tests that changed</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>"
        )
    return "".join(parts)


def _svg_bars(items: list[tuple[str, float, float]], *, width: int = 760, unit: str = "") -> str:
    """Horizontal bars: (label, value, max) per row."""
    row, label_w = 26, 360
    height = row * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" font-family="sans-serif" font-size="12">']  # fmt: skip
    for i, (label, value, top) in enumerate(items):
        y = 5 + i * row
        share = 0 if top <= 0 else max(0.0, min(1.0, value / top))
        bar_w = (width - label_w - 70) * share
        color = BAD if share < 0.5 else BAR
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{width - label_w - 70}" height="18" fill="#eef2f7"/>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w:.1f}" height="18" fill="{color}"/>'
        )
        parts.append(f'<text x="{width - 62}" y="{y + 16}">{value:.3g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _label(test_id: str) -> str:
    """`ex2_pit_join::test_ties_go_to_x` -> `ex2: ties go to x` (for chart labels)."""
    slug, _, name = test_id.partition("::")
    return f"{slug.split('_')[0]}: {name.removeprefix('test_').replace('_', ' ')}"


def _svg_histogram(scores: list[float], top: float, *, bins: int = 10) -> str:
    width, height, pad = 640, 220, 30
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(bins * s / top)) if top else 0] += 1
    most = max(counts) or 1
    bar_w = (width - 2 * pad) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" font-family="sans-serif" font-size="12">']  # fmt: skip
    for i, n in enumerate(counts):
        h = (height - 2 * pad) * n / most
        x = pad + i * bar_w
        y = height - pad - h
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" fill="{BAR}"/>'
        )
        if n:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{n}</text>'
            )
        lo = top * i / bins
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - pad + 16}" text-anchor="middle">{lo:g}</text>'
        )
    parts.append(
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#555"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:980px;
color:#1f2937;line-height:1.4;padding:0 1rem}
h1{margin-bottom:.2rem}.meta{color:#6b7280;margin-top:0}
.cards{display:flex;gap:1rem;margin:1.2rem 0}.card{flex:1;border:1px solid #e5e7eb;border-radius:8px;
padding:.8rem 1rem}.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.6rem;font-size:.9rem;table-layout:fixed}
td code{word-break:break-word;font-size:.8rem}col.test{width:34%}col.vis{width:9%}col.pts{width:7%}
col.rate{width:9%}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb}td.num,th.num{text-align:right;white-space:nowrap}.low{color:#b91c1c;font-weight:600}
section{margin-bottom:1.5rem}code{font-size:.85rem}
"""


def build_report(
    cards: list[Scorecard], *, title: str = "Class report", extras: ReportExtras | None = None
) -> str:
    """The HTML page for `cards`, with the `extras` sections (similarity, regrade) if given."""
    scores = [c.score for c in cards]
    top = max(c.max_score for c in cards)
    per_ex: dict[str, list[float]] = {}
    ex_max: dict[str, float] = {}
    tests: dict[str, dict] = {}
    problems: list[tuple[str, str, str, str]] = []
    for card in cards:
        if card.status == "error":
            problems.append((card.submission, "(whole submission)", "error", card.error or ""))
        for ex in card.exercises:
            per_ex.setdefault(ex.slug, []).append(ex.score)
            ex_max[ex.slug] = ex.max_score
            if ex.status in ("error", "timeout") and card.status != "error":
                problems.append((card.submission, ex.slug, ex.status, ex.error or ""))
            for t in ex.tests:
                entry = tests.setdefault(t.id, {"runs": 0, "passed": 0, "feedback": Counter(),
                                                "points": t.max_points, "vis": t.visibility})  # fmt: skip
                entry["runs"] += 1
                entry["passed"] += t.status == "passed"
                if t.status != "passed":
                    entry["feedback"][t.feedback[:300]] += 1
    ranked = sorted(tests.items(), key=lambda kv: (kv[1]["passed"] / kv[1]["runs"], kv[0]))
    mean = statistics.fmean(scores)
    median = statistics.median(scores)
    graded_at = sorted(c.graded_at for c in cards)
    versions = sorted({c.grader_version for c in cards})
    digests = sorted({c.suite_digest[:19] for c in cards})
    reduced = sum(c.isolation == "reduced" for c in cards)

    rows = []
    for test_id, e in ranked:
        rate = e["passed"] / e["runs"]
        common = e["feedback"].most_common(1)
        fb = escape(common[0][0]) if common else ""
        rows.append(
            f"<tr><td><code>{escape(test_id)}</code></td><td>{e['vis']}</td>"
            f"<td class=num>{e['points']:g}</td>"
            f"<td class='num{' low' if rate < 0.5 else ''}'>{rate:.0%}</td><td>{fb}</td></tr>"
        )
    problem_rows = (
        "".join(
            f"<tr><td>{escape(s)}</td><td>{escape(x)}</td><td>{escape(st)}</td><td>{escape(r)}</td></tr>"
            for s, x, st, r in problems
        )
        or "<tr><td colspan=4>None: every submission was graded in time.</td></tr>"
    )
    ex_items = [(slug, statistics.fmean(v), ex_max[slug]) for slug, v in per_ex.items()]
    ex_rows = "".join(
        f"<tr><td>{escape(slug)}</td><td class=num>{mean_:.1f} / {top_:g}</td>"
        f"<td class=num>{sum(v == top_ for v in per_ex[slug])}</td></tr>"
        for slug, mean_, top_ in ex_items
    )
    worst = [(_label(tid), e["passed"] / e["runs"] * 100, 100) for tid, e in ranked[:12]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p class="meta">{len(cards)} submissions, graded {escape(graded_at[0])} to {escape(graded_at[-1])};
grader {escape(", ".join(versions))}; suites {escape(", ".join(digests))}
{f"; <b>{reduced} graded with reduced isolation</b>" if reduced else ""}</p>
<div class="cards">
<div class="card">Mean<b>{mean:.1f} / {top:g}</b></div>
<div class="card">Median<b>{median:.1f}</b></div>
<div class="card">Full marks<b>{sum(s >= top for s in scores)}</b></div>
<div class="card">Errors and timeouts<b>{len(problems)}</b></div>
</div>
<section><h2>Score distribution</h2>{_svg_histogram(scores, top)}</section>
<section><h2>Mean score per exercise</h2>{_svg_bars(ex_items)}
<table><thead><tr><th>exercise</th><th class=num>mean</th><th class=num>full marks</th></tr></thead>
<tbody>{ex_rows}</tbody></table></section>
<section><h2>What the class misses</h2>
<p>Pass rate of the tests passed least often (percent of submissions).</p>
{_svg_bars(worst, unit="%")}
<table><colgroup><col class=test><col class=vis><col class=pts><col class=rate><col></colgroup>
<thead><tr><th>test</th><th>visibility</th><th class=num>points</th><th class=num>pass rate</th>
<th>most common feedback</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>
<section><h2>Errors and timeouts</h2>
<table><thead><tr><th>submission</th><th>exercise</th><th>status</th><th>reason</th></tr></thead>
<tbody>{problem_rows}</tbody></table></section>
{_extras_html(extras) if extras else ""}
</body></html>
"""
