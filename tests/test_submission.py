"""Submissions are found by file name, copied safely, and never changed."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from grader.course.kit import load_kit
from grader.grading.staging import SubmissionError, stage, submission_id

KIT = load_kit(Path(__file__).resolve().parent.parent)
GOOD = b"def point_in_time_join(*a, **k):\n    return 1\n"


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_files_are_found_anywhere_and_the_shallowest_wins(tmp_path):
    sub = tmp_path / "alice"
    (sub / "deep" / "er").mkdir(parents=True)
    (sub / "deep" / "pit_join.py").write_bytes(GOOD)
    (sub / "deep" / "er" / "pit_join.py").write_bytes(b"raise SystemExit\n")
    (sub / "deep" / "er" / "freshness.py").write_bytes(b"x = 1\n")
    before = tree_digest(sub)
    staged = stage(sub, tmp_path / "out", KIT)
    assert staged["ex2_pit_join"].status == "ok"
    assert staged["ex2_pit_join"].path.read_bytes() == GOOD
    assert staged["ex3_freshness"].status == "ok"
    assert staged["ex1_fraud_design"].status == "missing"
    assert tree_digest(sub) == before


def test_symlinks_are_never_followed(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_bytes(GOOD)
    sub = tmp_path / "bob"
    sub.mkdir()
    (sub / "pit_join.py").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "freshness.py").write_bytes(b"x = 1\n")
    (sub / "linked_dir").symlink_to(tmp_path / "elsewhere")
    staged = stage(sub, tmp_path / "out", KIT)
    assert staged["ex2_pit_join"].status == "missing"
    assert staged["ex3_freshness"].status == "missing"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"def f(:\n    pass\n", "SyntaxError in pit_join.py at line 1"),
        (b"x = '\xff\xfe'\n", "not UTF-8"),
        (b"\x7fELF\x00\x00binary", "binary"),
    ],
)
def test_broken_files_are_errors_with_a_reason(tmp_path, data, reason):
    sub = tmp_path / "carol"
    sub.mkdir()
    (sub / "pit_join.py").write_bytes(data)
    staged = stage(sub, tmp_path / "out", KIT)["ex2_pit_join"]
    assert staged.status == "error" and reason in staged.reason


def _zip(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_zip_entries_are_read_in_memory_and_unsafe_ones_refused(tmp_path):
    archive = _zip(
        tmp_path / "dave.zip",
        {
            "dave/pit_join.py": GOOD,
            "../../fraud_design.py": b"x = 1\n",
            "/abs/feast_e2e.py": b"x = 1\n",
        },
        links=("dave/freshness.py",),
    )
    out = tmp_path / "out"
    staged = stage(archive, out, KIT)
    assert submission_id(archive) == "dave"
    assert staged["ex2_pit_join"].status == "ok"
    for slug, why in [
        ("ex1_fraud_design", "'..'"),
        ("ex4_feast_e2e", "absolute"),
        ("ex3_freshness", "symbolic link"),
    ]:
        assert staged[slug].status == "error" and why in staged[slug].reason, staged[slug]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["ex2_pit_join/pit_join.py"]
    assert not (tmp_path.parent / "fraud_design.py").exists()


def test_a_corrupt_zip_is_a_submission_error(tmp_path):
    bad = tmp_path / "eve.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(SubmissionError, match="not a valid zip"):
        stage(bad, tmp_path / "out", KIT)


def test_the_staged_copy_is_private(tmp_path):
    sub = tmp_path / "frank"
    sub.mkdir()
    (sub / "pit_join.py").write_bytes(GOOD)
    staged = stage(sub, tmp_path / "out", KIT)["ex2_pit_join"]
    assert staged.path.parent != sub and sub not in staged.path.parents


def _special(path: Path, kind: str) -> None:
    import os
    import socket

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO"), ("device", "a character device"),
                                         ("socket", "a socket")])  # fmt: skip
def test_special_files_are_refused_at_once_and_the_rest_is_staged(tmp_path, kind, words):
    import threading

    sub = tmp_path / "mallory"
    sub.mkdir()
    _special(sub / "pit_join.py", kind)
    (sub / "freshness.py").write_bytes(b"x = 1\n")
    result: dict = {}
    # A blocking open of a FIFO would never return: stage in a thread and give it a bound.
    worker = threading.Thread(target=lambda: result.update(stage(sub, tmp_path / "out", KIT)))
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the thread so the test run can end, then fail
        if kind == "fifo":
            open(sub / "pit_join.py", "wb").close()
        worker.join(5)
        pytest.fail("staging blocked on a special file")
    assert result["ex2_pit_join"].status == "error"
    assert result["ex2_pit_join"].reason == f"pit_join.py is {words}, not a regular file"
    assert result["ex3_freshness"].status == "ok"


def test_oversized_files_are_refused_without_reading_them(tmp_path):
    sub = tmp_path / "big"
    sub.mkdir()
    with open(sub / "pit_join.py", "wb") as fh:
        fh.truncate(50 << 20)  # sparse: 50 MiB that cost no disk
    staged = stage(sub, tmp_path / "out", KIT)["ex2_pit_join"]
    assert staged.status == "error" and "larger than 1 MiB" in staged.reason


def test_special_file_zip_entries_are_refused(tmp_path):
    archive = tmp_path / "zed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("zed/pit_join.py")
        info.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(info, GOOD)
        zf.writestr("zed/freshness.py", b"x = 1\n")
    staged = stage(archive, tmp_path / "out", KIT)
    assert staged["ex2_pit_join"].status == "error" and "a FIFO" in staged["ex2_pit_join"].reason
    assert staged["ex3_freshness"].status == "ok"


def test_a_fifo_named_like_a_zip_is_a_submission_error_not_a_hang(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.zip")
    with pytest.raises(SubmissionError, match="pipe.zip is a FIFO"):
        stage(tmp_path / "pipe.zip", tmp_path / "out", KIT)


def test_a_corrupt_zip_entry_costs_only_its_exercise(tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pit_join.py", GOOD * 50)
        zf.writestr("freshness.py", b"x = 1\n")
    data = bytearray(archive.read_bytes())
    start = data.index(b"pit_join.py") + len("pit_join.py")
    data[start + 10] ^= 0xFF  # damage the compressed bytes of the first entry
    archive.write_bytes(bytes(data))
    staged = stage(archive, tmp_path / "out", KIT)
    assert staged["ex2_pit_join"].status == "error"
    assert "cannot be read from the zip" in staged["ex2_pit_join"].reason
    assert staged["ex3_freshness"].status == "ok"


def test_ids_are_the_entry_name_without_zip_and_without_control_characters(tmp_path):
    assert submission_id(tmp_path / "alice.ZIP") == "alice"
    assert submission_id(tmp_path / "\x1b]0;x\x07bob\x1b[2J") == "bob"
