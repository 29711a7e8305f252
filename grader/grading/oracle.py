"""The oracle cache: expected values the suites computed once (Feast runs, reference joins),
kept between runs and keyed by the suites and the data they were computed from."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Where expected values are cached between runs (`FSLAB_CACHE_DIR` overrides)."""
    env = os.environ.get("FSLAB_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("feature-store-lab"))


def cache_path(cache_dir: Path, digest: str, data_dir: Path, name: str) -> Path:
    """A file path in the cache for `name`, in a folder keyed by the suite `digest` and the
    data manifest of `data_dir` (created): new suites or new data never read old values."""
    from grader.course import datagen  # numpy and pandas: only when a suite asks

    manifest = datagen.read_manifest(data_dir) or {}
    key = hashlib.sha256((digest + json.dumps(manifest, sort_keys=True)).encode()).hexdigest()
    folder = cache_dir / key[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
