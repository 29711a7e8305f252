"""Finding the grading suites of a kit, and the digest that names them.

Suites are course content: they are read from the kit being graded (`<kit>/grader/suites/`),
so `grade --kit ../student-kit check` grades with the suites that kit holds. A kit without
its own copy (an installed kit, such as a cluster worker's) uses the installed package's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import grader
from grader.course.kit import Kit

PACKAGE_DIR = Path(grader.__file__).resolve().parent
HARNESS_DIR = PACKAGE_DIR / "harness"
VISIBILITY = {"test_public.py": "public", "test_hidden.py": "hidden"}
"""Suite file name -> the visibility of its tests."""


def suites_dir(kit: Kit) -> Path:
    """The folder holding `<slug>/test_public.py`, `test_hidden.py`, `conftest.py` and
    `pytest.ini` for `kit`."""
    own = kit.root / "grader" / "suites"
    return own if (own / "conftest.py").is_file() else PACKAGE_DIR / "suites"


def suite_files(
    kit: Kit, slugs: list[str] | None = None, include_hidden: bool = True
) -> list[tuple[str, str, Path]]:
    """`(slug, visibility, path)` of every present suite file, in course order."""
    root = suites_dir(kit)
    out = []
    for ex in kit.exercises:
        if slugs and ex.slug not in slugs:
            continue
        for name, visibility in VISIBILITY.items():
            path = root / ex.slug / name
            if path.is_file() and (include_hidden or visibility == "public"):
                out.append((ex.slug, visibility, path))
    return out


def suite_digest(kit: Kit) -> str:
    """`sha256:` over the manifest, the suites present, the harness and the grader version."""
    digest = hashlib.sha256(grader.__version__.encode())
    digest.update((kit.root / "course.toml").read_bytes())
    root = suites_dir(kit)
    # The harness code computes and checks expected values too.
    named = [(f"suites/{p.relative_to(root)}", p) for p in root.rglob("*.py")]
    named += [(f"harness/{p.relative_to(HARNESS_DIR)}", p) for p in HARNESS_DIR.rglob("*.py")]
    for name, path in sorted(named):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()


def suite_module(test_file: str, name: str) -> ModuleType:
    """Import the trusted helper `<folder of test_file>/<name>.py` of a suite, once.

    Oracles (test states, expected values) live beside the suites, which the sandbox masks,
    never in `grader/harness/` (importable by student code). pytest's importlib mode puts no
    suite folder on `sys.path`, so a suite loads its helpers by path with this.
    """
    path = Path(test_file).resolve().parent / f"{name}.py"
    key = f"_fslab_suite_{path.parent.name}_{name}"
    module = sys.modules.get(key)
    if module is not None and getattr(module, "__file__", None) == str(path):
        return module
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the suite helper {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module
