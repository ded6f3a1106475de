"""`envctl sandbox`: shaped links, a node engine, a stopped node, and cleanup after a crash."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from json_envelope import assert_envelope

from envctl.adapters import system
from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.ssh import connect
from envctl.cli import main
from envctl.core.sandbox import SandboxPlan
from envctl.errors import TransportError
from envctl.services.cluster import sandbox

Make = Callable[..., AbstractContextManager[SandboxPlan]]

pytestmark = pytest.mark.integration


def upload_seconds(plan: SandboxPlan, node: str, nbytes: int) -> float:
    spec = load_inventory(Path(plan.inventory)).node(node)
    data = b"\0" * nbytes
    with connect(spec) as t:
        start = time.monotonic()
        result = t.upload(["wc", "-c"], io.BytesIO(data), size=nbytes)
        elapsed = time.monotonic() - start
    assert int(result.stdout) == nbytes
    return elapsed


def test_tc_rate_shapes_the_node_link(cluster: SandboxPlan, make_sandbox: Make) -> None:
    nbytes = 12 * 1024 * 1024
    with make_sandbox("psr", 1, "10.251.7.64/27", rate="50mbit") as shaped:
        qdisc = system.run(["tc", "qdisc", "show", "dev", "psr-v1"])
        assert "tbf" in qdisc and "50Mbit" in qdisc
        slow = upload_seconds(shaped, "n1", nbytes)
    fast = upload_seconds(cluster, "n1", nbytes)
    # numbers only: tests never assert timings
    print(
        f"\n12 MiB upload: unshaped {fast:.2f}s ({nbytes / fast / 1e6:.0f} MB/s), "
        f"shaped 50mbit {slow:.2f}s ({nbytes / slow / 1e6:.1f} MB/s)"
    )


def test_docker_runtime_gives_each_node_its_own_engine(
    make_sandbox: Make, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_sandbox("psd", 1, "10.251.7.96/27", runtime="docker") as plan:
        node = plan.nodes[0]
        spec = load_inventory(Path(plan.inventory)).node("n1")
        assert spec.docker_host == node.docker_host and spec.runtime == "docker"
        with connect(spec) as t:
            info = t.run(["docker", "-H", str(spec.docker_host), "info", "--format", "{{.Driver}}"])
        assert info.stdout.strip() == b"vfs"
        engine = system.read_pid(node.path("docker.pid"), "dockerd")
        assert engine is not None and engine in system.netns_pids(node.netns)
        sshd = system.read_pid(node.path("sshd.pid"), "sshd")
        same_view = os.readlink(f"/proc/{engine}/ns/mnt") == os.readlink(f"/proc/{sshd}/ns/mnt")
        assert same_view, "the engine must see the node's own /var/lib/envctl and /opt/envctl"
        main(["sandbox", "status", "--dir", plan.dir, "--json"])
        status = json.loads(capsys.readouterr().out)
        assert_envelope(status, 0, "envctl.sandbox-status/1")
        assert status["healthy"] is True and status["nodes"][0]["dockerd_pid"] == engine
    assert system.read_pid(node.path("docker.pid"), "dockerd") is None
    assert not system.alive(engine)


def test_stopped_node_then_crash_cleanup(make_sandbox: Make, capsys: pytest.CaptureFixture[str]) -> None:
    with make_sandbox("psc", 2, "10.251.7.128/27") as plan:
        inv = load_inventory(Path(plan.inventory))
        n1, n2 = plan.nodes
        sshd2 = system.read_pid(n2.path("sshd.pid"), "sshd")
        assert sshd2 is not None
        assert system.stop([sshd2], grace=5.0) == []
        with pytest.raises(TransportError) as err:
            connect(inv.node("n2"))
        assert err.value.message == "n2: connection refused by 10.251.7.131:22"
        with pytest.raises(SystemExit) as exit_:
            main(["sandbox", "status", "--dir", plan.dir, "--json"])
        assert exit_.value.code == 1
        status = json.loads(capsys.readouterr().out)
        assert_envelope(status, 1, "envctl.sandbox-status/1")
        assert [n["reachable"] for n in status["nodes"]] == [True, False]

        # a crash: every process dies at once, state and namespaces stay behind
        with connect(inv.node("n1")) as t:
            t.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 &"])  # a stray session process
        pids = system.netns_pids(n1.netns)
        assert len(pids) >= 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert Path(plan.dir, "sandbox.json").exists() and system.netns_exists(n1.netns)

        main(["sandbox", "down", "--dir", plan.dir, "--json"])
        report = json.loads(capsys.readouterr().out)
        assert_envelope(report, 0, "envctl.sandbox-down/1")
        assert report["leftovers"] == []
        for node in plan.nodes:
            assert not system.netns_exists(node.netns)
            assert not system.link_exists(node.veth)
        assert not system.link_exists(plan.bridge)
        assert not Path(plan.dir).exists()
        assert not any(system.alive(pid) for pid in pids)
        assert system.mounts_under(plan.dir) == []
        # idempotent: a second down finds nothing and succeeds
        assert sandbox.down(plan.dir).removed == ()


def test_up_refuses_a_taken_prefix_and_cleans_its_own_failure(cluster: SandboxPlan) -> None:
    from envctl.core.sandbox import plan_sandbox
    from envctl.errors import SandboxError

    clash = plan_sandbox(1, directory="/var/tmp/ps-clash", prefix="ps", subnet="10.251.7.160/27")
    with pytest.raises(SandboxError, match="names already in use: ps-n1"):
        sandbox.up(clash)
    overlap = plan_sandbox(1, directory="/var/tmp/psx-clash", prefix="psx", subnet="10.251.7.0/27")
    with pytest.raises(SandboxError, match=r"subnet 10\.251\.7\.0/27 is already used by ps-br0"):
        sandbox.up(overlap)
    assert not Path("/var/tmp/ps-clash").exists() and not Path("/var/tmp/psx-clash").exists()


def test_a_cut_link_fails_fast_with_the_node_named(make_sandbox: Make) -> None:
    with make_sandbox("psl", 1, "10.251.7.224/27", rate="20mbit") as plan:
        spec = load_inventory(Path(plan.inventory)).node("n1")
        veth = plan.nodes[0].veth
        nbytes = 64 * 1024 * 1024  # ~27 s at 20mbit: still running when the link goes

        cut: list[int] = []

        def cut_link(sent: int) -> None:
            if sent >= 2 * 1024 * 1024 and not cut:
                system.run(["ip", "link", "set", veth, "down"])
                cut.append(sent)

        with connect(spec, io_timeout=3) as t:
            start = time.monotonic()
            with pytest.raises(TransportError) as err:
                t.upload(
                    ["sh", "-c", "cat >/dev/null"],
                    io.BytesIO(bytes(nbytes)),
                    size=nbytes,
                    progress=cut_link,
                )
            elapsed = time.monotonic() - start
        assert err.value.message.startswith("n1: connection lost during `sh -c")
        print(f"\nlink cut detected after {elapsed:.1f}s (io_timeout 3s)")


def test_a_failed_up_removes_what_it_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from envctl.core.sandbox import plan_sandbox
    from envctl.errors import SandboxError

    plan = plan_sandbox(2, directory="/var/tmp/psf-fail", prefix="psf", subnet="10.251.7.160/27")
    monkeypatch.setattr(sandbox, "SSHD", "/bin/false")  # node 1's sshd "fails to start"
    with pytest.raises(SandboxError, match="failed"):
        sandbox.up(plan)
    assert not Path(plan.dir).exists()
    assert not any(system.netns_exists(n.netns) or system.link_exists(n.veth) for n in plan.nodes)
    assert not system.link_exists(plan.bridge)


@pytest.mark.usefixtures("sandbox_components")
def test_up_and_down_commands(capsys: pytest.CaptureFixture[str]) -> None:
    directory = "/var/tmp/ect-psu"
    args = ["--dir", directory, "--json"]
    try:
        main(["sandbox", "up", "--nodes", "1", "--prefix", "psu", "--subnet", "10.251.7.192/28", *args])
        up = json.loads(capsys.readouterr().out)
        assert_envelope(up, 0, "envctl.sandbox-up/1")
        assert [n["name"] for n in up["nodes"]] == ["n1"] and Path(up["inventory"]).is_file()
    finally:
        main(["sandbox", "down", *args])
    down = json.loads(capsys.readouterr().out)
    assert_envelope(down, 0, "envctl.sandbox-down/1")
    assert f"dir {directory}" in down["removed"] and not Path(directory).exists()
