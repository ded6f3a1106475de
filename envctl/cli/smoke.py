"""``envctl smoke IMAGE``: import every package of an image's environment in a container."""

from __future__ import annotations

import click

from envctl.cli import output as cli_output
from envctl.cli.output import render


@click.command()
@click.argument("image")
@click.option("--gpus/--no-gpus", default=None, help="Request GPUs (default: when nvidia-smi exists).")
@click.option("--json", "as_json", is_flag=True)
def smoke(image: str, gpus: bool | None, as_json: bool) -> None:
    """Run IMAGE with no network; import each package and print versions and visible GPUs."""
    from envctl.services.build.smoke import smoke as run_smoke

    result = run_smoke(image, gpus)

    def show() -> None:
        cli_output.stdout.print(f"{image}: Python {result.python}")
        for package in result.packages:
            mark = "ok " if package["ok"] else "ERR"
            mods = ", ".join(f"{k} {v}".strip() for k, v in package["modules"].items())
            cli_output.stdout.print(f"  {mark} {package['name']} {package['version']}  ({mods})")
        if not result.gpu_requested:
            cli_output.stdout.print("GPUs: none requested (no GPU on this machine)")
        for framework, devices in result.gpus.items():
            cli_output.stdout.print(f"GPUs seen by {framework}: {devices or 'none'}")

    render(result.to_dict(), ok=result.ok, as_json=as_json, show=show)
