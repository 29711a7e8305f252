"""The grader's layout by concern stays true: which package may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import grader

PACKAGE = Path(grader.__file__).resolve().parent

# package -> the grader packages it may import (besides itself and the bare `grader`).
ALLOWED = {
    "sandbox": set(),
    "course": set(),
    "quiz": set(),
    "harness": {"sandbox"},
    "grading": {"sandbox", "course"},
    "classroom": {"grading", "sandbox", "course"},
    "suites": {"grading", "sandbox", "course", "harness"},
}
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py"}


def _grader_imports(path: Path) -> set[str]:
    """The `grader.<package>` names a module imports, lazy imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "grader" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_only_the_cli_and_entry_points_stay_at_the_top_level():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL, f"modules outside a concern's package: {sorted(top - TOP_LEVEL)}"


def test_every_package_says_what_it_holds_and_may_import():
    for name in ALLOWED:
        init = PACKAGE / name / "__init__.py"
        if name == "suites":
            continue  # pytest files, not a package
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"grader/{name}/__init__.py lacks its contract"


def test_imports_point_only_down_the_layers():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            subpackages = {s for s in _grader_imports(path) if (PACKAGE / s).is_dir()}
            for target in sorted(subpackages - allowed - {package}):
                wrong.append(f"{path.relative_to(PACKAGE)} imports grader.{target}")
    assert not wrong, "imports against the layout: " + "; ".join(wrong)


def test_the_rule_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from grader.classroom import batch\n    import grader.quiz.bank\n"
    )
    assert _grader_imports(module) == {"classroom", "quiz"}
