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
