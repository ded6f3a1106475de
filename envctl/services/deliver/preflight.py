"""Preflight: before a byte moves, hold every node's facts against what the image needs.

The facts are doctor's (its cache within ``max_age``, else the agent's ``facts`` over the one
fan-out); the needs are the ones the build recorded in the image config (``core.image_needs``);
the rules are pure (``refusals``). A node that cannot run the image is refused by name with the
reason and a fix, and push sends it nothing. A node that cannot be asked is left to push, which
reports it unreachable the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envctl.adapters.oci_layout import OciImage
from envctl.core.doctor import Finding
from envctl.core.image_needs import ImageNeeds, read_needs, refusals
from envctl.core.node import NodeSpec
from envctl.core.platforms import group_by_platform
from envctl.core.transport import Connector
from envctl.errors import EnvctlError
from envctl.services.doctor.doctor import MAX_AGE, facts_of


class PreflightRefused(EnvctlError):
    """A node whose facts fall short of what the image records it needs: refused before any byte."""

    exit_code = 1


@dataclass(frozen=True)
class Preflight:
    """What the preflight found: the needs it held nodes against and every refused node."""

    needs: ImageNeeds | None  # None: the image records none (not built by envctl)
    refused: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    skipped: bool = False

    def errors(self) -> dict[str, EnvctlError]:
        """Each refused node as its push entry: the first reason, every fix as the hint."""
        out: dict[str, EnvctlError] = {}
        for node, found in self.refused.items():
            message = "preflight: " + "; ".join(f.message for f in found)
            out[node] = PreflightRefused(message, hint="; ".join(f.fix for f in found if f.fix) or None)
        return out

    def as_json(self) -> dict[str, Any]:
        """The ``preflight`` field of ``envctl.push/1``."""
        return {
            "skipped": self.skipped,
            "recorded": self.needs is not None,
            "needs": None if self.needs is None else vars(self.needs),
            "refused": {n: [f.as_json() for f in found] for n, found in self.refused.items()},
        }


SKIPPED = Preflight(None, skipped=True)


def preflight(
    image: OciImage,
    nodes: Sequence[NodeSpec],
    pool: Connector,
    *,
    max_age: float = MAX_AGE,
    parallel: int = 16,
) -> Preflight:
    """Refuse every node of ``nodes`` that cannot run ``image``; asks nothing if it records no needs."""
    needs = read_needs(image.config_document)
    if needs is None:
        return Preflight(None)
    facts = facts_of(nodes, pool, max_age=max_age, parallel=parallel)
    refused = {name: found for name, f in facts.succeeded.items() if (found := refusals(needs, f))}
    return Preflight(needs, refused)


def platform_groups(
    images: Mapping[str, OciImage],
    nodes: Sequence[NodeSpec],
    pool: Connector,
    *,
    max_age: float = MAX_AGE,
    parallel: int = 16,
) -> tuple[dict[str, list[NodeSpec]], dict[str, EnvctlError]]:
    """The nodes by the platform of a multi-platform image they get (``images``: its manifest
    per platform), from each node's CPU architecture (doctor's facts, i.e. the agent's ``uname
    -m``); a node whose platform the image lacks is refused by name. A node that cannot be asked
    goes with linux/amd64 (or the image's first platform), and push reports it unreachable."""
    facts = facts_of(nodes, pool, max_age=max_age, parallel=parallel)
    machines = {name: f.arch for name, f in facts.succeeded.items()}
    default = "linux/amd64" if "linux/amd64" in images else next(iter(images))
    grouped = group_by_platform([n.name for n in nodes], machines, list(images), default)
    by_name = {n.name: n for n in nodes}
    groups = {p: [by_name[n] for n in grouped.groups[p]] for p in images if p in grouped.groups}
    have = ", ".join(images)
    refused: dict[str, EnvctlError] = {
        name: PreflightRefused(
            f"preflight: this node is {platform}; the image has only {have}",
            hint=f"build it for this node too (envctl build --platform {have.replace(', ', ',')},"
            f"{platform}) or leave the node out (--limit)",
        )
        for name, platform in grouped.lacking.items()
    }
    return groups, refused
