"""``envctl bootstrap -i`` over real SSH: each node is an sshd serving a fresh Debian root.

The sshd of each node is the root's own, run chrooted into it (in a private mount namespace, on
a loopback port): a login sees the root's files and packages, as on a freshly installed node,
and apt inside it reaches Debian's archive. Node ``fresh`` (bookworm, root login) starts bare;
node ``ready`` (bullseye, login ``admin`` with sudo) was bootstrapped before, so its check finds
nothing to do and it is left alone. After the run the service user logs in with its key and runs
the agent through the narrow sudo rule.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envctl.core.bootstrap import EXIT_READY, BootstrapOptions
from envctl.core.node import NodeSpec
from envctl.node.bundle import agent_bundle
from envctl.services.bootstrap.script import render

from .roots import Root, unpack

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration

SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
"""


@dataclass(frozen=True)
class Node:
    name: str
    root: Root
    port: int
    user: str
    sshd: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def authorize(root: Root, user: str, home: str, pub: str) -> None:
    ssh = root.path / home.lstrip("/") / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh / "authorized_keys").write_text(pub)
    root.run("chown", "-R", f"{user}:", f"{home}/.ssh").check_returncode()


def serve(name: str, root: Root, user: str, log: Path) -> Node:
    """Start the root's own sshd chrooted into it on a free loopback port; wait until it listens."""
    port = free_port()
    (root.path / "etc/ssh/envctl-test-sshd_config").write_text(SSHD_CONFIG.format(port=port))
    (root.path / "run/sshd").mkdir(mode=0o755, exist_ok=True)
    argv = root.argv("/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/envctl-test-sshd_config")
    sshd = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            pytest.fail(f"{name}: sshd exited: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Node(name, root, port, user, sshd)
        time.sleep(0.1)
    sshd.kill()
    pytest.fail(f"{name}: sshd did not listen within 20s: {log.read_text()}")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[list[Node], Path, str]]:
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bootstrap-test", "-f", str(key)], check=True
    )
    pub = key.with_suffix(".pub").read_text()
    fresh = unpack("bookworm", tmp_path / "fresh")
    ready = unpack("bullseye", tmp_path / "ready")
    started: list[Node] = []
    try:
        # `ready` was bootstrapped before (chroot), and has an admin login with full sudo
        done = ready.bootstrap(render(options(pub)).text)
        assert done.returncode == EXIT_READY, done.stdout + done.stderr
        ready.run("useradd", "--create-home", "--shell", "/bin/sh", "admin").check_returncode()
        ready.run("usermod", "-p", "*", "admin").check_returncode()  # not locked: sshd has no PAM
        (ready.path / "etc/sudoers.d/admin").write_text("admin ALL=(ALL) NOPASSWD: ALL\n")
        (ready.path / "etc/sudoers.d/admin").chmod(0o440)
        authorize(ready, "admin", "/home/admin", pub)
        authorize(fresh, "root", "/root", pub)
        started.append(serve("fresh", fresh, "root", tmp_path / "fresh-sshd.log"))
        started.append(serve("ready", ready, "admin", tmp_path / "ready-sshd.log"))
        known, inventory = tmp_path / "known_hosts", tmp_path / "nodes.toml"
        lines, doc = [], ['[defaults]\nssh_config = ""\n']
        for node in started:
            host_key = (node.root.path / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
            lines.append(f"[127.0.0.1]:{node.port} {' '.join(host_key)}\n")
            doc.append(
                f'[nodes.{node.name}]\nhost = "127.0.0.1"\nport = {node.port}\nuser = "{node.user}"\n'
                f'key = "{key}"\nknown_hosts = "{known}"\nruntime = "prefix"\n'
            )
        known.write_text("".join(lines))
        inventory.write_text("\n".join(doc))
        yield started, inventory, pub
    finally:
        for node in started:
            node.sshd.terminate()
            try:
                node.sshd.wait(10)
            except subprocess.TimeoutExpired:
                node.sshd.kill()
                node.sshd.wait(10)
        fresh.remove()
        ready.remove()


def options(pub: str) -> BootstrapOptions:
    return BootstrapOptions(service_user="envctl", authorized_key=pub.strip())


def envctl(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENVCTL_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "envctl", *args], capture_output=True, text=True, timeout=1200, env=env
    )


def test_bootstrap_over_ssh_runs_where_needed_and_shows_before_and_after(
    nodes: tuple[list[Node], Path, str], tmp_path: Path
) -> None:
    started, inventory, pub = nodes
    flags = ["--user", "envctl", "--authorized-key", pub.strip()]
    done = envctl("bootstrap", "-i", str(inventory), *flags, "--json", state=tmp_path / "state")
    doc = json.loads(done.stdout)
    assert_envelope(doc, done.returncode, "envctl.bootstrap/1")
    assert doc["ok"] is True, json.dumps(doc["nodes"]["ready"])[-600:]
    fresh, ready = doc["nodes"]["fresh"], doc["nodes"]["ready"]
    assert fresh["status"] == "bootstrapped"
    assert fresh["needed"] == fresh["changed"] == ["python", "dirs", "agent", "user", "sudo"]
    assert fresh["left"] == [] and fresh["missing"] == []
    assert fresh["facts_changed"]["python"] == {"before": "none", "after": "3.11.2"}
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(started[0].root.path / "etc/ssh/ssh_host_ed25519_key.pub")],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    assert any(fingerprint in k for k in fresh["host_keys"]), fresh["host_keys"]
    # the older release, reached as a non-root login through sudo: its check found nothing to do
    assert (ready["status"], ready["needed"], ready["changed"]) == ("unchanged", [], [])
    assert ready["facts_after"]["os"] == "debian 11" and ready["facts_changed"] == {}

    # the service user the run made logs in with its key and runs the agent through its sudo rule
    from envctl.adapters.ssh_pool import SSHPool

    node = started[0]
    spec = NodeSpec(
        "fresh", "127.0.0.1", port=node.port, user="envctl", key=str(tmp_path / "id_ed25519"),
        known_hosts=str(tmp_path / "known_hosts"),
    )  # fmt: skip
    agent = f"/var/lib/envctl/agent/{agent_bundle().filename}"
    with SSHPool() as pool:
        transport = pool.connect(spec)
        try:
            argv = ["sudo", "-n", "python3", "-S", "-E", agent, "--store", "/var/lib/envctl"]
            result = transport.run([*argv, "--prefix-root", "/opt/envctl/envs", "state"], check=False)
            assert (result.exit_code, json.loads(result.stdout)) == (0, {"envs": {}}), result.stderr
            denied = transport.run(["sudo", "-n", "id", "-u"], check=False)
            assert denied.exit_code != 0 and b"password is required" in denied.stderr
        finally:
            transport.close()

    # and envctl itself, as that user with `become = true`, reaches the agent: status answers
    own = tmp_path / "as-envctl.toml"
    own.write_text(
        f'[defaults]\nssh_config = ""\n[nodes.fresh]\nhost = "127.0.0.1"\nport = {node.port}\nuser = "envctl"\n'
        f'become = true\nkey = "{tmp_path / "id_ed25519"}"\nknown_hosts = "{tmp_path / "known_hosts"}"\n'
        'runtime = "prefix"\n'
    )
    status = envctl("status", "-i", str(own), "--json", state=tmp_path / "state")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["nodes"]["fresh"]["ok"] is True

    # a second run: every node's check finds nothing to do, and the table says so
    again = envctl("bootstrap", "-i", str(inventory), *flags, state=tmp_path / "state")
    assert again.returncode == 0, again.stdout + again.stderr
    table = [line for line in again.stdout.splitlines() if "unchanged" in line]
    assert len(table) == 2 and all("nothing" in line for line in table), again.stdout
    history = json.loads(envctl("history", "--kind", "bootstrap", "--json", state=tmp_path / "state").stdout)
    assert [e["outcome"] for e in history["events"]] == ["ok", "ok"]
    assert history["events"][1]["details"]["nodes"]["fresh"]["status"] == "bootstrapped"
