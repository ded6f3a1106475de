"""Reading OCI layouts: the one manifest, its blobs, and precise errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_image import read_image
from envctl.errors import InputError


def test_reads_manifest_config_and_layers(tmp_path: Path) -> None:
    digest = write_layout(tmp_path, app_layers("1"), ref="demo")
    img = read_image(tmp_path)
    assert img.manifest.digest == digest and img.ref_name == "demo"
    assert len(img.layers) == 2 and img.blobs[-1] == img.manifest
    assert all(img.blob_path(b.digest).stat().st_size == b.size for b in img.blobs)


def test_missing_blob_and_wrong_size_are_named(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    path = img.blob_path(img.layers[0].digest)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(InputError, match=r"layers\[0\].*descriptor says"):
        read_image(tmp_path)
    path.unlink()
    with pytest.raises(InputError, match="missing from the layout"):
        read_image(tmp_path)


def test_not_a_layout_and_ambiguous_index(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an OCI image layout"):
        read_image(tmp_path)
    write_layout(tmp_path, app_layers("1"))
    index = json.loads((tmp_path / "index.json").read_text())
    index["manifests"].append({**index["manifests"][0], "annotations": {}})
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match="exactly one image manifest"):
        read_image(tmp_path)
    assert read_image(tmp_path, ref="demo").ref_name == "demo"
