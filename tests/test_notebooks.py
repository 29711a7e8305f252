"""Notebook submissions: `<module>.ipynb` is graded like `<module>.py`; release writes them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat import v4

from grader.classroom.notebooks import notebook_text
from grader.cli import cli
from grader.course.kit import load_kit
from grader.grading.child import grade_in_child
from grader.grading.notebook import MAX_NOTEBOOK_BYTES, NotebookError, notebook_to_module
from grader.grading.options import GradingOptions
from grader.grading.staging import stage
from grader.sandbox.bubblewrap import Limits

from kit_helpers import KIT_ROOT, copy_kit

KIT = load_kit(KIT_ROOT)
OPTIONS = GradingOptions(limits=Limits(call_timeout_s=60), submission_timeout_s=300)
EX2 = KIT_ROOT / "exercises" / "ex2_pit_join"
SOLUTION = KIT_ROOT / "solutions" / "ex2_pit_join" / "pit_join.py"


def write_notebook(path: Path, cells) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(v4.new_notebook(cells=cells)))


def test_code_cells_become_the_module_without_magics_or_shell_lines():
    notebook = v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# Notes\nimport this_would_fail"),
            v4.new_code_cell("%load_ext autoreload\nimport math"),
            v4.new_code_cell("%%bash\nrm -rf /"),
            v4.new_code_cell("!pip install nothing\nfiles = !ls\nx = math.sqrt(16)"),
            v4.new_raw_cell("raw text"),
            v4.new_code_cell("def f():\n    return x % 3"),
        ]
    )
    built = notebook_to_module("m.ipynb", nbformat.writes(notebook).encode())
    namespace: dict = {}
    exec(compile(built.source, "m", "exec"), namespace)  # the test's own notebook, not a student's
    assert namespace["f"]() == 1.0
    assert "rm -rf" not in built.source and "pip" not in built.source
    assert "%" not in built.source.replace("x % 3", "")
    # Line 1 of the module is cell 2 (cells count from 1, markdown included).
    assert built.cell_of(1) == (2, 1)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"{not json", "pit_join.ipynb is not a notebook: it is not valid JSON"),
        (b"[1, 2]", "pit_join.ipynb is not a notebook: no list of cells"),
        (b'{"cells": [], "nbformat": 4}', "is missing an expected key: metadata"),
        (
            b'{"cells": [{"cell_type": "code", "metadata": {}}], "metadata": {}, "nbformat": 4, '
            b'"nbformat_minor": 5}',
            "pit_join.ipynb: code cell 1 has no source",
        ),
        (b'{"cells": [], "nbformat": 99}', "pit_join.ipynb is not a readable notebook"),
        (b"\xff\xfe{}", "pit_join.ipynb is not UTF-8 text"),
        (b"[" * 100000 + b"]" * 100000, "it is not valid JSON"),
        (b" " * (MAX_NOTEBOOK_BYTES + 1), "pit_join.ipynb is larger than 8 MiB"),
    ],
)
def test_a_broken_notebook_is_a_one_line_error(tmp_path, data, reason):
    with pytest.raises(NotebookError) as info:
        notebook_to_module("pit_join.ipynb", data)
    assert reason in str(info.value) and "\n" not in str(info.value)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pit_join.ipynb").write_bytes(data)
    staged = stage(sub, tmp_path / "out", KIT)["ex2_pit_join"]
    assert staged.status == "error" and reason in staged.reason


def test_a_syntax_error_names_the_cell_and_the_line(tmp_path):
    write_notebook(
        tmp_path / "sub" / "pit_join.ipynb",
        [v4.new_markdown_cell("hi"), v4.new_code_cell("x = 1"), v4.new_code_cell("y = 2\ndef (:")],
    )
    staged = stage(tmp_path / "sub", tmp_path / "out", KIT)["ex2_pit_join"]
    assert staged.status == "error"
    assert staged.reason.startswith("SyntaxError in pit_join.ipynb at cell 3, line 2")


def test_the_py_file_wins_and_the_notebook_is_found_by_name_anywhere(tmp_path):
    sub = tmp_path / "both"
    write_notebook(sub / "pit_join.ipynb", [v4.new_code_cell("FROM = 'notebook'")])
    (sub / "deep").mkdir()
    (sub / "deep" / "pit_join.py").write_text("FROM = 'py'\n")
    write_notebook(sub / "a" / "b" / "freshness.ipynb", [v4.new_code_cell("FROM = 'nb'")])
    staged = stage(sub, tmp_path / "out", KIT)
    assert staged["ex2_pit_join"].path.read_text() == "FROM = 'py'\n"
    assert "FROM = 'nb'" in staged["ex3_freshness"].path.read_text()
    assert staged["ex3_freshness"].path.name == "freshness.py"
    # In a zip too, and a notebook symlink is never followed.
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as archive:
        archive.writestr("x/feast_e2e.ipynb", nbformat.writes(v4.new_notebook(cells=[
            v4.new_code_cell("OK = True")])))  # fmt: skip
    assert stage(tmp_path / "z.zip", tmp_path / "out2", KIT)["ex4_feast_e2e"].status == "ok"
    link = tmp_path / "link"
    link.mkdir()
    (link / "pit_join.ipynb").symlink_to(sub / "pit_join.ipynb")
    assert stage(link, tmp_path / "out3", KIT)["ex2_pit_join"].status == "missing"


def test_release_writes_a_notebook_beside_each_stub_with_the_tasks(tmp_path):
    kit = copy_kit(tmp_path / "kit")
    out = tmp_path / "student"
    result = CliRunner().invoke(cli, ["--kit", str(kit.root), "release", str(out), "--notebooks"])
    assert result.exit_code == 0, result.output
    for ex in kit.exercises:
        path = out / "exercises" / ex.slug / (ex.module[:-3] + ".ipynb")
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        markdown = [c.source for c in notebook.cells if c.cell_type == "markdown"]
        readme = (kit.root / "exercises" / ex.slug / "README.md").read_text()
        tasks = [line for line in readme.splitlines() if line[:3] in {"1. ", "2. ", "3. "}]
        assert tasks and all(any(c.startswith(t) for c in markdown) for t in tasks)
        # Its code cells are the stub again: same functions, and each still raises.
        module = notebook_to_module(path.name, path.read_bytes()).source
        stub = (kit.root / "exercises" / ex.slug / ex.module).read_text()
        assert _defs(module) == _defs(stub)
    help_text = CliRunner().invoke(cli, ["release", "--help"]).output
    assert "--notebooks" in help_text and "Example: grade release" in help_text


def _defs(source: str) -> list[str]:
    import ast

    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def test_a_solved_notebook_scores_like_the_py_solution_and_a_broken_one_is_an_error(lab, tmp_path):
    readme = (EX2 / "README.md").read_text()
    solved = tmp_path / "solved"
    solved.mkdir()
    (solved / "pit_join.ipynb").write_text(
        notebook_text(readme, SOLUTION.read_text(), "pit_join.py")
    )
    as_py = tmp_path / "as_py"
    as_py.mkdir()
    (as_py / "pit_join.py").write_text(SOLUTION.read_text())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pit_join.ipynb").write_text(json.dumps({"cells": "nope"}))
    cards = {
        name: grade_in_child(lab, path, slugs=["ex2_pit_join"], options=OPTIONS)
        for name, path in [("solved", solved), ("as_py", as_py), ("broken", broken)]
    }
    nb, py = cards["solved"].exercises[0], cards["as_py"].exercises[0]
    assert py.score == py.max_score > 0
    assert (nb.score, nb.status) == (py.score, py.status)
    assert [t.status for t in nb.tests] == [t.status for t in py.tests]
    bad = cards["broken"].exercises[0]
    assert bad.status == "error" and bad.score == 0
    assert bad.error == "pit_join.ipynb is not a notebook: no list of cells"
