"""arm64 on this x86_64 machine: the arm64 debootstrap base (finished under qemu-user-static), one
multi-platform image from a lock with linux-64 and linux-aarch64, reproducible, and the aarch64
image's imports checked in a real engine under qemu. Then ``build --fleet``: one image per variant.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import bd_wheels
import pytest
from bd_cli import build_json, run_cli
from json_envelope import assert_envelope

pytestmark = pytest.mark.integration

BOTH = "linux/amd64,linux/arm64"


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    return dict(json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text()))


def _index_build(args: list[str], cache: Path) -> dict[str, Any]:
    code, out, err = run_cli(["build", *args, "--json"], cache)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert_envelope(data, code, "envctl.build-index/1")
    return data


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_arm64_base_is_an_aarch64_root_that_runs_under_qemu(
    tmp_path: Path, bd_arm64_base_layout: Path
) -> None:
    from envctl.adapters.rootfs import smoke_python

    (entry,) = json.loads((bd_arm64_base_layout / "index.json").read_text())["manifests"]
    manifest = _blob(bd_arm64_base_layout, entry["digest"])
    config = _blob(bd_arm64_base_layout, manifest["config"]["digest"])
    assert (config["architecture"], config["os"]) == ("arm64", "linux")
    (layer,) = manifest["layers"]
    root = tmp_path / "root"
    root.mkdir()
    blob = bd_arm64_base_layout / "blobs" / "sha256" / layer["digest"][7:]
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xzf", str(blob)], check=True)
    elf = (root / "usr" / "bin" / "python3.11").read_bytes()[:20]
    assert elf[:4] == b"\x7fELF" and elf[18] == 0xB7  # e_machine EM_AARCH64: not this machine's
    assert smoke_python(root, "arm64") == "aarch64"
    dpkg = subprocess.run(
        ["chroot", str(root), "dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    )
    assert dpkg.stdout.strip() == "arm64"


def test_multi_platform_image_is_one_reproducible_index(
    tmp_path: Path, bd_multi_lock: Path, bd_base_layout: Path, bd_arm64_base_layout: Path
) -> None:
    bases = ["--base", f"oci:{bd_base_layout}", "--base", f"linux/arm64=oci:{bd_arm64_base_layout}"]
    runs = [
        _index_build(
            [str(bd_multi_lock), "--platform", BOTH, *bases, "-o", str(tmp_path / run)], tmp_path / f"c-{run}"
        )
        for run in ("a", "b")  # fresh caches: nothing reused between the two
    ]
    assert runs[0]["index_digest"] == runs[1]["index_digest"]
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")

    layout = tmp_path / "a"
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == runs[0]["index_digest"]
    index = _blob(layout, entry["digest"])
    platforms = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert platforms == {p.split("/")[1]: r["image_digest"] for p, r in runs[0]["platforms"].items()}
    arm = _blob(layout, platforms["arm64"])
    assert _blob(layout, arm["config"]["digest"])["architecture"] == "arm64"
    (base_entry,) = json.loads((bd_arm64_base_layout / "index.json").read_text())["manifests"]
    assert arm["layers"][0] == _blob(bd_arm64_base_layout, base_entry["digest"])["layers"][0]
    names = {p: {layer["name"] for layer in r["layers"]} for p, r in runs[0]["platforms"].items()}
    assert "framework:torch" in names["linux/amd64"] and "framework:torch" not in names["linux/arm64"]
    assert {"package:archprobe", "package:abistub", "package:six"} <= names["linux/arm64"]


def test_aarch64_image_imports_under_qemu(
    tmp_path: Path, bd_multi_lock: Path, bd_base_layout: Path, bd_arm64_base_layout: Path, bd_docker: str
) -> None:
    cache = tmp_path / "cache"
    index = _index_build(
        [
            str(bd_multi_lock),
            "--platform",
            BOTH,
            "--base",
            f"oci:{bd_base_layout}",
            "--base",
            f"linux/arm64=oci:{bd_arm64_base_layout}",
            "-o",
            str(tmp_path / "multi"),
        ],
        cache,
    )
    arm = build_json(
        [
            str(bd_multi_lock),
            "--platform",
            "linux/arm64",
            "--base",
            f"oci:{bd_arm64_base_layout}",
            "--load",
            "--tag",
            "bd/multi-arm64:1",
        ],
        cache,
    )
    # the one-platform image is the index's arm64 manifest, byte for byte
    assert arm["image_digest"] == index["platforms"]["linux/arm64"]["image_digest"]
    assert arm["platform"] == "linux/arm64"
    code, out, err = run_cli(["smoke", "bd/multi-arm64:1", "--json"])
    assert code == 0, err
    smoke = json.loads(out)
    assert_envelope(smoke, code, "envctl.smoke/1")
    assert smoke["ok"] and smoke["emulated"] and smoke["platform"] == "linux/arm64"
    modules = {p["name"]: p["modules"] for p in smoke["packages"]}
    # archprobe's import raises anywhere but on aarch64: it ran under qemu
    assert modules["archprobe"] == {"archprobe": "1.0+aarch64"}
    assert set(modules) == {"archprobe", "abistub", "six"}


def test_build_fleet_one_image_per_variant(
    tmp_path: Path, bd_wheelhouse: list[Path], bd_base_layout: Path
) -> None:
    from envctl.adapters.fleet_index import IndexedVariant, write_index

    locks = {}
    for variant, wheels in (("x86_64-r550", bd_wheelhouse), ("x86_64-cpu", bd_wheelhouse[2:])):
        locks[variant] = bd_wheels.write_lock(tmp_path / f"conda-lock.{variant}.yml", wheels)
    index = tmp_path / "conda-lock.fleet.toml"
    write_index(
        index,
        "bdtest",
        tuple(IndexedVariant(v, p.name, "h", (f"n-{v}",)) for v, p in locks.items()),
    )
    code, out, err = run_cli(
        [
            "build",
            "--fleet",
            str(index),
            "--base",
            f"oci:{bd_base_layout}",
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
        tmp_path / "cache",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert_envelope(doc, code, "envctl.build-fleet/1")
    assert sorted(doc["variants"]) == sorted(locks)
    for variant in locks:
        layout = tmp_path / "out" / variant
        (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
        assert entry["digest"] == doc["variants"][variant]["image_digest"]
    # without -o: beside each lock, where push --fleet looks
    code, out, err = run_cli(
        ["build", "--fleet", str(index), "--base", f"oci:{bd_base_layout}", "--json"], tmp_path / "cache"
    )
    assert code == 0, err
    beside = json.loads(out)["variants"]
    assert {v: r["outputs"]["oci"] for v, r in beside.items()} == {
        v: str(tmp_path / f"conda-lock.{v}.oci") for v in locks
    }
    assert beside["x86_64-cpu"]["image_digest"] == doc["variants"]["x86_64-cpu"]["image_digest"]
