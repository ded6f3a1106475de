"""Faults on real sandbox nodes: each reported per node, nothing half-activated, re-runs converge."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxNode, SandboxPlan
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.status import status

pytestmark = pytest.mark.integration


def run_env(pool: SSHPool, t: NodeSpec, env: str) -> str:
    transport = pool.connect(t)
    try:
        argv = [f"{t.prefix_root}/{env}/app/run.sh"]
        return transport.run(argv).stdout.decode().strip()
    finally:
        transport.close()


def sh(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def node_of(cluster: SandboxPlan, t: NodeSpec) -> SandboxNode:
    return next(n for n in cluster.nodes if n.name == t.name)


def test_link_cut_mid_transfer_resumes_the_blob(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    img = make_image("cut", big=random.Random(1).randbytes(24_000_000))
    victim = node_of(cluster, prefix_targets[1])
    opts = PushOptions(env="cut", idle_timeout=5)
    sh(
        "tc",
        "qdisc",
        "replace",
        "dev",
        victim.veth,
        "root",
        "tbf",
        "rate",
        "40mbit",
        "burst",
        "256kb",
        "latency",
        "50ms",
    )
    result: list = []
    worker = threading.Thread(target=lambda: result.append(push(img, prefix_targets, pool, opts)))
    try:
        worker.start()
        tmp = Path(victim.path("store", "tmp"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # cut the link once a good part of the blob is there
            if sum(p.stat().st_size for p in tmp.glob("*.partial")) > 6_000_000:
                break
            time.sleep(0.05)
        sh("ip", "link", "set", victim.veth, "down")
        worker.join(120)
    finally:
        sh("ip", "link", "set", victim.veth, "up")
        sh("tc", "qdisc", "del", "dev", victim.veth, "root")
    (cut,) = result
    assert cut.nodes[victim.name].status == "failed", cut.as_json()
    assert "connection lost" in str(cut.nodes[victim.name].message) or "timed out" in str(
        cut.nodes[victim.name].message
    )
    others = [t.name for t in prefix_targets if t.name != victim.name]
    assert all(cut.nodes[n].status == "ok" for n in others), cut.as_json()  # the other nodes finished
    assert run_env(pool, prefix_targets[0], "cut") == "envmod cut"

    again = push(img, prefix_targets, pool, opts)
    node = again.nodes[victim.name]
    total = sum(b.size for b in img.blobs)
    assert node.status == "ok", again.as_json()
    assert node.resumed_from > 5_000_000  # resumed, not restarted
    # the base layer arrived whole before the cut; the big layer resumes; the rest is new
    assert node.bytes_sent == sum(b.size for b in img.blobs[1:]) - node.resumed_from
    assert node.bytes_sent < total - 5_000_000
    assert all(again.nodes[n].status == "unchanged" for n in others)
    assert run_env(pool, prefix_targets[1], "cut") == "envmod cut"


def sshd_pids(node: SandboxNode) -> list[int]:
    """Every sshd of the node (the listener and its sessions), not the commands they run."""
    out = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if Path(f"/proc/{p}/comm").read_text().strip() == "sshd"]


def test_sshd_killed_mid_transfer_is_reported_and_rerun_resumes(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    from envctl.services.cluster import sandbox

    img = make_image("kill", big=random.Random(4).randbytes(12_000_000))
    victim = node_of(cluster, prefix_targets[2])
    opts = PushOptions(env="kill", idle_timeout=5)
    sh(
        "tc",
        "qdisc",
        "replace",
        "dev",
        victim.veth,
        "root",
        "tbf",
        "rate",
        "40mbit",
        "burst",
        "256kb",
        "latency",
        "50ms",
    )
    result: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: result.append(push(img, prefix_targets, pool, opts)))
    try:
        worker.start()
        tmp = Path(victim.path("store", "tmp"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(p.stat().st_size for p in tmp.glob("*.partial")) < 3e6:
            time.sleep(0.05)
        for pid in sshd_pids(victim):  # the listener and the session serving the transfer
            sh("kill", "-9", str(pid))
        worker.join(120)
        (cut,) = result
        assert cut.nodes[victim.name].status == "failed", cut.as_json()
        assert all(cut.nodes[t.name].status == "ok" for t in prefix_targets[:2])
        down = push(img, prefix_targets, pool, opts)  # sshd still dead: refused, reported
        assert down.outcome == "partial" and "connection refused" in str(down.nodes[victim.name].message)
    finally:
        sh("tc", "qdisc", "del", "dev", victim.veth, "root")
        sandbox.start_sshd(victim)
    again = push(img, prefix_targets, pool, opts)
    node = again.nodes[victim.name]
    assert again.outcome == "all" and node.status == "ok"
    assert node.resumed_from > 2_000_000  # the partial survived the killed session
    assert node.bytes_sent == sum(b.size for b in img.blobs[1:]) - node.resumed_from
    assert run_env(pool, prefix_targets[2], "kill") == "envmod kill"


def test_corrupted_blob_in_a_node_store_is_detected_and_resent(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    img = make_image("corrupt")
    assert push(img, prefix_targets, pool, PushOptions(env="corrupt")).outcome == "all"
    victim = node_of(cluster, prefix_targets[0])
    layer = img.layers[-1]
    blob = Path(victim.path("store", "blobs", "sha256", layer.digest[7:]))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x55
    blob.write_bytes(bytes(data))
    res = push(img, prefix_targets, pool, PushOptions(env="corrupt"))
    assert res.nodes[victim.name].blobs_sent == 1
    assert res.nodes[victim.name].bytes_sent == layer.size
    assert blob.read_bytes() == img.blob_path(layer.digest).read_bytes()


def test_changed_host_key_is_refused(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    tmp_path: Path,
) -> None:
    known = Path(cluster.known_hosts)
    saved = known.read_text()
    victim = node_of(cluster, prefix_targets[1])
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other"))
    other = (tmp_path / "other.pub").read_text().split()[1]
    lines = [
        f"{victim.address} ssh-ed25519 {other}" if line.startswith(victim.address + " ") else line
        for line in saved.splitlines()
    ]
    known.write_text("\n".join(lines) + "\n")
    try:
        res = push(make_image("hostkey"), prefix_targets, pool, PushOptions(env="hostkey"))
    finally:
        known.write_text(saved)
    assert res.nodes[victim.name].status == "failed"
    assert "CHANGED" in str(res.nodes[victim.name].message)
    assert res.outcome == "partial"
    assert not Path(victim.path("opt", "envs", "hostkey")).exists()


def test_two_pushes_at_once_to_one_node_are_serialised(
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    cluster: SandboxPlan,
) -> None:
    t = prefix_targets[0]
    a, b = make_image("a", big=random.Random(2).randbytes(3_000_000)), make_image("b")
    results: dict[str, object] = {}

    def go(name: str, img: OciImage) -> None:
        results[name] = push(img, [t], pool, PushOptions(env="twice"))

    threads = [threading.Thread(target=go, args=(n, i)) for n, i in (("a", a), ("b", b))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    # serialised on the node; the newer ballot wins, the other finished first or reports it lost
    reports: list[DeliveryReport] = list(results.values())  # type: ignore[arg-type]
    newest = max(reports, key=lambda r: r.ballot)  # type: ignore[arg-type,return-value]
    (other,) = (r for r in reports if r is not newest)
    assert newest.outcome == "all", newest.as_json()
    assert other.outcome == "all" or (other.lost_to and other.lost_to.ballot == newest.ballot), (
        other.as_json()
    )
    node = node_of(cluster, t)
    state = json.loads(Path(node.path("store", "state", "twice.json")).read_text())
    assert state["current"]["digest"] == newest.digest
    if other.outcome == "all":  # one after the other, both recorded
        assert state["previous"]["digest"] == other.digest
    expected = "envmod a" if state["current"]["digest"] == a.manifest.digest else "envmod b"
    assert run_env(pool, t, "twice") == expected
    assert list(Path(node.path("store", "tmp")).iterdir()) == []


def test_full_disk_gives_a_clear_error_and_keeps_the_old_env(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    node = node_of(cluster, prefix_targets[2])
    sshd = Path(node.path("sshd.pid")).read_text().strip()
    Path(node.path("tmp", "ndfull")).mkdir(exist_ok=True)
    sh("nsenter", "-t", sshd, "-m", "mount", "-t", "tmpfs", "-o", "size=8m", "nd-full", "/tmp/ndfull")
    t = dataclasses.replace(prefix_targets[2], store="/tmp/ndfull/store", prefix_root="/tmp/ndfull/envs")
    try:
        assert push(make_image("small"), [t], pool, PushOptions(env="full")).outcome == "all"
        res = push(
            make_image("huge", big=random.Random(3).randbytes(2_000_000)),
            [t],
            pool,
            PushOptions(env="full"),
        )
        assert res.outcome == "none"
        assert "No space left on device" in str(res.nodes[t.name].message)
        assert run_env(pool, t, "full") == "envmod small"
    finally:
        sh("nsenter", "-t", sshd, "-m", "umount", "/tmp/ndfull")
        shutil.rmtree(node.path("tmp", "ndfull"), ignore_errors=True)


def test_atomic_push_switches_no_node_when_one_cannot_activate(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    old, new = make_image("old"), make_image("new")
    assert push(old, prefix_targets, pool, PushOptions(env="atomic")).outcome == "all"
    victim = node_of(cluster, prefix_targets[1])
    blocker = Path(victim.path("opt", "envs", f"atomic@{new.manifest.digest[7:]}"))
    blocker.write_text("in the way")
    try:
        res = push(new, prefix_targets, pool, PushOptions(env="atomic", atomic=True))
        assert res.outcome == "none"
        assert res.nodes[victim.name].status == "failed"
        assert {r.status for n, r in res.nodes.items() if n != victim.name} == {"skipped"}
        for t in prefix_targets:
            assert run_env(pool, t, "atomic") == "envmod old"
    finally:
        blocker.unlink()
    res = push(new, prefix_targets, pool, PushOptions(env="atomic", atomic=True))
    assert res.outcome == "all"
    assert all(run_env(pool, t, "atomic") == "envmod new" for t in prefix_targets)


def test_status_reports_a_prefix_env_changed_behind_envctls_back(
    cluster: SandboxPlan,
    prefix_targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    assert push(make_image("drift"), prefix_targets, pool, PushOptions(env="drift")).outcome == "all"
    assert not status(prefix_targets, pool, "drift").drifted
    victim = node_of(cluster, prefix_targets[0])
    Path(victim.path("opt", "envs", "drift", "app", "envmod.py")).write_text("VERSION = 'x'\n")
    st = status(prefix_targets, pool, "drift")
    assert st.drifted
    assert "changed" in str(st.nodes[victim.name].envs["drift"].drift)
    assert [n for n, s in st.nodes.items() if s.envs["drift"].drift] == [victim.name]
