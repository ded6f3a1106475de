"""The SSH configuration as the user's own ssh reads it, against the real sandbox sshd nodes:
an Include'd file defines every host, one host has a wrong key before the right one, one is
reached through a ProxyJump chain of two hops, one through a ProxyCommand (OpenSSH's own
``ssh -W``), and every host key is known only from the GlobalKnownHostsFile."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from nd_jump import JumpCluster

from envctl.adapters.inventory_file import load_inventory
from envctl.cli import cli

pytestmark = pytest.mark.integration


def write_config(cluster: JumpCluster, tmp: Path, global_known_hosts: str) -> Path:
    n1, _n2, n3, n4, n5 = cluster.plan.nodes
    key = cluster.plan.client_key
    wrong = tmp / "wrong_key"
    if not wrong.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    config = tmp / f"ssh_config-{Path(global_known_hosts).name}"
    included = tmp / "hosts.d"
    included.mkdir(exist_ok=True)
    (included / "nodes.conf").write_text(
        f"""Host c-bastion
  HostName {n1.address}
  IdentityFile {key}
Host c-hop
  HostName {n3.address}
  IdentityFile {key}
Host c-keys
  HostName {_n2.address}
  IdentityFile {wrong}
  IdentityFile {key}
Host c-chain
  HostName {n4.address}
  ProxyJump c-bastion,c-hop
  IdentityFile {key}
Host c-proxy
  HostName {n5.address}
  ProxyCommand ssh -F {config} -W %h:%p c-bastion
  IdentityFile {key}
Host c-alias
  HostName {_n2.address}
  HostKeyAlias somewhere-else
  IdentityFile {key}
"""
    )
    config.write_text(
        f"""Include {included}/*.conf
Host c-*
  User root
  IdentitiesOnly yes
  BatchMode yes
  UserKnownHostsFile {tmp}/no-user-known-hosts
  GlobalKnownHostsFile {global_known_hosts}
"""
    )
    return config


def write_inventory(tmp: Path, config: Path, nodes: list[str]) -> Path:
    body = "".join(f'[nodes.{name}]\nruntime = "prefix"\n' for name in nodes)
    path = tmp / f"inv-{config.name}.toml"
    path.write_text(f'[defaults]\nssh_config = "{config}"\n{body}')
    return path


def run(*args: str) -> tuple[int, dict, str]:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.stdout.strip(), f"{args}: exit {out.exit_code}: {out.output[-2000:]}"
    return out.exit_code, json.loads(out.stdout), out.stderr


def test_include_keys_jump_chain_proxy_command_and_global_known_hosts(
    jump_cluster: JumpCluster, tmp_path: Path
) -> None:
    config = write_config(jump_cluster, tmp_path, jump_cluster.plan.known_hosts)
    inv = write_inventory(tmp_path, config, ["c-keys", "c-chain", "c-proxy", "c-alias"])

    code, shown, err = run("inventory", "show", "-i", str(inv), "--json")
    assert code == 0, shown
    nodes = {n["name"]: n for n in shown["nodes"]}
    assert nodes["c-keys"]["identity_files"] == [str(tmp_path / "wrong_key"), jump_cluster.plan.client_key]
    assert (
        nodes["c-chain"]["jump"]["name"] == "c-hop"
        and nodes["c-chain"]["jump"]["jump"]["name"] == "c-bastion"
    )
    assert nodes["c-proxy"]["proxy_command"].startswith("ssh -F ")
    assert jump_cluster.plan.known_hosts in nodes["c-keys"]["global_known_hosts"]
    # what envctl cannot honour is said, naming the host and the option
    assert "warning: " in err and "Host c-alias: HostKeyAlias is not honoured" in err

    script = 'echo "$SSH_CONNECTION"'
    code, ran, _ = run(
        "exec", "-i", str(inv), "--limit", "c-keys,c-chain,c-proxy", "--json", "--", "sh", "-c", script
    )
    assert code == 0 and ran["ok"] is True, ran
    n1, n2, n3, n4, n5 = (n.address for n in jump_cluster.plan.nodes)
    seen = {name: node["stdout"].split() for name, node in ran["nodes"].items()}
    assert seen["c-keys"][2] == n2 and seen["c-keys"][0] not in (n1, n3)  # direct, second key
    assert seen["c-chain"][2] == n4 and seen["c-chain"][0] == n3  # ... -> c-bastion -> c-hop -> n4
    assert seen["c-proxy"][2] == n5 and seen["c-proxy"][0] == n1  # `ssh -W` on the bastion


def test_a_host_key_only_in_another_global_file_is_unknown(jump_cluster: JumpCluster, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    config = write_config(jump_cluster, tmp_path, str(empty))
    inv = write_inventory(tmp_path, config, ["c-keys"])
    code, doc, _ = run("inventory", "check", "-i", str(inv), "--json")
    assert code == 1
    assert "unknown host key" in doc["nodes"]["c-keys"]["error"], doc


def test_without_openssh_paramiko_reads_what_it_can_and_says_what_it_cannot(
    jump_cluster: JumpCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(jump_cluster, tmp_path, jump_cluster.plan.known_hosts)
    flat = tmp_path / "flat_config"
    # paramiko has no Include: the hosts are read from the file itself, the Include is reported
    flat.write_text(config.read_text() + (tmp_path / "hosts.d" / "nodes.conf").read_text())
    inv = write_inventory(tmp_path, flat, ["c-keys"])
    monkeypatch.setenv("PATH", str(tmp_path / "no-openssh"))
    loaded = load_inventory(inv)
    assert any("Include" in line for line in loaded.warnings), loaded.warnings
    spec = loaded.node("c-keys")
    assert spec.host == jump_cluster.plan.nodes[1].address and len(spec.key_files) == 2
