"""``envctl solve PROFILE -i INVENTORY`` on the real sandbox nodes (no GPU).

The CPU, glibc and arch targets come from the nodes' own facts, read by doctor's service. For the
GPU classes, the nodes' cached facts documents (the state directory's facts cache, which doctor
reads before it asks a node) get the ``nvidia-smi`` and kernel-module probes of real captures
(tests/fixtures/gpu) in place of their empty ones; every other fact stays the node's own.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envctl.cli import cli
from envctl.core import facts_parse as fp
from envctl.core.sandbox import SandboxPlan
from envctl.node.facts import GPU_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration

GPU = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"


def solve(*args: str) -> tuple[int, dict, str]:
    out = CliRunner().invoke(cli, ["solve", *args], catch_exceptions=False)
    if "--json" not in args:
        return out.exit_code, {}, out.output
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, "envctl.fleet/1" if out.exit_code == 0 else "envctl.error/1")
    return out.exit_code, doc, out.output


def profile(tmp_path: Path, torch: str, targets: str = "") -> str:
    path = tmp_path / "fleet.toml"
    path.write_text(
        f'[environment]\nname = "fleet"\npython = ">=3.10,<3.14"\n[frameworks]\ntorch = "{torch}"\n{targets}'
    )
    return str(path)


def body(name: str) -> str:
    return (GPU / name).read_text().split("# ---\n", 1)[1]


def smi_rows(gpus: list[fp.GpuFacts]) -> str:
    """The GPUs as the agent's nvidia-smi query prints them (its fields, csv, noheader, nounits)."""
    cells = {
        "index": lambda g: str(g.index),
        "name": lambda g: g.name,
        "uuid": lambda g: g.uuid or "[N/A]",
        "compute_cap": lambda g: g.cc or "[N/A]",
        "memory.total": lambda g: str(g.memory_mib) if g.memory_mib else "[N/A]",
        "mig.mode.current": lambda g: g.mig or "[N/A]",
        "driver_version": lambda g: g.driver or "[N/A]",
        "pci.bus_id": lambda g: g.bus_id or "[N/A]",
        "persistence_mode": lambda g: g.persistence or "[N/A]",
    }
    return "".join(", ".join(cells[f](g) for f in GPU_FIELDS.split(",")) + "\n" for g in gpus)


def h200_gpus() -> list[fp.GpuFacts]:
    text = body("captures/linux-x86_64__nvidia-h200__590.48.01.txt").split("--format=csv\n", 1)[1]
    text = text.split("#" * 80 + "\n", 1)[1].split("\n\n", 1)[0]
    gpus = fp.parse_gpu_csv(text)
    assert gpus and gpus[0].cc == "9.0" and gpus[0].driver == "590.48.01"
    return gpus


def blackwell_gpus() -> list[fp.GpuFacts]:
    gpus = fp.parse_gpu_csv(
        body("transcribed/rtx5090-cc12.0-570.133.04.txt"), ["index", "name", "compute_cap", "driver_version"]
    )
    assert gpus and gpus[0].cc == "12.0"
    return gpus


def give_gpus(node: str, gpus: list[fp.GpuFacts]) -> None:
    """Put these GPUs (and their driver as the loaded module) into ``node``'s cached facts."""
    (path,) = (Path(os.environ["ENVCTL_STATE_DIR"]) / "facts").glob(f"{node}-*.json")
    entry = json.loads(path.read_text())
    probes = entry["raw"]["probes"]
    probes["nvidia_smi"] = {"rc": 0, "out": smi_rows(gpus), "err": "", "fields": GPU_FIELDS}
    probes["sys_module_version"] = {"rc": 0, "out": f"{gpus[0].driver}\n", "err": ""}
    path.write_text(json.dumps(entry))


def test_targets_come_from_the_nodes_and_the_profile_is_checked(cluster: SandboxPlan, tmp_path: Path) -> None:
    code, doc, _ = solve(profile(tmp_path, ">=2.4"), "-i", cluster.inventory, "--refresh", "--json")
    assert code == 0, doc
    (variant,) = doc["variants"]
    assert doc["single"] and sorted(variant["nodes"]) == sorted(n.name for n in cluster.nodes)
    (cls,) = variant["classes"]
    assert cls["arch"] == platform.machine() and cls["driver_branch"] is None and cls["ccs"] == []
    solution = variant["solution"]
    assert solution["cuda"] is None and solution["gpus"] == []  # no GPU on the nodes: a CPU stack
    assert list(solution["frameworks"][0]["builds"]) == ["linux-64"]

    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]  # the nodes run this machine's libc
    names = ",".join(sorted(n.name for n in cluster.nodes))
    code, doc, _ = solve(
        profile(tmp_path, ">=2.4", '[targets]\narch = ["aarch64"]\nglibc = "9.1"\n'),
        "-i",
        cluster.inventory,
        "--json",
    )
    assert code == 1 and not doc["ok"]
    hosts = "n[1-3]" if names == "n1,n2,n3" else names
    assert f"the profile says arch aarch64, nodes {hosts} have arch {platform.machine()}" in doc["error"]
    assert f"the profile says glibc 9.1, nodes {hosts} have glibc {glibc}" in doc["error"]


def test_two_gpu_classes_give_two_variants_and_single_names_the_blocker(
    cluster: SandboxPlan, tmp_path: Path
) -> None:
    code, _, _ = solve(profile(tmp_path, ">=2.8"), "-i", cluster.inventory, "--refresh")
    assert code == 0
    give_gpus("n1", h200_gpus())
    give_gpus("n3", blackwell_gpus())
    pascal = [
        fp.GpuFacts(i, "Tesla P40", None, cc, None, None, "550.90.07", None, None)
        for i, cc in enumerate(
            body("smi-query/p40x3-rtx3090-compute_cap.txt").split("compute_cap\n", 1)[1].split()[:3]
        )
    ]
    give_gpus("n2", pascal)

    code, doc, _ = solve(profile(tmp_path, ">=2.8"), "-i", cluster.inventory, "--json")
    assert code == 0, doc
    assert not doc["single"]
    by_node = {n: v["name"] for v in doc["variants"] for n in v["nodes"]}
    assert by_node["n3"] != by_node["n1"]  # Blackwell apart from the Hopper and Pascal nodes
    assert by_node["n1"] == by_node["n2"]
    archs = {
        v["name"]: v["solution"]["frameworks"][0]["builds"]["linux-64"]["archs"] for v in doc["variants"]
    }
    assert "sm_120" in archs[by_node["n3"]] and "sm_90" in archs[by_node["n1"]]

    code, _, text = solve(profile(tmp_path, ">=2.8"), "-i", cluster.inventory)
    assert code == 0 and "2 variants: one stack cannot serve every node" in text
    print(text)  # the two-class solve, for the record

    code, doc, text = solve(profile(tmp_path, ">=2.8"), "-i", cluster.inventory, "--single", "--json")
    assert code == 1
    assert doc["error"].startswith("one stack cannot serve every node: n[1-2] share one, but nodes n3")
    assert "sm_120" in doc["error"]


def test_each_node_gets_the_image_of_its_variant(
    prefix_targets: list, pool: object, make_image: object, tmp_path: Path
) -> None:
    from envctl.adapters.fleet_index import IndexedVariant, read_index, write_index
    from envctl.errors import InputError
    from envctl.services.deliver.fleet_push import push_fleet, variant_groups
    from envctl.services.deliver.push import PushOptions

    index = tmp_path / "conda-lock.fleet.toml"
    write_index(
        index,
        "fleet",
        (
            IndexedVariant("x86_64-r550-sm_61-sm_86+1", "conda-lock.a.yml", "a" * 64, ("n1", "n2")),
            IndexedVariant("x86_64-r570-sm_120", "conda-lock.b.yml", "b" * 64, ("n3",)),
        ),
    )
    variants = read_index(index)
    images = {variants[0].name: make_image("old"), variants[1].name: make_image("new")}  # type: ignore[operator]
    with pytest.raises(InputError, match="no image for variant"):
        variant_groups(variants, prefix_targets, {variants[0].name: images[variants[0].name]})
    groups = variant_groups(variants, prefix_targets, images)
    reports = push_fleet(images, groups, pool, PushOptions(env="fleet", idle_timeout=10))  # type: ignore[arg-type]
    assert {name: sorted(r.nodes) for name, r in reports.items()} == {
        variants[0].name: ["n1", "n2"],
        variants[1].name: ["n3"],
    }
    assert all(r.outcome == "all" for r in reports.values()), [r.as_json() for r in reports.values()]
    for t in prefix_targets:
        transport = pool.connect(t)  # type: ignore[attr-defined]
        try:
            said = transport.run(["/opt/envctl/envs/fleet/bin/sh", "/opt/envctl/envs/fleet/app/run.sh"])
        finally:
            transport.close()
        assert said.stdout.decode().strip() == ("envmod new" if t.name == "n3" else "envmod old")


def test_push_fleet_from_the_command_line(cluster: SandboxPlan, make_image: object, tmp_path: Path) -> None:
    from envctl.adapters.fleet_index import IndexedVariant, write_index

    index = tmp_path / "conda-lock.fleet.toml"
    write_index(
        index,
        "fleet",
        (
            IndexedVariant("a", "conda-lock.a.yml", "a" * 64, ("n1", "n3")),
            IndexedVariant("b", "conda-lock.b.yml", "b" * 64, ("n2",)),
        ),
    )
    old, new = make_image("old"), make_image("new")  # type: ignore[operator]
    args = ["push", "-i", cluster.inventory, "--fleet", str(index), "--env", "fleetcli"]
    args += ["--variant", f"a={old.root}", "--variant", f"b={new.root}", "--json"]
    out = CliRunner().invoke(cli, args, catch_exceptions=False)
    doc = json.loads(out.stdout)
    assert_envelope(doc, out.exit_code, "envctl.push-fleet/1")
    assert out.exit_code == 0 and doc["ok"], doc
    assert {v: sorted(r["nodes"]) for v, r in doc["variants"].items()} == {"a": ["n1", "n3"], "b": ["n2"]}
    assert doc["variants"]["a"]["digest"] == old.manifest.digest
    assert doc["variants"]["b"]["digest"] == new.manifest.digest

    out = CliRunner().invoke(
        cli, [*args[:-5], "--variant", f"a={old.root}", "--json"], catch_exceptions=False
    )
    assert out.exit_code == 2 and "no image for variant(s) b" in json.loads(out.stdout)["error"]
