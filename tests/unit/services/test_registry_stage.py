"""push through a registry: the real agent on 'nodes' that are temp directories (LocalTransport),
a small distribution-API registry in a thread on 127.0.0.1. The two phases, the failure policy and
the ledger are push()'s own; these tests check that they hold with the registry stager."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "build"))
from nd_local import LocalPool
from nd_oci import app_layers, write_layout
from nd_registry import MiniRegistry

from envctl.adapters import ledger
from envctl.adapters.docker_config import Credentials
from envctl.adapters.oci_layout import OciImage, read_image
from envctl.adapters.registry_push import RegistryPusher
from envctl.core.node import NodeSpec
from envctl.core.registry_target import RegistryTarget
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.registry_stage import RegistryStager

PASSWORD = "pw-5d1f-secret"


@pytest.fixture
def registry() -> Iterator[MiniRegistry]:
    reg = MiniRegistry(user="alice", password=PASSWORD)
    try:
        yield reg
    finally:
        reg.close()


def make_image(tmp_path: Path, version: str, big: int = 0) -> OciImage:
    write_layout(tmp_path / f"img-{version}", app_layers(version, big))
    return read_image(tmp_path / f"img-{version}")


def node(name: str, root: Path, mirror: str | None = None) -> NodeSpec:
    return NodeSpec(
        name,
        "localhost",
        runtime="prefix",
        store=str(root / "store"),
        prefix_root=str(root / "envs"),
        registry_mirror=mirror,
    )


def stager(reg: MiniRegistry) -> RegistryStager:
    target = RegistryTarget(reg.address, "envs/demo", insecure=True)
    login = Credentials("alice", PASSWORD, source="test")
    return RegistryStager(target, pusher=lambda t: RegistryPusher(t, credentials=lambda: login))


def opts(reg: MiniRegistry, **more: object) -> PushOptions:
    return PushOptions(env="demo", lock_timeout=20, idle_timeout=5, stager=stager(reg), **more)  # type: ignore[arg-type]


def active(t: NodeSpec) -> str:
    return (Path(t.prefix_root) / "demo" / "app" / "envmod.py").read_text()


def test_the_image_goes_up_once_and_every_node_fetches_only_what_it_lacks(
    tmp_path: Path, registry: MiniRegistry
) -> None:
    ts = [node(f"n{i}", tmp_path / f"n{i}") for i in range(3)]
    v1, v2 = make_image(tmp_path, "1", big=80_000), make_image(tmp_path, "2", big=80_000)
    first = push(v1, ts[:2], LocalPool(), opts(registry))
    assert first.outcome == "all", first.as_json()
    fanout = first.as_json()["fanout"]
    assert fanout["mode"] == "registry" and fanout["registry"] == f"registry://{registry.address}/envs/demo"
    assert fanout["blobs_uploaded"] == len(v1.blobs) and fanout["auth"] == "basic"
    total = sum(b.size for b in v1.blobs)
    assert fanout["bytes_uploaded"] == total
    assert all(r.bytes_sent == total for r in first.nodes.values())
    assert all(active(t) == "VERSION = '1'\n" for t in ts[:2])
    # a node that joins late: the registry already holds everything, only it fetches
    late = push(v1, ts, LocalPool(), opts(registry))
    assert late.outcome == "all" and late.as_json()["fanout"]["blobs_uploaded"] == 0
    assert [late.nodes[t.name].bytes_sent for t in ts] == [0, 0, total]
    assert [late.nodes[t.name].status for t in ts] == ["unchanged", "unchanged", "ok"]
    second = push(v2, ts, LocalPool(), opts(registry))
    changed = sum(b.size for b in v2.blobs if b not in v1.blobs)
    assert second.as_json()["fanout"]["bytes_uploaded"] == changed
    assert all(r.bytes_sent == changed for r in second.nodes.values())
    assert all(active(t) == "VERSION = '2'\n" for t in ts)
    entry = ledger.events("push")[0]
    assert entry.details["fanout"]["mode"] == "registry" and entry.outcome == "ok"
    # the password reached the registry as Basic, and no file on any node holds it
    for path in tmp_path.rglob("*"):
        if path.is_file() and "img-" not in str(path):
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_corrupt_blob_fails_its_nodes_and_atomic_activates_nowhere(
    tmp_path: Path, registry: MiniRegistry
) -> None:
    ts = [node(f"n{i}", tmp_path / f"n{i}") for i in range(2)]
    v1, v2 = make_image(tmp_path, "1"), make_image(tmp_path, "2", big=40_000)
    assert push(v1, ts, LocalPool(), opts(registry)).outcome == "all"
    layer = v2.layers[0].digest
    registry.corrupt.add(layer)
    bad = push(v2, ts, LocalPool(), opts(registry, atomic=True))
    assert bad.outcome == "none"
    for t in ts:
        entry = bad.nodes[t.name]
        assert entry.status == "failed" and "arrived corrupt" in str(entry.message), bad.as_json()
        assert not (Path(t.store) / "blobs" / "sha256" / layer[7:]).exists()
        assert active(t) == "VERSION = '1'\n"  # nothing half-activated
    registry.corrupt.clear()
    assert push(v2, ts, LocalPool(), opts(registry)).outcome == "all"  # a re-run converges
    assert all(active(t) == "VERSION = '2'\n" for t in ts)


def test_a_registry_that_refuses_the_upload_fails_every_node_cleanly(
    tmp_path: Path, registry: MiniRegistry
) -> None:
    ts = [node("n0", tmp_path / "n0")]
    wrong = RegistryTarget(registry.address, "envs/demo", insecure=True)
    login = Credentials("alice", "wrong", source="the test's login")
    bad = RegistryStager(wrong, pusher=lambda t: RegistryPusher(t, credentials=lambda: login))
    report = push(make_image(tmp_path, "1"), ts, LocalPool(), PushOptions(env="demo", stager=bad))
    assert report.outcome == "none"
    message = str(report.nodes["n0"].message)
    assert "answered 401" in message and "the credentials from the test's login may not push" in message
    assert not os.path.exists(Path(ts[0].prefix_root) / "demo")


def test_the_group_mirror_is_used_first(tmp_path: Path, registry: MiniRegistry) -> None:
    mirror = MiniRegistry(missing=True)  # holds nothing: every blob falls through to the registry
    try:
        t = node("n0", tmp_path / "n0", mirror=f"http://{mirror.address}")
        report = push(make_image(tmp_path, "1"), [t], LocalPool(), opts(registry))
        assert report.outcome == "all", report.as_json()
        assert report.as_json()["fanout"]["mirrors"] == {"n0": f"http://{mirror.address}"}
        assert len([m for m in mirror.seen if m[0] == "GET"]) == len(make_image(tmp_path, "1").blobs)
    finally:
        mirror.close()


def test_nodes_are_handed_the_login_on_stdin_not_in_argv(tmp_path: Path, registry: MiniRegistry) -> None:
    from nd_local import LocalTransport

    seen: list[LocalTransport] = []

    def dial(n: NodeSpec) -> LocalTransport:
        seen.append(LocalTransport(n.name))
        return seen[-1]

    t = node("n0", tmp_path / "n0")
    assert push(make_image(tmp_path, "1"), [t], LocalPool(dial), opts(registry)).outcome == "all"
    argvs = [" ".join(call) for transport in seen for call in transport.calls]
    assert any(" fetch" in a for a in argvs) and not any(PASSWORD in a or "Basic" in a for a in argvs)
    assert dataclasses.asdict(t)["registry_mirror"] is None


# ------------------------------------------------------------------ --registry-auth node, --registry-ca
def test_registry_auth_node_sends_no_login_and_the_node_uses_its_own(
    tmp_path: Path, registry: MiniRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import json

    from envctl.core.registry_target import NodePull

    target = RegistryTarget(registry.address, "envs/demo", insecure=True)
    login = Credentials("alice", PASSWORD, source="test")

    def node_auth() -> PushOptions:
        stage = RegistryStager(
            target, pusher=lambda t: RegistryPusher(t, credentials=lambda: login), pull=NodePull("node")
        )
        return PushOptions(env="demo", lock_timeout=20, idle_timeout=5, stager=stage)

    config = tmp_path / "node-docker" / "config.json"
    monkeypatch.setenv("DOCKER_CONFIG", str(config.parent))  # the local 'node' agent's own login
    t = node("n0", tmp_path / "n0")
    # no login on the node: the sender's is not handed over, so the pull is refused
    refused = push(make_image(tmp_path, "1"), [t], LocalPool(), node_auth())
    message = str(refused.nodes["n0"].message)
    assert refused.outcome == "none" and "an anonymous pull" in message and str(config) in message, message
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {"auths": {registry.address: {"auth": base64.b64encode(b"alice:" + PASSWORD.encode()).decode()}}}
        )
    )
    report = push(make_image(tmp_path, "1"), [t], LocalPool(), node_auth())
    assert report.outcome == "all" and report.as_json()["fanout"]["auth"] == "node's own login", (
        report.as_json()
    )
    config.write_text("{oops")
    bad = push(make_image(tmp_path, "2"), [t], LocalPool(), node_auth())
    assert bad.outcome == "none" and str(bad.nodes["n0"].message).startswith(f"n0: {config}: not valid JSON")


def test_a_private_ca_is_used_for_the_upload_and_handed_to_each_node(tmp_path: Path) -> None:
    import registry_services as rs

    from envctl.core.registry_target import NodePull

    tls, other = rs.make_tls(tmp_path / "tls"), rs.make_tls(tmp_path / "other")
    reg = MiniRegistry(user="alice", password=PASSWORD, tls=tls.server_context())
    try:
        target = RegistryTarget(reg.address, "envs/demo")
        login = Credentials("alice", PASSWORD, source="test")

        def with_ca(ca: Path) -> PushOptions:
            pem = ca.read_text()
            stage = RegistryStager(
                target,
                pusher=lambda t: RegistryPusher(t, credentials=lambda: login, ca=pem),
                pull=NodePull("sender", pem, str(ca)),
            )
            return PushOptions(env="demo", lock_timeout=20, idle_timeout=5, stager=stage)

        ts = [node(f"n{i}", tmp_path / f"n{i}") for i in range(2)]
        wrong = push(make_image(tmp_path, "1"), ts, LocalPool(), with_ca(other.ca))
        message = str(wrong.nodes["n0"].message)
        assert wrong.outcome == "none" and message.startswith(f"registry://{reg.address}/envs/demo: ")
        assert "certificate is not trusted (nor by the --registry-ca" in message and "\n" not in message
        report = push(make_image(tmp_path, "1"), ts, LocalPool(), with_ca(tls.ca))
        assert report.outcome == "all" and report.as_json()["fanout"]["ca"] == str(tls.ca), report.as_json()
        for path in tmp_path.rglob("*"):  # the CA went to the nodes in memory, never onto their disks
            if path.is_file() and path.parent.name not in ("tls", "other") and "img-" not in str(path):
                assert b"BEGIN CERTIFICATE" not in path.read_bytes(), path
    finally:
        reg.close()


def test_nodes_pull_the_first_layers_while_the_last_blob_is_still_going_up(
    tmp_path: Path, registry: MiniRegistry
) -> None:
    """The upload and the nodes' pulls overlap: the registry holds back the image's last blob
    (its config) until both nodes have stored the first layer. Without the overlap the nodes
    would ask for nothing before the whole upload ended, and this would time out."""
    import time

    ts = [node(f"n{i}", tmp_path / f"n{i}") for i in range(2)]
    image = make_image(tmp_path, "1", big=60_000)
    first = image.layers[0].digest
    waited: list[bool] = []

    def hold_the_config(digest: str) -> int | None:
        if digest == image.config.digest:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all((Path(t.store) / "blobs" / "sha256" / first[7:]).exists() for t in ts):
                    waited.append(True)
                    return None
                time.sleep(0.02)
            waited.append(False)
        return None

    registry.before_put = hold_the_config
    report = push(image, ts, LocalPool(), opts(registry))
    assert report.outcome == "all", report.as_json()
    assert waited == [True]
    assert report.as_json()["fanout"]["upload_overlapped"] is True


def test_an_upload_refused_midway_fails_every_node_and_activates_nothing(
    tmp_path: Path, registry: MiniRegistry
) -> None:
    ts = [node(f"n{i}", tmp_path / f"n{i}") for i in range(2)]
    image = make_image(tmp_path, "1", big=30_000)
    registry.before_put = lambda digest: 403 if digest == image.config.digest else None
    report = push(image, ts, LocalPool(), opts(registry))
    assert report.outcome == "none", report.as_json()
    for t in ts:
        entry = report.nodes[t.name]
        assert entry.status == "failed" and "403" in str(entry.message), report.as_json()
        assert not os.path.exists(Path(t.prefix_root) / "demo")
    # a re-run once the registry takes it converges, reusing what the nodes already verified
    registry.before_put = None
    again = push(image, ts, LocalPool(), opts(registry))
    assert again.outcome == "all" and all(active(t) == "VERSION = '1'\n" for t in ts)
