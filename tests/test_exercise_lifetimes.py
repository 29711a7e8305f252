"""An exercise's helpers end when its tests do: the grader hears of each finished exercise
before the next one's first test (so its job and reference workers can be stopped, and a
Gradescope run fits its 768 MB container)."""

from __future__ import annotations

from grader.grading.runner import _run_suites


def test_each_exercise_is_done_before_the_next_one_starts(tmp_path):
    root = tmp_path / "suites"
    log = tmp_path / "log.txt"
    for slug in ("ex_a", "ex_b", "ex_c"):
        (root / slug).mkdir(parents=True)
        body = "".join(
            f"def test_{name}():\n    open({str(log)!r}, 'a').write('run {slug}\\n')\n\n"
            for name in ("one", "two")
        )
        (root / slug / "test_public.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\n")

    def done(slug: str) -> None:
        with log.open("a") as out:
            out.write(f"done {slug}\n")

    files = [root / slug / "test_public.py" for slug in ("ex_a", "ex_b", "ex_c")]
    collector = _run_suites(files, root, on_exercise_done=done)
    assert all(r.status == "passed" for r in collector.results.values())
    assert log.read_text().splitlines() == [
        "run ex_a", "run ex_a", "done ex_a", "run ex_b", "run ex_b", "done ex_b",
        "run ex_c", "run ex_c",
    ]  # fmt: skip
