"""`envctl solve` and `envctl explain`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from envctl.cli.nodes_common import resolve_nodes, ssh_pool
from envctl.cli.output import console, render, styled
from envctl.core.solution import Solution

if TYPE_CHECKING:
    from envctl.core.fleet_plan import FleetPlan

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
    click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (schema envctl.solution/1; see docs/json.md)."
    ),
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
) -> Solution:
    from envctl.services.solve.solve import solve_profile_file

    return solve_profile_file(profile, matrix_dir=matrix_dir, gpus=gpus, driver=driver, arch=arch).solution


@click.command()
@click.argument("profile", type=click.Path(path_type=Path))
@with_targets
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Take the targets from these nodes' facts (doctor's); the profile's become checks.",
)
@click.option("--limit", help="With -i: only these groups / nodes.")
@click.option("--single", is_flag=True, help="With -i: one stack for every node, or name who blocks it.")
@click.option("--refresh", is_flag=True, help="With -i: read every node again (ignore cached facts).")
@click.option("--accept-new-host-keys", is_flag=True, help="With -i: trust and record unknown host keys.")
def solve(
    profile: Path,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    matrix_dir: Path | None,
    as_json: bool,
    inventory: Path | None,
    limit: str | None,
    single: bool,
    refresh: bool,
    accept_new_host_keys: bool,
) -> None:
    """Pick the newest consistent stack for PROFILE (exit 0 solved, 1 unsatisfiable, 2 bad input).

    With -i, the nodes' facts are the targets: one stack when one serves every node, else one
    variant per node class (CPU arch, driver branch, GPU compute capabilities)."""
    if inventory is None:
        if limit or single or refresh:
            raise click.UsageError("--limit, --single and --refresh need -i/--inventory")
        solution = _solve(profile, gpus, driver, arch, matrix_dir)
        render(solution.to_dict(), ok=True, as_json=as_json, show=lambda: print_stack(solution))
        return
    if gpus or driver or arch:
        raise click.UsageError("-i takes --gpu/--driver/--arch from the nodes: drop them")
    solve_inventory(profile, inventory, limit, matrix_dir, single, refresh, accept_new_host_keys, as_json)


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
    solution = _solve(profile, gpus, driver, arch, matrix_dir)
    document = {
        "schema": "envctl.explain/1",
        "profile": solution.profile,
        "decisions": [d.__dict__ for d in solution.decisions],
        "warnings": list(solution.warnings),
    }
    render(document, ok=True, as_json=as_json, show=lambda: _print_decisions(solution))


def _print_decisions(solution: Solution) -> None:
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
        console(err=True).print(styled(("warning:", "yellow"), f" {w}"))


def solve_inventory(
    profile: Path,
    inventory: Path,
    limit: str | None,
    matrix_dir: Path | None,
    single: bool,
    refresh: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Read the facts of the selected nodes, solve, print the plan (``envctl.fleet/1``)."""
    from envctl.services.solve.from_nodes import nodes_facts, solve_from_facts

    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        facts = nodes_facts(nodes, pool, refresh=refresh, subject=str(inventory))
    fleet = solve_from_facts(profile, facts, matrix_dir=matrix_dir, single=single)
    render(fleet.as_json(), ok=True, as_json=as_json, show=lambda: print_fleet(fleet))


def print_fleet(fleet: FleetPlan) -> None:
    """One stack table per variant, titled with its nodes."""
    out = console()
    if fleet.single:
        out.print(f"one stack serves every node: {_hosts(fleet, 0)}")
    else:
        out.print(f"{len(fleet.variants)} variants: one stack cannot serve every node")
    for i, v in enumerate(fleet.variants):
        classes = ", ".join(f"{c.name} ({c.hosts})" for c in v.classes)
        out.print(f"variant {v.name}: nodes {_hosts(fleet, i)}; classes {classes}")
        print_stack(v.solution)


def _hosts(fleet: FleetPlan, i: int) -> str:
    from envctl.core.hostlist import compress

    return compress(fleet.variants[i].nodes)
