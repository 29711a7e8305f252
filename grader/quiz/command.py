"""`grade quiz`: placeholder until the quiz lands."""

import click


@click.command("quiz")
def quiz() -> None:
    """Interview self-quiz."""
    raise click.ClickException("the quiz is not built yet")
