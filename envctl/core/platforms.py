"""Which manifest of a multi-platform image a node gets: its platform, from its CPU architecture.

Pure: a node's ``uname -m`` (doctor's ``arch`` fact) -> an OCI platform (``linux/arm64``), and
the grouping of nodes by the platform the image offers them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from envctl.core.image_needs import UNAME


def node_platform(machine: str) -> str:
    """``uname -m`` -> ``linux/<OCI architecture>`` (x86_64 -> linux/amd64, aarch64 -> linux/arm64);
    an architecture envctl has no name for stays as the node says it (``linux/riscv64``)."""
    arch = next((oci for oci, names in UNAME.items() if machine in names), machine)
    return f"linux/{arch}"


@dataclass(frozen=True)
class PlatformGroups:
    """The nodes by the platform whose manifest they get, and those the image has none for."""

    groups: dict[str, tuple[str, ...]]  # platform -> node names, in the nodes' order
    lacking: dict[str, str]  # node -> its platform, which the image lacks


def group_by_platform(
    nodes: Sequence[str], machines: Mapping[str, str | None], available: Collection[str], default: str
) -> PlatformGroups:
    """Each node's platform from ``machines`` (its ``uname -m``; None or absent: not known, the
    node goes with ``default``, and push reports it as it finds it); a node whose platform is not
    ``available`` is ``lacking``, never given another platform's manifest."""
    groups: dict[str, list[str]] = {}
    lacking: dict[str, str] = {}
    for name in nodes:
        machine = machines.get(name)
        platform = default if not machine else node_platform(machine)
        if platform in available:
            groups.setdefault(platform, []).append(name)
        else:
            lacking[name] = platform
    return PlatformGroups({p: tuple(names) for p, names in groups.items()}, lacking)
