"""Ansible inventories read by the real ``ansible-inventory`` (ansible-core), imported, and then
used against the real sandbox sshd nodes: a directory with ``host:port`` lines, ``group_vars/``
and ``host_vars/``, a bastion given as ``-o ProxyJump`` in ``ansible_ssh_common_args``, a local
host, become; and a dynamic inventory script."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner
from nd_jump import JumpCluster

from envctl.adapters.ansible_inventory import ansible_inventory_command
from envctl.cli import cli

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, dict, str]:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.stdout.strip(), f"{args}: exit {out.exit_code}: {out.output[-2000:]}"
    return out.exit_code, json.loads(out.stdout), out.stderr


def ansible_dir(cluster: JumpCluster, root: Path) -> Path:
    n1, n2, n3, _n4, _n5 = cluster.plan.nodes
    src = root / "inventory"
    (src / "group_vars").mkdir(parents=True)
    (src / "host_vars").mkdir()
    (src / "hosts.ini").write_text(
        f"[bastions]\nbastion ansible_host={n1.address}\n\n"
        f"[behind]\n{n2.address}:22\nnode3 ansible_host={n3.address}\n\n"
        "[here]\nlaptop ansible_connection=local\n"
    )
    known = cluster.plan.known_hosts
    (src / "group_vars" / "all.yml").write_text(
        f"ansible_user: root\nansible_ssh_private_key_file: {cluster.plan.client_key}\n"
        f"ansible_ssh_common_args: '-o UserKnownHostsFile={known}'\nrack: r7\n"
    )
    (src / "group_vars" / "behind.yml").write_text(
        f"ansible_ssh_common_args: '-o ProxyJump=bastion -o UserKnownHostsFile={known} -o ForwardAgent=yes'\n"
    )
    (src / "host_vars" / "node3.yml").write_text("ansible_become: true\nansible_become_user: root\n")
    return src


def test_a_directory_read_by_ansible_inventory_is_imported_and_reaches_the_nodes(
    jump_cluster: JumpCluster, tmp_path: Path
) -> None:
    assert ansible_inventory_command(), "ansible-core is needed (pip install ansible-core)"
    src = ansible_dir(jump_cluster, tmp_path)
    out = tmp_path / "cluster.toml"
    code, doc, err = run("inventory", "import", str(src), "-o", str(out), "--json")
    assert code == 0, doc
    assert "read by ansible-inventory" in out.read_text()
    n1, n2, n3 = (n.address for n in jump_cluster.plan.nodes[:3])
    assert set(doc["nodes"]) == {"bastion", n2, "node3", "laptop"}
    # every dropped variable is named on stderr, with --json as well
    assert "rack is not used by envctl" in err
    assert "ansible_ssh_common_args -o ForwardAgent is not honoured" in err
    assert set(doc["dropped"]["rack"]["hosts"]) == set(doc["nodes"])

    code, shown, _ = run("inventory", "show", "-i", str(out), "--json")
    nodes = {n["name"]: n for n in shown["nodes"]}
    assert nodes[n2]["port"] == 22 and nodes[n2]["jump"]["name"] == "bastion"
    assert nodes["node3"]["become"] is True and nodes["laptop"]["connection"] == "local"

    script = 'echo "${SSH_CONNECTION:-none}"; readlink /proc/self/ns/net'
    code, ran, _ = run("exec", "-i", str(out), "--json", "--", "sh", "-c", script)
    assert code == 0 and ran["ok"] is True, ran
    seen = {name: node["stdout"].split() for name, node in ran["nodes"].items()}
    assert seen[n2][0] == n1 and seen[n2][2] == n2  # through the bastion
    assert seen["node3"][0] == n1 and seen["node3"][2] == n3
    here = os.readlink("/proc/self/ns/net")
    assert seen["laptop"][-1] == here and seen[n2][-1] != here  # this machine, no SSH

    # the built-in reader (no ansible-core) reads the same directory to the same nodes
    code, builtin, _ = run("inventory", "import", str(src), "--reader", "builtin", "--json")
    assert code == 0 and tomllib.loads(builtin["toml"])["nodes"] == tomllib.loads(out.read_text())["nodes"]
    assert {g: set(m) for g, m in builtin["groups"].items()} == {g: set(m) for g, m in doc["groups"].items()}


def test_a_dynamic_inventory_script_is_run_by_ansible(jump_cluster: JumpCluster, tmp_path: Path) -> None:
    n2 = jump_cluster.plan.nodes[1]
    document = {
        "gpu": {"hosts": ["dyn1"]},
        "_meta": {"hostvars": {"dyn1": {"ansible_host": n2.address, "ansible_port": 22}}},
    }
    script = tmp_path / "cloud.py"
    script.write_text(
        f"#!{shutil.which('python3')}\nimport json, sys\n"
        f"print(json.dumps({document!r} if '--list' in sys.argv else {{}}))\n"
    )
    script.chmod(0o755)
    code, doc, _ = run("inventory", "import", str(script), "--json")
    assert code == 0 and doc["nodes"] == ["dyn1"] and doc["groups"] == {"gpu": ["dyn1"]}, doc
    assert f'host = "{n2.address}"' in doc["toml"]
    code, refused, _ = run("inventory", "import", str(script), "--reader", "builtin", "--json")
    assert code == 2 and "dynamic inventory" in refused["error"]
