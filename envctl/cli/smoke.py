"""``envctl smoke IMAGE``: import every package of an image's environment in a container."""

from __future__ import annotations

import sys

import click

from envctl.cli import output as cli_output
from envctl.cli.output import emit_json, fail_json
from envctl.errors import EnvctlError


@click.command()
@click.argument("image")
@click.option("--gpus/--no-gpus", default=None, help="Request GPUs (default: when nvidia-smi exists).")
@click.option("--json", "as_json", is_flag=True)
def smoke(image: str, gpus: bool | None, as_json: bool) -> None:
    """Run IMAGE with no network; import each package and print versions and visible GPUs."""
    from envctl.services.build.smoke import smoke as run_smoke

    try:
        result = run_smoke(image, gpus)
    except EnvctlError as exc:
        if as_json:
            fail_json(exc)
        raise
    if as_json:
        emit_json(result.to_dict())
    else:
        cli_output.stdout.print(f"{image}: Python {result.python}")
        for package in result.packages:
            mark = "ok " if package["ok"] else "ERR"
            mods = ", ".join(f"{k} {v}".strip() for k, v in package["modules"].items())
            cli_output.stdout.print(f"  {mark} {package['name']} {package['version']}  ({mods})")
        if not result.gpu_requested:
            cli_output.stdout.print("GPUs: none requested (no GPU on this machine)")
        for framework, devices in result.gpus.items():
            cli_output.stdout.print(f"GPUs seen by {framework}: {devices or 'none'}")
    if not result.ok:
        sys.exit(1)
