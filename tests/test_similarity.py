"""`grade similarity`: planted copies among independent answers rank first; the page is safe."""

from __future__ import annotations

import ast
import csv
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.classroom.similarity import compare_exercise, run_similarity
from grader.cli import cli

from kit_helpers import KIT_ROOT, copy_kit

CLASS = Path(__file__).parent / "data" / "similarity_class"
INDEPENDENT = sorted(p.name for p in CLASS.iterdir() if p.is_dir())
HOSTILE_ID = "<img src=x onerror=alert(1)>"
FORMULA_ID = '=HYPERLINK("evil.example")'


def disguise(source: str, renames: dict[str, str]) -> str:
    """What a student hiding a copy does: rename identifiers, reorder the top-level
    functions, rewrite the comments."""
    tree = ast.parse(source)
    lines = source.splitlines()
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    head = lines[: defs[0].lineno - 1]
    blocks = []
    for node, nxt in zip(defs, [*defs[1:], None], strict=True):
        end = (nxt.lineno - 1) if nxt else len(lines)
        blocks.append(lines[node.lineno - 1 : end])
    body = [line for block in reversed(blocks) for line in [*block, ""]]
    text = "\n".join(head + body) + "\n"
    text = re.sub(r"#.*", "# my own notes", text)
    for old, new in renames.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    """A dozen submissions: seven independent answers, the reference solution, two disguised
    copies, a notebook copy in a zip, the untouched stub and a hostile one."""
    root = tmp_path_factory.mktemp("class") / "subs"
    for name in INDEPENDENT:
        shutil.copytree(CLASS / name, root / name)
    solution = (KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py").read_text()
    (root / "alice" / "src").mkdir(parents=True)
    (root / "alice" / "src" / "pit_join.py").write_text(solution)
    (root / "bob").mkdir()
    (root / "bob" / "pit_join.py").write_text(
        disguise(solution, {"names": "cols", "window": "max_age", "left": "ents",
                            "right": "feats", "matched": "joined", "rows": "winners",
                            "order": "sort_keys", "features": "picked"})
    )  # fmt: skip
    (root / "judy").mkdir()
    (root / "judy" / "pit_join.py").write_text(
        disguise((CLASS / "carol" / "pit_join.py").read_text(),
                 {"left": "lhs", "right": "rhs", "joined": "out", "picked": "vals",
                  "clash": "dupes", "skip": "ignored", "sort_cols": "by"})
    )  # fmt: skip
    # Nina hands in frank's code as a notebook in a zip: staging's rules find and convert it.
    code = (CLASS / "frank" / "pit_join.py").read_text()
    cells = [nbformat.v4.new_markdown_cell("# PIT join"), nbformat.v4.new_code_cell("%pip list")]
    cells += [nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell("!ls")]
    with zipfile.ZipFile(root / "nina.zip", "w") as archive:
        archive.writestr(
            "work/pit_join.ipynb", nbformat.writes(nbformat.v4.new_notebook(cells=cells))
        )
    (root / "kate").mkdir()
    shutil.copy2(KIT_ROOT / "exercises" / "ex2_pit_join" / "pit_join.py", root / "kate")
    hostile = root / HOSTILE_ID
    hostile.mkdir()
    (hostile / "pit_join.py").write_text(
        code.replace('"""Merge', '"""</pre><script>alert("pwned")</script><pre>Merge')
        + "\n# </details></section><script src=http://evil/x.js></script>\n"
    )
    (root / FORMULA_ID).mkdir()
    (root / FORMULA_ID / "pit_join.py").write_text((CLASS / "erin" / "pit_join.py").read_text())
    (root / "leo").mkdir()
    (root / "leo" / "notes.txt").write_text("no code yet")
    return root


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return copy_kit(tmp_path_factory.mktemp("kit"))


def ranking(result, slug="ex2_pit_join") -> list[frozenset[str]]:
    ex = next(e for e in result.exercises if e.slug == slug)
    return [frozenset((p.a, p.b)) for p in ex.pairs]


def test_the_planted_copies_rank_first_among_independent_answers(kit, klass):
    result = run_similarity(kit, klass, threshold=0.5)
    ranked = ranking(result)
    planted = {frozenset(("alice", "bob")), frozenset(("carol", "judy")),
               frozenset(("frank", "nina")), frozenset(("frank", HOSTILE_ID)),
               frozenset(("nina", HOSTILE_ID)), frozenset(("erin", FORMULA_ID))}  # fmt: skip
    assert set(ranked[: len(planted)]) == planted
    ex = next(e for e in result.exercises if e.slug == "ex2_pit_join")
    scores = {frozenset((p.a, p.b)): p.score for p in ex.pairs}
    assert min(scores[p] for p in planted) >= 0.8
    independent = [s for pair, s in scores.items() if pair not in planted]
    assert max(independent) < 0.5, sorted(independent)[-3:]
    # The untouched stub has nothing of its own; the empty submission has no file.
    assert ex.skipped["kate"] == "nothing beyond the starter code"
    assert ex.skipped["leo"] == "pit_join.py not found"


def test_the_stub_counts_as_boilerplate():
    """Two independent answers written below the long stub are alike only through the stub."""
    stub = (KIT_ROOT / "exercises" / "ex2_pit_join" / "pit_join.py").read_text()
    sources = {n: stub + (CLASS / n / "pit_join.py").read_text() for n in ("carol", "dan")}
    without = compare_exercise("ex2_pit_join", "pit_join.py", sources, None).pairs[0]
    with_stub = compare_exercise("ex2_pit_join", "pit_join.py", sources, stub).pairs[0]
    assert without.score > 0.5 and with_stub.score < 0.25


def test_files_with_a_line_or_two_beside_the_stub_are_not_compared(kit, tmp_path):
    stub = (KIT_ROOT / "exercises" / "ex2_pit_join" / "pit_join.py").read_text()
    folder = tmp_path / "subs"
    for name, body in [("a", "    return entity_df.copy()\n"), ("b", "    return None\n")]:
        (folder / name).mkdir(parents=True)
        (folder / name / "pit_join.py").write_text(
            stub.replace('    raise NotImplementedError("point_in_time_join', body + "    #", 1)
        )
    result = run_similarity(kit, folder, threshold=0.5)
    ex = next(e for e in result.exercises if e.slug == "ex2_pit_join")
    assert ex.pairs == []
    assert ex.skipped == {n: "too little beyond the starter code to compare" for n in "ab"}


def test_the_page_escapes_student_code_and_ids_and_says_it_flags_not_accuses(kit, klass, tmp_path):
    out = tmp_path / "report" / "similarity.html"
    result = CliRunner().invoke(
        cli, ["--kit", str(kit.root), "similarity", str(klass), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "flags, it does not accuse" in html
    assert "&lt;script src=http://evil/x.js&gt;" in html  # shown as text, never loaded
    assert "Content-Security-Policy" in html
    assert "<mark>" in html  # shared regions highlighted side by side
    # The CSV beside it: every pair, formula cells neutralised.
    rows = list(csv.DictReader((tmp_path / "report" / "similarity.csv").open()))
    assert {r["exercise"] for r in rows} == {"ex2_pit_join"}
    ids = {r["submission_a"] for r in rows} | {r["submission_b"] for r in rows}
    assert "'" + FORMULA_ID in ids and FORMULA_ID not in ids
    assert any(r["flagged"] == "yes" for r in rows) and any(r["flagged"] == "no" for r in rows)


def test_a_results_folder_leads_to_its_submissions(kit, klass, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "summary.json").write_text(f'{{"submissions": 13, "source": "{klass}"}}')
    result = run_similarity(kit, results)
    assert frozenset(("alice", "bob")) in ranking(result)[:6]


def test_similarity_help_and_errors_are_one_line(kit, tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(cli, ["similarity", "--help"]).output
    assert "Example: grade similarity" in help_text and "--threshold" in help_text
    missing = runner.invoke(cli, ["--kit", str(kit.root), "similarity", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(cli, ["--kit", str(kit.root), "similarity", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "holds no submissions" in empty.output
    assert "Traceback" not in empty.output
    inside = runner.invoke(
        cli,
        ["--kit", str(kit.root), "similarity", str(tmp_path), "--out", str(tmp_path / "s.html")],
    )
    assert inside.exit_code == 2 and "is inside the submissions folder" in inside.output
    assert not (tmp_path / "s.html").exists()


def test_the_class_report_links_the_similarity_page(kit, klass, tmp_path):
    from grader.grading.scorecard import ExerciseResult, Scorecard

    results = tmp_path / "results"
    for sid in ("alice", "bob"):
        exercises = [
            ExerciseResult(ex.slug, 0.0, ex.points, "missing", "x") for ex in kit.exercises
        ]
        Scorecard(sid, "2026-12-01T10:00:00+00:00", "0.1.0", "sha256:x", "graded", None, 0.0,
                  kit.total_points, 1.0, exercises).write(results / f"{sid}.json")  # fmt: skip
    runner = CliRunner()
    page = results / "similarity.html"
    done = runner.invoke(
        cli, ["--kit", str(kit.root), "similarity", str(klass), "--out", str(page)]
    )
    assert done.exit_code == 0, done.output
    report = tmp_path / "site" / "report.html"
    result = runner.invoke(cli, ["report", str(results), "--out", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert '<a href="../results/similarity.html">' in html
    # ex2's planted pairs are counted from the CSV beside the page.
    assert "<tr><td>ex2_pit_join</td><td class=num>6</td>" in html
