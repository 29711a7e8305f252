"""Finding and copying a submission's exercise files, safely.

Only the exercise files named in the manifest are taken, found by file name anywhere in the
submission (the shallowest first), read without following symlinks and without blocking (a
FIFO, device or socket under an exercise file's name is refused at once, never opened),
checked (size, UTF-8 text, compiles) and copied into a fresh private folder. Zip entries are
read in memory and never extracted; absolute, `..`, link and special-file entries are refused.
The submission itself is only read.
A notebook `<module>.ipynb` stands in for a missing `<module>.py`: its code cells become the
module, by parsing only (`grader.grading.notebook`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from grader.course.kit import Kit
from grader.grading.notebook import MAX_NOTEBOOK_BYTES, NotebookError, notebook_to_module
from grader.grading.safe_text import clean_line

MAX_FILE_BYTES = 1 << 20
_ZIP_ENTRY_ERRORS = (
    zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError,
    zlib.error,
)  # fmt: skip


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


@dataclass(frozen=True)
class ShippedSubmission:
    """A submission read on one machine and graded on another (a cluster batch): its files as
    `read_submission` gave them, or why it could not be read at all. Staged with the same rules
    as a submission read here (`stage_contents`)."""

    contents: dict[str, bytes | str]
    """Exercise slug -> its module source, or the reason it was refused; a slug absent was not
    found (see `read_exercise_sources`)."""
    error: str | None = None
    """Why the submission as a whole could not be read (then `contents` is empty)."""

    @classmethod
    def read(cls, source: Path, kit: Kit) -> ShippedSubmission:
        """Read `source` now; a submission that cannot be read gives one with `error`."""
        try:
            found = read_exercise_sources(source, kit)
            return cls({slug: data for slug, data in found.items() if data is not None})
        except SubmissionError as exc:
            return cls({}, str(exc))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: file bytes in base64."""
        files = {
            s: {"refused": v} if isinstance(v, str) else {"b64": base64.b64encode(v).decode()}
            for s, v in self.contents.items()
        }
        return {"error": self.error, "files": files}

    @classmethod
    def from_dict(cls, data: Any, kit: Kit) -> ShippedSubmission:
        """Inverse of `to_dict`; raises `SubmissionError` on anything but what it writes (only
        the kit's exercise slugs, files no larger than staging accepts)."""
        slugs = {ex.slug for ex in kit.exercises}
        try:
            error, files = data["error"], data["files"]
            if not (error is None or isinstance(error, str)) or not isinstance(files, dict):
                raise TypeError
            contents: dict[str, bytes | str] = {}
            for slug, item in files.items():
                if slug not in slugs or not isinstance(item, dict) or len(item) != 1:
                    raise TypeError
                if isinstance(item.get("refused"), str):
                    contents[slug] = item["refused"][:500]
                    continue
                raw = base64.b64decode(item["b64"].encode("ascii"), validate=True)
                contents[slug] = raw[: MAX_FILE_BYTES + 1]
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error):
            raise SubmissionError("the submission sent to this worker is malformed") from None
        return cls(contents, error[:500] if error else None)


def _size(n: int) -> str:
    """A byte cap as people write it: whole MiB where it is one, else KiB."""
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n // 1024} KiB"


def submission_id(source: Path) -> str:
    """A submission's id: its entry name without `.zip`, control characters stripped.

    It is data for people (scorecards, gradebooks), never a path: a batch derives its output
    file names from it safely (`grader.classroom.outputs`).
    """
    name = source.name[:-4] if source.name.lower().endswith(".zip") else source.name
    return clean_line(name)


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


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class _NotRegular(OSError):
    """The path is not a regular file (one line, for the learner)."""


def open_regular(path: Path) -> int:
    """A read-only descriptor of the regular file at `path`; raises `OSError` otherwise.

    Never follows a final symlink, never blocks (a FIFO is refused by `lstat` before any open;
    `O_NONBLOCK` covers one swapped in after it) and never takes a terminal as controlling tty;
    the open descriptor is checked again with `fstat`.
    """
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _NotRegular(f"is {_kind(mode)}, not a regular file")
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(f"is {_kind(mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_no_follow(path: Path, cap: int = MAX_FILE_BYTES) -> bytes:
    fd = open_regular(path)
    try:
        if os.fstat(fd).st_size > cap:
            raise _NotRegular(f"is larger than {_size(cap)}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(cap + 1)
    finally:
        os.close(fd)


def _unsafe_zip_entry(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in path.parts:
        return "a '..' path"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return _kind(mode)  # a FIFO or device entry: refused like one on disk
    return None


def check_source(name: str, data: bytes) -> str | None:
    """Why `data` cannot be graded as the Python file `name`, or None if it can."""
    if len(data) > MAX_FILE_BYTES:
        return f"{name} is larger than {_size(MAX_FILE_BYTES)}"
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


def _notebook_name(module: str) -> str:
    return module[:-3] + ".ipynb" if module.endswith(".py") else module + ".ipynb"


def _read_candidates(source: Path, names: set[str]) -> dict[str, bytes | str]:
    """The shallowest file of each name in `names` found in `source`: its bytes, or a reason
    (one line) it was refused. Names not found are absent. Raises `SubmissionError`."""
    contents: dict[str, bytes | str] = {}
    if source.is_symlink():
        raise SubmissionError(f"{source.name} is a symbolic link; submissions must be real")
    if source.is_dir():
        found = _candidates_in_folder(source, names)
        for name, rels in found.items():
            if rels:
                rel = min(rels, key=_depth_key)
                try:
                    contents[name] = _read_no_follow(source / rel, _cap(name))
                except _NotRegular as exc:
                    contents[name] = f"{rel} {exc}"
                except OSError as exc:
                    contents[name] = f"{rel} cannot be read: {exc.strerror or exc}"
    elif source.suffix.lower() == ".zip" and not source.is_dir():
        try:
            fd = open_regular(source)
        except _NotRegular as exc:
            raise SubmissionError(f"{source.name} {exc}") from None
        except OSError as exc:
            raise SubmissionError(f"{source.name} cannot be read: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "rb") as raw, zipfile.ZipFile(raw) as archive:
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
                for name, items in entries.items():
                    if items:
                        rel, info = min(items, key=lambda item: _depth_key(item[0]))
                        if info.file_size > _cap(name):
                            contents[name] = f"{rel} is larger than {_size(_cap(name))}"
                            continue
                        try:
                            with archive.open(info) as fh:
                                contents[name] = fh.read(_cap(name) + 1)
                        except _ZIP_ENTRY_ERRORS as exc:
                            # One bad entry (corrupt, encrypted, odd compression) costs
                            # only its exercise.
                            contents[name] = f"{rel} cannot be read from the zip ({exc})"
                    elif name in refused:
                        contents[name] = refused[name]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise SubmissionError(f"{source.name} is not a valid zip file ({exc})") from None
    else:
        raise SubmissionError(f"{source} is neither a folder nor a .zip file")
    return contents


def _cap(name: str) -> int:
    return MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_FILE_BYTES


def _from_notebook(notebook: str, data: bytes) -> bytes | str:
    """The module source built from a notebook's bytes, or a one-line reason it failed."""
    try:
        built = notebook_to_module(notebook, data)
    except NotebookError as exc:
        return str(exc)
    source = built.source.encode("utf-8")
    try:
        compile(built.source, notebook, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = built.cell_of(exc.lineno or 0)
        at = f"cell {where[0]}, line {where[1]}" if where else f"line {exc.lineno}"
        return f"SyntaxError in {notebook} at {at}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError):
        pass  # check_source names these below
    return source


def read_exercise_sources(source: Path, kit: Kit) -> dict[str, bytes | str | None]:
    """Each exercise's module source in submission `source` (folder or .zip), by slug.

    The staging rules: found by file name anywhere, the shallowest first, no symlink followed,
    zip entries read in memory. Where the module (`pit_join.py`) is absent, a notebook of the
    same name (`pit_join.ipynb`) stands in, converted by parsing only
    (`grader.grading.notebook`). Values: the bytes, a one-line reason the file was refused,
    or None when neither file is there. Raises `SubmissionError` for an unreadable submission.
    """
    wanted = {ex.module for ex in kit.exercises} | {
        _notebook_name(ex.module) for ex in kit.exercises
    }
    contents = _read_candidates(source, wanted)
    out: dict[str, bytes | str | None] = {}
    for ex in kit.exercises:
        notebook = _notebook_name(ex.module)
        if ex.module in contents:
            out[ex.slug] = contents[ex.module]
        elif notebook in contents:
            data = contents[notebook]
            out[ex.slug] = data if isinstance(data, str) else _from_notebook(notebook, data)
        else:
            out[ex.slug] = None
    return out


def stage(source: Path, dest: Path, kit: Kit) -> dict[str, StagedFile]:
    """Copy the exercise files of `source` (folder or .zip) into `dest/<slug>/<module>`.

    Returns one `StagedFile` per exercise. Raises `SubmissionError` when `source` is neither a
    folder nor a readable zip. See `read_exercise_sources` for how files are found.
    """
    return stage_contents(read_exercise_sources(source, kit), dest, kit)


def stage_contents(
    sources: dict[str, bytes | str | None], dest: Path, kit: Kit
) -> dict[str, StagedFile]:
    """Check and copy exercise sources read by `read_exercise_sources` (here, or on another
    machine: `ShippedSubmission`) into `dest/<slug>/<module>`; one `StagedFile` per exercise."""
    staged: dict[str, StagedFile] = {}
    for ex in kit.exercises:
        module, data = ex.module, sources.get(ex.slug)
        if data is None:
            reason = f"{module} not found"
            staged[ex.slug] = StagedFile(ex.slug, module, "missing", reason=reason)
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
