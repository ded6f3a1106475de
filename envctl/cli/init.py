"""``envctl init SOURCE``: thin click layer over envctl.services.solve.init."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from envctl.cli import output as cli_output


def _ask_targets(
    arch: tuple[str, ...], gpus: tuple[str, ...], driver: str | None
) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """The targets not given as options, asked for on the terminal."""
    if not arch:
        arch = tuple(click.prompt("CPU arch (x86_64, aarch64; comma separated)", default="x86_64").split(","))
    if not gpus:
        answer = click.prompt(
            "GPUs (names as `envctl matrix show gpus` lists them; empty: CPU-only)", default=""
        )
        gpus = tuple(g.strip() for g in answer.split(",") if g.strip())
    if driver is None and gpus:
        driver = click.prompt("Lowest NVIDIA driver on the nodes (empty: unknown)", default="") or None
    return tuple(a.strip() for a in arch if a.strip()), gpus, driver


@click.command("init")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("profile.toml"),
    show_default=True,
    help="Profile to write.",
)
@click.option(
    "--kind",
    type=click.Choice(["requirements", "environment", "pyproject", "pylock"]),
    help="What SOURCE is (default: from its name).",
)
@click.option("--name", help="Environment name (default: the file's, else the output's stem).")
@click.option("--python", help="Python range, e.g. '>=3.11,<3.13' (default: the file's).")
@click.option(
    "--extra", "extras", multiple=True, help="pyproject.toml optional-dependencies group (repeatable)."
)
@click.option("--all-extras", is_flag=True, help="Take every optional-dependencies group.")
@click.option("--gpu", "gpus", multiple=True, help="Target GPU (repeatable).")
@click.option("--driver", help="Lowest NVIDIA driver version on the nodes.")
@click.option("--arch", "arch", multiple=True, help="Target CPU arch (repeatable; default x86_64).")
@click.option(
    "--ask/--no-ask",
    default=None,
    help="Ask for the targets not given as options (default: when stdin is a terminal).",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (schema envctl.init/1).")
def init(
    source: Path,
    output: Path,
    kind: str | None,
    name: str | None,
    python: str | None,
    extras: tuple[str, ...],
    all_extras: bool,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    ask: bool | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a profile from SOURCE: a requirements.txt, environment.yml, pyproject.toml or pylock.toml.

    torch, tensorflow, jax and jaxlib go under [frameworks], where the solver picks their CUDA
    builds for the targets; everything else under [packages].
    """
    from envctl.core.init_profile import InitTargets
    from envctl.services.solve.init import init_profile, read_source

    team = read_source(source, kind, extras=extras, all_extras=all_extras)
    if ask is None:
        ask = sys.stdin.isatty() and not as_json
    if ask:
        arch, gpus, driver = _ask_targets(arch, gpus, driver)
    result = init_profile(
        team,
        output,
        name=name,
        python=python,
        targets=InitTargets(arch=arch, gpus=gpus, driver=driver),
        force=force,
    )

    def show() -> None:
        cli_output.stdout.print(
            f"wrote {result.path}: profile {result.name} from {result.source} "
            f"({len(result.frameworks)} frameworks, {result.pip} pip, {result.conda} conda)",
            highlight=False,
            markup=False,
        )
        for line in result.moved:
            cli_output.stdout.print(f"  moved {line}", highlight=False, markup=False)
        for line in result.notes:
            cli_output.stdout.print(f"  note: {line}", highlight=False, markup=False)
        cli_output.stdout.print(f"next: envctl lock {result.path}", highlight=False, markup=False)

    cli_output.render(result.to_dict(), ok=True, as_json=as_json, show=show)
