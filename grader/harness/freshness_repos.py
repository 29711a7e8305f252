"""Worker side of the ex3_freshness suites: write the test repos into the private folder.

The repos' states and expected reports live with the suites (`grader/suites/ex3_freshness/
repos.py`), which the sandbox masks: nothing here tells a submission what the tests expect.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def install(_module, folder: str, files: dict[str, bytes], mirror: list[str]) -> None:
    """Write `files` under `folder` afresh, and copy `mirror` into `./data/` (worker side).

    Runs inside the sandboxed worker (`student.harness("freshness_repos:install", ...)`), so
    the trusted process never writes into a folder the submission can change. The copies in
    the current folder's data/ let an answer that reads relative source paths from the
    current folder instead of the repo folder find them: only the `moved` repo, whose source
    is not copied, tells the two apart.
    """
    root = Path(folder)
    if root.is_symlink() or root.is_file():
        root.unlink()
    shutil.rmtree(root, ignore_errors=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    here = Path.cwd() / "data"
    here.mkdir(parents=True, exist_ok=True)
    for rel in mirror:
        shutil.copyfile(root / rel, here / Path(rel).name)
