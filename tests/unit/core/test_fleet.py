"""Node classes and solving from facts, on NodeFacts built from real captures (tests/fixtures/gpu)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envctl.adapters.matrix_files import load_matrix
from envctl.adapters.profile_file import load_profile
from envctl.core import facts_parse as fp
from envctl.core.fleet import conflicts, fleet_targets, partition
from envctl.core.fleet_plan import plan
from envctl.core.hostlist import compress, expand_all
from envctl.core.matrix import Matrix
from envctl.core.node_facts import NodeFacts
from envctl.core.profile import Profile
from envctl.errors import UnsatisfiableError

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "fixtures" / "gpu"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from gpu_captures import body, section  # noqa: E402


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def cpu(name: str) -> dict[str, object]:
    info = fp.parse_cpuinfo(body(f"cpu/{name}"))
    return {"cpu_vendor": info.vendor, "cpu_model": info.model}


def h200() -> NodeFacts:
    (gpu,) = (
        fp.parse_gpu_csv(
            section("captures/linux-x86_64__nvidia-h200__590.48.01.txt", "nvidia-smi --query-gpu=")
        )
        or []
    )
    return NodeFacts(
        driver=gpu.driver,
        gpus=(gpu,),
        glibc="2.35",
        arch="x86_64",
        **cpu("linux-unknown-sapphirerapids.cpuinfo.txt"),
    )  # type: ignore[arg-type]


def l40s() -> NodeFacts:
    (gpu,) = (
        fp.parse_gpu_csv(section("captures/linux-x86_64__nvidia-l40s__595.80.txt", "nvidia-smi --query-gpu="))
        or []
    )
    return NodeFacts(
        driver=gpu.driver, gpus=(gpu,), glibc="2.35", arch="x86_64", **cpu("linux-rocky8.5-zen4.cpuinfo.txt")
    )  # type: ignore[arg-type]


def pascal() -> NodeFacts:
    """3x Tesla P40 + RTX 3090 (their compute_cap lines) on a node whose loaded R550 module is the
    NVRM line of another real report (the P40 capture has no driver line)."""
    ccs = body("smi-query/p40x3-rtx3090-compute_cap.txt").split("compute_cap\n", 1)[1].split()
    names = ["Tesla P40"] * 3 + ["NVIDIA GeForce RTX 3090"]
    gpus = tuple(
        fp.GpuFacts(i, n, None, cc, None, None, None, None, None)
        for i, (n, cc) in enumerate(zip(names, ccs, strict=True))
    )
    nvrm = body("proc-version/proprietary-550.90.07-loaded-vs-pkg-550.107.02.txt").splitlines()[-1]
    module = fp.parse_proc_driver(nvrm)
    assert module is not None
    return NodeFacts(
        driver=module.version,
        gpus=gpus,
        glibc="2.39",
        arch="x86_64",
        **cpu("linux-ubuntu18.04-broadwell.cpuinfo.txt"),
    )  # type: ignore[arg-type]


def blackwell() -> NodeFacts:
    gpus = fp.parse_gpu_csv(
        body("transcribed/rtx5090-cc12.0-570.133.04.txt"), ["index", "name", "compute_cap", "driver_version"]
    )
    assert gpus
    return NodeFacts(
        driver=gpus[0].driver,
        gpus=tuple(gpus),
        glibc="2.40",
        arch="x86_64",
        **cpu("linux-rocky8.5-zen4.cpuinfo.txt"),
    )  # type: ignore[arg-type]


def grace() -> NodeFacts:
    return NodeFacts(glibc="2.34", arch="aarch64", **cpu("linux-rhel9-neoverse_v2.cpuinfo.txt"))  # type: ignore[arg-type]


def torch(spec: str, tmp_path: Path, targets: str = "") -> Profile:
    path = tmp_path / "p.toml"
    path.write_text(
        f'[environment]\nname = "fleet"\npython = ">=3.10,<3.14"\n[frameworks]\ntorch = "{spec}"\n{targets}'
    )
    return load_profile(path)[0]


def test_hostlists_compress_and_expand_back() -> None:
    for names in (
        ["gpu07", "gpu08"],
        ["gpu1", "gpu2", "gpu3", "gpu5", "login1"],
        ["a", "gpu007", "gpu009", "gpu008"],
    ):
        assert set(expand_all([compress(names)])) == set(names)
    assert compress(["gpu07", "gpu08"]) == "gpu[07-08]"
    assert compress(["n1", "n3", "n2", "x"]) == "n[1-3],x"


def test_classes_split_on_driver_branch_gpu_arch_and_cpu_arch(matrix: Matrix) -> None:
    facts = {"gpu01": h200(), "gpu02": h200(), "gpu03": l40s(), "gpu04": pascal(), "arm01": grace()}
    classes = {c.name: c.nodes for c in partition(facts, matrix)}
    assert classes == {
        "x86_64-r590-sm_90": ("gpu01", "gpu02"),
        "x86_64-r595-sm_89": ("gpu03",),
        "x86_64-r550-sm_61-sm_86": ("gpu04",),
        "aarch64-cpu": ("arm01",),
    }
    assert partition(facts, matrix)[0].hosts == "gpu[01-02]"  # largest first


def test_targets_from_facts_are_the_lowest_driver_and_glibc_and_every_gpu(matrix: Matrix) -> None:
    t = fleet_targets(Profile("p").targets, [h200(), l40s(), grace()], matrix)
    assert t.driver == Version("590.48.01") and t.glibc == Version("2.34")
    assert set(t.gpus) == {"cc:9.0", "cc:8.9"} and t.gpu_platforms == ("linux-64",)
    assert set(t.platforms) == {"linux-64", "linux-aarch64"}
    assert t.cpu_vendor == "any"  # Intel, AMD and ARM
    assert fleet_targets(Profile("p").targets, [h200()], matrix).cpu_vendor == "intel"


def test_profile_targets_are_checked_against_the_nodes(matrix: Matrix, tmp_path: Path) -> None:
    profile = load_profile(ROOT.parent / "profiles" / "torch-train-h100.toml")[
        0
    ]  # driver 550.54.15, intel, H100/H200
    facts = {"gpu01": h200(), "gpu07": pascal(), "gpu08": pascal(), "arm01": grace(), "gpu09": l40s()}
    found = conflicts(profile.targets, facts, matrix)
    assert (
        "the profile says driver 550.54.15, nodes gpu[07-08] have driver 550.90.07" not in found
    )  # newer runs it
    assert any(s.startswith("the profile says arch x86_64, nodes arm01 have arch aarch64") for s in found)
    assert any(
        s.startswith("the profile says cpu_vendor intel, nodes gpu09 have CPU vendor AuthenticAMD")
        for s in found
    )
    assert any("nodes gpu[07-08] have Tesla P40 (CC 6.1)" in s for s in found)
    assert any("nodes gpu09 have NVIDIA L40S (CC 8.9)" in s for s in found)
    assert not any("gpu01" in s for s in found)  # the H200 node is what the profile says
    newer = torch(">=2.4", tmp_path, '[targets]\ndriver = "560.35.05"\n')
    (msg,) = conflicts(newer.targets, {"gpu07": pascal(), "gpu08": pascal(), "gpu01": h200()}, matrix)
    assert msg.startswith("the profile says driver 560.35.05, nodes gpu[07-08] have driver 550.90.07")
    with pytest.raises(UnsatisfiableError, match=r"nodes gpu\[07-08\] have driver 550.90.07") as exc:
        plan(newer, {"gpu07": pascal(), "gpu08": pascal()}, matrix)
    assert exc.value.exit_code == 1


def test_one_stack_when_one_serves_every_node(matrix: Matrix, tmp_path: Path) -> None:
    fleet = plan(torch(">=2.4", tmp_path), {"gpu01": h200(), "gpu02": l40s(), "gpu03": pascal()}, matrix)
    assert fleet.single and sorted(fleet.variants[0].nodes) == ["gpu01", "gpu02", "gpu03"]
    s = fleet.variants[0].solution
    assert s.min_driver is not None and Version(s.min_driver) <= Version(
        "550.90.07"
    )  # the lowest node's driver
    assert {g.cc for g in s.gpus} >= {"6.1", "8.6", "8.9", "9.0"}


def test_pascal_and_blackwell_need_two_variants(matrix: Matrix, tmp_path: Path) -> None:
    facts = {"gpu01": h200(), "gpu02": h200(), "gpu03": pascal(), "gpu04": pascal(), "gpu05": blackwell()}
    profile = torch(">=2.8", tmp_path)
    fleet = plan(profile, facts, matrix)
    assert [v.nodes for v in fleet.variants] == [("gpu03", "gpu04", "gpu01", "gpu02"), ("gpu05",)]
    old, new = (v.solution for v in fleet.variants)
    assert (
        "sm_60" in old.frameworks[0].builds["linux-64"].archs
        or "sm_61" in old.frameworks[0].builds["linux-64"].archs
    )
    assert "sm_120" in new.frameworks[0].builds["linux-64"].archs
    assert fleet.variant_of("gpu05").name == "x86_64-r570-sm_120"
    doc = fleet.as_json()
    assert doc["schema"] == "envctl.fleet/1" and doc["variants"][0]["hosts"] == "gpu[01-04]"

    with pytest.raises(UnsatisfiableError) as exc:
        plan(profile, facts, matrix, single=True)
    message = exc.value.message
    assert message.startswith(
        "one stack cannot serve every node: gpu[01-04] share one, but nodes gpu05 (x86_64-r570-sm_120)"
    )
    assert "sm_120" in message and "gpu01" not in message.split("but", 1)[1]


def test_a_class_no_stack_serves_is_named(matrix: Matrix, tmp_path: Path) -> None:
    with pytest.raises(
        UnsatisfiableError, match=r"no stack serves nodes gpu\[03-04\] \(x86_64-r550-sm_61-sm_86\) even alone"
    ):
        plan(torch(">=2.15", tmp_path), {"gpu01": h200(), "gpu03": pascal(), "gpu04": pascal()}, matrix)


def test_unknown_facts_stop_the_solve(matrix: Matrix, tmp_path: Path) -> None:
    blind = NodeFacts(
        arch="x86_64", gpus=(fp.GpuFacts(0, "Mystery GPU", None, None, None, None, None, None, None),)
    )
    with pytest.raises(UnsatisfiableError, match="nodes n1: GPU 'Mystery GPU' with no compute capability"):
        plan(torch(">=2.4", tmp_path), {"n1": blind}, matrix)
