"""The stubs of ex1_fraud_design and ex4_feast_e2e teach and do nothing; the solutions mirror them.

Every task function of a stub raises `NotImplementedError`; stub and solution have the same
module docstring and the same task functions with the same signatures and docstrings; each
`# TODO` of a stub became one comment line in the solution.
"""

from __future__ import annotations

import ast
import inspect
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from grader.course.kit import load_kit

SLUGS = ["ex1_fraud_design", "ex4_feast_e2e"]
TASKS = {
    "ex1_fraud_design": ["build_definitions"],
    "ex4_feast_e2e": [
        "write_repo",
        "apply_repo",
        "materialize_online",
        "training_frame",
        "online_features",
    ],
}


def public_functions(module) -> dict:
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj)
        and not name.startswith("_")
        and obj.__module__ == module.__name__
    }


def body_comment_counts(path: Path) -> dict[str, tuple[int, int]]:
    """Per top-level function: (# TODO lines, other comment lines) at the body's own indent."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    counts = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            body = lines[node.body[0].end_lineno : node.end_lineno]
            own = [line[4:] for line in body if line.startswith("    #")]
            todo = sum(line.startswith("# TODO") for line in own)
            counts[node.name] = (todo, len(own) - todo)
    return counts


@pytest.fixture(scope="module")
def kit(kit_root):
    return load_kit(kit_root)


@pytest.mark.parametrize("slug", SLUGS)
def test_the_stub_and_the_solution_define_the_same_task_functions(slug, stub, solution):
    stub_fns, solution_fns = public_functions(stub(slug)), public_functions(solution(slug))
    assert sorted(stub_fns) == sorted(TASKS[slug])
    assert sorted(solution_fns) == sorted(TASKS[slug])
    for name in TASKS[slug]:
        assert inspect.signature(stub_fns[name]) == inspect.signature(solution_fns[name]), name
        assert stub_fns[name].__doc__ == solution_fns[name].__doc__, f"{name}: docstrings differ"
        assert len(inspect.getdoc(stub_fns[name])) > 300, f"{name}: the contract is too thin"


@pytest.mark.parametrize("slug", SLUGS)
def test_the_stub_and_the_solution_share_their_module_docstring(slug, stub, solution):
    assert stub(slug).__doc__ == solution(slug).__doc__
    assert "README.md" in stub(slug).__doc__


@pytest.mark.parametrize("slug", SLUGS)
def test_every_todo_of_the_stub_became_one_comment_of_the_solution(slug, kit, kit_root):
    module = kit.exercise(slug).module
    stub_counts = body_comment_counts(kit_root / "exercises" / slug / module)
    solution_counts = body_comment_counts(kit_root / "solutions" / slug / module)
    for name in TASKS[slug]:
        todos, _ = stub_counts[name]
        assert todos >= 1, f"the stub's {name} has no # TODO"
        assert solution_counts[name] == (0, todos), name


def test_every_ex1_task_function_raises_not_implemented(stub, tmp_path):
    module = stub("ex1_fraud_design")
    with pytest.raises(NotImplementedError):
        module.build_definitions(tmp_path)


def test_every_ex4_task_function_raises_not_implemented(stub, tmp_path):
    module = stub("ex4_feast_e2e")
    entity = pd.DataFrame({"user_id": [1], "event_timestamp": [datetime(2024, 2, 1)]})
    refs = ["user_activity:daily_spend"]
    calls = {
        "write_repo": lambda: module.write_repo(tmp_path / "repo", tmp_path / "x.parquet"),
        "apply_repo": lambda: module.apply_repo(tmp_path / "repo"),
        "materialize_online": lambda: module.materialize_online(
            tmp_path / "repo", datetime(2024, 1, 1), datetime(2024, 3, 1)
        ),
        "training_frame": lambda: module.training_frame(tmp_path / "repo", entity, refs),
        "online_features": lambda: module.online_features(tmp_path / "repo", [1, 2], refs),
    }
    assert sorted(calls) == sorted(TASKS["ex4_feast_e2e"])
    for name, call in calls.items():
        with pytest.raises(NotImplementedError, match=name):
            call()
    assert not (tmp_path / "repo").exists(), "a stub must not do part of the work"


def test_the_ex4_stub_warns_about_both_traps_of_the_lesson(stub):
    module = stub("ex4_feast_e2e")
    assert "apply([])" in module.__doc__ and "apply([])" in module.apply_repo.__doc__
    assert "materialize_incremental" in module.__doc__
    assert "materialize_incremental" in module.materialize_online.__doc__


@pytest.mark.parametrize("slug", SLUGS)
def test_the_readme_numbers_its_tasks_and_says_how_to_check_them(slug, kit_root):
    readme = (kit_root / "exercises" / slug / "README.md").read_text(encoding="utf-8")
    assert f"grade check {slug}" in readme
    assert f"grade hint {slug}" in readme
    for number in (1, 2, 3, 4):
        assert f"\n{number}. " in readme, f"task {number} is missing"


@pytest.mark.parametrize("slug", SLUGS)
def test_the_exercise_folder_holds_only_what_a_student_should_see(slug, kit, kit_root):
    folder = kit_root / "exercises" / slug
    files = {p.name for p in folder.iterdir()}
    assert {"README.md", kit.exercise(slug).module} <= files
    assert not any("solution" in name for name in files)
    assert "TODO" in (folder / kit.exercise(slug).module).read_text(encoding="utf-8")
    solution = kit_root / "solutions" / slug / kit.exercise(slug).module
    assert "TODO" not in solution.read_text(encoding="utf-8")
