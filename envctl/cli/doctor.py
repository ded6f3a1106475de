"""``envctl doctor -i INVENTORY`` (or ``--local``): what every node is made of, and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli.nodes_common import resolve_nodes, ssh_pool

if TYPE_CHECKING:
    from envctl.services.doctor.doctor import DoctorReport


@click.command()
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML inventory of the cluster.",
)
@click.option("--limit", help="Only these groups / nodes.")
@click.option("--local", is_flag=True, help="Probe this machine instead of an inventory's nodes.")
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also check the nodes against this lock's needs.",
)
@click.option("--refresh", is_flag=True, help="Read every node again (ignore cached facts).")
@click.option(
    "--max-age",
    type=click.FloatRange(0),
    default=3600.0,
    show_default=True,
    help="Seconds cached facts stand in for a node.",
)
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=16, show_default=True, help="Nodes asked at once."
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print facts and verdicts as JSON.")
def doctor(
    inventory: Path | None,
    limit: str | None,
    local: bool,
    lock_file: Path | None,
    refresh: bool,
    max_age: float,
    parallel: int,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Probe driver, GPUs, runtimes, CPU, glibc, disk and clock on each node; say ok / warn / fail
    with a fix for each finding. Exits 1 when a node fails or cannot be asked."""
    from envctl.adapters.matrix_files import load_matrix
    from envctl.cli.output import render
    from envctl.services.doctor import doctor as svc

    if local == (inventory is not None):
        raise click.UsageError("give -i/--inventory or --local (one of them)")
    if local and limit:
        raise click.UsageError("--limit selects inventory nodes: drop it with --local")
    needs = None
    if lock_file is not None:
        from envctl.adapters.lockfile import read_lock
        from envctl.core.doctor import Needs

        needs = Needs.from_solution(str(lock_file), read_lock(lock_file).solution)
    matrix = load_matrix()
    if local:
        report = svc.doctor([svc.local_node()], None, matrix, needs=needs, refresh=refresh, max_age=max_age)
    else:
        assert inventory is not None
        nodes = resolve_nodes(inventory, limit)
        with ssh_pool(accept_new_host_keys) as pool:
            report = svc.doctor(
                nodes,
                pool,
                matrix,
                needs=needs,
                refresh=refresh,
                max_age=max_age,
                parallel=parallel,
                subject=str(inventory),
            )
    render(report.as_json(), ok=report.exit_code == 0, as_json=as_json, show=lambda: _show(report))


def _show(report: DoctorReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from envctl.cli.output import stdout
    from envctl.errors import EnvctlError

    table = Table("node", "verdict", "driver", "GPUs", "CC", "glibc", "arch", "runtime", "findings")
    colors = {"ok": "green", "warn": "yellow", "fail": "red"}
    notes = []
    for name, v in report.nodes.items():
        if isinstance(v, EnvctlError):
            table.add_row(name, "[red]unreachable", "", "", "", "", "", "", escape(v.message))
            continue
        f = v.facts
        gpus = _gpu_summary(f.gpus) if f.gpus else (f.gpu_error or "none")
        ccs = ",".join(sorted({g.cc for g in f.gpus if g.cc})) or "-"
        runtime = ", ".join(f"{k} {ver}" for k, ver in sorted(f.runtimes.items())) or "-"
        found = ", ".join(f"[{colors[x.level]}]{escape(x.code)}[/]" for x in v.findings) or "-"
        table.add_row(
            name,
            f"[{colors[v.level]}]{v.level}",
            f.driver or "-",
            escape(gpus),
            ccs,
            f.glibc or "-",
            f.arch or "-",
            escape(runtime),
            found,
        )
        for x in v.findings:
            notes.append(f"{name}: {x.level}: {x.message}" + (f"\n  fix: {x.fix}" if x.fix else ""))
        if v.cached_at is not None:
            import time

            notes.append(
                f"{name}: facts from {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(v.cached_at))} (cached; --refresh re-reads)"
            )
    stdout.print(table)
    for note in notes:
        stdout.print(escape(note))


def _gpu_summary(gpus: tuple[object, ...]) -> str:
    names: dict[str, int] = {}
    for g in gpus:
        name = str(getattr(g, "name", "?"))
        names[name] = names.get(name, 0) + 1
    return ", ".join(f"{n}x {name}" for name, n in names.items())
