"""`envctl export LOCK`: thin click layer over envctl.services.lock.export."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.services.lock.export import FORMATS, Format, export_lock


@click.command("export")
@click.argument("lock", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="requirements.txt, PEP 751 pylock.toml or conda explicit.",
)
@click.option("--platform", help="Platform to export (needed when the lock has several).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here (atomically) instead of stdout.",
)
@click.option("--force", is_flag=True, help="Replace an existing -o file that is not an envctl export.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary (schema envctl.export/1; see docs/json.md)."
)
def export(
    lock: Path, fmt: Format, platform: str | None, output: Path | None, force: bool, as_json: bool
) -> None:
    """Write LOCK as requirements.txt with hashes, pylock.toml or a conda explicit file."""
    from envctl.cli.output import console, render

    result = export_lock(lock, fmt, platform=platform, output=output, force=force)

    def show() -> None:
        if output is None:
            click.echo(result.text, nl=False)
        else:
            console(err=True).print(
                f"wrote {output} ({result.packages} packages, {result.platform})", highlight=False
            )

    render(result.to_dict(), ok=True, as_json=as_json, show=show)
