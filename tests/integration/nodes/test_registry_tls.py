"""``--fanout registry`` to Debian's real docker-registry serving HTTPS with a certificate from a
private CA made here, with htpasswd Basic auth, on real sshd nodes: ``--registry-ca`` (the upload
and each node's pull, the CA handed over in memory), a wrong CA refused, a node that does not
trust the registry told what to do, and ``--registry-auth node`` (each node's own docker login).

Names: sandbox prefix ``rc`` and addresses inside 10.252.9.0/26 only (this area's share).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))
import registry_services as rs

from envctl.adapters import system
from envctl.adapters.oci_layout import OciImage
from envctl.adapters.ssh_pool import SSHPool
from envctl.cli import cli
from envctl.core import sandbox as plans
from envctl.core import toml_out
from envctl.core.sandbox import SandboxNode, SandboxPlan, plan_sandbox

pytestmark = pytest.mark.integration

USER, PASSWORD = "ci", "rc-pw-71c2e9"  # the sender's login (it pushes)
PULLER, PULLER_PASSWORD = "puller", "rc-node-pw-3f8a"  # the nodes' own login
REPO = "envs/rc"
NODE_DOCKER_CONFIG = "/tmp/rc-docker"  # each node's private /tmp; set by its own sshd (SetEnv)


TlsRegistry = rs.NetnsRegistry  # over TLS (``tls``), htpasswd for the sender's and the nodes' logins


def _set_node_env(node: SandboxNode, line: str) -> None:
    """Test only: the node's own sshd sets DOCKER_CONFIG for its sessions (never the sender)."""
    config = Path(node.path("ssh", "sshd_config"))
    config.write_text(config.read_text() + f"\n{line}\n")
    pid = system.read_pid(node.path("sshd.pid"), "sshd")
    assert pid is not None
    os.kill(pid, signal.SIGHUP)


@pytest.fixture(scope="module")
def rc_cluster() -> Iterator[SandboxPlan]:
    """Two prefix nodes and one for the registry; always taken down."""
    from envctl.services.cluster import sandbox

    directory = "/var/tmp/ect-rc"  # fixed: a killed earlier run is cleared by the down below
    plan = plan_sandbox(3, directory=directory, prefix="rc", subnet="10.252.9.0/26", runtime="prefix")
    sandbox.down(directory)
    try:
        sandbox.up(plan)
        for node in plan.nodes[:-1]:
            _set_node_env(node, f"SetEnv DOCKER_CONFIG={NODE_DOCKER_CONFIG}")
        time.sleep(1.0)
        yield plan
    finally:
        sandbox.down(directory)


@pytest.fixture(scope="module")
def registry(rc_cluster: SandboxPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    folder = tmp_path_factory.mktemp("rc-registry")
    users = rs.htpasswd(folder / "htpasswd", {USER: PASSWORD, PULLER: PULLER_PASSWORD})
    tls = rs.make_tls(folder / "tls", rc_cluster.nodes[-1].address)
    reg = TlsRegistry(rc_cluster.nodes[-1], folder, rs.htpasswd_auth(users), tls)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def inventory(rc_cluster: SandboxPlan, registry: TlsRegistry, tmp_path: Path) -> Callable[..., Path]:
    def write(**defaults: str) -> Path:
        document = plans.inventory_document(rc_cluster)
        document["nodes"].pop(rc_cluster.nodes[-1].name)
        document["groups"] = {"pull": {"nodes": ["n1", "n2"]}}
        document["defaults"].update(registry=f"registry://{registry.address}/{REPO}", **defaults)
        path = tmp_path / "inventory.toml"
        path.write_text(toml_out.dumps(document))
        return path

    return write


@pytest.fixture
def sender_login(registry: TlsRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = rs.docker_config(
        tmp_path / "docker", {"auths": {registry.address: {"auth": rs.basic_auth(USER, PASSWORD)}}}
    )
    monkeypatch.setenv("DOCKER_CONFIG", docker["DOCKER_CONFIG"])
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)


def current(pool: SSHPool, rc_cluster: SandboxPlan, name: str, env: str) -> str:
    from envctl.adapters.inventory_file import load_inventory

    spec = next(n for n in load_inventory(Path(rc_cluster.inventory)).nodes if n.name == name)
    transport = pool.connect(spec)
    try:
        return (
            transport.run(["sh", "-c", f"readlink {spec.prefix_root}/{env} || echo none"])
            .stdout.decode()
            .strip()
        )
    finally:
        transport.close()


def on_node_disks(plan: SandboxPlan, *needles: bytes) -> list[str]:
    found = []
    for node in plan.nodes[:-1]:
        for path in Path(node.root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {n[:12]!r}" for n in needles if n in data]
    return found


def run(argv: list[str]) -> tuple[int, dict[str, Any], str]:
    out = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return out.exit_code, json.loads(out.stdout), out.stderr


def test_a_private_ca_reaches_the_upload_and_each_node_and_a_wrong_one_is_refused(
    rc_cluster: SandboxPlan,
    registry: TlsRegistry,
    inventory: Callable[..., Path],
    sender_login: None,
    pool: SSHPool,
    make_image: Callable[..., OciImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    img = make_image("rc1", big=os.urandom(4_000_000))
    base = ["push", str(img.root), "-i", str(inventory()), "--env", "rc", "--json"]
    # a wrong CA: the upload is refused, one line naming the registry, nothing reaches a node
    wrong = rs.make_tls(tmp_path / "wrong", registry.node.address)
    code, doc, _ = run([*base, "--registry-ca", str(wrong.ca)])
    assert code == 1 and doc["outcome"] == "none", doc
    for entry in doc["nodes"].values():
        message = entry["error"]
        assert message.startswith(
            f"registry://{registry.address}/{REPO}: the registry's certificate is not trusted"
        )
        assert "\n" not in message and entry["bytes_sent"] == 0
    assert all(current(pool, rc_cluster, n, "rc") == "none" for n in ("n1", "n2"))
    # the sender trusts the CA (SSL_CERT_FILE) but the nodes were not handed it: they say what to do
    monkeypatch.setenv("SSL_CERT_FILE", str(registry.tls.ca))
    code, doc, _ = run(base)
    assert code == 1 and doc["outcome"] == "none", doc
    for entry in doc["nodes"].values():
        assert "does not trust the registry's certificate" in str(entry), entry
        assert "--registry-ca" in str(entry.get("hint")), entry
    monkeypatch.delenv("SSL_CERT_FILE")
    # the right CA, from the inventory's registry_ca (relative to the inventory's folder)
    shutil.copy(registry.tls.ca, tmp_path / "harbor-ca.pem")
    code, doc, _ = run(
        ["push", str(img.root), "-i", str(inventory(registry_ca="harbor-ca.pem")), "--env", "rc", "--json"]
    )
    assert code == 0 and doc["outcome"] == "all", doc
    fanout = doc["fanout"]
    assert (fanout["mode"], fanout["auth"], fanout["ca"]) == (
        "registry",
        "basic",
        str(tmp_path / "harbor-ca.pem"),
    )
    assert all(current(pool, rc_cluster, n, "rc") == f"rc@{img.manifest.digest[7:]}" for n in ("n1", "n2"))
    pem = registry.tls.ca.read_bytes()
    assert on_node_disks(rc_cluster, pem, pem.splitlines()[1], PASSWORD.encode()) == []


def test_registry_auth_node_pulls_with_each_nodes_own_login_and_never_the_senders(
    rc_cluster: SandboxPlan,
    registry: TlsRegistry,
    inventory: Callable[..., Path],
    sender_login: None,
    pool: SSHPool,
    make_image: Callable[..., OciImage],
) -> None:
    img = make_image("rc2", big=os.urandom(3_000_000))
    n1 = rc_cluster.nodes[0]
    folder = Path(n1.path("tmp", "rc-docker"))  # n1's /tmp/rc-docker
    rs.docker_config(
        folder, {"auths": {f"https://{registry.address}": {"auth": rs.basic_auth(PULLER, PULLER_PASSWORD)}}}
    )
    try:
        argv = ["push", str(img.root), "-i", str(inventory()), "--env", "rcn", "--json",
                "--registry-auth", "node", "--registry-ca", str(registry.tls.ca)]  # fmt: skip
        code, doc, _ = run([*argv, "--limit", "n1"])
        assert code == 0 and doc["outcome"] == "all" and doc["fanout"]["auth"] == "node's own login", doc
        assert current(pool, rc_cluster, "n1", "rcn") == f"rcn@{img.manifest.digest[7:]}"
        # n2 has no login of its own: the sender's is not handed over, so its pull is refused
        code, doc, _ = run([*argv, "--limit", "n2"])
        assert code == 1 and doc["outcome"] == "none", doc
        message = str(doc["nodes"]["n2"])
        assert "an anonymous pull" in message and f"{NODE_DOCKER_CONFIG}/config.json" in message, message
        assert current(pool, rc_cluster, "n2", "rcn") == "none"
        # a malformed config on a node: one line naming that node's file
        rs.docker_config(folder, {"auths": {registry.address: {"auth": "%%%"}}})
        img2 = make_image("rc3", big=os.urandom(1_000_000))
        code, doc, _ = run([*argv[:1], str(img2.root), *argv[2:], "--limit", "n1"])
        entry = doc["nodes"]["n1"]
        assert code == 1 and f"{NODE_DOCKER_CONFIG}/config.json: auths." in str(entry), entry
        assert "not base64 of USER:PASSWORD" in str(entry) and PULLER_PASSWORD not in json.dumps(doc)
        assert on_node_disks(rc_cluster, PASSWORD.encode()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_registry_is_really_tls_only(registry: TlsRegistry) -> None:
    """The premise of the tests above: plain HTTP gets nothing, and the CA made here is needed."""
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(
            f"https://{registry.address}/v2/", timeout=5, context=ssl.create_default_context()
        )
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
