"""`grade verify`: the maintainer's self-check of the kit (like rustlings' dev check).

Each check yields `Check(name, ok, detail)`; the CLI prints them and exits 1 on any failure.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from grader.course.kit import Kit
from grader.grading.child import grade_in_child
from grader.grading.options import GradingOptions
from grader.grading.suites import suites_dir

ALLOWED_IN_EXERCISE = {"README.md"}
PUBLIC_SHARE = (0.4, 0.6)
"""The share of an exercise's points its public tests hold (students see their rules)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_verify_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_functions(module: ModuleType) -> dict[str, object]:
    """Public functions defined in `module` itself (the exercise's tasks)."""
    return {
        name: fn
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_")
    }


def _stray(folder: Path, allowed: set[str]) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name not in allowed and p.name != "__pycache__"
    )


def suite_points(path: Path) -> dict[str, float]:
    """Test name -> points of a suite file, read from its `@pytest.mark.points(n)` decorators."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    points: dict[str, float] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            value = 0.0
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "points"
                    and deco.args
                    and isinstance(deco.args[0], ast.Constant)
                ):
                    value = float(deco.args[0].value)
            points[node.name] = value
    return points


def suite_tasks(path: Path) -> dict[str, int | None]:
    """Test name -> README task number of a suite file (its `@pytest.mark.task(taskno=N)`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tasks: dict[str, int | None] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            tasks[node.name] = None
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "task"
                ):
                    for kw in deco.keywords:
                        if kw.arg == "taskno" and isinstance(kw.value, ast.Constant):
                            tasks[node.name] = kw.value.value
    return tasks


def readme_tasks(readme: Path) -> list[int]:
    """The numbers of the numbered tasks of an exercise README (its "Tasks" section)."""
    text = readme.read_text(encoding="utf-8")
    found = re.search(r"^## (?:Your )?[Tt]asks\n(.*?)(?=^## )", text, re.S | re.M)
    if not found:
        return []
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", found.group(1), re.M)]


def task_checks(kit: Kit, ex, files: list[Path]) -> Iterator[Check]:
    """Every test names a README task; every task has a public test worth points; the public
    share of the points is within `PUBLIC_SHARE`."""
    tasks = readme_tasks(kit.root / "exercises" / ex.slug / "README.md")
    public_points: dict[int, float] = {}
    unmarked: list[str] = []
    public_total = 0.0
    for f in files:
        if not f.is_file():
            continue
        points, marks = suite_points(f), suite_tasks(f)
        for name, task in marks.items():
            if task not in tasks:
                unmarked.append(f"{name} (task {task})" if task is not None else name)
            elif f.name == "test_public.py":
                public_points[task] = public_points.get(task, 0.0) + points.get(name, 0.0)
        if f.name == "test_public.py":
            public_total += sum(points.values())
    yield Check(
        f"{ex.slug}: every test is tied to one of the README's tasks {tasks}",
        bool(tasks) and not unmarked,
        ", ".join(unmarked) or ("" if tasks else "the README has no numbered tasks"),
    )
    bare = [str(t) for t in tasks if public_points.get(t, 0.0) <= 0]
    yield Check(
        f"{ex.slug}: every README task has a public test worth points",
        not bare,
        f"no public points for task(s) {', '.join(bare)}" if bare else "",
    )
    if files[1].is_file():
        share = public_total / ex.points if ex.points else 0.0
        low, high = PUBLIC_SHARE
        yield Check(
            f"{ex.slug}: public tests hold {low:.0%}-{high:.0%} of the points",
            low - 1e-9 <= share <= high + 1e-9,
            f"{public_total:g}/{ex.points:g} = {share:.0%}",
        )


def static_checks(kit: Kit) -> Iterator[Check]:
    """Layout, stubs, solutions and suites, without grading anything."""
    for ex in kit.exercises:
        ex_dir, sol_dir = kit.root / "exercises" / ex.slug, kit.root / "solutions" / ex.slug
        stub_path, sol_path = ex_dir / ex.module, sol_dir / ex.module
        missing = [str(p.relative_to(kit.root)) for p in (ex_dir / "README.md", stub_path, sol_path)
                   if not p.is_file()]  # fmt: skip
        yield Check(f"{ex.slug}: README, stub and solution exist", not missing, ", ".join(missing))
        if missing:
            continue
        stray = _stray(ex_dir, ALLOWED_IN_EXERCISE | {ex.module}) + [
            f"solutions/{n}" for n in _stray(sol_dir, {ex.module})
        ]
        yield Check(f"{ex.slug}: no stray files", not stray, ", ".join(stray))
        try:
            stub, sol = _import(stub_path), _import(sol_path)
        except Exception as exc:  # noqa: BLE001 - report any import failure
            yield Check(
                f"{ex.slug}: stub and solution import", False, f"{type(exc).__name__}: {exc}"
            )
            continue
        stub_fns, sol_fns = task_functions(stub), task_functions(sol)
        bad = []
        for name, fn in stub_fns.items():
            params = inspect.signature(fn).parameters.values()
            args = [
                None for p in params if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD
            ]
            kwargs = {
                p.name: None for p in params if p.default is p.empty and p.kind == p.KEYWORD_ONLY
            }
            try:
                fn(*args, **kwargs)
                bad.append(f"{name} returned")
            except NotImplementedError:
                pass
            except Exception as exc:  # noqa: BLE001
                bad.append(f"{name} raised {type(exc).__name__}")
        yield Check(
            f"{ex.slug}: every stub function raises NotImplementedError",
            bool(stub_fns) and not bad,
            ", ".join(bad) or ("" if stub_fns else "no functions"),
        )
        diffs = sorted(set(stub_fns) ^ set(sol_fns))
        for name in set(stub_fns) & set(sol_fns):
            if inspect.signature(stub_fns[name]) != inspect.signature(sol_fns[name]):
                diffs.append(f"{name} signature")
            if inspect.getdoc(stub_fns[name]) != inspect.getdoc(sol_fns[name]):
                diffs.append(f"{name} docstring")
        yield Check(f"{ex.slug}: stub and solution share functions, signatures, docstrings",
                    not diffs, ", ".join(diffs))  # fmt: skip

        files = [suites_dir(kit) / ex.slug / n for n in ("test_public.py", "test_hidden.py")]
        present = [f for f in files if f.is_file()]
        names: list[str] = []
        total = 0.0
        for f in present:
            pts = suite_points(f)
            names += list(pts)
            total += sum(pts.values())
        has_public = files[0].is_file()
        dup = sorted({n for n in names if names.count(n) > 1})
        yield Check(f"{ex.slug}: public suite present, test names unique", has_public and not dup,
                    ", ".join(dup) or ("" if has_public else "no test_public.py"))  # fmt: skip
        yield from task_checks(kit, ex, files)
        if files[1].is_file():
            adds_up = abs(total - ex.points) < 1e-9
            yield Check(f"{ex.slug}: suite points add up to {ex.points:g}", adds_up,
                        "" if adds_up else f"they add up to {total:g}")  # fmt: skip


def grading_checks(kit: Kit, options: GradingOptions) -> Iterator[Check]:
    """Grade `solutions/` (must score full marks) and `exercises/` (must score 0)."""
    for folder, want in (("solutions", kit.total_points), ("exercises", 0.0)):
        card = grade_in_child(kit, kit.root / folder, options=options)
        failing = [
            f"{t.id}: {t.feedback[:160]}"
            for ex in card.exercises
            for t in ex.tests
            if (t.status != "passed") == (want > 0)
        ]
        ok = card.status == "graded" and abs(card.score - want) < 1e-9
        detail = f"scored {card.score:g}/{card.max_score:g}"
        if not ok and failing:
            detail += "; " + " | ".join(failing[:5])
        yield Check(f"grading {folder}/ gives {want:g}", ok, detail)
