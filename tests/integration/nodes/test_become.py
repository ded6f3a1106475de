"""Nodes where the SSH user is not root: a real login user and a real sudo on sandbox nodes.

The user exists only inside two nodes' mount namespaces (their sshd's): a copy of /etc/passwd,
/etc/group and /etc/shadow with one more line, and a sudoers file of the node's own, are
bind-mounted over the originals there and unmounted afterwards; this machine's files are never
changed. n4's sudoers holds the narrow rule envctl documents; n5's gives the user nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from nd_jump import JumpCluster

from envctl.adapters import system
from envctl.adapters.oci_layout import OciImage
from envctl.cli import cli
from envctl.core.sandbox import SandboxNode
from envctl.services.deliver.nodeclient import SUDOERS_EXAMPLE

pytestmark = pytest.mark.integration
USER, UID = "ectbecome", 4242
FILES = ("passwd", "group", "shadow", "sudoers")


def in_node(node: SandboxNode, *argv: str) -> None:
    pid = system.read_pid(node.path("sshd.pid"), "sshd")
    assert pid is not None, f"{node.name}: sshd is not running"
    subprocess.run(["nsenter", f"--mount=/proc/{pid}/ns/mnt", *argv], check=True, capture_output=True)


def add_user(node: SandboxNode, sudo_rule: str | None) -> None:
    # in the node's own directory: the node sees this machine's /tmp only as its private copy
    where = Path(node.path("become"))
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    lines = {
        "passwd": f"{USER}:x:{UID}:{UID}::/tmp:/bin/sh",
        "group": f"{USER}:x:{UID}:",
        "shadow": f"{USER}:*:19000:0:99999:7:::",
    }
    for name, line in lines.items():
        (where / name).write_text(Path("/etc", name).read_text() + line + "\n")
    (where / "sudoers").write_text(
        "Defaults env_reset\nDefaults secure_path=/usr/sbin:/usr/bin:/sbin:/bin\nroot ALL=(ALL:ALL) ALL\n"
        + (sudo_rule + "\n" if sudo_rule else "")
    )
    for name in FILES:
        os.chmod(where / name, 0o440 if name == "sudoers" else 0o644 if name != "shadow" else 0o640)
        in_node(node, "mount", "--bind", str(where / name), f"/etc/{name}")


@pytest.fixture(scope="module")
def become_nodes(
    jump_cluster: JumpCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JumpCluster]:
    """n4: the user with the documented sudo rule; n5: the user without any."""
    assert shutil.which("sudo"), "sudo is needed on the nodes (apt-get install sudo)"
    assert os.path.isfile("/usr/bin/python3"), "the nodes' python3 is /usr/bin/python3 in the rule"
    rule = SUDOERS_EXAMPLE.format(user=USER)
    n4, n5 = jump_cluster.plan.nodes[3], jump_cluster.plan.nodes[4]
    # sshd reads authorized_keys as the user: let it through the sandbox's directories (never
    # listing them) to that file of public keys; the private keys there stay 0600
    opened = [jump_cluster.plan.dir, *(p for n in (n4, n5) for p in (n.root, n.path("ssh")))]
    modes = {path: os.stat(path).st_mode & 0o7777 for path in opened}
    try:
        for path in opened:
            os.chmod(path, modes[path] | 0o111)
        for node in (n4, n5):
            os.chmod(node.path("ssh", "authorized_keys"), 0o644)
        add_user(n4, rule)
        add_user(n5, None)
        yield jump_cluster
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
        for node in (n4, n5):
            for name in FILES:
                pid = system.read_pid(node.path("sshd.pid"), "sshd")
                if pid is not None:
                    subprocess.run(
                        ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "umount", f"/etc/{name}"], check=False
                    )


def inventory(cluster: JumpCluster, tmp: Path, **nodes: dict[str, object]) -> Path:
    plan = cluster.plan
    text = '[defaults]\nssh_config = ""\nruntime = "prefix"\n'
    text += f'user = "{USER}"\nkey = "{plan.client_key}"\nknown_hosts = "{plan.known_hosts}"\n'
    for name, settings in nodes.items():
        text += f"[nodes.{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    path = tmp / "become.toml"
    path.write_text(text)
    return path


def run(*args: str) -> tuple[int, dict]:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.stdout.strip(), f"{args}: exit {out.exit_code}: {out.output[-2000:]}"
    return out.exit_code, json.loads(out.stdout)


def test_become_pushes_through_sudo_and_without_it_the_hint_names_path_and_fixes(
    become_nodes: JumpCluster, tmp_path: Path, make_image: Callable[..., OciImage]
) -> None:
    n4, n5 = (n.address for n in become_nodes.plan.nodes[3:5])
    inv = inventory(
        become_nodes,
        tmp_path,
        sudo={"host": n4, "become": True},
        plain={"host": n4},
        writable={"host": n4, "store": "/tmp/ect-store", "prefix_root": "/tmp/ect-envs"},
        norule={"host": n5, "become": True},
    )
    image = make_image("become")

    code, who = run("exec", "-i", str(inv), "--limit", "plain", "--json", "--", "id", "-u")
    assert code == 0 and who["nodes"]["plain"]["stdout"].strip() == str(UID), who  # really not root
    # the rule is narrow: the user may run the agent's interpreter as root, not anything else
    code, other = run("exec", "-i", str(inv), "--limit", "plain", "--json", "--", "sudo", "-n", "id", "-u")
    assert code == 1, other

    code, pushed = run("push", str(image.root), "-i", str(inv), "--env", "bec", "--json")
    nodes = pushed["nodes"]
    assert nodes["sudo"]["status"] == "ok", nodes["sudo"]
    assert nodes["writable"]["status"] == "ok", nodes["writable"]
    plain, norule = nodes["plain"], nodes["norule"]
    assert plain["status"] != "ok" and "/var/lib/envctl" in plain["error"], plain
    assert (
        "become = true" in plain["hint"]
        and "/var/lib/envctl" in plain["hint"]
        and "prefix_root" in plain["hint"]
    )
    assert norule["status"] != "ok" and "sudo -n refused" in norule["error"], norule
    assert f"{USER} ALL=(root) NOPASSWD:" in norule["hint"], norule

    listing = "stat -c %u /opt/envctl/envs/bec/app/envmod.py /tmp/ect-envs/bec/app/envmod.py"
    code, owners = run("exec", "-i", str(inv), "--limit", "plain", "--json", "--", "sh", "-c", listing)
    # through sudo the files belong to root; in the writable prefix root, to the login user
    assert code == 0 and owners["nodes"]["plain"]["stdout"].split() == ["0", str(UID)], owners
