"""Push a multi-platform image: each node gets the manifest for its platform.

The nodes are grouped by platform (``preflight.platform_groups``: from their CPU architecture);
each group goes through the preflight for its platform's image, then every group through the
one multi-node ``push`` at once, under one failure policy (``fleet_push.push_groups``: one
``--max-fail``, one ``--atomic``, one ``--verify`` undo for all the platforms' nodes). A node whose
platform the image lacks is refused by name, in the first group's report, and gets no byte.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector
from envctl.services.deliver import preflight as pre
from envctl.services.deliver.fleet_push import Group, push_groups
from envctl.services.deliver.push import PushOptions, PushReporter, Stager


def push_platforms(
    images: Mapping[str, OciImage],
    nodes: Sequence[NodeSpec],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
    *,
    skip_preflight: bool = False,
    stager_for: Callable[[Sequence[NodeSpec]], tuple[Stager, str]] | None = None,
) -> dict[str, DeliveryReport]:
    """Deliver each platform's manifest of one image to the nodes of that platform; ``stager_for``
    gives each platform's push its own stager and why (a relay or registry stager holds one push's
    state, so the platforms must not share ``opts``'s), from that platform's nodes."""
    groups, lacking = pre.platform_groups(images, nodes, pool, parallel=opts.parallel)
    stray = [n for n in nodes if n.name in lacking]
    if not groups:  # no node can take any manifest: one report that refuses them all
        groups = {next(iter(images)): []}
    jobs: dict[str, Group] = {}
    for platform, group in groups.items():
        checked = (
            pre.SKIPPED
            if skip_preflight
            else pre.preflight(images[platform], group, pool, parallel=opts.parallel)
        )
        first = not jobs
        refused = {**checked.errors(), **(lacking if first else {})}
        members = [*group, *(stray if first else [])]
        way = stager_for(members) if stager_for is not None else None
        jobs[platform] = Group(images[platform], members, refused, checked.as_json(), way)
    return push_groups(jobs, pool, opts, reporter)
