"""Solve a profile for an inventory's nodes: their facts (through doctor) become the targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import load_profile
from envctl.core.fleet_plan import FleetPlan, plan
from envctl.core.hostlist import compress
from envctl.core.node import NodeSpec
from envctl.core.node_facts import NodeFacts
from envctl.core.transport import Connector
from envctl.errors import EnvctlError, RemoteSourceError
from envctl.services.doctor.doctor import MAX_AGE, doctor


def nodes_facts(
    nodes: Sequence[NodeSpec],
    pool: Connector | None,
    *,
    refresh: bool = False,
    max_age: float = MAX_AGE,
    parallel: int = 16,
    subject: str = "local",
) -> dict[str, NodeFacts]:
    """Every node's facts from doctor's service (its cache included); a node that cannot be asked
    stops the solve, since a stack chosen without it may not run there."""
    report = doctor(
        nodes, pool, load_matrix(), refresh=refresh, max_age=max_age, parallel=parallel, subject=subject
    )
    lost = {n: v for n, v in report.nodes.items() if isinstance(v, EnvctlError)}
    if lost:
        first = next(iter(lost.values()))
        raise RemoteSourceError(
            f"nodes {compress(list(lost))}",
            f"cannot read their facts ({first.message})",
            hint="fix their reachability (envctl doctor shows each) or --limit them out",
        )
    return {n: v.facts for n, v in report.nodes.items() if not isinstance(v, EnvctlError)}


def solve_from_facts(
    path: Path, facts: dict[str, NodeFacts], *, matrix_dir: Path | None = None, single: bool = False
) -> FleetPlan:
    """The fleet plan of profile ``path`` for nodes with these facts."""
    profile, _ = load_profile(path)
    return plan(profile, facts, load_matrix(matrix_dir), single=single)
