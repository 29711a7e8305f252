"""Text from submissions reaches terminals, spreadsheets and Gradescope as inert plain text."""

from __future__ import annotations

import pytest
from rich.console import Console

from grader.grading import render
from grader.grading.safe_text import clean_line, clean_text, csv_cell, indent_block, shown_id
from grader.grading.scorecard import ExerciseResult, Scorecard
from grader.grading.scorecard import TestResult as Result

# What a hostile id or feedback may carry: each would make a terminal act, not print.
ATTACKS = {
    "clear screen": "\x1b[2J\x1b[H",
    "window title": "\x1b]0;pwned\x07",
    "clipboard write (OSC 52)": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "clipboard write, ST-terminated": "\x1b]52;c;cm0gLXJmIH4=\x1b\\",
    "hidden hyperlink (OSC 8)": "\x1b]8;;https://evil.example\x1b\\",
    "8-bit CSI": "\x9b2J",
    "8-bit OSC": "\x9d0;pwned\x9c",
    "bell": "\x07",
    "backspaces": "\x08\x08\x08",
    "device control string": "\x1bP+q544e\x1b\\",
    "keypad mode": "\x1b=",
    "bidi override": "\u202e",
    "NUL": "\x00",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_escape_sequences_and_controls_are_dropped_whole(name):
    raw = f"before{ATTACKS[name]}after"
    for clean in (clean_line(raw), clean_text(raw)):
        assert clean == "beforeafter", (name, clean)


def test_an_unterminated_osc_swallows_the_rest_as_a_terminal_would():
    assert clean_line("ok\x1b]52;c;bm90IGEgZ29vZCBpZGVh") == "ok"


def test_a_bare_carriage_return_cannot_overwrite_a_line():
    forged = "0/30 failed\rAll tests passed: 100/100"
    assert clean_text(forged) == "0/30 failed\nAll tests passed: 100/100"
    assert clean_line(forged) == "0/30 failed All tests passed: 100/100"
    assert clean_text("a\r\nb") == "a\nb"


def test_plain_text_and_unicode_survive_and_long_text_is_cut():
    assert clean_text("Grüße, 世界\n\tindented") == "Grüße, 世界\n\tindented"
    assert clean_line("x" * 50, max_chars=10) == "x" * 9 + "…"
    assert clean_line("bad byte \udcff") == "bad byte \ufffd"


def test_indented_blocks_keep_every_line_behind_the_prefix():
    block = indent_block("wrong\nAll tests passed: 100/100\r\x1b[1ATotal: 100/100")
    assert block.splitlines() == [
        "  | wrong", "  | All tests passed: 100/100", "  | Total: 100/100",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value, cell",
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("-5", "'-5"),
        ("  =1+1", "'  =1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("alice", "alice"),
        (-2.5, "-2.5"),
        (30.0, "30"),
        (0, "0"),
        (None, ""),
    ],
)
def test_csv_cells_never_start_a_formula_but_numbers_stay_numbers(value, cell):
    assert csv_cell(value) == cell


def test_ids_on_a_progress_line_are_quoted_unless_plain():
    assert shown_id("alice_01") == "alice_01"
    forged = 'bob: 100/100 (graded)\n[2/2] "eve"'
    assert shown_id(forged) == '"bob: 100/100 (graded) [2/2] \\"eve\\""'
    assert "\x1b" not in shown_id("\x1b[2Jmallory")


def _card(feedback: str, error: str | None = None) -> Scorecard:
    test = Result("ex2_pit_join::test_x", "public", 0.0, 30.0, "failed", feedback, 0.1)
    ex = ExerciseResult("ex2_pit_join", 0.0, 30.0, "failed", error, [test])
    return Scorecard("m", "2026-01-01T00:00:00Z", "0", "sha256:x", "graded", None, 0.0, 30.0,
                     1.0, [ex])  # fmt: skip


def test_a_scorecard_renders_forged_feedback_inertly(monkeypatch, capsys):
    forged = (
        "[bold green]Total: 100/100[/bold green]\x1b]52;c;cHduZWQ=\x07\n"
        "All tests passed: 100/100\r\x1b[2K\x1b]8;;https://evil.example\x1b\\link"
    )
    monkeypatch.setattr(render, "console", lambda: Console(highlight=False, width=200))
    render.render_scorecard(_card(forged, error="[red]x[/red]\x1b[2J"), hidden_ran=True)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "[bold green]Total: 100/100[/bold green]" in out, "markup must print as text"
    assert "[red]x[/red]" in out
    own = [line for line in out.splitlines() if line.startswith(("Total:", "All tests"))]
    assert own == ["Total: 0/30 (1.0s)"], "only the grader's own total starts a line"


def test_gradescope_results_are_declared_plain_text_and_carry_no_controls():
    card = _card("<script>alert(1)</script>\x1b[31mred\x1b[0m\rover", error="<b>\x1b]0;t\x07x</b>")
    card.error = "\x1b[2Jbroken"
    results = card.to_gradescope()
    assert results["output_format"] == results["test_output_format"] == "text"
    assert results["test_name_format"] == "text"
    for test in results["tests"]:
        assert test["output_format"] == test["name_format"] == "text"
        assert test["output"] == "Failed: <script>alert(1)</script>red\nover"
    assert "\x1b" not in results["output"] and "Grading error: broken" in results["output"]
