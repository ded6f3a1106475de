"""OCI layouts and docker archives round-trip through the blob cache; registry references."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.docker_archive import read_archive, write_archive
from envctl.adapters.oci_layout import read_base, write_layout
from envctl.adapters.registry_client import RegistryRef
from envctl.adapters.tarball import write_layer
from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    Layer,
    canonical_json,
    image_index,
    image_manifest,
    sha256_digest,
)
from envctl.errors import BuildError, EnvctlError


def _image(tmp_path: Path, cache: BlobCache) -> tuple[list[str], bytes, bytes, dict[str, object]]:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/hello").write_text("hi")
    blob = write_layer(root, cache, 0)
    layer = Layer(blob.digest, blob.diff_id, blob.size, MEDIA_LAYER_GZIP)
    config = canonical_json({"rootfs": {"type": "layers", "diff_ids": [blob.diff_id]}})
    manifest = canonical_json(image_manifest(sha256_digest(config), len(config), (layer,), {}))
    return [blob.digest], config, manifest, image_index(sha256_digest(manifest), len(manifest), "v1")


def test_layout_round_trip(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    blobs, config, manifest, index = _image(tmp_path, cache)
    write_layout(tmp_path / "out", cache, blobs, [config, manifest], index)  # type: ignore[arg-type]
    assert json.loads((tmp_path / "out/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    other = BlobCache(tmp_path / "other")
    base = read_base(tmp_path / "out", "v1", other, "amd64")
    assert [layer.digest for layer in base.layers] == blobs
    assert other.has(blobs[0].split(":")[1])
    with pytest.raises(BuildError, match="no image tagged v2"):
        read_base(tmp_path / "out", "v2", other, "amd64")


def test_layout_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    blobs, config, manifest, index = _image(tmp_path, cache)
    write_layout(tmp_path / "out", cache, blobs, [config, manifest], index)  # type: ignore[arg-type]
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    with pytest.raises(BuildError):
        write_layout(tmp_path / "out", cache, ["sha256:bad"], [config], index)  # type: ignore[arg-type]
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out", "rootfs"]


def test_docker_archive_round_trip_is_deterministic(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    blobs, config, _manifest, _index = _image(tmp_path, cache)
    docs = {f"blobs/sha256/{sha256_digest(config)[7:]}": config}
    for name in ("a.tar", "b.tar"):
        write_archive(tmp_path / name, cache, blobs, docs, sha256_digest(config), "x/y:1", 5)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        assert json.load(member)[0]["RepoTags"] == ["x/y:1"]
    base = read_archive(tmp_path / "a.tar", BlobCache(tmp_path / "c2"))
    assert [layer.digest for layer in base.layers] == blobs


def test_docker_archive_without_manifest_is_an_error(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "x.tar", "w") as tar:
        info = tarfile.TarInfo("hello")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BuildError, match=r"manifest\.json is missing"):
        read_archive(tmp_path / "x.tar", BlobCache(tmp_path / "c"))


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


_LAYER = b"\0" * 1024  # an empty tar: two zero blocks
_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"manifest.json": _DEEP}, "manifest.json is not JSON"),
        ({"manifest.json": b'[{"Config": "c.json", "Layers": []}]', "c.json": _DEEP}, "c.json"),
        ({"manifest.json": b'[{"Config": "c.json", "Layers": []}]', "c.json": b"[1]"}, "a JSON object"),
        ({"manifest.json": b'["x"]'}, "not a readable docker archive"),
        ({"manifest.json": b'[{"Layers": []}]'}, "not a readable docker archive"),
        (
            {
                "manifest.json": b'[{"Config": "c.json", "Layers": ["l.tar"]}]',
                "c.json": json.dumps({"rootfs": {"diff_ids": ["sha256:../../x"]}}).encode(),
                "l.tar": _LAYER,
            },
            "digest 'sha256:../../x' is not sha256:<64 lower-case hex>",
        ),
    ],
)
def test_a_hostile_docker_archive_is_one_error(
    tmp_path: Path, members: dict[str, bytes], fragment: str
) -> None:
    # finding 10: deep JSON (RecursionError) and odd shapes in a --base docker-archive: end in one
    # error, not a traceback; a diff_id is a digest before it is compared or recorded
    with pytest.raises(EnvctlError) as caught:
        read_archive(_archive(tmp_path / "x.tar", members), BlobCache(tmp_path / "c"))
    assert fragment in caught.value.message
    assert len(caught.value.message) < 600


def test_registry_references() -> None:
    ref = RegistryRef.parse("127.0.0.1:5000/team/base:3.11")
    assert (ref.host, ref.repository, ref.reference) == ("127.0.0.1:5000", "team/base", "3.11")
    assert RegistryRef.parse("reg.example/base").reference == "latest"
    assert RegistryRef.parse("localhost/b@sha256:" + "0" * 64).reference.startswith("sha256:")
    with pytest.raises(BuildError, match="not a registry reference"):
        RegistryRef.parse("debian:bookworm")


def test_docker_hub_references_name_library_images_and_the_api_host() -> None:
    python = RegistryRef.parse("docker.io/python:3.11-slim")
    assert (python.repository, python.reference, python.api_host) == (
        "library/python",
        "3.11-slim",
        "registry-1.docker.io",
    )
    assert RegistryRef.parse("docker.io/pytorch/pytorch:2.5.1").repository == "pytorch/pytorch"
    ghcr = RegistryRef.parse("ghcr.io/team/base:1")
    assert (ghcr.repository, ghcr.api_host) == ("team/base", "ghcr.io")
    assert RegistryRef.parse("nvcr.io/nvidia/pytorch:24.10-py3").repository == "nvidia/pytorch"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("localhost/b@sha256:zz", "digest 'sha256:zz' is not sha256:<64 lower-case hex>"),
        ("localhost/b@sha256:" + "0" * 64 + "\n", "is not sha256:<64 lower-case hex>"),
        ("localhost/b@sha256:../../x", "is not sha256:<64 lower-case hex>"),
        ("localhost/../../v2/x:1", "image name"),
        ("localhost/b:1?x=1", "image name"),
        ("localhost/b:1#x", "image name"),
        ("localhost/B c:1", "image name"),
        ("localhost/Upper@sha256:" + "0" * 64, "image name"),
    ],
)
def test_registry_references_are_checked_before_they_reach_a_url(text: str, fragment: str) -> None:
    # issue 9, the client class: a digest or a name becomes part of a registry URL path only
    # after the one check of names and digests
    with pytest.raises(BuildError) as caught:
        RegistryRef.parse(text)
    assert fragment in caught.value.message and caught.value.message.startswith("--base")
