"""Push a fleet: each node gets the image of its variant (``conda-lock.fleet.toml`` names them).

Each variant's nodes go through the one multi-node ``push``, all variants at once (each push in
a thread of its own, the nodes shared out by ``--parallel``), and the pushes share one ``Gate``:
``--max-fail`` counts the failed nodes of every variant, ``--atomic`` activates no variant unless
every node of every variant staged, and switches every variant back when a node of any failed to
switch or, with ``--verify``, failed its check. The result maps each variant to its ordinary
per-node delivery report.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from envctl.adapters.fleet_index import IndexedVariant
from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import DeliveryReport
from envctl.core.hostlist import compress
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector
from envctl.errors import EnvctlError, InputError
from envctl.services.deliver.gate import Gate
from envctl.services.deliver.preflight import Preflight
from envctl.services.deliver.push import PushOptions, PushReporter, Stager, push


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


@dataclass(frozen=True)
class Group:
    """One push of several at once: its image, its nodes, and what the preflight refused."""

    image: OciImage
    nodes: Sequence[NodeSpec]
    refused: Mapping[str, EnvctlError] | None = None
    preflight: Mapping[str, Any] | None = None
    #: this push's own stager and why it was chosen (``None``: the options' stager); a relay or a
    #: registry stager holds one push's state, so groups never share one
    stager: tuple[Stager, str] | None = None


def push_groups(
    groups: Mapping[str, Group],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
) -> dict[str, DeliveryReport]:
    """One ``push`` per group, all at once (``--parallel`` shared out), under one ``Gate``:
    ``--max-fail`` and ``--atomic`` (and ``--verify``'s undo) hold for every group's nodes."""
    names = list(groups)
    gate = Gate(len(names), opts.max_fail)
    each = replace(opts, parallel=max(1, opts.parallel // max(1, len(names))))
    reports: dict[str, DeliveryReport] = {}
    bugs: list[BaseException] = []

    def one(name: str) -> None:
        g = groups[name]
        mine = each if g.stager is None else replace(each, stager=g.stager[0], fanout_why=g.stager[1])
        try:
            reports[name] = push(g.image, g.nodes, pool, mine, reporter, g.refused, g.preflight, gate)
        except BaseException as exc:  # a bug: the other groups must not wait for this one
            gate.abort()
            bugs.append(exc)

    threads = [threading.Thread(target=one, args=(n,), name=f"envctl-push-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bugs:
        raise next((b for b in bugs if not isinstance(b, threading.BrokenBarrierError)), bugs[0])
    return {name: reports[name] for name in names}


def push_fleet(
    images: Mapping[str, OciImage],
    groups: Mapping[str, Sequence[NodeSpec]],
    pool: Connector,
    opts: PushOptions,
    reporter: PushReporter | None = None,
    preflights: Mapping[str, Preflight] | None = None,
    stagers: Mapping[str, tuple[Stager, str]] | None = None,
) -> dict[str, DeliveryReport]:
    """Deliver each variant's image to that variant's nodes, at once, under one failure policy;
    ``stagers``: each variant's fan-out and why (``stagers.pick_stager``), else ``opts``'s."""
    jobs = {}
    for name, nodes in groups.items():
        checked = (preflights or {}).get(name)
        refused = checked.errors() if checked else None
        way = (stagers or {}).get(name)
        jobs[name] = Group(images[name], nodes, refused, checked.as_json() if checked else None, way)
    return push_groups(jobs, pool, opts, reporter)
