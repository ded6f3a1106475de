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
from dataclasses import replace

from envctl.adapters.fleet_index import IndexedVariant
from envctl.adapters.oci_layout import OciImage
from envctl.core.delivery import DeliveryReport
from envctl.core.hostlist import compress
from envctl.core.node import NodeSpec
from envctl.core.transport import Connector
from envctl.errors import InputError
from envctl.services.deliver.gate import Gate
from envctl.services.deliver.preflight import Preflight
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
    preflights: Mapping[str, Preflight] | None = None,
) -> dict[str, DeliveryReport]:
    """Deliver each variant's image to that variant's nodes, at once, under one failure policy."""
    names = list(groups)
    gate = Gate(len(names), opts.max_fail)
    each = replace(opts, parallel=max(1, opts.parallel // max(1, len(names))))
    reports: dict[str, DeliveryReport] = {}
    bugs: list[BaseException] = []

    def one(name: str) -> None:
        checked = (preflights or {}).get(name)
        refused = checked.errors() if checked else None
        try:
            reports[name] = push(
                images[name],
                groups[name],
                pool,
                each,
                reporter,
                refused,
                checked.as_json() if checked else None,
                gate,
            )
        except BaseException as exc:  # a bug: the other variants must not wait for this one
            gate.abort()
            bugs.append(exc)

    threads = [threading.Thread(target=one, args=(n,), name=f"envctl-variant-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bugs:
        raise next((b for b in bugs if not isinstance(b, threading.BrokenBarrierError)), bugs[0])
    return {name: reports[name] for name in names}
