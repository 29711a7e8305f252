"""Finding and copying a submission's exercise files, safely.

Only the exercise files named in the manifest are taken, found by file name anywhere in the
submission (the shallowest first), read without following symlinks, checked (UTF-8 text,
compiles) and copied into a fresh private folder. Zip entries are read in memory and never
extracted; absolute, `..` and link entries are refused. The submission itself is only read.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from grader.course.kit import Kit

MAX_FILE_BYTES = 1 << 20


class SubmissionError(Exception):
    """The submission as a whole cannot be read (not a folder or zip, corrupt zip)."""


@dataclass(frozen=True)
class StagedFile:
    """What became of one exercise file of a submission."""

    slug: str
    module: str
    status: Literal["ok", "missing", "error"]
    path: Path | None = None
    """The private copy, when `status` is ok."""
    reason: str | None = None
    """One line, when `status` is missing or error."""


def submission_id(source: Path) -> str:
    """A submission's id: its entry name without `.zip`."""
    return source.name[:-4] if source.name.lower().endswith(".zip") else source.name


def _depth_key(rel: str) -> tuple[int, str]:
    return (rel.count("/"), rel)


def _candidates_in_folder(root: Path, names: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {n: [] for n in names}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
        for name in files:
            if name in names and not (Path(folder) / name).is_symlink():
                found[name].append(str(Path(folder, name).relative_to(root).as_posix()))
    return found


def _read_no_follow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _unsafe_zip_entry(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in path.parts:
        return "a '..' path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def check_source(name: str, data: bytes) -> str | None:
    """Why `data` cannot be graded as the Python file `name`, or None if it can."""
    if len(data) > MAX_FILE_BYTES:
        return f"{name} is larger than {MAX_FILE_BYTES // 1024} KiB"
    if b"\x00" in data:
        return f"{name} is a binary file, not Python source"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{name} is not UTF-8 text (byte {exc.start})"
    try:
        compile(text, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"SyntaxError in {name} at line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{name} cannot be compiled: {type(exc).__name__}"
    return None


def stage(source: Path, dest: Path, kit: Kit) -> dict[str, StagedFile]:
    """Copy the exercise files of `source` (folder or .zip) into `dest/<slug>/<module>`.

    Returns one `StagedFile` per exercise. Raises `SubmissionError` when `source` is neither a
    folder nor a readable zip.
    """
    names = {ex.module: ex for ex in kit.exercises}
    contents: dict[str, bytes | str] = {}  # module -> bytes, or a reason it was refused
    if source.is_symlink():
        raise SubmissionError(f"{source.name} is a symbolic link; submissions must be real")
    if source.is_dir():
        found = _candidates_in_folder(source, set(names))
        for module, rels in found.items():
            if rels:
                rel = min(rels, key=_depth_key)
                try:
                    contents[module] = _read_no_follow(source / rel)
                except OSError as exc:
                    contents[module] = f"{rel} cannot be read: {exc.strerror or exc}"
    elif source.is_file() and source.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(source) as archive:
                entries: dict[str, list[tuple[str, zipfile.ZipInfo]]] = {n: [] for n in names}
                refused: dict[str, str] = {}
                for info in archive.infolist():
                    base = PurePosixPath(info.filename.replace("\\", "/")).name
                    if base not in names or info.is_dir():
                        continue
                    why = _unsafe_zip_entry(info)
                    if why:
                        refused.setdefault(base, f"refused zip entry {info.filename!r}: {why}")
                        continue
                    entries[base].append((info.filename, info))
                for module, items in entries.items():
                    if items:
                        rel, info = min(items, key=lambda item: _depth_key(item[0]))
                        if info.file_size > MAX_FILE_BYTES:
                            contents[module] = f"{rel} is larger than {MAX_FILE_BYTES // 1024} KiB"
                            continue
                        with archive.open(info) as fh:
                            contents[module] = fh.read(MAX_FILE_BYTES + 1)
                    elif module in refused:
                        contents[module] = refused[module]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise SubmissionError(f"{source.name} is not a valid zip file ({exc})") from None
    else:
        raise SubmissionError(f"{source} is neither a folder nor a .zip file")

    staged: dict[str, StagedFile] = {}
    for module, ex in names.items():
        data = contents.get(module)
        if data is None:
            staged[ex.slug] = StagedFile(ex.slug, module, "missing", reason=f"{module} not found")
            continue
        if isinstance(data, str):
            staged[ex.slug] = StagedFile(ex.slug, module, "error", reason=data)
            continue
        reason = check_source(module, data)
        if reason:
            staged[ex.slug] = StagedFile(ex.slug, module, "error", reason=reason)
            continue
        folder = dest / ex.slug
        folder.mkdir(parents=True, exist_ok=True)
        (folder / module).write_bytes(data)
        staged[ex.slug] = StagedFile(ex.slug, module, "ok", path=folder / module)
    return staged
