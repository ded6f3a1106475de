"""A multi-platform layout (an image index over linux/amd64 and linux/arm64) is a base: build
takes its linux/amd64 image, whether index.json lists the platforms or names an index that does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from bd_cli import build_json

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import import_layout, write_image_blobs, write_platform_index

pytestmark = pytest.mark.integration


def _manifest(layout: Path) -> dict[str, Any]:
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    return dict(json.loads((layout / "blobs" / "sha256" / entry["digest"][7:]).read_text()))


@pytest.mark.parametrize("nested", [False, True], ids=["index.json", "nested-index"])
def test_multi_platform_layout_as_base(
    tmp_path: Path, bd_lock: Path, bd_base_layout: Path, nested: bool
) -> None:
    layout = tmp_path / "multi"
    amd64 = import_layout(bd_base_layout, layout)
    arm64 = write_image_blobs(
        layout, [[("dir", "etc"), ("file", "etc/arch", b"arm64\n")]], architecture="arm64"
    )
    write_platform_index(layout, {"amd64": amd64, "arm64": arm64}, ref="base", nested=nested)

    result = build_json(
        [str(bd_lock), "--base", f"oci:{layout}", "-o", str(tmp_path / "out")], tmp_path / "cache"
    )
    assert result["base"]["ref"] == f"oci:{layout}"
    built = _manifest(tmp_path / "out")
    base_layers = _manifest(bd_base_layout)["layers"]
    assert built["layers"][: len(base_layers)] == base_layers
    assert built["annotations"]["org.opencontainers.image.base.digest"] == amd64["digest"]
