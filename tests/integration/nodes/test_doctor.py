"""``envctl doctor`` on the real sandbox nodes (no GPU): every CPU, glibc, Python, disk and runtime
fact is exactly what this test reads itself, inside the node's network namespace or from the
host the nodes share their files with."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.core.node_facts import CPU_FLAGS
from envctl.core.sandbox import SandboxPlan
from envctl.node.bundle import agent_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration


def invoke(*args: str) -> tuple[int, dict, str]:
    out = CliRunner().invoke(cli, ["doctor", *args], catch_exceptions=False)
    if "--json" not in args:
        return out.exit_code, {}, out.stdout
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, "envctl.doctor/1")
    return out.exit_code, doc, out.stdout


def in_node(netns: str, *argv: str) -> str:
    """``argv`` run in the node's network namespace (its sshd's), stdout."""
    nsenter = ["nsenter", f"--net=/var/run/netns/{netns}"]
    return subprocess.run([*nsenter, *argv], check=True, capture_output=True, text=True).stdout


def over_ssh(plan: SandboxPlan, address: str, command: str) -> str:
    """``command`` run by OpenSSH as a session on the node runs it, stdout."""
    argv = [
        "ssh",
        "-i",
        plan.client_key,
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={plan.known_hosts}",
    ]
    done = subprocess.run([*argv, f"root@{address}", command], check=True, capture_output=True, text=True)
    return done.stdout


def cpuinfo_first_block() -> dict[str, str]:
    block: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        block.setdefault(key.strip(), value.strip())
    return block


def test_doctor_reports_each_nodes_facts_exactly(cluster: SandboxPlan) -> None:
    code, doc, _ = invoke("-i", cluster.inventory, "--refresh", "--json")
    assert code == 0 and doc["ok"] and doc["outcome"] == "all", doc
    assert set(doc["nodes"]) == {n.name for n in cluster.nodes}
    assert doc["verdicts"] == {"ok": 3, "warn": 0, "fail": 0, "unreachable": 0}
    cpu = cpuinfo_first_block()
    flags = set(cpu["flags"].split())
    meminfo = {
        k: v for k, _, v in (line.partition(":") for line in Path("/proc/meminfo").read_text().splitlines())
    }
    release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    for node in cluster.nodes:
        entry = doc["nodes"][node.name]
        facts = entry["facts"]
        assert (
            entry["ok"]
            and entry["verdict"] == "ok"
            and entry["findings"] == []
            and entry["cached_at"] is None
        )
        # CPU, memory, OS: the nodes share this machine's kernel
        assert facts["arch"] == platform.machine()
        assert facts["cpu_vendor"] == cpu["vendor_id"] and facts["cpu_model"] == cpu["model name"]
        assert facts["cpu_flags"] == [f for f in CPU_FLAGS if f in flags]  # AVX2/AVX-512/AMX as the host
        assert facts["cores"] == len(os.sched_getaffinity(0))
        assert facts["memory"] == int(meminfo["MemTotal"].split()[0]) * 1024
        assert facts["os"] == release["PRETTY_NAME"].strip('"')
        # glibc and Python as the node runs them
        ldd = in_node(node.netns, "ldd", "--version").splitlines()[0].split()[-1]
        assert facts["glibc"] == ldd
        # the python3 a command over SSH finds there (a node session's own PATH and shell)
        python = over_ssh(
            cluster, node.address, "python3 -c 'import platform; print(platform.python_version())'"
        )
        assert facts["python"] == python.strip()
        # disk: the node's store is its own directory, bind-mounted at /var/lib/envctl
        st = os.statvfs(node.path("store"))
        assert facts["store"]["path"] == "/var/lib/envctl"
        assert facts["store"]["total"] == st.f_blocks * st.f_frsize
        # other helpers write to the same disk: free space moves by what they wrote in between
        assert abs(facts["store"]["free"] - st.f_bavail * st.f_frsize) < 256 << 20
        # the runtime: the node's own dockerd
        engine = ["docker", "-H", str(node.docker_host)]
        server = subprocess.run(
            [*engine, "version", "--format", "{{.Server.Version}}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert facts["runtimes"] == {"docker": server}
        runtimes = subprocess.run(
            [*engine, "info", "--format", "{{json .Runtimes}}"], check=True, capture_output=True, text=True
        ).stdout
        assert facts["docker_runtimes"] == sorted(json.loads(runtimes))
        # no GPU here: facts, not failures
        assert facts["gpus"] == [] and facts["driver"] is None and "no nvidia-smi" in facts["missing"]
        assert facts["agent"] == agent_bundle().filename
        assert abs(facts["clock_skew"]) < 2.0


def test_doctor_caches_with_the_time_records_history_and_prints_a_table(cluster: SandboxPlan) -> None:
    code, first, _ = invoke("-i", cluster.inventory, "--limit", "n1", "--refresh", "--json")
    assert code == 0 and first["nodes"]["n1"]["cached_at"] is None
    code, second, _ = invoke("-i", cluster.inventory, "--limit", "n1", "--json")
    assert code == 0 and isinstance(second["nodes"]["n1"]["cached_at"], float)
    assert second["nodes"]["n1"]["facts"]["cpu_flags"] == first["nodes"]["n1"]["facts"]["cpu_flags"]
    code, _, text = invoke("-i", cluster.inventory, "--refresh")
    assert code == 0
    for word in (
        "node",
        "verdict",
        "driver",
        "GPUs",
        "glibc",
        "arch",
        "runtime",
        "findings",
        "n1",
        "n2",
        "n3",
    ):
        assert word in text
    print(text)  # the report's table: `pytest -s` shows it
    out = CliRunner().invoke(cli, ["history", "--kind", "doctor", "--json"], catch_exceptions=False)
    events = json.loads(out.stdout)["events"]
    assert (
        len(events) >= 3 and events[0]["kind"] == "doctor" and set(events[0]["targets"]) == {"n1", "n2", "n3"}
    )


def test_a_cuda_lock_fails_every_cpu_node_by_name_with_a_fix(cluster: SandboxPlan, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))
    from bd_wheels import standard_wheels, write_lock

    lock = write_lock(tmp_path / "conda-lock.yml", standard_wheels(tmp_path / "wheels"), cuda="12.4")
    code, doc, _ = invoke("-i", cluster.inventory, "--lock", str(lock), "--json")
    assert code == 1 and not doc["ok"] and doc["lock"] == str(lock)
    assert doc["verdicts"] == {"ok": 0, "warn": 0, "fail": 3, "unreachable": 0}
    for entry in doc["nodes"].values():
        (finding,) = entry["findings"]
        assert finding["code"] == "no-gpu" and finding["level"] == "fail"
        assert (
            finding["message"] == f"{lock} needs CUDA 12.4 (driver >= 550.54.14); this node has no NVIDIA GPU"
        )
        assert finding["fix"]
    code, _, text = invoke("-i", cluster.inventory, "--lock", str(lock))
    assert code == 1 and "no-gpu" in text and "fix: push a CPU lock" in text
    print(text)
