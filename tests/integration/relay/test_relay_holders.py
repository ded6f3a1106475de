"""Nodes that already hold the image root the relay tree: on six real sshd nodes (prefix ``ro``,
10.252.8.0/26, /var/tmp/ect-ro), a push to two of them and then ``envctl push --fanout relay`` to
those two plus four new ones: the sender's link carries (near) nothing, every node ends active
with every blob rehashed clean. The holders are the LAST nodes of the inventory on purpose: a
tree laid out without them would make the first (new) node the seed and stream it everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rl_helpers import RelayCluster, relay_sandbox

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.cli import cli
from envctl.services.deliver.nodeclient import NodeClient

pytestmark = pytest.mark.integration

DIRECTORY = "/var/tmp/ect-ro"
MB = 1_000_000


@pytest.fixture(scope="module")
def ro_cluster() -> Iterator[RelayCluster]:
    """Six nodes in two racks (n1-n3, n4-n6), the sender's link shaped as the relay tests' is."""
    with relay_sandbox(
        "ro", 6, "10.252.8.0/26", DIRECTORY, {"rackA": "n[1-3]", "rackB": "n[4-6]"}
    ) as cluster:
        yield cluster


def envctl_push(*argv: str) -> dict[str, Any]:
    out = CliRunner().invoke(cli, ["push", *argv, "--json"])
    assert out.exit_code == 0, out.output[-3000:]
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_nodes_that_hold_the_image_feed_the_new_ones_and_the_sender_sends_nothing(
    ro_cluster: RelayCluster, make_image: Any
) -> None:
    c = ro_cluster
    img: OciImage = make_image("held", 8 * MB)
    size = sum(b.size for b in img.blobs)
    inventory = str(Path(c.plan.dir, "racks.toml"))
    first = envctl_push(
        str(img.root), "-i", inventory, "--env", "held", "--limit", "n[5-6]", "--fanout", "relay"
    )
    assert set(first["nodes"]) == {"n5", "n6"} and first["fanout"]["bytes_from_sender"] == size

    before = c.sent()
    doc = envctl_push(
        str(img.root), "-i", inventory, "--env", "held", "--fanout", "relay", "--relay-fanout", "2",
        "--relay-seeds", "1",
    )  # fmt: skip
    sent = c.sent() - before
    fan = doc["fanout"]
    assert fan["mode"] == "relay" and fan["holders"] == ["n5", "n6"], fan
    assert (fan["relay_fanout"], fan["relay_seeds"]) == (2, 1)
    assert fan["tree"]["n5"] is None and fan["tree"]["n6"] is None
    assert all(fan["tree"][n] is not None for n in ("n1", "n2", "n3", "n4")), fan["tree"]
    assert fan["bytes_from_sender"] == 0 and fan["fell_back_to_sender"] == [], fan
    assert fan["bytes_relayed"] == 4 * size, fan
    for name in ("n5", "n6"):
        assert doc["nodes"][name]["bytes_sent"] == 0, doc["nodes"][name]
    assert sent < 2 * MB, sent  # SSH, the agent bundle for four nodes, the have calls: no blob
    assert doc["outcome"] == "all", doc

    with SSHPool(io_timeout=5.0) as pool:
        for spec in c.nodes:  # every node active, every blob rehashed clean
            transport = pool.connect(spec)
            try:
                state = NodeClient(transport, spec).call("state", "--verify", "held")["envs"]["held"]
            finally:
                transport.close()
            assert state["current"]["digest"] == img.manifest.digest, (spec.name, state)
            assert not state["drift"], (spec.name, state)
    print(f"\n6 nodes, 2 holding: {size / MB:.1f} MB image, the sender's link carried {sent / MB:.2f} MB")


def test_a_fleet_push_relays_each_variant_through_its_own_tree(
    ro_cluster: RelayCluster, make_image: Any, tmp_path: Path
) -> None:
    from envctl.adapters.fleet_index import IndexedVariant, write_index

    c = ro_cluster
    va, vb = make_image("fleet-a", 4 * MB), make_image("fleet-b", 4 * MB)
    idx = tmp_path / "conda-lock.fleet.toml"
    write_index(
        idx,
        "fleet",
        (
            IndexedVariant("va", "conda-lock.va.yml", "a" * 64, ("n1", "n2")),
            IndexedVariant("vb", "conda-lock.vb.yml", "b" * 64, ("n3", "n4", "n5", "n6")),
        ),
    )
    inventory = str(Path(c.plan.dir, "racks.toml"))
    fleet = ["-i", inventory, "--fleet", str(idx), "--env", "fl", "--variant", f"va={va.root}"]
    fleet += ["--variant", f"vb={vb.root}"]
    before = c.sent()
    doc = envctl_push(*fleet, "--fanout", "relay", "--relay-fanout", "3")
    sent = c.sent() - before
    assert doc["schema"] == "envctl.push-fleet/1" and doc["outcome"] == "all", doc
    assert doc["fanout"] == {
        "va": {"mode": "relay", "why": "asked for"},
        "vb": {"mode": "relay", "why": "asked for"},
    }
    a, b = doc["variants"]["va"]["fanout"], doc["variants"]["vb"]["fanout"]
    assert set(a["tree"]) == {"n1", "n2"} and set(b["tree"]) == {"n3", "n4", "n5", "n6"}
    assert a["relay_fanout"] == b["relay_fanout"] == 3
    size_a, size_b = (sum(x.size for x in img.blobs) for img in (va, vb))
    assert a["bytes_from_sender"] == size_a and b["bytes_from_sender"] == size_b, (a, b)
    assert sent < 1.6 * (size_a + size_b), sent  # one copy per variant, not one per node
    # auto decides per variant from its own node count: both below the relay threshold
    again = envctl_push(*fleet)
    assert again["fanout"] == {
        "va": {"mode": "direct", "why": "2 node(s)"},
        "vb": {"mode": "direct", "why": "4 node(s)"},
    }
    assert again["outcome"] == "all"
