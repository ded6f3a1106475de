"""``envctl push IMAGE -i INVENTORY``: deliver an OCI image to every node, verified and atomic."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from envctl.cli.nodes_common import FiniteFloat, inventory_option, render_delivery, resolve_nodes, ssh_pool
from envctl.cli.nodes_common import show_delivery as render_delivery_table

if TYPE_CHECKING:
    from envctl.adapters.oci_layout import OciImage
    from envctl.core.fanout_mode import FanoutChoice, RelayTuning
    from envctl.core.node import NodeSpec
    from envctl.core.registry_target import NodePull
    from envctl.core.transport import Connector
    from envctl.services.deliver.push import PushOptions, PushReporter, Stager


@click.command()
@click.argument("image", type=click.Path(path_type=Path, file_okay=False), required=False)
@inventory_option
@click.option(
    "--fleet",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A fleet lock index (lock -i): each node gets its variant's image (--variant, else the "
    "layouts build --fleet wrote beside the locks).",
)
@click.option(
    "--variant", "variants", multiple=True, metavar="NAME=LAYOUT", help="With --fleet: a variant's image."
)
@click.option("--env", "env_name", help="Environment name on the nodes (default: the image's ref name).")
@click.option("--limit", help="Only these groups / nodes (comma separated, hostlists allowed).")
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=8, show_default=True, help="Nodes served at once."
)
@click.option("--max-fail", help="Stop activating once more than N (or P%) nodes failed.")
@click.option(
    "--lock-wait",
    type=FiniteFloat(0, 7 * 24 * 3600),
    default=600.0,
    show_default=True,
    help="Seconds to wait for another envctl operation's lock on a node's store.",
)
@click.option(
    "--atomic", is_flag=True, help="Activate nowhere unless every node can switch (and pass --verify)."
)
@click.option(
    "--verify",
    is_flag=True,
    help="After the switch, run the image's smoke check on every node in its runtime "
    "(imports; a kernel per framework on GPU nodes); with --atomic a failure switches every node back.",
)
@click.option(
    "--fanout",
    type=click.Choice(["auto", "direct", "relay", "registry"]),
    default="auto",
    show_default=True,
    help="How blobs reach the nodes: from here to each, relayed by the nodes, or through a registry.",
)
@click.option(
    "--relay-plaintext",
    is_flag=True,
    help="Relay without TLS between nodes (the token still guards each relay; traffic is readable).",
)
@click.option(
    "--relay-fanout",
    type=int,
    metavar="N",
    help="Relay: children per relaying node, 1-16 [default: 2]; node links should carry N copies.",
)
@click.option(
    "--relay-seeds",
    type=int,
    metavar="N",
    help="Relay: nodes the sender streams to itself, 1-64 [default: 1]; its link carries N copies.",
)
@click.option("--via", metavar="registry://HOST[:PORT]/REPO", help="The registry for --fanout registry.")
@click.option(
    "--insecure-registry", is_flag=True, help="Talk plain HTTP to the --via registry (a local one)."
)
@click.option(
    "--registry-ca",
    type=click.Path(path_type=Path, dir_okay=False),  # read (and a missing file named) by read_ca
    help="PEM CA bundle that signed the registry's certificate (a private CA): trusted for the upload "
    "and handed to each node's pull in memory (default: the inventory's registry_ca).",
)
@click.option(
    "--registry-auth",
    type=click.Choice(["sender", "node"]),
    default="sender",
    show_default=True,
    help="Whose login the nodes pull with: one this push hands them, or each node's own docker login.",
)
@click.option(
    "--skip-preflight",
    is_flag=True,
    help="Push without holding the nodes' facts against what the image needs (says so loudly).",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def push(
    image: Path | None,
    inventory: Path,
    fleet: Path | None,
    variants: tuple[str, ...],
    env_name: str | None,
    limit: str | None,
    parallel: int,
    max_fail: str | None,
    lock_wait: float,
    atomic: bool,
    fanout: str,
    via: str | None,
    relay_plaintext: bool,
    relay_fanout: int | None,
    relay_seeds: int | None,
    verify: bool,
    insecure_registry: bool,
    registry_ca: Path | None,
    registry_auth: str,
    skip_preflight: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Send IMAGE (an OCI layout directory) to the nodes: only missing blobs, then switch."""
    from envctl.adapters.oci_layout import read_platform_images
    from envctl.cli.progress import push_reporter
    from envctl.core.delivery import check_env_name, default_env_name, parse_max_fail
    from envctl.core.fanout_mode import relay_tuning
    from envctl.core.image import PLATFORMS
    from envctl.services.deliver import preflight as pre
    from envctl.services.deliver import push as svc
    from envctl.services.deliver.stagers import pick_stager
    from envctl.services.deliver.verify import gpu_nodes

    if (image is None) == (fleet is None) or (variants and fleet is None):
        raise click.UsageError("give IMAGE, or --fleet INDEX (with --variant NAME=LAYOUT per variant)")
    tuning = relay_tuning(fanout, relay_fanout, relay_seeds)
    if fleet is not None:
        how = _FleetHow(
            parallel, max_fail, lock_wait, atomic, verify, skip_preflight,
            fanout, via, insecure_registry, relay_plaintext, tuning, registry_ca, registry_auth,
        )  # fmt: skip
        _push_fleet(fleet, variants, inventory, env_name, limit, how, accept_new_host_keys, as_json)
        return
    assert image is not None
    images = read_platform_images(image, list(PLATFORMS))
    img = images.get(str(svc.NODE_PLATFORM)) or next(iter(images.values()))
    where = "--env" if env_name else f"{image}: the image's name (or pass --env)"
    env = check_env_name(env_name or default_env_name(img.ref_name, image.name), where)
    nodes = resolve_nodes(inventory, limit)
    choice, stager = pick_stager(
        fanout,
        nodes,
        via,
        insecure_registry,
        relay_plaintext,
        tuning,
        pull=lambda: _node_pull(registry_ca, registry_auth, nodes, inventory),
    )
    if relay_plaintext and choice.mode == "relay":
        warn_plaintext()
    if choice.mode != "registry" and (registry_ca is not None or registry_auth != "sender"):
        raise click.UsageError(
            f"--registry-ca and --registry-auth apply to --fanout registry, not {choice.mode}"
        )
    opts = svc.PushOptions(
        env=env,
        parallel=parallel,
        max_fail=parse_max_fail(max_fail, len(nodes)),
        atomic=atomic,
        by=svc.who(),
        lock_timeout=lock_wait,
        stager=stager,
        fanout_why=choice.why,
        verify=verify,
    )
    reporter, shown = push_reporter(as_json)
    with ssh_pool(accept_new_host_keys) as pool:
        if set(images) != {str(svc.NODE_PLATFORM)}:  # each node gets its platform's manifest
            if verify:  # doctor's facts say which nodes have GPUs
                opts = replace(opts, gpu_nodes=gpu_nodes(nodes, pool, parallel))

            def stager_for(members: Sequence[NodeSpec]) -> tuple[svc.Stager, str]:
                mine, made = pick_stager(
                    fanout,
                    members,
                    via,
                    insecure_registry,
                    relay_plaintext,
                    tuning,
                    pull=lambda: _node_pull(registry_ca, registry_auth, members, inventory),
                )
                return made, mine.why

            _push_platforms(images, nodes, pool, opts, skip_preflight, reporter, shown, as_json, stager_for)
            return
        if skip_preflight:
            warn_skipped_preflight()
            checked = pre.SKIPPED
        else:
            checked = pre.preflight(img, nodes, pool, parallel=parallel)
        if verify:  # doctor's facts (cached by the preflight) say which nodes have GPUs
            opts = replace(opts, gpu_nodes=gpu_nodes(nodes, pool, parallel))
        with shown:
            report = svc.push(img, nodes, pool, opts, reporter, checked.errors(), checked.as_json())
    render_delivery(report, as_json, inventory)


def _node_pull(ca: Path | None, auth: str, nodes: Sequence[NodeSpec], inventory: Path) -> NodePull:
    """How the nodes pull: ``--registry-auth``, and the CA of ``--registry-ca``, else of the
    inventory's ``registry_ca`` (``~`` expanded, relative to the inventory's folder)."""
    from envctl.adapters.registry_ca import read_ca
    from envctl.core.registry_target import NodePull, inventory_registry_ca

    whose: Literal["sender", "node"] = "node" if auth == "node" else "sender"  # click.Choice's two
    where = "--registry-ca"
    if ca is None and (named := inventory_registry_ca(nodes)) is not None:
        ca = inventory.parent / Path(named).expanduser()
        where = f"{inventory}: registry_ca"
    if ca is None:
        return NodePull(whose)
    return NodePull(whose, read_ca(ca, where), str(ca))


def _push_platforms(
    images: Mapping[str, OciImage],
    nodes: Sequence[NodeSpec],
    pool: Connector,
    opts: PushOptions,
    skip_preflight: bool,
    reporter: PushReporter,
    shown: Any,
    as_json: bool,
    stager_for: Callable[[Sequence[NodeSpec]], tuple[Stager, str]],
) -> None:
    """Each node its platform's manifest (docs/build.md); one report, or one per platform, each
    platform's push with its own stager (``stager_for`` its nodes)."""
    from envctl.cli.output import render
    from envctl.services.deliver.platform_push import push_platforms

    if skip_preflight:
        warn_skipped_preflight()
    with shown:
        reports = push_platforms(
            images, nodes, pool, opts, reporter, skip_preflight=skip_preflight, stager_for=stager_for
        )
    if len(reports) == 1:
        render_delivery(next(iter(reports.values())), as_json)
        return
    if not as_json:
        for report in reports.values():
            render_delivery_table(report)
    ok = all(r.exit_code == 0 for r in reports.values())
    doc = {"schema": "envctl.push-platforms/1", "platforms": {p: r.as_json() for p, r in reports.items()}}
    render(doc, ok=ok, as_json=as_json, show=lambda: None)


def warn_plaintext() -> None:
    """One line on stderr for every push that relays without TLS."""
    from envctl.cli.output import warn

    warn("--relay-plaintext: blobs travel between nodes UNENCRYPTED (anyone on the network can read them)")


def warn_skipped_preflight() -> None:
    """One line on stderr (never in the JSON on stdout): what --skip-preflight did not check."""
    from envctl.cli.output import warn

    warn(
        "--skip-preflight: no node's driver, GPUs, glibc, CPU architecture and flags or free "
        "space was checked against this image; a node that cannot run it may be switched to it"
    )


@dataclass(frozen=True)
class _FleetHow:
    """The options of a fleet push, as given."""

    parallel: int
    max_fail: str | None
    lock_wait: float
    atomic: bool
    verify: bool
    skip_preflight: bool
    fanout: str = "auto"  # chosen per variant, from that variant's node count
    via: str | None = None
    insecure_registry: bool = False
    relay_plaintext: bool = False
    relay: RelayTuning | None = None
    registry_ca: Path | None = None
    registry_auth: str = "sender"


def _push_fleet(
    index: Path,
    variants: tuple[str, ...],
    inventory: Path,
    env_name: str | None,
    limit: str | None,
    how: _FleetHow,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Each variant's image to that variant's nodes (docs/fleet.md), all variants at once under
    one --atomic / --max-fail; exit 1 unless all succeeded."""
    from envctl.adapters.fleet_index import read_index, variant_layout
    from envctl.adapters.oci_layout import read_image
    from envctl.cli.output import render
    from envctl.core.delivery import check_env_name, parse_max_fail
    from envctl.services.deliver import preflight as pre
    from envctl.services.deliver import push as svc
    from envctl.services.deliver.fleet_push import push_fleet, variant_groups
    from envctl.services.deliver.stagers import pick_stager
    from envctl.services.deliver.verify import gpu_nodes

    if not env_name:
        raise click.UsageError("--fleet needs --env (the variants' images share one environment name)")
    images = {}
    indexed = read_index(index)
    for spec in variants:
        name, sep, layout = spec.partition("=")
        if not sep or not name or not layout:
            raise click.UsageError(f"--variant {spec!r}: expected NAME=LAYOUT")
        images[name] = read_image(Path(layout), platform=svc.NODE_PLATFORM)
    if not variants:  # the layouts `build --fleet INDEX` wrote beside each variant's lock
        for v in indexed:
            if (built := variant_layout(index, v)).is_dir():
                images[v.name] = read_image(built, platform=svc.NODE_PLATFORM)
    nodes = resolve_nodes(inventory, limit)
    groups = variant_groups(indexed, nodes, images)

    def way(members: Sequence[NodeSpec]) -> tuple[FanoutChoice, svc.Stager]:
        return pick_stager(
            how.fanout,
            members,
            how.via,
            how.insecure_registry,
            how.relay_plaintext,
            how.relay,
            pull=lambda: _node_pull(how.registry_ca, how.registry_auth, members, inventory),
        )

    # each variant's push chooses its fan-out as a single-image push would
    ways = {name: way(members) for name, members in groups.items()}
    if how.relay_plaintext and any(choice.mode == "relay" for choice, _ in ways.values()):
        warn_plaintext()
    opts = svc.PushOptions(
        env=check_env_name(env_name),
        parallel=how.parallel,
        max_fail=parse_max_fail(how.max_fail, len(nodes)),  # of the whole fleet's nodes
        atomic=how.atomic,
        by=svc.who(),
        lock_timeout=how.lock_wait,
        verify=how.verify,
    )
    with ssh_pool(accept_new_host_keys) as pool:
        checked: dict[str, pre.Preflight] = {}
        for name, members in groups.items():
            if how.skip_preflight:
                checked[name] = pre.SKIPPED
            else:
                checked[name] = pre.preflight(images[name], members, pool, parallel=how.parallel)
        if how.skip_preflight:
            warn_skipped_preflight()
        if how.verify:
            opts = replace(opts, gpu_nodes=gpu_nodes(nodes, pool, how.parallel))
        stagers = {name: (stager, choice.why) for name, (choice, stager) in ways.items()}
        reports = push_fleet(images, groups, pool, opts, preflights=checked, stagers=stagers)
    if not as_json:
        for report in reports.values():
            render_delivery_table(report, inventory)
    ok = all(r.exit_code == 0 for r in reports.values())
    doc = {
        "schema": "envctl.push-fleet/1",
        "atomic": how.atomic,
        "max_fail": opts.max_fail,
        "outcome": _fleet_outcome([r.outcome for r in reports.values()]),
        "fanout": {n: {"mode": c.mode, "why": c.why} for n, (c, _) in ways.items()},
        "variants": {n: r.as_json() for n, r in reports.items()},
    }
    render(doc, ok=ok, as_json=as_json, show=lambda: None)


def _fleet_outcome(outcomes: list[str]) -> str:
    """``all`` / ``none`` when every variant says so, else ``partial``."""
    if all(o == "all" for o in outcomes):
        return "all"
    return "none" if all(o == "none" for o in outcomes) else "partial"
