"""Finding the kit on disk and reading its manifest, `course.toml`.

The manifest is the single source of truth for which exercises exist, their order, points and
hints; every other module asks this one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "course.toml"


class KitError(Exception):
    """The kit or its manifest is missing or invalid; the message is one line."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of the course, as declared in `course.toml`."""

    slug: str
    """Folder name under `exercises/` and `solutions/`, e.g. `ex2_pit_join`."""
    title: str
    """One-line human title."""
    module: str
    """File name of the stub module, e.g. `pit_join.py`; submissions are searched for it."""
    points: float
    """Points the exercise is worth."""
    hints: tuple[str, ...] = field(default_factory=tuple)
    """Hints, gentlest first."""
    imports: tuple[str, ...] = ("pandas", "pyarrow")
    """Modules the sandboxed worker imports before the first (timed) call."""


@dataclass(frozen=True)
class Kit:
    """A kit checkout (or a student release) rooted at `root`."""

    root: Path
    name: str
    exercises: tuple[Exercise, ...]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def feature_repo(self) -> Path:
        return self.root / "feature_repo"

    @property
    def total_points(self) -> float:
        return sum(e.points for e in self.exercises)

    def exercise(self, slug: str) -> Exercise:
        """Return the exercise named `slug` or raise `KitError` listing the known slugs."""
        for ex in self.exercises:
            if ex.slug == slug:
                return ex
        known = ", ".join(e.slug for e in self.exercises)
        raise KitError(f"unknown exercise {slug!r}; known: {known}")


def find_kit_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` (default: cwd) that holds `course.toml`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).is_file():
            return folder
    raise KitError(f"no {MANIFEST} here or above {here}; run inside the kit or pass --kit PATH")


def load_kit(root: Path | None = None) -> Kit:
    """Load the kit at `root` (a folder holding `course.toml`), or find it from the cwd."""
    if root is None:
        root = find_kit_root()
    root = root.resolve()
    path = root / MANIFEST
    if not path.is_file():
        raise KitError(f"{root} is not a kit: it has no {MANIFEST}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KitError(f"{path}: invalid TOML: {exc}") from None
    exercises = []
    for i, item in enumerate(raw.get("exercises", []), 1):
        try:
            exercises.append(
                Exercise(
                    slug=str(item["slug"]),
                    title=str(item["title"]),
                    module=str(item["module"]),
                    points=float(item["points"]),
                    hints=tuple(str(h) for h in item.get("hints", [])),
                    imports=tuple(str(m) for m in item.get("imports", ["pandas", "pyarrow"])),
                )
            )
        except KeyError as exc:
            raise KitError(f"{path}: exercise #{i} lacks {exc.args[0]!r}") from None
    if not exercises:
        raise KitError(f"{path}: no [[exercises]] declared")
    slugs = [e.slug for e in exercises]
    if len(set(slugs)) != len(slugs):
        raise KitError(f"{path}: duplicate exercise slugs")
    name = str(raw.get("course", {}).get("name", "course"))
    return Kit(root=root, name=name, exercises=tuple(exercises))
