"""The SSH transport against real sshd nodes of the sandbox."""

from __future__ import annotations

import dataclasses
import io
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from json_envelope import assert_envelope

from envctl.adapters.ssh import connect
from envctl.core.inventory import Inventory
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan
from envctl.errors import RemoteError, TransportError

pytestmark = pytest.mark.integration


def test_connect_and_run_on_every_node_in_parallel(inventory: Inventory) -> None:
    def hostname_ip(spec: NodeSpec) -> tuple[str, str]:
        with connect(spec) as t:
            out = t.run(["sh", "-c", "hostname -I; id -un"]).stdout.decode().split()
            return spec.host, " ".join(out)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(hostname_ip, inventory.nodes))
    assert len(results) == 3
    for host, out in results:
        assert out == f"{host} root"


def test_argv_reaches_the_remote_command_verbatim(inventory: Inventory) -> None:
    nasty = [
        "a b",
        "'single'",
        '"double"',
        "semi;colon",
        "$(touch /tmp/pwned)",
        "`id`",
        "*",
        "\\",
        "",
    ]
    with connect(inventory.node("n1")) as t:
        out = t.run(["printf", "%s\\n", *nasty]).stdout.decode()
        assert out.split("\n")[:-1] == nasty
        assert t.run(["ls", "/tmp/pwned"], check=False).exit_code != 0


def test_stdin_stdout_stderr_and_remote_error(inventory: Inventory) -> None:
    with connect(inventory.node("n2")) as t:
        big = bytes(range(256)) * 8192  # 2 MiB both ways at once: no deadlock
        assert t.run(["cat"], stdin=big).stdout == big
        result = t.run(["sh", "-c", "echo out; echo err >&2; exit 4"], check=False)
        assert (result.exit_code, result.stdout, result.stderr) == (4, b"out\n", b"err\n")
        with pytest.raises(RemoteError) as err:
            t.run(["sh", "-c", "echo 'no space left' >&2; exit 2"])
        assert err.value.message.startswith("n2: `sh -c") and err.value.message.endswith(
            "exited with 2: no space left"
        )


def test_upload_streams_bytes_with_progress(inventory: Inventory) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB
    seen: list[int] = []
    with connect(inventory.node("n3")) as t:
        result = t.upload(
            ["sh", "-c", "cat > /tmp/ps-upload && sha256sum < /tmp/ps-upload"],
            io.BytesIO(data),
            size=len(data),
            progress=seen.append,
        )
    import hashlib

    assert result.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data) and len(seen) > 1


def test_command_timeout_is_reported(inventory: Inventory) -> None:
    with connect(inventory.node("n1")) as t:
        with pytest.raises(TransportError, match=r"^n1: `sleep 30` timed out after 1s"):
            t.run(["sleep", "30"], timeout=1)
        assert t.run(["true"]).exit_code == 0  # the connection survives


def test_private_store_opt_and_tmp_per_node(cluster: SandboxPlan, inventory: Inventory) -> None:
    marker = "ps-private-marker"
    paths = [f"/var/lib/envctl/{marker}", f"/opt/envctl/{marker}", f"/tmp/{marker}"]
    with connect(inventory.node("n1")) as t:
        t.run(["sh", "-c", " && ".join(f"echo n1 > {shlex.quote(p)}" for p in paths)])
        assert t.run(["cat", paths[0]]).stdout == b"n1\n"
    for path in paths:
        assert not Path(path).exists(), f"{path} leaked to the host"
    assert Path(cluster.nodes[0].path("store", marker)).read_text() == "n1\n"
    with connect(inventory.node("n2")) as t:
        result = t.run(["ls", *paths], check=False)
        assert result.exit_code != 0 and result.stdout == b""


def test_unknown_host_key_is_refused_then_accepted_with_the_option(
    inventory: Inventory, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    spec = dataclasses.replace(inventory.node("n1"), known_hosts=str(known))
    with pytest.raises(TransportError) as err:
        connect(spec)
    message = err.value.message
    assert message.startswith("n1: unknown host key for 10.251.7.2: ssh-ed25519 SHA256:")
    assert "--accept-new-host-keys" in (err.value.hint or "")
    assert not known.exists()
    with connect(spec, accept_new_host_keys=True) as t:
        assert t.run(["true"]).exit_code == 0
    recorded = known.read_text()
    assert recorded.startswith("10.251.7.2 ssh-ed25519 ")
    assert recorded.split()[2] in Path(inventory.node("n1").known_hosts).read_text()
    with connect(spec) as t:  # recorded: now accepted without the option
        assert t.run(["true"]).exit_code == 0


def test_changed_host_key_is_refused_even_with_accept_new(inventory: Inventory, tmp_path: Path) -> None:
    real = Path(inventory.node("n1").known_hosts).read_text().splitlines()
    n2_key = next(line for line in real if line.startswith("10.251.7.3 ")).split(" ", 1)[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"10.251.7.2 {n2_key}\n")  # n1's address with n2's key: a "changed" key
    spec = dataclasses.replace(inventory.node("n1"), known_hosts=str(known))
    for accept in (False, True):
        with pytest.raises(TransportError, match=r"^n1: host key for 10\.251\.7\.2 CHANGED"):
            connect(spec, accept_new_host_keys=accept)
    assert known.read_text() == f"10.251.7.2 {n2_key}\n"


def test_wrong_key_file_fails_authentication(inventory: Inventory, tmp_path: Path) -> None:
    spec = dataclasses.replace(inventory.node("n1"), key=str(tmp_path / "missing"))
    with pytest.raises(TransportError, match=r"^n1: key file .* not found"):
        connect(spec)
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    spec = dataclasses.replace(spec, key=str(other))
    with pytest.raises(TransportError, match=r"^n1: authentication failed for root@10\.251\.7\.2"):
        connect(spec)


def test_address_nobody_answers_times_out_naming_the_node(inventory: Inventory) -> None:
    spec = dataclasses.replace(inventory.node("n1"), name="ghost", host="10.251.7.60")
    with pytest.raises(TransportError) as err:
        connect(spec, connect_timeout=1.5)
    assert err.value.message.startswith("ghost: ")
    assert "10.251.7.60:22" in err.value.message and "\n" not in err.value.message


def test_jump_host_through_node_1_to_node_2(inventory: Inventory) -> None:
    via = dataclasses.replace(inventory.node("n2"), jump=inventory.node("n1"))
    with connect(via) as t:
        client_ip = t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()[0]
    assert client_ip == b"10.251.7.2"  # n2 saw the connection come from n1, not the host
    unreachable = dataclasses.replace(via, name="ghost", host="10.251.7.61")
    with pytest.raises(TransportError, match=r"^ghost: cannot reach 10\.251\.7\.61:22 through jump host n1"):
        connect(unreachable, connect_timeout=3)


def test_pool_shares_one_jump_connection_between_nodes(inventory: Inventory) -> None:
    from envctl.adapters.ssh_pool import SSHPool

    n1 = inventory.node("n1")
    behind = [dataclasses.replace(inventory.node(name), jump=n1) for name in ("n2", "n3")]
    with SSHPool() as pool:
        with ThreadPoolExecutor(2) as threads:
            transports = list(threads.map(pool.connect, behind))
        assert pool.jump_connections == 1
        for spec, t in zip(behind, transports, strict=True):
            seen = t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()
            assert (seen[0], seen[2]) == (b"10.251.7.2", spec.host.encode())
            t.close()
        assert pool.jump_connections == 1  # closing a node leaves the shared jump open
    assert pool.jump_connections == 0


def test_inventory_check_cli_records_keys_only_when_asked(
    cluster: SandboxPlan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from envctl.cli import main

    main(["inventory", "check", "-i", cluster.inventory, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert_envelope(report, 0, "envctl.inventory-check/1")
    assert report["outcome"] == "all"
    assert {n: r["user"] for n, r in report["nodes"].items()} == {
        "n1": "root",
        "n2": "root",
        "n3": "root",
    }

    text = Path(cluster.inventory).read_text().replace(cluster.known_hosts, str(tmp_path / "kh"))
    fresh = tmp_path / "inventory.toml"
    fresh.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        main(["inventory", "check", "-i", str(fresh), "--json", "--limit", "n[1-2]"])
    assert exit_.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert_envelope(report, 1, "envctl.inventory-check/1")
    assert report["outcome"] == "none"
    assert "unknown host key" in report["nodes"]["n1"]["error"]
    main(["inventory", "check", "-i", str(fresh), "--accept-new-host-keys", "--limit", "n1"])
    assert "1/1 nodes reachable" in capsys.readouterr().out
    assert (tmp_path / "kh").read_text().startswith("10.251.7.2 ssh-ed25519 ")


def test_unreachable_jump_host_is_named_with_the_target(inventory: Inventory) -> None:
    ghost_jump = dataclasses.replace(inventory.node("n1"), name="gate", host="10.251.7.62")
    behind = dataclasses.replace(inventory.node("n2"), jump=ghost_jump)
    with pytest.raises(TransportError) as err:
        connect(behind, connect_timeout=1)
    assert err.value.message.startswith("n2: through jump host gate: ")
