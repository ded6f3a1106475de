"""Push a multi-platform image: each node gets the manifest for its platform.

The nodes are grouped by platform (``preflight.platform_groups``: from their CPU architecture);
each group goes through the preflight for its platform's image and the one multi-node ``push``,
one platform after the other. A node whose platform the image lacks is refused by name, in the
first group's report, and gets no byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector
from envctl.services.deliver import preflight as pre
from envctl.services.deliver.push import PushOptions, PushReporter, push


def push_platforms(
    images: Mapping[str, OciImage],
    nodes: Sequence[NodeSpec],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
    *,
    skip_preflight: bool = False,
) -> dict[str, DeliveryReport]:
    """Deliver each platform's manifest of one image to the nodes of that platform."""
    groups, lacking = pre.platform_groups(images, nodes, pool, parallel=opts.parallel)
    stray = [n for n in nodes if n.name in lacking]
    if not groups:  # no node can take any manifest: one report that refuses them all
        groups = {next(iter(images)): []}
    reports: dict[str, DeliveryReport] = {}
    for platform, group in groups.items():
        checked = (
            pre.SKIPPED
            if skip_preflight
            else pre.preflight(images[platform], group, pool, parallel=opts.parallel)
        )
        refused = {**checked.errors(), **(lacking if not reports else {})}
        members = [*group, *(stray if not reports else [])]
        reports[platform] = push(images[platform], members, pool, opts, reporter, refused, checked.as_json())
    return reports
