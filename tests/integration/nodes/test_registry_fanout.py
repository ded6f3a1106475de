"""``--fanout registry`` on real sshd nodes through Debian's real docker-registry, which runs on a
sandbox node of its own (its netns, its link shaped by tc both ways), with a login (htpasswd
Basic, and the token flow of a token service). Faults: the registry stopped mid-pull, a proxy that
flips a byte, a node that joins late, a link cut. Nothing half-activated; every re-run converges.

Names: sandbox prefix ``rg`` and addresses inside 10.252.3.0/26 only (this area's share).
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import http.server
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))  # sandbox_nodes
import registry_services as rs
from sandbox_nodes import running_sandbox

from envctl.adapters.docker_config import Credentials
from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.oci_layout import OciImage
from envctl.adapters.registry_push import RegistryPusher
from envctl.adapters.ssh_pool import SSHPool
from envctl.cli import cli
from envctl.core import sandbox as plans
from envctl.core import toml_out
from envctl.core.delivery import DeliveryReport
from envctl.core.node import NodeSpec
from envctl.core.registry_target import RegistryTarget
from envctl.core.sandbox import SandboxNode, SandboxPlan
from envctl.services.deliver.push import PushOptions, push
from envctl.services.deliver.registry_stage import RegistryStager

pytestmark = pytest.mark.integration

PASSWORD = "rg-pw-0b7d4c"
USER = "ci"
REPO = "envs/demo"
NODE_RATE = "200mbit"
REGISTRY_RATE = "400mbit"  # the registry's own link, out of its netns (to the nodes)
PULL_NODES = 4


def sh(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=60)


Registry = rs.NetnsRegistry  # docker-registry on the last sandbox node


@pytest.fixture(scope="module")
def rg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxPlan]:
    """PULL_NODES prefix nodes and one more for the registry, links shaped (directory
    /var/tmp/ect-rg); always taken down."""
    with running_sandbox("rg", PULL_NODES + 1, "10.252.3.0/26", runtime="prefix", rate=NODE_RATE) as plan:
        registry_node = plan.nodes[-1]
        burst = str(plans.tbf_burst(REGISTRY_RATE))
        sh("ip", "-n", registry_node.netns, "link", "set", "eth0", "txqueuelen", "1000")
        sh(*f"ip netns exec {registry_node.netns} tc qdisc replace dev eth0 root tbf rate {REGISTRY_RATE}".split(),
           "burst", burst, "latency", "50ms")  # fmt: skip
        sh("tc", "qdisc", "replace", "dev", registry_node.veth, "root", "tbf", "rate", REGISTRY_RATE,
           "burst", burst, "latency", "50ms")  # fmt: skip
        yield plan


@pytest.fixture(scope="module")
def registry(rg_cluster: SandboxPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp("rg-registry")
    users = rs.htpasswd(folder / "htpasswd", {USER: PASSWORD})
    reg = Registry(rg_cluster.nodes[-1], folder, rs.htpasswd_auth(users))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def targets(rg_cluster: SandboxPlan) -> list[NodeSpec]:
    return [
        n for n in load_inventory(Path(rg_cluster.inventory)).nodes if n.name != rg_cluster.nodes[-1].name
    ]


def stager(registry: Registry, address: str | None = None) -> RegistryStager:
    login = Credentials(USER, PASSWORD, source="the test's login")
    target = RegistryTarget(address or registry.address, REPO, insecure=True)
    return RegistryStager(target, pusher=lambda t: RegistryPusher(t, credentials=lambda: login))


def opts(stage: Any, **more: Any) -> PushOptions:
    return PushOptions(**{"env": "reg", "idle_timeout": 5, "lock_timeout": 30, "stager": stage, **more})


def current(pool: SSHPool, t: NodeSpec, env: str = "reg") -> str:
    transport = pool.connect(t)
    try:
        argv = ["sh", "-c", f"readlink {t.prefix_root}/{env} || echo none"]
        return transport.run(argv).stdout.decode().strip()
    finally:
        transport.close()


def grep_secret(plan: SandboxPlan, *secrets: str) -> list[str]:
    """Every file under any pull node's private dirs (store, /opt, /tmp, ssh home) holding a secret."""
    found = []
    for node in plan.nodes[:-1]:
        for path in Path(node.root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {s[:6]}..." for s in secrets if s.encode() in data]
    return found


def partial_bytes(node: SandboxNode) -> int:
    return sum(p.stat().st_size for p in Path(node.path("store", "tmp")).glob("*.partial"))


def test_cli_push_through_the_registry_then_a_late_node_fetches_alone(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    img = make_image("rg1", big=random.Random(11).randbytes(16_000_000))
    docker = rs.docker_config(
        tmp_path / "docker", {"auths": {registry.address: {"auth": rs.basic_auth(USER, PASSWORD)}}}
    )
    monkeypatch.setenv("DOCKER_CONFIG", docker["DOCKER_CONFIG"])
    document = plans.inventory_document(rg_cluster)
    document["nodes"].pop(rg_cluster.nodes[-1].name)
    document["groups"] = {"pull": {"nodes": [t.name for t in targets]}}
    document["defaults"]["registry"] = f"registry://{registry.address}/{REPO}"
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(toml_out.dumps(document))
    argv = ["push", str(img.root), "-i", str(inventory), "--env", "reg", "--insecure-registry", "--json"]
    out = CliRunner().invoke(cli, [*argv, "--limit", "n[1-3]"], catch_exceptions=False)
    doc = json.loads(out.stdout)
    assert out.exit_code == 0 and doc["outcome"] == "all", out.stdout
    fanout = doc["fanout"]
    assert (fanout["mode"], fanout["why"], fanout["auth"]) == (
        "registry",
        "the inventory names a registry",
        "basic",
    )
    total = sum(b.size for b in img.blobs)
    assert fanout["bytes_uploaded"] == total and fanout["blobs_uploaded"] == len(img.blobs)
    assert all(n["bytes_sent"] == total for n in doc["nodes"].values())
    assert all(current(pool, t) == f"reg@{img.manifest.digest[7:]}" for t in targets[:3])
    # a node that joins late: nothing goes up again, only it fetches
    out = CliRunner().invoke(cli, argv, catch_exceptions=False)
    doc = json.loads(out.stdout)
    assert out.exit_code == 0 and doc["fanout"]["blobs_uploaded"] == 0, out.stdout
    assert {n: e["bytes_sent"] for n, e in doc["nodes"].items()} == {"n1": 0, "n2": 0, "n3": 0, "n4": total}
    assert current(pool, targets[3]) == f"reg@{img.manifest.digest[7:]}"
    history = json.loads(CliRunner().invoke(cli, ["history", "--json"]).stdout)
    assert [e["kind"] for e in history["events"]][:2] == ["push", "push"]
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert grep_secret(rg_cluster, PASSWORD, basic) == []
    assert PASSWORD not in out.stdout + out.stderr


def test_registry_vs_direct_same_image_same_run(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    """Not a timing assertion: both ways deliver, and the times are printed for the record."""
    img = make_image("rgtime", big=random.Random(12).randbytes(40_000_000))
    started = time.monotonic()
    via = push(img, targets, pool, dataclasses.replace(opts(stager(registry)), env="timed-registry"))
    registry_s = time.monotonic() - started
    for t in targets:  # the same cold start for the direct push: no blob on any node
        transport = pool.connect(t)
        try:
            transport.run(["sh", "-c", f"rm -f {t.store}/blobs/sha256/* {t.store}/stamps/*"])
        finally:
            transport.close()
    started = time.monotonic()
    direct = push(img, targets, pool, PushOptions(env="timed-direct", idle_timeout=5))
    direct_s = time.monotonic() - started
    assert via.outcome == "all" and direct.outcome == "all", (via.as_json(), direct.as_json())
    mb = sum(b.size for b in img.blobs) / 1e6
    print(
        f"\n[registry-vs-direct] {mb:.1f} MB to {len(targets)} nodes (node links {NODE_RATE}, registry link "
        f"{REGISTRY_RATE}): registry {registry_s:.2f}s (upload {via.as_json()['fanout']['upload_seconds']}s), "
        f"direct {direct_s:.2f}s, ratio {registry_s / direct_s:.2f}"
    )


def _staged_later(report: list[DeliveryReport], worker: threading.Thread) -> DeliveryReport:
    worker.join(180)
    assert not worker.is_alive() and report, "the push did not end"
    return report[0]


def test_registry_stopped_mid_pull_fails_cleanly_and_a_rerun_resumes(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    old = make_image("rgstop0")
    assert push(old, targets, pool, opts(stager(registry), env="stop")).outcome == "all"
    img = make_image("rgstop", big=random.Random(13).randbytes(60_000_000))
    stage = stager(registry)
    stage.begin(img, targets)  # uploaded first, so the stop below falls in the nodes' pull
    report: list[DeliveryReport] = []
    atomic = opts(stager(registry), env="stop", atomic=True)
    worker = threading.Thread(target=lambda: report.append(push(img, targets, pool, atomic)))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and partial_bytes(rg_cluster.nodes[0]) < 5_000_000:
        time.sleep(0.05)
    registry.stop()
    try:
        first = _staged_later(report, worker)
    finally:
        registry.start()
    assert first.outcome == "none", first.as_json()
    for t in targets:  # every node failed on its own, and still runs the old version
        entry = first.nodes[t.name]
        assert entry.status in ("failed", "skipped"), first.as_json()
        assert current(pool, t, "stop") == f"stop@{old.manifest.digest[7:]}"
    assert "cannot fetch blob" in str(first.nodes[targets[0].name].message)
    kept = partial_bytes(rg_cluster.nodes[0])
    assert kept >= 5_000_000
    again = push(img, targets, pool, opts(stager(registry), env="stop"))
    assert again.outcome == "all", again.as_json()
    assert again.nodes[targets[0].name].resumed_from >= 5_000_000  # the partial was resumed, not refetched
    assert all(current(pool, t, "stop") == f"stop@{img.manifest.digest[7:]}" for t in targets)


class FlipProxy:
    """An HTTP proxy on the sandbox bridge that passes every request to the registry, and flips
    one byte of each GET body of ``flip`` (a digest) while it is set."""

    def __init__(self, bind: str, upstream: str) -> None:
        self.flip: str | None = None
        self.flipped = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _pass(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if self.command == "GET" and proxy.flip and proxy.flip in self.path and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                    proxy.flipped += 1
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _pass

        self._server = http.server.ThreadingHTTPServer((bind, 0), Handler)
        self.address = f"{bind}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_corrupt_bytes_are_caught_by_each_node_and_never_stored(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    proxy = FlipProxy(rg_cluster.bridge_address.split("/")[0], registry.address)
    try:
        img = make_image("rgflip", big=random.Random(14).randbytes(3_000_000))
        layer = max(img.layers, key=lambda b: b.size).digest
        proxy.flip = layer
        bad = push(img, targets[:2], pool, opts(stager(registry, proxy.address), env="flip", atomic=True))
        assert bad.outcome == "none" and proxy.flipped >= 2, bad.as_json()
        for t in targets[:2]:
            assert "arrived corrupt" in str(bad.nodes[t.name].message)
            node = next(n for n in rg_cluster.nodes if n.name == t.name)
            assert not Path(node.path("store", "blobs", "sha256", layer[7:])).exists()
            assert current(pool, t, "flip") == "none"
        # the same proxy as a group's mirror: its damaged copy is refused, the registry's used
        mirrored = [dataclasses.replace(t, registry_mirror=f"http://{proxy.address}") for t in targets[:2]]
        good = push(img, mirrored, pool, opts(stager(registry), env="flip"))
        assert good.outcome == "all", good.as_json()
        assert good.as_json()["fanout"]["mirrors"] == {t.name: f"http://{proxy.address}" for t in mirrored}
        proxy.flip = None
        assert all(current(pool, t, "flip") == f"flip@{img.manifest.digest[7:]}" for t in targets[:2])
    finally:
        proxy.close()


def test_a_link_cut_mid_pull_fails_that_node_and_a_rerun_converges(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    img = make_image("rgcut", big=random.Random(15).randbytes(50_000_000))
    stage = stager(registry)
    stage.begin(img, targets)
    victim = rg_cluster.nodes[1]
    report: list[DeliveryReport] = []
    worker = threading.Thread(
        target=lambda: report.append(push(img, targets, pool, opts(stager(registry), env="cut")))
    )
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and partial_bytes(victim) < 4_000_000:
        time.sleep(0.05)
    sh("ip", "link", "set", victim.veth, "down")
    try:
        first = _staged_later(report, worker)
    finally:
        sh("ip", "link", "set", victim.veth, "up")
        sh("tc", "qdisc", "replace", "dev", victim.veth, "root", "tbf", "rate", NODE_RATE, "burst",
           str(plans.tbf_burst(NODE_RATE)), "latency", "50ms")  # fmt: skip
    assert first.nodes[victim.name].status == "failed", first.as_json()
    assert first.outcome == "partial", first.as_json()
    assert all(first.nodes[t.name].status == "ok" for t in targets if t.name != victim.name)
    again = push(img, targets, pool, opts(stager(registry), env="cut"))
    assert again.outcome == "all", again.as_json()
    # the victim's agent may have finished its pull once the link came back (its SSH session was
    # already gone): then its store holds the verified blobs and the re-run only activates
    assert again.nodes[victim.name].status == "ok"
    assert all(again.nodes[t.name].bytes_sent == 0 for t in targets if t.name != victim.name)
    assert all(current(pool, t, "cut") == f"cut@{img.manifest.digest[7:]}" for t in targets)


def test_nodes_get_a_pull_only_token_from_a_token_service(
    rg_cluster: SandboxPlan,
    registry: Registry,
    targets: list[NodeSpec],
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    tmp_path: Path,
) -> None:
    tokens = rs.TokenServer(tmp_path / "token", users={USER: PASSWORD})
    registry.stop()
    saved = registry.auth
    registry.auth = tokens.auth_config()
    registry.start()
    try:
        img = make_image("rgtoken")
        report = push(img, targets[:2], pool, opts(stager(registry), env="tok"))
        assert report.outcome == "all", report.as_json()
        assert report.as_json()["fanout"]["auth"] == "bearer token (pull only)"
        scopes = [r.scopes for r in tokens.requests]
        assert scopes[0][0] == f"repository:{REPO}:pull,push", scopes  # this machine's push
        assert [f"repository:{REPO}:pull"] in scopes[1:], scopes  # the nodes': pull only
        jwt_head = base64.urlsafe_b64encode(b'{"typ": "JWT", "alg": "RS256", "x5c"').decode()  # 36 bytes
        assert grep_secret(rg_cluster, PASSWORD, jwt_head) == []
        assert all(current(pool, t, "tok") == f"tok@{img.manifest.digest[7:]}" for t in targets[:2])
    finally:
        registry.stop()
        registry.auth = saved
        registry.start()
        tokens.close()
