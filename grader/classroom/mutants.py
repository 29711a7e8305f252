"""`grade verify --mutants SLUG`: mutation testing of an exercise's grading suites.

Each mutant is the reference solution `solutions/<slug>/<module>.py` with one small change
(a comparison, an operator, a constant, a removed call or raise, a returned None). It is graded
like a submission, through the sandboxed grader with the full suites (public and hidden), in a
worker forked from a warm factory, stopping at the first test that fails. A mutant that scores
full marks *survived*: the suites cannot tell it from the solution. Every survivor is either
killed by a new test or listed, with one line why it cannot be told apart, in
`grader/suites/<slug>/equivalent_mutants.toml`:

    [[equivalent]]
    id = "point_in_time_join: Compare `<` -> `<=` #1"
    why = "ties were already broken by the stable sort, so < and <= pick the same row"

Why not mutmut or cosmic-ray: mutmut 3 instruments the code with trampolines that must be
imported by the test process (here a sandboxed worker loads the file by path, without mutmut),
and cosmic-ray runs a fresh test command per mutant (a cold grader start with Feast for each)
with no way to reuse the warm worker factory that makes a mutant cost seconds. The operators
below are the classic ones both tools apply.
"""

from __future__ import annotations

import ast
import copy
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.child import grade_in_child
from grader.grading.options import GradingOptions
from grader.grading.suites import suites_dir

TARGET = 0.95
"""Share of the non-equivalent mutants the suites must kill."""

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINARY = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.BitAnd: "&", ast.BitOr: "|", ast.And: "and", ast.Or: "or",
}  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    """One mutation of a module's source."""

    id: str
    """Stable across edits elsewhere in the file: `<function>: <kind> <what> #<n-th such>`."""
    line: int
    source: str
    """The whole mutated module."""


def _skipped(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, f-string parts, messages."""
    skip: set[int] = set()

    def drop(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                drop(body[0])
        if isinstance(node, ast.arg):
            drop(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            drop(node.returns)
        if isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        if isinstance(node, ast.JoinedStr):
            drop(node)
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            for arg in node.exc.args:  # the message: judged by what it names, not its words
                drop(arg)
    return skip


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, Callable[[ast.AST], None]]]:
    """(node, description, apply) for every mutation the operators allow."""
    skip = _skipped(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE:
                    new = _COMPARE[type(op)]

                    def apply(n, i=i, new=new):
                        n.ops[i] = new()

                    yield node, f"Compare `{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}`", apply
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINARY:
            new = _BINARY[type(node.op)]

            def apply(n, new=new):
                n.op = new()

            yield node, f"BinOp `{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}`", apply
        elif isinstance(node, ast.BoolOp):
            new = _BOOL[type(node.op)]

            def apply(n, new=new):
                n.op = new()

            yield node, f"BoolOp `{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}`", apply
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "drop `not`", lambda n: setattr(n, "op", ast.UAdd())
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                yield (
                    node,
                    f"Constant {value} -> {not value}",
                    lambda n: setattr(n, "value", not n.value),
                )
            elif isinstance(value, int) and not isinstance(value, bool):
                yield (
                    node,
                    f"Constant {value} -> {value + 1}",
                    lambda n: setattr(n, "value", n.value + 1),
                )
                if value != 0:
                    yield node, f"Constant {value} -> 0", lambda n: setattr(n, "value", 0)
            elif isinstance(value, float):
                yield (
                    node,
                    f"Constant {value!r} -> {value + 1!r}",
                    lambda n: setattr(n, "value", n.value + 1),
                )
        elif isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str) and node.arg:
                yield (
                    node,
                    f"keyword {node.arg}={node.value.value!r} -> ''",
                    lambda n: setattr(n.value, "value", ""),
                )
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                yield node, "return None", lambda n: setattr(n, "value", None)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            yield node, "drop call", lambda n: setattr(n, "value", ast.Constant(value=None))
        elif isinstance(node, ast.Raise):
            yield node, "drop raise", None  # type: ignore[misc] # replaced below


def _functions(tree: ast.Module) -> dict[int, str]:
    """node id -> the name of the innermost function (or `<module>`) it is in."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.ClassDef) else name
            owner[id(child)] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


class _DropRaise(ast.NodeTransformer):
    def __init__(self, target: ast.AST) -> None:
        self.target = target

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        return ast.Pass() if node is self.target else node


def mutants(source: str) -> Iterator[Mutant]:
    """Every mutant of `source` that compiles and differs from it, in source order."""
    original = ast.unparse(ast.parse(source))
    probe = ast.parse(source)
    owner = _functions(probe)
    found = [(node, what) for node, what, _ in _sites(probe)]
    found.sort(key=lambda item: (getattr(item[0], "lineno", 0), getattr(item[0], "col_offset", 0)))
    # Match each site to the same node of a fresh copy by its position in a full walk.
    order = {id(n): i for i, n in enumerate(ast.walk(probe))}
    seen: dict[str, int] = {}
    for node, what in found:
        base = f"{owner.get(id(node), '<module>')}: {what}"
        seen[base] = seen.get(base, 0) + 1
        tree = copy.deepcopy(ast.parse(source))
        target = list(ast.walk(tree))[order[id(node)]]
        if what == "drop raise":
            tree = _DropRaise(target).visit(tree)
        else:
            for site, label, apply in _sites(tree):
                if site is target and label == what:
                    apply(site)
                    break
        ast.fix_missing_locations(tree)
        text = ast.unparse(tree)
        if text == original:
            continue
        try:
            compile(text, "<mutant>", "exec")
        except SyntaxError:
            continue
        yield Mutant(f"{base} #{seen[base]}", getattr(node, "lineno", 0), text + "\n")


def equivalent_ids(path: Path) -> dict[str, str]:
    """`{mutant id: why}` from an `equivalent_mutants.toml` (empty when there is none)."""
    if not path.is_file():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {str(e["id"]): str(e.get("why", "")) for e in data.get("equivalent", [])}


@dataclass
class MutationReport:
    slug: str
    total: int = 0
    killed: list[str] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    """Listed as equivalent but no longer produced (the solution changed): review the list."""
    killed_by_equivalent: list[str] = field(default_factory=list)
    """Listed as equivalent yet killed: the list is wrong."""

    @property
    def score(self) -> float:
        judged = self.total - len(self.equivalent)
        return len(self.killed) / judged if judged else 1.0

    @property
    def ok(self) -> bool:
        return self.score >= TARGET and not self.killed_by_equivalent


def run_mutants(
    kit: Kit,
    slug: str,
    options: GradingOptions,
    *,
    limit: int | None = None,
    progress: Callable[[int, int, Mutant, str], None] | None = None,
) -> MutationReport:
    """Grade every mutant of `slug`'s solution with the full suites; the report of it.

    Uses one warm worker factory for all mutants when bubblewrap works (cold workers
    otherwise). `limit` grades only the first N mutants (a quick look).
    """
    ex = kit.exercise(slug)
    source = (kit.root / "solutions" / slug / ex.module).read_text(encoding="utf-8")
    listed = equivalent_ids(suites_dir(kit) / slug / "equivalent_mutants.toml")
    every = list(mutants(source))
    chosen = every[:limit] if limit else every
    report = MutationReport(slug, total=len(chosen))
    report.stale = sorted(set(listed) - {m.id for m in every})
    zygote = _zygote(kit, options)
    graded = replace(options, exitfirst=True, zygote=zygote)
    folder = Path(tempfile.mkdtemp(prefix="fslab-mutant-"))
    try:
        for i, mutant in enumerate(chosen, 1):
            (folder / slug).mkdir(parents=True, exist_ok=True)
            (folder / slug / ex.module).write_text(mutant.source, encoding="utf-8")
            card = grade_in_child(kit, folder, name=f"mutant-{i}", slugs=[slug], options=graded)
            tests = [t for e in card.exercises for t in e.tests]
            full = card.status == "graded" and tests and all(t.status == "passed" for t in tests)
            full = full and abs(card.score - ex.points) < 1e-9
            if not full:
                first = next((t.id.split("::")[-1] for t in tests if t.status != "passed"), "")
                outcome = f"killed by {first}" if first else f"killed ({card.error or 'error'})"
                report.killed.append(mutant.id)
                if mutant.id in listed:
                    report.killed_by_equivalent.append(mutant.id)
            elif mutant.id in listed:
                outcome = "equivalent"
                report.equivalent.append(mutant.id)
            else:
                outcome = "SURVIVED"
                report.survived.append(mutant)
            if progress is not None:
                progress(i, len(chosen), mutant, outcome)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if zygote is not None:
            zygote.close()
    return report


def _zygote(kit: Kit, options: GradingOptions):
    """A warm worker factory (as `grade batch` uses), or None where bubblewrap does not work."""
    from grader.sandbox.bubblewrap import WorkerError, bwrap_works
    from grader.sandbox.warm import Zygote

    if options.use_bwrap is False or not bwrap_works():
        return None
    preload: list[str] = []
    for ex in kit.exercises:
        preload += [m for m in ex.imports if m not in preload]
    try:
        zygote = Zygote(readonly=(kit.data_dir,), preload=tuple(preload), limits=options.limits)
        return zygote.start().wait_ready()
    except (WorkerError, OSError):
        return None
