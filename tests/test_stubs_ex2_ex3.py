"""The stubs of ex2_pit_join and ex3_freshness are the solutions with the work taken out.

Every function of a stub raises `NotImplementedError`; stub and solution define the same
functions with the same signatures and docstrings; each `# TODO` line of a stub is one
explaining comment in the solution; importing any of them stays light (no Feast).
"""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
import tokenize
from types import FunctionType, ModuleType

import pandas as pd
import pytest

SLUGS = ["ex2_pit_join", "ex3_freshness"]
FILES = {"ex2_pit_join": "pit_join.py", "ex3_freshness": "freshness.py"}


def functions(module: ModuleType) -> dict[str, FunctionType]:
    """The functions defined in `module` itself (not imported into it)."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, FunctionType) and obj.__module__ == module.__name__
    }


def full_line_comments(source: str) -> list[str]:
    """The comments of `source` that stand on a line of their own."""
    return [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT and tok.line.strip().startswith("#")
    ]


@pytest.mark.parametrize("slug", SLUGS)
def test_stub_and_solution_define_the_same_functions(stub, solution, slug):
    stub_funcs, sol_funcs = functions(stub(slug)), functions(solution(slug))
    assert sorted(stub_funcs) == sorted(sol_funcs)
    for name, func in stub_funcs.items():
        assert inspect.signature(func) == inspect.signature(sol_funcs[name]), name
        assert str(inspect.signature(func)) == str(inspect.signature(sol_funcs[name])), name
        assert func.__doc__ and func.__doc__ == sol_funcs[name].__doc__, name


@pytest.mark.parametrize("slug", SLUGS)
def test_stub_and_solution_share_the_module_docstring_and_constants(stub, solution, slug):
    stub_mod, sol_mod = stub(slug), solution(slug)
    assert stub_mod.__doc__ and stub_mod.__doc__ == sol_mod.__doc__
    constants = [name for name in vars(sol_mod) if name.isupper()]
    for name in constants:
        assert getattr(stub_mod, name) == getattr(sol_mod, name), name


@pytest.mark.parametrize("slug", SLUGS)
def test_every_stub_function_raises_not_implemented(stub, slug):
    funcs = functions(stub(slug))
    assert funcs
    for func in funcs.values():
        params = inspect.signature(func).parameters.values()
        args = [None for p in params if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        kwargs = {p.name: None for p in params if p.default is p.empty and p.kind is p.KEYWORD_ONLY}
        with pytest.raises(NotImplementedError):
            func(*args, **kwargs)


def test_the_public_task_functions_raise_not_implemented_on_real_arguments(stub, tmp_path):
    pit, fresh = stub("ex2_pit_join"), stub("ex3_freshness")
    entity = pd.DataFrame({"user_id": [1], "event_timestamp": [pd.Timestamp("2024-01-02")]})
    feature = entity.assign(spend=[1.0])
    with pytest.raises(NotImplementedError):
        pit.point_in_time_join(entity, feature)
    with pytest.raises(NotImplementedError):
        fresh.check_freshness(tmp_path, now="2024-04-01")
    with pytest.raises(NotImplementedError):
        fresh.format_alerts(pd.DataFrame(columns=fresh.COLUMNS))
    with pytest.raises(NotImplementedError):
        fresh.main(["--repo", str(tmp_path)])


@pytest.mark.parametrize("slug", SLUGS)
def test_each_todo_of_the_stub_is_one_comment_in_the_solution(stub, solution, slug):
    stub_funcs, sol_funcs = functions(stub(slug)), functions(solution(slug))
    for name, func in stub_funcs.items():
        todos = full_line_comments(inspect.getsource(func))
        comments = full_line_comments(inspect.getsource(sol_funcs[name]))
        assert todos and all(todo.startswith("# TODO") for todo in todos), name
        assert not any("TODO" in comment for comment in comments), name
        assert len(comments) == len(todos), name


def test_importing_the_stubs_and_solutions_loads_no_feast(kit_root):
    paths = [
        kit_root / folder / slug / FILES[slug]
        for slug in SLUGS
        for folder in ("exercises", "solutions")
    ]
    code = (
        "import importlib.util, sys\n"
        f"for i, path in enumerate({[str(p) for p in paths]!r}):\n"
        "    spec = importlib.util.spec_from_file_location(f'm{i}', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'feast', 'duckdb'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
