"""Push a fleet: each node gets the image of its variant (``conda-lock.fleet.toml`` names them).

Each variant's nodes go through the one multi-node ``push``, one variant after the other; the
result maps each variant to its ordinary per-node delivery report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envctl.adapters.fleet_index import IndexedVariant
from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import DeliveryReport
from envctl.core.hostlist import compress
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector
from envctl.errors import InputError
from envctl.services.deliver.push import PushOptions, PushReporter, push


def variant_groups(
    variants: Sequence[IndexedVariant], nodes: Sequence[NodeSpec], images: Mapping[str, OciImage]
) -> dict[str, list[NodeSpec]]:
    """The selected nodes by variant; a node of no variant, or a variant without an image, is an
    InputError naming them (a node must never get another class's image)."""
    of = {n: v.name for v in variants for n in v.nodes}
    stray = [n.name for n in nodes if n.name not in of]
    if stray:
        raise InputError(
            f"nodes {compress(stray)} are in no variant of the fleet lock",
            hint="lock again with envctl lock -i over these nodes, or --limit them out",
        )
    groups: dict[str, list[NodeSpec]] = {}
    for n in nodes:
        groups.setdefault(of[n.name], []).append(n)
    missing = [name for name in groups if name not in images]
    if missing:
        raise InputError(
            f"no image for variant(s) {', '.join(missing)}",
            hint="envctl build --fleet INDEX (beside each lock), or give --variant NAME=LAYOUT for "
            "each variant the selected nodes need",
        )
    return groups


def push_fleet(
    images: Mapping[str, OciImage],
    groups: Mapping[str, Sequence[NodeSpec]],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
) -> dict[str, DeliveryReport]:
    """Deliver each variant's image to that variant's nodes."""
    return {name: push(images[name], nodes, pool, opts, reporter) for name, nodes in groups.items()}
