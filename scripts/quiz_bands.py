"""Print how the quiz scorer scores each kind of answer over the test fixtures.

Usage: .venv/bin/python scripts/quiz_bands.py [FIXTURES.toml]

Reads tests/quiz/fixtures/answer_kinds.toml (one table per free-text question id with lists
`strong`, `partial`, `salad`, `wrong`; `[any]` holds `off_topic` and `vague` answers asked of
every question) and prints, as JSON lines:

- one line per kind: the number of answers, average, minimum and maximum score;
- `inversions`: (question, strong, bad) triples where a salad or wrong answer scored at least as
  high as a strong answer to the same question (the issue asks for none);
- `timing`: the wall time of scoring one strong answer to each free question (17 answers) in
  this process, after the bank is loaded, and the bank's load time.

A maintainer's measuring tool, not a test: tests/quiz/test_quiz_bands.py asserts the bands.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

from grader.quiz.bank import load_bank
from grader.quiz.scoring import score_answer

DEFAULT = (
    Path(__file__).resolve().parent.parent / "tests" / "quiz" / "fixtures" / "answer_kinds.toml"
)
KINDS = ("strong", "partial", "salad", "wrong", "off_topic", "vague")


def main(path: Path) -> int:
    started = time.perf_counter()
    bank = load_bank()
    loaded = time.perf_counter() - started
    data = tomllib.loads(path.read_text("utf-8"))
    shared = data.pop("any", {})
    scores: dict[str, list[float]] = {k: [] for k in KINDS}
    inversions = []
    for qid, kinds in data.items():
        question = bank.get(qid)
        if question is None:
            print(f"unknown question id {qid!r} in {path}", file=sys.stderr)
            return 2
        by_kind = {
            kind: [score_answer(question, a).score for a in answers]
            for kind, answers in {**kinds, **shared}.items()
        }
        for kind, values in by_kind.items():
            scores[kind].extend(values)
        strong = by_kind.get("strong", [])
        for bad_kind in ("salad", "wrong"):
            for bad in by_kind.get(bad_kind, []):
                inversions += [(qid, s, bad) for s in strong if bad >= s]
    for kind in KINDS:
        values = scores[kind]
        if values:
            print(
                json.dumps(
                    {
                        "kind": kind,
                        "answers": len(values),
                        "mean": round(statistics.mean(values), 3),
                        "min": round(min(values), 3),
                        "max": round(max(values), 3),
                    }
                )
            )
    print(json.dumps({"inversions": len(inversions), "examples": inversions[:5]}))
    strong_answers = [
        (bank.get(qid), kinds["strong"][0]) for qid, kinds in data.items() if kinds.get("strong")
    ]
    started = time.perf_counter()
    for question, answer in strong_answers:
        score_answer(question, answer + " ")  # a fresh text: nothing memoised from above
    scored = time.perf_counter() - started
    print(
        json.dumps(
            {
                "timing": "score one strong answer per free question",
                "answers": len(strong_answers),
                "seconds": round(scored, 3),
                "bank_load_seconds": round(loaded, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT))
