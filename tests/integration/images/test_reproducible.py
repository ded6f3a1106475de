"""Reproducibility and layer reuse, on the debootstrap base (no engine needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import bd_wheels
import pytest
from bd_cli import build_json

pytestmark = pytest.mark.integration


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_two_clean_builds_are_byte_identical(tmp_path: Path, bd_lock: Path, bd_base_layout: Path) -> None:
    results = []
    for run in ("a", "b"):
        results.append(
            build_json(
                [
                    str(bd_lock),
                    "--base",
                    f"oci:{bd_base_layout}",
                    "-o",
                    str(tmp_path / run),
                    "--docker-archive",
                    str(tmp_path / f"{run}.tar"),
                ],
                tmp_path / f"cache-{run}",  # fresh caches: nothing reused between the two
            )
        )
    assert not any(layer["reused"] for result in results for layer in result["layers"])
    assert results[0]["image_digest"] == results[1]["image_digest"]
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_changing_one_package_changes_only_its_layer(
    tmp_path: Path, bd_wheelhouse: list[Path], bd_base_layout: Path
) -> None:
    cache = tmp_path / "cache"
    before = build_json(
        [
            str(bd_wheels.write_lock(tmp_path / "a.yml", bd_wheelhouse)),
            "--base",
            f"oci:{bd_base_layout}",
            "-o",
            str(tmp_path / "a"),
        ],
        cache,
    )
    wheels = [w for w in bd_wheelhouse if not w.name.startswith("six-")]
    wheels.append(bd_wheels.make_wheel(tmp_path / "newer", "six", "1.17.0"))
    after = build_json(
        [
            str(bd_wheels.write_lock(tmp_path / "b.yml", wheels)),
            "--base",
            f"oci:{bd_base_layout}",
            "-o",
            str(tmp_path / "b"),
        ],
        cache,
    )
    old = {layer["name"]: layer["digest"] for layer in before["layers"]}
    new = {layer["name"]: layer["digest"] for layer in after["layers"]}
    assert old.keys() == new.keys()
    changed = {name for name in old if old[name] != new[name]}
    # the metadata layer holds the lock itself and its SBOM, so it changes with any lock change
    assert changed == {"package:six", "metadata"}
    rebuilt = {layer["name"] for layer in after["layers"] if not layer["reused"]}
    assert rebuilt == changed
    assert before["image_digest"] != after["image_digest"]


def test_conda_package_installed_with_image_prefix_reproducibly(
    tmp_path: Path, bd_wheelhouse: list[Path], bd_base_layout: Path
) -> None:
    import gzip
    import json
    import tarfile

    nccl = bd_wheels.make_conda_package(
        tmp_path / "channel",
        "libnccl",
        "2.21.5",
        {"lib/libnccl.so.2": "\x7fELF nccl", "etc/nccl.conf": "prefix=@PREFIX@\n"},
    )
    lock = bd_wheels.write_lock(tmp_path / "lock.yml", bd_wheelhouse, conda=[nccl])
    results = [
        build_json(
            [str(lock), "--base", f"oci:{bd_base_layout}", "-o", str(tmp_path / run)],
            tmp_path / f"cache-{run}",
        )
        for run in ("a", "b")
    ]
    assert results[0]["image_digest"] == results[1]["image_digest"]
    layer = next(x for x in results[0]["layers"] if x["name"] == "cuda:libnccl")
    blob = tmp_path / "a" / "blobs" / "sha256" / layer["digest"].split(":")[1]
    with gzip.open(blob) as fh, tarfile.open(fileobj=fh) as tar:
        names = tar.getnames()
        prefix = "opt/envctl/envs/bdtest"
        conf = tar.extractfile(f"{prefix}/etc/nccl.conf")
        meta = tar.extractfile(f"{prefix}/conda-meta/libnccl-2.21.5-h0_0.json")
        assert conf is not None and meta is not None
        assert conf.read().decode() == "prefix=/opt/envctl/envs/bdtest\n"
        record = json.loads(meta.read())
    assert f"{prefix}/lib/libnccl.so.2" in names
    assert str(tmp_path) not in json.dumps({k: v for k, v in record.items() if k != "url"})
