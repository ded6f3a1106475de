"""``envctl base build NAME``: build a base image recipe from images/ into a cached OCI layout."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli import output as cli_output
from envctl.cli.output import render


@click.group()
def base() -> None:
    """Base images built from recipes under images/."""


@base.command("build")
@click.argument("name")
@click.option("--images", type=click.Path(path_type=Path), help="Recipe folder (default images/).")
@click.option("--load/--no-load", default=None, help="Load into the engine (default: if one runs).")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Default $ENVCTL_CACHE.")
@click.option("--json", "as_json", is_flag=True)
def build_base_command(
    name: str, images: Path | None, load: bool | None, cache_dir: Path | None, as_json: bool
) -> None:
    """Build recipe NAME (cached by the recipe's hash); use it as --base base:NAME."""
    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.cli.progress import reporter
    from envctl.services.build.base_images import build_base, default_images_dir, load_recipe

    recipe = load_recipe(images or default_images_dir(), name)
    progress, shown = reporter("base build", as_json)
    with shown:
        result = build_base(recipe, BlobCache(cache_dir or default_cache_root()), load, progress)

    def show() -> None:
        state = "cached" if result.reused else "built"
        cli_output.stdout.print(f"{state} base:{name} {result.image_digest} at {result.layout}")
        for tag in result.loaded:
            cli_output.stdout.print(f"loaded: {tag}")

    render(result.to_dict(), ok=True, as_json=as_json, show=show)
