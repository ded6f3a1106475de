"""Build reads exactly what `envctl lock` writes: a lock made by the real lock service (real uv and
rattler, on the local index and conda channel of these tests), then built into an image.

The base is a one-layer OCI layout holding a Python 3.12 (the lock's): the build only looks for
the interpreter and its stdlib, it never runs them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from lk_solutions import make_solution, platform_request

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.lockfile import read_lock
from envctl.adapters.oci_layout import write_layout
from envctl.adapters.tarball import write_layer
from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    Layer,
    canonical_json,
    image_index,
    image_manifest,
    sha256_digest,
)
from envctl.core.lock import LockOptions
from envctl.services.build.build import build_image
from envctl.services.build.model import BuildOptions
from envctl.services.lock.lock import lock_solution

from .conftest import LockWorld

pytestmark = pytest.mark.integration

PREFIX = "opt/envctl/envs/lk-test"


def _python_base(tmp_path: Path, python: str) -> Path:
    root = tmp_path / "base-rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / f"usr/bin/python{python}").write_text("#!/bin/false\n")
    (root / f"usr/lib/python{python}").mkdir(parents=True)
    (root / f"usr/lib/python{python}/os.py").write_text("")
    cache = BlobCache(tmp_path / "base-cache")
    blob = write_layer(root, cache, 0)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [blob.diff_id]},
        }
    )
    layer = Layer(blob.digest, blob.diff_id, blob.size, MEDIA_LAYER_GZIP)
    manifest = canonical_json(image_manifest(sha256_digest(config), len(config), (layer,), {}))
    index = image_index(sha256_digest(manifest), len(manifest), "py")
    write_layout(tmp_path / "base", cache, [blob.digest], [config, manifest], index)
    return tmp_path / "base"


def _members(layout: Path, digest: str) -> dict[str, bytes | None]:
    with gzip.open(layout / "blobs/sha256" / digest.split(":")[1]) as fh, tarfile.open(fileobj=fh) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize("source", ["local index", "offline wheelhouse"])
def test_build_reads_exactly_what_lock_writes(lock_world: LockWorld, tmp_path: Path, source: str) -> None:
    request = platform_request(conda_channels=(lock_world.channel_url,), conda_specs=("zlib",))
    out = tmp_path / "conda-lock.yml"
    if source == "local index":
        options = LockOptions(output=out, index_url=lock_world.pypi)
    else:
        options = LockOptions(output=out, offline=True, find_links=(lock_world.wheelhouse,))
    locked = lock_solution(make_solution(request), options, profile_hash="p", matrix_hash="m")
    assert locked.status == "written"
    written = out.read_bytes()
    lock = read_lock(out)

    image = tmp_path / "image"
    result = build_image(
        BuildOptions(lock=out, base=f"oci:{_python_base(tmp_path, '3.12')}", output=image),
        BlobCache(tmp_path / "cache"),
    )
    assert out.read_bytes() == written  # building never touches the lock
    assert (result.python, result.env_name) == ("3.12", "lk-test")
    config = json.loads((image / "blobs/sha256" / result.config_digest.split(":")[1]).read_bytes())
    labels = config["config"]["Labels"]
    assert labels["dev.envctl.lock.hash"] == lock.content_hash == locked.content_hash
    assert labels["dev.envctl.cuda"] == "12.4" and labels["dev.envctl.frameworks"] == "torch==2.5.1"
    assert config["created"] == lock.exclude_newer

    # every file of the lock, with its hash, is in the image: the SBOM lists exactly them
    metadata = _members(image, result.layers[-1].digest)
    assert metadata[f"{PREFIX}/envctl/conda-lock.yml"] == written
    sbom = json.loads(metadata[f"{PREFIX}/envctl/sbom.spdx.json"] or b"")
    in_image = {(p["name"], p["versionInfo"], p["checksums"][0]["checksumValue"]) for p in sbom["packages"]}
    in_lock = {(e.name, e.version, e.sha256) for e in lock.for_platform("linux-64")}
    assert in_image == in_lock and {"torch", "nvidia-cudnn-cu12", "zlib"} <= {n for n, _, _ in in_lock}

    # and installed: the wheels into the env's site-packages, the conda package into its prefix
    installed: dict[str, bytes | None] = {}
    for layer in result.layers:
        installed.update(_members(image, layer.digest))
    assert f"{PREFIX}/lib/python3.12/site-packages/torch/__init__.py" in installed
    assert installed[f"{PREFIX}/share/zlib/VERSION"] == b"1.3.1\n"
    torch = next(e for e in lock.entries if e.name == "torch")
    assert hashlib.sha256(lock_world.wheels[torch.filename].read_bytes()).hexdigest() == torch.sha256
