"""The typeguard cache gives each function exactly the code typeguard would build, only while
its source is unchanged, and only trusted processes add to it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

MODULE = textwrap.dedent(
    """
    from typeguard import typechecked


    @typechecked
    def double(x: int) -> int:
        return x * 2


    @typechecked
    class Box:
        def put(self, item: str) -> str:
            return item
    """
)

# Run in a fresh process: `install` patches typeguard for the life of its process.
PROBE = textwrap.dedent(
    """
    import hashlib, json, sys
    from pathlib import Path
    from typeguard import _decorators
    from grader.sandbox import typeguard_cache

    calls = []
    original = _decorators.instrument
    def counting(f):
        calls.append(f.__qualname__)
        return original(f)
    _decorators.instrument = counting
    typeguard_cache.install(record=sys.argv[2] == "record", path=Path(sys.argv[1]))
    sys.path.insert(0, sys.argv[3])
    import guarded
    refused = []
    for call in (lambda: guarded.double("a"), lambda: guarded.Box().put(3)):
        try:
            call()
        except Exception as exc:
            refused.append(type(exc).__name__)
    print(json.dumps({
        "typeguard_ran_for": calls,
        "refused": refused,
        "ok": [guarded.double(2), guarded.Box().put("x")],
        "code": hashlib.sha256(guarded.double.__code__.co_code).hexdigest(),
    }))
    """
)


def _probe(tmp_path: Path, mode: str) -> dict:
    cache = tmp_path / "cache" / "typeguard.marshal"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache), mode, str(tmp_path / "src")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _module(tmp_path: Path, text: str = MODULE) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "src" / "guarded.py"
    path.write_text(text)
    return path


def test_a_recorded_function_is_served_from_the_cache_with_its_checks(tmp_path):
    _module(tmp_path)
    first = _probe(tmp_path, "record")
    assert sorted(first["typeguard_ran_for"]) == ["Box.put", "double"]
    cache = tmp_path / "cache" / "typeguard.marshal"
    assert cache.stat().st_mode & 0o777 == 0o644
    again = _probe(tmp_path, "read")
    assert again["typeguard_ran_for"] == []  # nothing parsed or compiled again
    assert again["refused"] == ["TypeCheckError", "TypeCheckError"] == first["refused"]
    assert again["ok"] == [4, "x"] and again["code"] == first["code"]


def test_a_changed_source_file_is_instrumented_afresh(tmp_path):
    path = _module(tmp_path)
    _probe(tmp_path, "record")
    path.write_text(MODULE.replace("return x * 2", "return x * 3"))
    after = _probe(tmp_path, "read")
    assert "double" in after["typeguard_ran_for"] and after["ok"] == [6, "x"]
    assert after["refused"] == ["TypeCheckError", "TypeCheckError"]


def test_a_reader_never_writes_and_a_broken_cache_only_costs_time(tmp_path):
    _module(tmp_path)
    _probe(tmp_path, "read")
    assert not (tmp_path / "cache").exists()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "typeguard.marshal").write_bytes(b"\x00not marshal")
    broken = _probe(tmp_path, "read")
    assert sorted(broken["typeguard_ran_for"]) == ["Box.put", "double"]
    assert broken["refused"] == ["TypeCheckError", "TypeCheckError"]
    assert (tmp_path / "cache" / "typeguard.marshal").read_bytes() == b"\x00not marshal"


def test_sandboxed_processes_only_read_the_cache():
    """The worker and the factory install the cache read-only: student code runs there."""
    root = Path(__file__).resolve().parents[1] / "grader" / "sandbox"
    for name in ("worker.py", "zygote.py"):
        text = (root / name).read_text()
        assert "typeguard_cache.install(record=False)" in text, name
        assert "record=True" not in text, name
