"""`grade release OUT`: the student kit, without solutions or hidden suites.

Copies the kit's tracked content (exercises, public suites, the grader, the reference repo
definitions, the data generator, manifest) and nothing generated, with the student's own
README and Makefile (`student_kit/`): the instructor's name tests and solutions a student
does not have.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.course.kit import Kit
from grader.grading.scorecard import write_text_atomic

# Top-level entries that make up the student kit.
INCLUDE = (
    "README.md",
    "CHANGELOG.md",
    "Makefile",
    "pyproject.toml",
    "course.toml",
    ".gitignore",
    "scripts",
    "exercises",
    "grader",
    "feature_repo",
    "data",
)
# Never copied, wherever they are.
# equivalent_mutants.toml describes the reference solutions' code: instructors only.
EXCLUDE_NAMES = {
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "test_hidden.py",
    "equivalent_mutants.toml",
}
EXCLUDE_GENERATED = {"data": {"fraud", "generated.json", "*.parquet"}, "feature_repo": {"data"}}


# The student kit's own README.md and Makefile, in place of the instructor's.
STUDENT_FILES = Path(__file__).resolve().parent / "student_kit"


class ReleaseError(Exception):
    """The release cannot be written where asked (one line, for the user)."""


def _ignore(kit_root: Path, excluded: set[str]):
    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).resolve().relative_to(kit_root)
        skipped = set(shutil.ignore_patterns(*excluded)(folder, names))
        generated = EXCLUDE_GENERATED.get(str(rel), set())
        skipped |= set(shutil.ignore_patterns(*generated)(folder, names)) if generated else set()
        return skipped

    return ignore


def copy_kit_files(kit: Kit, out: Path, *, private: bool = False) -> list[Path]:
    """Copy the kit's source files into the empty folder `out` (created).

    `private=False` is the student kit; `private=True` also copies `solutions/` and the hidden
    suites (for a Gradescope bundle, never for students). Returns the files, relative to `out`.
    """
    root = kit.root.resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = (*INCLUDE, "solutions") if private else INCLUDE
    excluded = (
        EXCLUDE_NAMES - {"test_hidden.py", "equivalent_mutants.toml"} if private else EXCLUDE_NAMES
    )
    for name in names:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=_ignore(root, excluded), symlinks=False)
        elif source.is_file():
            shutil.copy2(source, out / name)
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())


def build_release(
    kit: Kit, out: Path, *, force: bool = False, notebooks: bool = False
) -> list[Path]:
    """Write the student kit to `out`; returns the files written (relative to `out`).

    With `notebooks`, each exercise also gets `exercises/<slug>/<module>.ipynb` beside its
    stub (`grader.classroom.notebooks`).
    """
    root = kit.root.resolve()
    out = out.resolve()
    if out == root or root in out.parents:
        raise ReleaseError(f"{out} is inside the kit; choose a folder outside {root}")
    if out.exists():
        if not out.is_dir():
            raise ReleaseError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise ReleaseError(f"{out} is not empty; pass --force to replace its contents")
            shutil.rmtree(out)
    copy_kit_files(kit, out)
    for name in ("README.md", "Makefile"):
        shutil.copy2(STUDENT_FILES / name, out / name)
    if notebooks:
        write_notebooks(kit, out)
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())


def write_notebooks(kit: Kit, out: Path) -> list[Path]:
    """Write each exercise's notebook into `out/exercises/<slug>/`; returns them (relative)."""
    from grader.classroom.notebooks import notebook_text

    written = []
    for ex in kit.exercises:
        folder = kit.root / "exercises" / ex.slug
        stub, readme = folder / ex.module, folder / "README.md"
        if not stub.is_file():
            raise ReleaseError(f"{stub} is missing: no notebook can be built for {ex.slug}")
        readme_text = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {ex.title}"
        rel = Path("exercises", ex.slug, ex.module[:-3] + ".ipynb")
        text = notebook_text(readme_text, stub.read_text(encoding="utf-8"), ex.module)
        write_text_atomic(out / rel, text)
        written.append(rel)
    return written
