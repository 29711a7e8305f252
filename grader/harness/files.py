"""Writing files for a test inside the sandbox.

The trusted process must never write into a submission's folder itself: student code could
have planted a symlink there, and the grader may run as root. Suites hand the data to the
worker instead, which writes it with the worker's own (sandboxed) rights.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd


def write_parquet(_module: ModuleType, folder: str, frames: dict[str, pd.DataFrame]) -> list[str]:
    """Write each frame to `folder/<relative path>` as parquet; return the paths written."""
    written = []
    for rel, frame in frames.items():
        path = Path(folder) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        written.append(str(path))
    return written
