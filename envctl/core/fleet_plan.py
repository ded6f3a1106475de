"""Solve a profile for the nodes that will run it: one stack if one serves them all, else one per class.

Pure (the solver is). ``plan`` first holds the profile's targets against the facts
(``fleet.conflicts``), then tries one stack for every node. When none exists it merges the node
classes greedily, largest first, into as few variants as solve; with ``single`` it instead names
the classes that keep one stack from serving the rest, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from envctl.core.fleet import NodeClass, conflicts, fleet_targets, partition, unknowns
from envctl.core.hostlist import compress
from envctl.core.matrix import Matrix
from envctl.core.node_facts import NodeFacts
from envctl.core.profile import Profile
from envctl.core.solution import Solution
from envctl.core.stack import solve
from envctl.errors import UnsatisfiableError

FLEET_SCHEMA = "envctl.fleet/1"


@dataclass(frozen=True)
class Variant:
    """One stack and the node classes it serves."""

    name: str
    classes: tuple[NodeClass, ...]
    solution: Solution

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node of the variant, class by class."""
        return tuple(n for c in self.classes for n in c.nodes)

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (part of ``envctl.fleet/1``)."""
        return {
            "name": self.name,
            "nodes": list(self.nodes),
            "hosts": compress(self.nodes),
            "classes": [
                {
                    "name": c.name,
                    "arch": c.arch,
                    "driver_branch": c.branch,
                    "ccs": list(c.ccs),
                    "nodes": list(c.nodes),
                }
                for c in self.classes
            ],
            "solution": self.solution.to_dict(),
        }


@dataclass(frozen=True)
class FleetPlan:
    """The variants that together serve every node (one when a single stack does)."""

    profile: str
    variants: tuple[Variant, ...]

    @property
    def single(self) -> bool:
        """One stack serves every node."""
        return len(self.variants) == 1

    def variant_of(self, node: str) -> Variant:
        """The variant that serves ``node``."""
        return next(v for v in self.variants if node in v.nodes)

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape (``envctl.fleet/1``)."""
        return {
            "schema": FLEET_SCHEMA,
            "profile": self.profile,
            "single": self.single,
            "variants": [v.as_json() for v in self.variants],
        }


def plan(
    profile: Profile, facts: Mapping[str, NodeFacts], matrix: Matrix, *, single: bool = False
) -> FleetPlan:
    """The fleet's variants; raises UnsatisfiableError naming nodes when the facts rule the profile out."""
    missing = unknowns(facts, matrix)
    if missing:
        raise UnsatisfiableError(
            "the nodes' facts do not say what the solve needs: " + "; ".join(missing),
            hint="run 'envctl doctor -i INVENTORY --refresh' and fix what it reports",
        )
    differ = conflicts(profile.targets, facts, matrix)
    if differ:
        raise UnsatisfiableError(
            "; ".join(differ),
            hint=f"the profile's [targets] are checked against the nodes: change {profile.path} or --limit those nodes out",
        )
    classes = partition(facts, matrix)

    def attempt(group: tuple[NodeClass, ...]) -> Solution:
        members = [facts[n] for c in group for n in c.nodes]
        targets = fleet_targets(profile.targets, members, matrix)
        return solve(replace(profile, targets=targets), matrix)

    try:
        return FleetPlan(profile.name, (Variant("all", classes, attempt(classes)),))
    except UnsatisfiableError as whole:
        if len(classes) == 1:
            raise
        failure = whole

    groups: list[tuple[tuple[NodeClass, ...], Solution]] = []
    blocked: list[tuple[NodeClass, str]] = []
    for c in classes:
        for i, (group, _) in enumerate(groups):
            try:
                joined = (*group, c)
                groups[i] = (joined, attempt(joined))
                break
            except UnsatisfiableError as exc:
                if single and i == 0:
                    blocked.append((c, exc.message))
        else:
            if single and groups:
                continue
            try:
                groups.append(((c,), attempt((c,))))
            except UnsatisfiableError as alone:
                raise UnsatisfiableError(
                    f"no stack serves nodes {c.hosts} ({c.name}) even alone: {alone.message}",
                    hint=alone.hint,
                    explanation=alone.explanation,
                ) from None
    if single:
        if not blocked:  # cannot happen: the whole fleet failed, so some class did not join
            raise failure
        served = compress([n for c in groups[0][0] for n in c.nodes])
        reasons = "; ".join(f"nodes {c.hosts} ({c.name}): {why}" for c, why in blocked)
        raise UnsatisfiableError(
            f"one stack cannot serve every node: {served} share one, but {reasons}",
            hint="drop --single for a variant per node class, or --limit the blocking nodes out",
            explanation=failure.explanation,
        )
    return FleetPlan(profile.name, tuple(Variant(_name(g), g, s) for g, s in groups))


def _name(group: tuple[NodeClass, ...]) -> str:
    return group[0].name if len(group) == 1 else f"{group[0].name}+{len(group) - 1}"
