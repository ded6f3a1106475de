"""``--fanout relay`` on eight real sshd nodes in two racks: about one copy on the sender's link,
every blob verified on every node, nothing left listening or on disk afterwards, and the faults:
a relay node killed mid-stream, a relay that forwards corrupt bytes, a node that joins late, a
link cut. No node ends half-activated; a re-run converges."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rl_helpers import RelayCluster, sh, shape_sender

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxNode
from envctl.services.deliver.nodeclient import NodeClient
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.relay_stage import RelayStager

pytestmark = pytest.mark.integration

Make = Callable[..., OciImage]
MB = 1_000_000


def relay(env: str, **kw: Any) -> PushOptions:
    return PushOptions(env=env, idle_timeout=5, stager=RelayStager(stall=3.0), fanout_why="test", **kw)


def image_bytes(img: OciImage) -> int:
    return sum(b.size for b in img.blobs)


def node(c: RelayCluster, name: str) -> SandboxNode:
    return next(n for n in c.plan.nodes if n.name == name)


def current(pool: SSHPool, spec: NodeSpec, env: str) -> dict[str, Any] | None:
    transport = pool.connect(spec)
    try:
        doc = NodeClient(transport, spec).call("state", "--verify", env)["envs"][env]
    finally:
        transport.close()
    return None if doc is None else doc


def assert_converged(pool: SSHPool, c: RelayCluster, env: str, img: OciImage) -> None:
    """Every node runs the image, every blob rehashed clean, the prefix tree intact."""
    for spec in c.nodes:
        state = current(pool, spec, env)
        assert state is not None and state["current"]["digest"] == img.manifest.digest, (spec.name, state)
        assert not state["drift"], (spec.name, state)


def assert_nothing_left(c: RelayCluster) -> None:
    """No relay process, no listening port but sshd's, no key or certificate on any node."""
    for n in c.plan.nodes:
        listening = sh("ip", "netns", "exec", n.netns, "ss", "-Hltn").split("\n")
        ports = {line.split()[3].rsplit(":", 1)[1] for line in listening if line.strip()}
        assert ports <= {"22"}, (n.name, listening)
        for pid in sh("ip", "netns", "pids", n.netns).split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"serve" not in cmdline and b"fetch" not in cmdline, (n.name, cmdline)
        for root, _, files in os.walk(n.path("store")):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert b"PRIVATE KEY" not in fh.read(1 << 16), (n.name, root, f)


def partial_bytes(n: SandboxNode) -> int:
    return sum(p.stat().st_size for p in Path(n.path("store", "tmp")).glob("*.partial"))


def in_background(fn: Callable[[], DeliveryReport]) -> tuple[threading.Thread, list[DeliveryReport]]:
    out: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    return worker, out


def wait_until(what: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_relay_sends_about_one_copy_where_direct_sends_one_per_node(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    c = relay_cluster
    img = make_image("one", 16 * MB)
    size = image_bytes(img)
    before, start = c.sent(), time.monotonic()
    report = push(img, c.nodes, pool, relay("one"))
    relay_s, relay_sent = time.monotonic() - start, c.sent() - before
    assert report.outcome == "all", report.as_json()
    fanout = report.as_json()["fanout"]
    assert fanout["mode"] == "relay" and fanout["encrypted"] is True
    tree = fanout["tree"]
    assert tree["n1"] is None and [n for n, p in tree.items() if p is None] == ["n1"]
    cross = [n for n, p in tree.items() if p and fanout["racks"][n] != fanout["racks"][p]]
    assert cross == ["n5"]  # one stream between the racks
    assert fanout["bytes_from_sender"] == size  # the payload went out once
    assert fanout["bytes_relayed"] == 7 * size
    assert relay_sent < 1.6 * size, relay_sent  # SSH, TLS-free sender side, the agent bundle, the have calls
    assert_converged(pool, c, "one", img)
    assert_nothing_left(c)

    img2 = make_image("two", 16 * MB)
    before, start = c.sent(), time.monotonic()
    direct = push(img2, c.nodes, pool, PushOptions(env="two", idle_timeout=5))
    direct_s, direct_sent = time.monotonic() - start, c.sent() - before
    assert direct.outcome == "all"
    assert direct_sent > 7 * image_bytes(img2)
    print(
        f"\n8 nodes, {size / MB:.1f} MB image, sender link 100mbit: relay {relay_s:.1f}s"
        f" {relay_sent / MB:.1f} MB sent; direct {direct_s:.1f}s {direct_sent / MB:.1f} MB sent;"
        f" one image on the sender link {size * 8 / 100e6:.1f}s; phases relay {report.timings}"
        f" direct {direct.timings}"
    )


def test_a_relay_node_killed_mid_stream_has_its_children_reparented(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    from envctl.services.cluster import sandbox

    c = relay_cluster
    img = make_image("kill", 24 * MB)
    victim, child = node(c, "n2"), node(c, "n3")  # n2 relays to n3 and n4
    shape_sender(c.plan, "40mbit")
    try:
        worker, out = in_background(lambda: push(img, c.nodes, pool, relay("kill", max_fail=1)))
        wait_until(lambda: partial_bytes(child) > 4 * MB)
        for pid in sh("ip", "netns", "pids", victim.netns).split():  # the node's sshd and all it runs
            os.kill(int(pid), signal.SIGKILL)
        worker.join(180)
    finally:
        shape_sender(c.plan)
        sandbox.start_sshd(victim)
    (report,) = out
    doc = report.as_json()
    assert report.nodes["n2"].status == "failed", doc
    assert all(report.nodes[n].status == "ok" for n in ("n1", "n3", "n4", "n5", "n6", "n7", "n8")), doc
    moved = doc["fanout"]["reparented"]
    assert {"n3", "n4"} <= set(moved), doc["fanout"]
    assert all(s["from"] == "n2" for s in moved["n3"][:1])
    again = push(img, c.nodes, pool, relay("kill"))
    assert again.outcome == "all" and again.nodes["n2"].status == "ok", again.as_json()
    assert all(again.nodes[n].status == "unchanged" for n in ("n1", "n3", "n8"))
    assert_converged(pool, c, "kill", img)
    assert_nothing_left(c)


def test_a_relay_forwarding_corrupt_bytes_is_detected_and_fetched_elsewhere(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    from envctl.adapters import system

    c = relay_cluster
    img = make_image("corrupt", 8 * MB)
    bad = node(c, "n5")  # rack2's head: relays to n6 and n7
    config = Path(bad.path("ssh", "sshd_config"))
    saved = config.read_text()
    pid = system.read_pid(bad.path("sshd.pid"), "sshd")
    assert pid is not None
    # test only: the node's own sshd sets the variable; nothing the sender sends can
    config.write_text(saved + "\nSetEnv ENVCTL_TEST_RELAY_CORRUPT=1\n")
    os.kill(pid, signal.SIGHUP)
    try:
        time.sleep(1.0)
        report = push(img, c.nodes, pool, relay("corrupt"))
    finally:
        config.write_text(saved)
        pid = system.read_pid(bad.path("sshd.pid"), "sshd")
        assert pid is not None
        os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
    doc = report.as_json()
    assert report.outcome == "all", doc
    moved = doc["fanout"]["reparented"]
    for child in ("n6", "n7"):
        assert moved[child][0]["from"] == "n5" and moved[child][0]["kind"] == "corrupt", moved
    assert_converged(pool, c, "corrupt", img)


def test_a_node_that_joins_late_is_the_only_one_to_get_bytes(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    c = relay_cluster
    img = make_image("late", 8 * MB)
    first = push(img, c.nodes[:6], pool, relay("late"))
    assert first.outcome == "all", first.as_json()
    before = c.sent()
    again = push(img, c.nodes, pool, relay("late"))
    sent = c.sent() - before
    assert again.outcome == "all", again.as_json()
    for spec in c.nodes[:6]:
        assert again.nodes[spec.name].status == "unchanged" and again.nodes[spec.name].bytes_sent == 0
    for name in ("n7", "n8"):
        assert again.nodes[name].bytes_sent == image_bytes(img)
    assert again.as_json()["fanout"]["bytes_from_sender"] == 0  # the late nodes fetched from nodes
    assert sent < 2 * MB, sent
    assert_converged(pool, c, "late", img)


def test_a_link_cut_mid_stream_fails_that_node_alone_and_a_rerun_converges(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    c = relay_cluster
    img = make_image("cut", 24 * MB)
    victim, child = node(c, "n6"), node(c, "n8")  # n6 relays to n8
    shape_sender(c.plan, "40mbit")
    try:
        worker, out = in_background(lambda: push(img, c.nodes, pool, relay("cut", max_fail=1)))
        wait_until(lambda: partial_bytes(child) > 4 * MB)
        subprocess.run(["ip", "link", "set", victim.veth, "down"], check=True)
        worker.join(180)
    finally:
        subprocess.run(["ip", "link", "set", victim.veth, "up"], check=True)
        shape_sender(c.plan)
    (report,) = out
    doc = report.as_json()
    assert report.nodes["n6"].status == "failed", doc
    assert all(report.nodes[n].status == "ok" for n in ("n1", "n5", "n7", "n8")), doc
    assert doc["fanout"]["reparented"]["n8"][0]["from"] == "n6"
    again = push(img, c.nodes, pool, relay("cut"))
    assert again.outcome == "all" and again.nodes["n6"].status == "ok", again.as_json()
    assert_converged(pool, c, "cut", img)
    assert_nothing_left(c)


def test_the_cli_relays_with_auto_and_says_so(relay_cluster: RelayCluster, make_image: Make) -> None:
    import json

    from click.testing import CliRunner

    from envctl.cli import cli

    img = make_image("cli", 2 * MB)
    inventory = str(Path(relay_cluster.plan.dir, "racks.toml"))
    out = CliRunner().invoke(cli, ["push", str(img.root), "-i", inventory, "--env", "cli", "--json"])
    doc = json.loads(out.stdout)
    assert out.exit_code == 0 and doc["ok"] is True, out.output[-2000:]
    assert doc["fanout"]["mode"] == "relay" and "8 nodes" in doc["fanout"]["why"]  # auto, from 6 on
    assert doc["fanout"]["encrypted"] is True and len(doc["fanout"]["tree"]) == 8
    plain = CliRunner().invoke(
        cli,
        ["push", str(img.root), "-i", inventory, "--env", "cli", "--fanout", "relay", "--relay-plaintext"],
    )
    assert plain.exit_code == 0, plain.output[-2000:]
    assert "UNENCRYPTED" in plain.stderr and "relay:" in plain.stdout


def test_a_slow_relay_does_not_hold_back_its_children(
    relay_cluster: RelayCluster, pool: SSHPool, make_image: Make
) -> None:
    c = relay_cluster
    img = make_image("slow", 16 * MB)
    slow = node(c, "n2")  # relays to n3 and n4; its own link brings 1 MB/s
    sh(
        "tc",
        "qdisc",
        "replace",
        "dev",
        slow.veth,
        "root",
        "tbf",
        "rate",
        "8mbit",
        "burst",
        "64kb",
        "latency",
        "50ms",
    )
    stager = RelayStager(stall=3.0, min_rate=3e6, window=2.0)
    try:
        report = push(img, c.nodes, pool, PushOptions(env="slow", idle_timeout=5, stager=stager))
    finally:
        sh(
            "tc",
            "qdisc",
            "replace",
            "dev",
            slow.veth,
            "root",
            "tbf",
            "rate",
            "400mbit",
            "burst",
            "512kb",
            "latency",
            "50ms",
        )
    doc = report.as_json()
    assert report.outcome == "all", doc
    moved = doc["fanout"]["reparented"]
    for child in ("n3", "n4"):
        assert moved[child][0]["from"] == "n2" and moved[child][0]["kind"] == "slow", moved
    assert_converged(pool, c, "slow", img)
