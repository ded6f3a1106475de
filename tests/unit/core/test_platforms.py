"""Which platform's manifest each node gets (core.platforms) and the multi-platform index document."""

from __future__ import annotations

import json

from envctl.core.image import MEDIA_INDEX, MEDIA_MANIFEST, canonical_json, image_index, platform_index
from envctl.core.platforms import group_by_platform, node_platform

BOTH = ("linux/amd64", "linux/arm64")


def test_node_platform_from_uname() -> None:
    assert node_platform("x86_64") == "linux/amd64"
    assert node_platform("aarch64") == "linux/arm64"
    assert node_platform("arm64") == "linux/arm64"  # macOS / some BSDs spell it so
    assert node_platform("riscv64") == "linux/riscv64"


def test_nodes_grouped_by_their_arch() -> None:
    machines = {"gpu1": "x86_64", "gh1": "aarch64", "gpu2": "x86_64", "gh2": "aarch64"}
    found = group_by_platform(["gpu1", "gh1", "gpu2", "gh2"], machines, BOTH, "linux/amd64")
    assert found.groups == {"linux/amd64": ("gpu1", "gpu2"), "linux/arm64": ("gh1", "gh2")}
    assert found.lacking == {}


def test_a_node_the_image_has_no_manifest_for_is_lacking_never_given_another() -> None:
    machines = {"gpu1": "x86_64", "gh1": "aarch64", "rv": "riscv64"}
    found = group_by_platform(["gpu1", "gh1", "rv"], machines, ("linux/amd64",), "linux/amd64")
    assert found.groups == {"linux/amd64": ("gpu1",)}
    assert found.lacking == {"gh1": "linux/arm64", "rv": "linux/riscv64"}


def test_a_node_without_facts_goes_with_the_default() -> None:
    found = group_by_platform(["a", "b"], {"a": None}, BOTH, "linux/arm64")
    assert found.groups == {"linux/arm64": ("a", "b")}


def test_platform_index_lists_each_manifest_with_its_platform() -> None:
    doc = platform_index(
        [("sha256:" + "a" * 64, 10, "linux/amd64"), ("sha256:" + "b" * 64, 20, "linux/arm64")]
    )
    assert doc["mediaType"] == MEDIA_INDEX
    assert [m["platform"] for m in doc["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert all(m["mediaType"] == MEDIA_MANIFEST for m in doc["manifests"])
    # the same manifests give the same bytes: the index digest is reproducible
    assert canonical_json(doc) == canonical_json(json.loads(canonical_json(doc)))
    outer = image_index("sha256:" + "c" * 64, 99, "v1", MEDIA_INDEX)
    assert outer["manifests"][0]["mediaType"] == MEDIA_INDEX
    assert outer["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
