"""A cache of typeguard's instrumented code, so that importing Feast costs a third as much.

Feast decorates about 240 functions and classes with typeguard's `@typechecked`. For each one,
typeguard 4 re-reads, parses, transforms and compiles the *whole* module that defines it
(`typeguard._decorators.instrument`): measured here, that is about 70% of `import feast`
(7.8 s against 2.1 s without it on a loaded machine). Every grading worker pays it.

`install()` wraps `instrument` so that a function whose instrumented code is in the cache gets
exactly that code (the same function typeguard would build: checks included), and any other
function goes through typeguard as before. An entry is used only while the module's source
file has the bytes it was built from (sha256), for this Python and this typeguard.

Who may write: the cache holds code that every process importing Feast will run, so only
trusted processes (`install(record=True)`: the `grade` command, `grade setup`) add to it, at
exit, atomically, into a folder of the virtual environment, which the sandboxed workers see
read-only (bubblewrap) or cannot write as the sandbox user (reduced isolation). Workers load
it with `record=False`. A missing, unreadable or stale cache only makes the import slower.
"""

from __future__ import annotations

import atexit
import hashlib
import marshal
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

# A key: (source file, qualified name, first line); a value: (sha256 of the file, code).
_Entries = dict[tuple[str, str, int], tuple[str, types.CodeType]]

_state: dict[str, Any] = {"installed": False}


def cache_file() -> Path:
    """The cache of this Python and this typeguard, in the virtual environment."""
    from importlib.metadata import version

    import typeguard  # noqa: F401  (its version names the file)

    tag = f"{sys.implementation.cache_tag}-typeguard-{version('typeguard')}"
    return Path(sys.prefix) / "share" / "feature-store-lab" / f"typeguard-{tag}.marshal"


def _load(path: Path) -> _Entries:
    try:
        with open(path, "rb") as handle:
            entries = marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _digest(filename: str, memo: dict[str, str | None]) -> str | None:
    if filename not in memo:
        try:
            memo[filename] = hashlib.sha256(Path(filename).read_bytes()).hexdigest()
        except OSError:
            memo[filename] = None
    return memo[filename]


def install(*, record: bool, path: Path | None = None) -> None:
    """Serve typeguard's instrumentation from the cache (`path`, default `cache_file()`) in
    this process: call it before Feast is imported; later calls do nothing. With `record`,
    what typeguard builds here is added to the cache when the process exits."""
    if _state["installed"]:
        return
    try:
        from typeguard import _decorators
        from typeguard._config import global_config
    except ImportError:  # no typeguard (no Feast): nothing to speed up
        return
    _state["installed"] = True
    path = path or cache_file()
    entries = _load(path)
    added: _Entries = {}
    digests: dict[str, str | None] = {}
    original = _decorators.instrument

    def instrument(f: Any) -> Any:
        code = getattr(f, "__code__", None)
        if code is None or global_config.debug_instrumentation or hasattr(f, "__wrapped__"):
            return original(f)
        key = (code.co_filename, f.__qualname__, code.co_firstlineno)
        digest = _digest(code.co_filename, digests)
        hit = entries.get(key)
        if digest is not None and hit is not None and hit[0] == digest:
            new_code = hit[1]
            # A new closure would need the caller's frame (typeguard's own path handles it).
            if new_code.co_freevars == code.co_freevars:
                return _function(f, new_code)
        result = original(f)
        if record and digest is not None and isinstance(result, types.FunctionType):
            added[key] = (digest, result.__code__)
        return result

    _decorators.instrument = instrument
    if record:
        atexit.register(_save, path, added)


def _function(f: Any, new_code: types.CodeType) -> types.FunctionType:
    """The function typeguard's `instrument` returns for `f` (same attributes, same order)."""
    new = types.FunctionType(new_code, f.__globals__, f.__name__, closure=f.__closure__)
    new.__module__ = f.__module__
    new.__name__ = f.__name__
    new.__qualname__ = f.__qualname__
    new.__doc__ = f.__doc__
    new.__defaults__ = f.__defaults__
    new.__kwdefaults__ = f.__kwdefaults__
    if sys.version_info >= (3, 12):
        new.__type_params__ = f.__type_params__
    if sys.version_info >= (3, 14):
        new.__annotate__ = f.__annotate__
    else:
        new.__annotations__ = f.__annotations__
    return new


def _save(path: Path, added: _Entries) -> None:
    """Merge `added` into the cache file atomically (readable by all, writable by us only)."""
    if not added:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)
        entries = {**_load(path), **added}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".typeguard-")
        try:
            with os.fdopen(fd, "wb") as handle:
                marshal.dump(entries, handle)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:  # a read-only install: every import just stays slower
        pass
