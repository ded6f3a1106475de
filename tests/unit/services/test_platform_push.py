"""A multi-platform image pushed through the real agent on temp-directory nodes (LocalTransport):
each node gets its platform's manifest, a node of a platform the image lacks is refused by name.

The nodes all run on this machine, so their CPU architecture is faked here (doctor's facts): the
selection logic is under test; tests/integration/nodes pushes to real (x86_64) sandbox nodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_local import LocalPool
from nd_oci import app_layers, write_image_blobs, write_platform_index

from envctl.adapters.oci_layout import read_platform_images
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.node_facts import NodeFacts
from envctl.services.deliver import preflight
from envctl.services.deliver.platform_push import push_platforms
from envctl.services.deliver.push import PushOptions

OPTS = PushOptions(env="demo", lock_timeout=20, idle_timeout=5)
ARCH = {"x1": "x86_64", "a1": "aarch64", "x2": "x86_64", "r1": "riscv64"}


def _nodes(tmp_path: Path) -> list[NodeSpec]:
    return [
        NodeSpec(
            n,
            "localhost",
            runtime="prefix",
            store=str(tmp_path / n / "store"),
            prefix_root=str(tmp_path / n / "envs"),
        )  # type: ignore[arg-type]
        for n in ARCH
    ]


@pytest.fixture
def faked_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    def facts_of(nodes, pool, **_):  # type: ignore[no-untyped-def]
        return GroupResult({n.name: NodeFacts(arch=ARCH[n.name]) for n in nodes})

    monkeypatch.setattr(preflight, "facts_of", facts_of)


def test_each_node_gets_its_platforms_manifest(tmp_path: Path, faked_arch: None) -> None:
    layout = tmp_path / "multi"
    descs = {
        arch: write_image_blobs(layout, app_layers(arch), architecture=arch) for arch in ("amd64", "arm64")
    }
    write_platform_index(layout, descs, ref="demo", nested=True)
    images = read_platform_images(layout, ["linux/amd64", "linux/arm64"])
    nodes = _nodes(tmp_path)

    reports = push_platforms(images, nodes, LocalPool(), OPTS, skip_preflight=True)

    assert list(reports) == ["linux/amd64", "linux/arm64"]
    amd64, arm64 = reports["linux/amd64"], reports["linux/arm64"]
    assert set(amd64.nodes) == {"x1", "x2", "r1"} and set(arm64.nodes) == {"a1"}
    assert amd64.digest == descs["amd64"]["digest"] and arm64.digest == descs["arm64"]["digest"]
    for name in ("x1", "x2"):
        assert (tmp_path / name / "envs" / "demo" / "app" / "envmod.py").read_text() == "VERSION = 'amd64'\n"
    assert (tmp_path / "a1" / "envs" / "demo" / "app" / "envmod.py").read_text() == "VERSION = 'arm64'\n"
    refused = amd64.nodes["r1"]
    assert refused.status == "failed"  # type: ignore[union-attr]
    assert "this node is linux/riscv64; the image has only linux/amd64, linux/arm64" in str(refused)
    assert not (tmp_path / "r1" / "store").exists()  # not a byte


def test_an_arm64_only_image_refuses_x86_nodes_by_name(tmp_path: Path, faked_arch: None) -> None:
    layout = tmp_path / "arm"
    write_platform_index(
        layout, {"arm64": write_image_blobs(layout, app_layers("arm64"), architecture="arm64")}
    )
    images = read_platform_images(layout, ["linux/amd64", "linux/arm64"])
    assert list(images) == ["linux/arm64"]
    reports = push_platforms(images, _nodes(tmp_path), LocalPool(), OPTS, skip_preflight=True)
    report = reports["linux/arm64"]
    assert report.nodes["a1"].status == "ok"  # type: ignore[union-attr]
    for name in ("x1", "x2", "r1"):
        assert "the image has only linux/arm64" in str(report.nodes[name])
    assert report.outcome == "partial"


def test_atomic_holds_across_the_platforms(tmp_path: Path, faked_arch: None) -> None:
    from dataclasses import replace

    layout = tmp_path / "multi"
    descs = {
        arch: write_image_blobs(layout, app_layers(arch), architecture=arch) for arch in ("amd64", "arm64")
    }
    write_platform_index(layout, descs, ref="demo", nested=True)
    images = read_platform_images(layout, ["linux/amd64", "linux/arm64"])
    # r1 (riscv64) cannot take any manifest: under --atomic no platform's nodes switch, a1's neither
    reports = push_platforms(
        images, _nodes(tmp_path), LocalPool(), replace(OPTS, atomic=True), skip_preflight=True
    )
    arm64 = reports["linux/arm64"].nodes["a1"]
    assert arm64.status == "skipped" and "not activated" in str(arm64)  # type: ignore[union-attr]
    for name in ARCH:
        assert not (tmp_path / name / "envs" / "demo").exists()


def test_each_platform_pushes_with_a_stager_of_its_own(tmp_path: Path, faked_arch: None) -> None:
    from envctl.services.deliver.push import DirectStager, Stager

    layout = tmp_path / "multi"
    descs = {
        arch: write_image_blobs(layout, app_layers(arch), architecture=arch) for arch in ("amd64", "arm64")
    }
    write_platform_index(layout, descs, ref="demo", nested=True)
    images = read_platform_images(layout, ["linux/amd64", "linux/arm64"])
    made: list[tuple[Stager, list[str]]] = []

    def stager_for(members):  # type: ignore[no-untyped-def]
        made.append((DirectStager(), [n.name for n in members]))
        return made[-1][0], f"{len(members)} node(s) of this platform"

    reports = push_platforms(
        images, _nodes(tmp_path), LocalPool(), OPTS, skip_preflight=True, stager_for=stager_for
    )
    assert [names for _, names in made] == [["x1", "x2", "r1"], ["a1"]]
    assert made[0][0] is not made[1][0]
    assert reports["linux/amd64"].as_json()["fanout"]["why"] == "3 node(s) of this platform"
    assert reports["linux/arm64"].as_json()["fanout"]["why"] == "1 node(s) of this platform"
