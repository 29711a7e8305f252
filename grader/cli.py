"""The `grade` command line: parsing only. Each verb calls one library function and renders it.

Library errors (`KitError`, `SetupError`, ...) become a one-line `click.ClickException` with
exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from grader import __version__
from grader.kit import Kit, KitError, load_kit


class UsageError(click.ClickException):
    """A one-line error with exit code 2 (bad usage or bad input)."""

    exit_code = 2


def _kit(ctx: click.Context) -> Kit:
    """Load the kit named by `--kit` (or found from the cwd) once per invocation."""
    obj = ctx.ensure_object(dict)
    if "kit" not in obj:
        try:
            obj["kit"] = load_kit(obj.get("kit_path"))
        except KitError as exc:
            raise UsageError(str(exc)) from None
    return obj["kit"]


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: grade --kit ~/feature-store-lab list",
)
@click.option(
    "--kit",
    "kit_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Kit folder (the one holding course.toml). Default: found from the current directory.",
)
@click.version_option(__version__, prog_name="grade")
@click.pass_context
def cli(ctx: click.Context, kit_path: Path | None) -> None:
    """Feature Store Lab: grade your exercises, get hints, set up the Feast repo, take the quiz.

    Run without a verb to grade your work in ./exercises (the same as `grade check`).
    """
    ctx.ensure_object(dict)["kit_path"] = kit_path
    if ctx.invoked_subcommand is None:
        check_cmd = cli.get_command(ctx, "check")
        if check_cmd is None:  # pragma: no cover - check is always registered
            click.echo(ctx.get_help())
            return
        ctx.invoke(check_cmd)


@cli.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """List the exercises in course order with their points.

    Example: grade list
    """
    from grader.render import render_exercise_list

    render_exercise_list(_kit(ctx))


@cli.command("hint")
@click.argument("slug")
@click.argument("n", required=False, type=int)
@click.pass_context
def hint_cmd(ctx: click.Context, slug: str, n: int | None) -> None:
    """Show hint N (default: all hints) for exercise SLUG, gentlest first.

    Example: grade hint ex2_pit_join 1
    """
    kit = _kit(ctx)
    try:
        exercise = kit.exercise(slug)
    except KitError as exc:
        raise UsageError(str(exc)) from None
    hints = exercise.hints
    if n is not None:
        if not 1 <= n <= len(hints):
            raise UsageError(f"{slug} has hints 1..{len(hints)}, not {n}")
        click.echo(f"Hint {n}/{len(hints)} for {slug}: {hints[n - 1]}")
        return
    for i, text in enumerate(hints, 1):
        click.echo(f"Hint {i}/{len(hints)}: {text}\n")


@cli.command("setup")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed of the data.")
@click.option(
    "--online",
    type=click.Choice(["sqlite", "redis"]),
    default="sqlite",
    show_default=True,
    help="Online store to fill; redis reads REDIS_CONNECTION_STRING (default localhost:6379).",
)
@click.option("--force", is_flag=True, help="Regenerate the data even when it is present.")
@click.pass_context
def setup_cmd(ctx: click.Context, seed: int, online: str, force: bool) -> None:
    """Generate data/, then apply and materialize the reference Feast repo.

    Safe to re-run: existing data is kept unless --force (or a different --seed) is given.

    Example: grade setup --online redis
    """
    from grader.repo_setup import SetupError, run_setup

    kit = _kit(ctx)
    try:
        run_setup(kit, seed=seed, online=online, force=force, echo=click.echo)
    except SetupError as exc:
        raise UsageError(str(exc)) from None


def _register_optional_commands() -> None:
    """Attach verbs that live in their own modules (they import lazily)."""
    from grader.quiz.command import quiz

    cli.add_command(quiz)


_register_optional_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="grade")


if __name__ == "__main__":
    main()
