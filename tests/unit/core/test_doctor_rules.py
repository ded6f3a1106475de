"""NodeFacts from raw agent documents, and the verdict rules on them (real captures where they exist)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envctl.adapters.matrix_files import load_matrix
from envctl.core.doctor import Finding, Needs, Verdict, across, diagnose
from envctl.core.facts_parse import GpuFacts
from envctl.core.matrix import Matrix
from envctl.core.node_facts import NodeFacts, node_facts

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GPU = FIXTURES / "gpu"
H200_LOG = Path(__file__).resolve().parents[2] / "gpu" / "h200-2026-11-26.log"
FIELDS = (
    "index,name,uuid,compute_cap,memory.total,mig.mode.current,driver_version,pci.bus_id,persistence_mode"
)


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def body(name: str) -> str:
    return (GPU / name).read_text().split("# ---\n", 1)[1]


def raw(**probes: object) -> dict[str, object]:
    """An agent document with these probes; everything else reported missing, as on a bare node."""
    base: dict[str, object] = {
        name: {"missing": f"no {name}"}
        for name in (
            "proc_driver_version",
            "sys_module_version",
            "modules",
            "cpuinfo",
            "meminfo",
            "os_release",
        )
    }
    base["nvidia_smi"] = {"missing": "no nvidia-smi", "fields": FIELDS}
    base.update(probes)
    return {"probes": base, "machine": "x86_64", "glibc": "glibc 2.36", "time": 1000.0}


def smi(out: str, rc: int = 0, err: str = "") -> dict[str, object]:
    return {"rc": rc, "out": out, "err": err, "fields": FIELDS}


def codes(findings: tuple[Finding, ...]) -> set[str]:
    return {f.code for f in findings}


def test_a_bare_node_is_facts_not_a_crash() -> None:
    facts = node_facts({"probes": {}})
    assert facts.gpus == () and facts.driver is None and facts.glibc is None
    facts = node_facts(raw())
    assert "no nvidia-smi" in facts.missing and "no /proc" not in " ".join(facts.missing)
    assert facts.glibc == "2.36" and facts.arch == "x86_64"
    assert node_facts({"probes": "junk", "cpus": 3, "nccl": [1]}).cores is None  # hostile shapes


def test_h200_from_the_gpu_log_and_its_driver_pass(matrix: Matrix) -> None:
    # tests/gpu/h200-2026-11-26.log: "nvidia-smi: 'NVIDIA H200' driver 580.159.04 CC 9.0"
    first = H200_LOG.read_text().splitlines()[0]
    name, driver, cc = first.split("'")[1], first.split("driver ")[1].split()[0], first.split("CC ")[1]
    row = f"0, {name}, GPU-5e2b7f86-0000-0000-0000-000000000000, {cc}, 143771, Disabled, {driver}, 00000000:18:00.0, Enabled"
    modules = "nvidia_uvm 1 0 - Live 0x0\nnvidia 1 1 nvidia_uvm, Live 0x0\n"
    facts = node_facts(
        raw(
            nvidia_smi=smi(row),
            sys_module_version={"out": driver + "\n"},
            modules={"out": modules},
        )
    )
    assert facts.driver == "580.159.04" and facts.gpus[0].cc == "9.0" and facts.gpus[0].name == "NVIDIA H200"
    found = diagnose(facts, matrix)
    assert Verdict(facts, found).level == "ok", found
    # the log's torch is cu130: a lock of it (floor 580.65.06) runs on this driver
    needs = Needs("lock.yml", "580.65.06", "13.0", (("torch", "2.11.0"),), ("linux-64",), None)
    assert "driver-too-old" not in codes(diagnose(facts, matrix, needs))


def test_old_driver_against_a_lock_gets_a_fix_with_the_solvers_way_out(matrix: Matrix) -> None:
    row = "0, NVIDIA A100-SXM4-80GB, GPU-1, 8.0, 81920, Disabled, 470.57.02, 00000000:07:00.0, Enabled"
    facts = node_facts(raw(nvidia_smi=smi(row)))
    needs = Needs("conda-lock.yml", "525.60.13", "12.1", (("torch", "2.5.1"),), ("linux-64",), None)
    (finding,) = [f for f in diagnose(facts, matrix, needs) if f.code == "driver-too-old"]
    assert finding.level == "fail"
    assert finding.message == "driver 470.57.02 is older than this image's minimum 525.60.13"
    assert finding.fix is not None and finding.fix.startswith("install the R525 driver (>= 525.60.13)")
    assert "torch" in finding.fix and "cu11" in finding.fix  # a cu11x build: what R470 runs


def test_mismatch_capture_makes_a_failing_node(matrix: Matrix) -> None:
    text = body("errors/nvml-mismatch-580.178-vs-loaded-580.173.02-truenas.txt")
    proc = text[text.index("NVRM version") :]
    facts = node_facts(
        raw(
            nvidia_smi=smi(text.split("root@truenas")[1], rc=18),
            proc_driver_version={"out": proc},
        )
    )
    assert (facts.driver, facts.driver_userspace) == ("580.173.02", "580.178")
    found = diagnose(facts, matrix)
    assert {"gpu-unusable", "driver-mismatch"} <= codes(found)
    assert Verdict(facts, found).level == "fail"
    assert all(f.fix for f in found)


def test_stale_cdi_spec_and_missing_uvm(matrix: Matrix) -> None:
    row = "0, Tesla T4, GPU-6cf00fa7-59ac-16f2-3e83-d24ccdc56f84, 7.5, 15360, [N/A], 580.95.05, 00000000:00:1E.0, Enabled"
    modules = body("proc-version/lsmod-modinfo-rhel8.txt")
    facts = node_facts(
        raw(
            nvidia_smi=smi(row),
            modules={"out": modules},
            docker={"rc": 0, "out": "27.5.1\n", "err": ""},
            nvidia_ctk={"rc": 0, "out": body("ctk/nvidia-ctk-version-1.12.0.txt"), "err": ""},
            cdi={"/etc/cdi/nvidia.yaml": {"out": body("ctk/cdi-nvidia.yaml-t4-g4dn-570.133.20.yaml")}},
        )
    )
    assert facts.cdi_specs == {"/etc/cdi/nvidia.yaml": ("570.133.20",)}
    assert facts.container_toolkit == "1.12.0" and facts.runtimes == {"docker": "27.5.1"}
    found = diagnose(facts, matrix)
    stale = next(f for f in found if f.code == "cdi-stale")
    assert stale.level == "fail" and "570.133.20" in stale.message and "580.95.05" in stale.message
    assert (
        stale.fix
        == "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (and run it after every driver upgrade)"
    )
    assert "uvm-missing" in codes(found)
    fresh = dataclasses.replace(facts, cdi_specs={"/etc/cdi/nvidia.yaml": ("580.95.05",)})
    assert "cdi-stale" not in codes(diagnose(fresh, matrix))


def test_kepler_past_its_last_branch_and_mig_and_fabric_manager(matrix: Matrix) -> None:
    k80 = GpuFacts(0, "Tesla K80", None, "3.7", 11441, None, "535.129.03", None, "Enabled")
    facts = NodeFacts(driver="535.129.03", gpus=(k80,))
    assert "driver-past-gpu" in codes(diagnose(facts, matrix))
    h100s = tuple(
        GpuFacts(
            i,
            "NVIDIA H100 80GB HBM3",
            f"GPU-{i}",
            "9.0",
            81559,
            "Enabled" if i == 0 else "Disabled",
            "550.54.15",
            None,
            "Enabled",
        )
        for i in range(8)
    )
    found = diagnose(NodeFacts(driver="550.54.15", gpus=h100s, fabricmanager="inactive"), matrix)
    assert {"fabricmanager-down", "mig-enabled"} <= codes(found)
    found = diagnose(NodeFacts(driver="550.54.15", gpus=h100s, fabricmanager="active"), matrix)
    assert "fabricmanager-down" not in codes(found)


def test_host_rules_disk_clock_rdma_avx(matrix: Matrix) -> None:
    from envctl.core.facts_parse import parse_ibv_devinfo
    from envctl.core.node_facts import Disk

    ports = tuple(parse_ibv_devinfo(body("ib-nccl/ibv_devinfo-roce-down-and-cx7.txt")))
    facts = NodeFacts(
        arch="x86_64",
        cpu_vendor="GenuineIntel",
        cpu_flags=(),
        store=Disk("/var/lib/envctl", 100 << 20, 10 << 30),
        clock_skew=-42.0,
        rdma=ports,
    )
    found = {f.code: f for f in diagnose(facts, matrix)}
    assert set(found) == {"no-avx", "disk-low", "clock-skew", "rdma-down"}
    assert found["disk-low"].level == "fail" and "100.0 MiB" in found["disk-low"].message
    assert "RoCE port mlx5_12/1 is DOWN" in found["rdma-down"].message
    assert not diagnose(NodeFacts(arch="x86_64", cpu_vendor="AuthenticAMD", cpu_flags=("avx",)), matrix)
    assert not diagnose(NodeFacts(arch="x86_64", cpu_flags=()), matrix)  # cpuinfo unread: no guess


def test_lock_for_another_arch_and_no_gpu(matrix: Matrix) -> None:
    needs = Needs("lock.yml", "570.124.06", "12.8", (("torch", "2.8.0"),), ("linux-64",), None)
    found = codes(diagnose(NodeFacts(arch="aarch64"), matrix, needs))
    assert found == {"arch-not-locked", "no-gpu"}


def test_nccl_must_agree_across_nodes() -> None:
    a = NodeFacts(nccl={"train": "2.21.5"})
    b = NodeFacts(nccl={"train": "2.19.3"})
    extra = across({"a": (), "b": ()}, {"a": a, "b": b})
    assert extra["a"] == [] and [f.code for f in extra["b"]] == ["nccl-disagrees"]


def test_nccl_from_file_names_in_the_facts() -> None:
    facts = node_facts({**raw(), "nccl": {"train": ["nvidia_nccl_cu12-2.21.5.dist-info"], "cpu": []}})
    assert facts.nccl == {"train": "2.21.5", "cpu": None}


def test_needs_from_a_lock_solution_summary() -> None:
    needs = Needs.from_solution(
        "l.yml",
        {
            "min_driver": "570.124.06",
            "cuda": "12.8",
            "frameworks": {"torch": "2.8.0"},
            "platforms": ["linux-64"],
            "nccl": "2.27.3",
        },
    )
    assert needs == Needs("l.yml", "570.124.06", "12.8", (("torch", "2.8.0"),), ("linux-64",), "2.27.3")
    assert Needs.from_solution("l.yml", {}) == Needs("l.yml")
