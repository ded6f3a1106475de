"""``envctl solve PROFILE -i INVENTORY``: a stack per node class, from the nodes' facts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from envctl.cli.nodes_common import resolve_nodes, ssh_pool
from envctl.cli.output import console, render

if TYPE_CHECKING:
    from envctl.core.fleet_plan import FleetPlan


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
    from rich.markup import escape

    from envctl.cli.solve import print_stack

    out = console()
    if fleet.single:
        out.print(f"one stack serves every node: {escape(_hosts(fleet, 0))}")
    else:
        out.print(f"{len(fleet.variants)} variants: one stack cannot serve every node")
    for i, v in enumerate(fleet.variants):
        classes = ", ".join(f"{c.name} ({c.hosts})" for c in v.classes)
        out.print(f"variant {escape(v.name)}: nodes {escape(_hosts(fleet, i))}; classes {escape(classes)}")
        print_stack(v.solution)


def _hosts(fleet: FleetPlan, i: int) -> str:
    from envctl.core.hostlist import compress

    return compress(fleet.variants[i].nodes)
