"""The mutation-testing command: mutants of a module, the equivalent list, the CLI's usage."""

from __future__ import annotations

import ast

from click.testing import CliRunner

from grader.classroom.mutants import equivalent_ids, mutants

SOURCE = '''
"""Docstring: never mutated."""


def pick(values: list[int], limit: int = 3) -> int | None:
    """Another docstring."""
    if not values:
        raise ValueError(f"no values below {limit}")
    kept = [v for v in values if v < limit and v >= 0]
    print("kept", len(kept))
    return kept[-1] + 1 if kept else None
'''


def test_every_mutant_compiles_differs_once_and_has_a_unique_stable_id():
    found = list(mutants(SOURCE))
    ids = [m.id for m in found]
    assert len(ids) == len(set(ids)) and len(found) >= 8
    original = ast.unparse(ast.parse(SOURCE))
    for mutant in found:
        compile(mutant.source, "<mutant>", "exec")
        assert ast.unparse(ast.parse(mutant.source)) != original
        assert '"""Docstring: never mutated."""' in mutant.source or "Docstring" in mutant.source
    assert ids == [m.id for m in mutants(SOURCE)]  # the same ids every time
    kinds = {i.split(": ", 1)[1].rsplit(" #", 1)[0] for i in ids}
    assert {"Compare `<` -> `<=`", "Compare `>=` -> `>`", "BoolOp `and` -> `or`",
            "BinOp `+` -> `-`", "drop `not`", "drop raise", "drop call", "return None",
            "Constant 3 -> 4"} <= kinds  # fmt: skip
    assert all(i.startswith("pick: ") for i in ids)


def test_messages_and_annotations_are_not_mutated():
    for mutant in mutants(SOURCE):
        if "drop raise" not in mutant.id:  # that one drops the whole statement
            assert "no values below {limit}" in mutant.source
        assert "list[int]" in mutant.source and "int | None" in mutant.source


def test_the_equivalent_list_is_read_from_toml(tmp_path):
    path = tmp_path / "equivalent_mutants.toml"
    assert equivalent_ids(path) == {}
    path.write_text('[[equivalent]]\nid = "pick: Constant 3 -> 4 #1"\nwhy = "the default"\n')
    assert equivalent_ids(path) == {"pick: Constant 3 -> 4 #1": "the default"}


def test_every_checked_in_equivalent_mutant_is_still_produced_and_explained(kit_root):
    from grader.course.kit import load_kit

    kit = load_kit(kit_root)
    for ex in kit.exercises:
        listed = equivalent_ids(
            kit_root / "grader" / "suites" / ex.slug / "equivalent_mutants.toml"
        )
        source = (kit_root / "solutions" / ex.slug / ex.module).read_text()
        produced = {m.id for m in mutants(source)}
        assert set(listed) <= produced, sorted(set(listed) - produced)
        assert all(len(why) > 15 for why in listed.values()), listed


def test_verify_mutants_usage_errors_are_one_line_and_exit_2(kit_root):
    from grader.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["--kit", str(kit_root), "verify", "--mutants", "nope"])
    assert result.exit_code == 2 and "no exercise 'nope'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli, ["--kit", str(kit_root), "verify", "--max-mutants", "3"])
    assert result.exit_code == 2 and "--max-mutants needs --mutants" in result.output
    result = runner.invoke(cli, ["verify", "--help"])
    assert result.exit_code == 0 and "grade verify --mutants ex2_pit_join" in result.output
