"""`envctl solve` and `envctl explain`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from envctl.cli.output import console, emit_json, fail_json
from envctl.core.solution import Solution
from envctl.errors import EnvctlError, UnsatisfiableError

target_options = [
    click.option(
        "--gpu",
        "gpus",
        multiple=True,
        help="Target GPU (name, nvidia-smi name or cc:9.0); repeatable; replaces the profile's.",
    ),
    click.option("--driver", help="NVIDIA driver version on the nodes, e.g. 550.54.15."),
    click.option("--arch", multiple=True, help="CPU arch (x86_64, aarch64); repeatable."),
    click.option(
        "--matrix", "matrix_dir", type=click.Path(path_type=Path), help="compat_matrix/ folder to use."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print JSON (schema envctl.solution/1)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def with_targets(fn: F) -> F:
    for option in reversed(target_options):
        fn = option(fn)
    return fn


def _solve(
    profile: Path,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    matrix_dir: Path | None,
    as_json: bool,
) -> Solution:
    """Solve, or report the failure (JSON, or the conflict's details before the one-line error)."""
    from envctl.services.solve.solve import solve_profile_file

    try:
        return solve_profile_file(
            profile, matrix_dir=matrix_dir, gpus=gpus, driver=driver, arch=arch
        ).solution
    except EnvctlError as exc:
        if as_json:
            fail_json(exc)
        if isinstance(exc, UnsatisfiableError):
            print_conflict(exc)
        raise


@click.command()
@click.argument("profile", type=click.Path(path_type=Path))
@with_targets
def solve(
    profile: Path,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    matrix_dir: Path | None,
    as_json: bool,
) -> None:
    """Pick the newest consistent stack for PROFILE (exit 0 solved, 1 unsatisfiable, 2 bad input)."""
    solution = _solve(profile, gpus, driver, arch, matrix_dir, as_json)
    if as_json:
        emit_json({"ok": True, **solution.to_dict()})
        return
    print_stack(solution)


@click.command()
@click.argument("profile", type=click.Path(path_type=Path))
@with_targets
def explain(
    profile: Path,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    matrix_dir: Path | None,
    as_json: bool,
) -> None:
    """Show why each part of PROFILE's stack was chosen (or why none fits)."""
    solution = _solve(profile, gpus, driver, arch, matrix_dir, as_json)
    if as_json:
        emit_json(
            {
                "ok": True,
                "decisions": [d.__dict__ for d in solution.decisions],
                "warnings": list(solution.warnings),
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"why this stack ({solution.profile})", title_justify="left")
    table.add_column("subject", style="bold")
    table.add_column("choice", style="cyan")
    table.add_column("because")
    for d in solution.decisions:
        table.add_row(d.subject, d.choice, d.because)
    console().print(table)
    _print_warnings(solution)


def print_stack(solution: Solution) -> None:
    from rich.table import Table

    table = Table(title=f"stack for {solution.profile}", title_justify="left")
    table.add_column("component", style="bold")
    table.add_column("choice", style="cyan")
    for fw in solution.frameworks:
        builds = ", ".join(f"{p}: {b.requirement} [{b.variant}]" for p, b in fw.builds.items())
        table.add_row(fw.name, builds)
    table.add_row("python", solution.python)
    table.add_row("cuda", solution.cuda or "- (CPU only)")
    table.add_row("cudnn", solution.cudnn or "-")
    table.add_row("nccl", solution.nccl or "-")
    table.add_row("blas", solution.blas)
    if solution.min_driver:
        table.add_row("min driver", f"{solution.min_driver} ({solution.driver_mode})")
    for gpu in solution.gpus:
        table.add_row(f"gpu {gpu.name}", f"CC {gpu.cc}: {gpu.runs_via}")
    for fw in solution.frameworks:
        for platform, b in fw.builds.items():
            if b.archs:
                table.add_row(f"archs {fw.name} {platform}", " ".join(b.archs))
    console().print(table)
    _print_warnings(solution)


def _print_warnings(solution: Solution) -> None:
    for w in solution.warnings:
        console(err=True).print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)


def print_conflict(exc: UnsatisfiableError) -> None:
    """The explanation's details go first; the handler then prints message and hint."""
    explanation = exc.explanation
    reasons = getattr(explanation, "reasons", ())
    conflict = getattr(explanation, "conflict", ())
    if conflict:
        console(err=True).print(
            "conflicting requirements: " + "; ".join(f"{r.text} ({r.id})" for r in conflict),
            highlight=False,
            markup=False,
        )
    for r in reasons[1:4]:
        console(err=True).print(f"  because {r}", highlight=False, markup=False)
