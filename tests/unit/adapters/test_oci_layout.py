"""The one OCI layout reader: index -> (index ->) manifest -> config and layers, every check
ending in one error that names the file and the key, with a hint (exit 2)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import app_layers, write_image_blobs, write_layout, write_platform_index

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.oci_layout import OciImage, read_base, read_image
from envctl.core.image_check import Platform
from envctl.errors import BuildError, InputError

ARM64 = Platform("linux", "arm64")


def _refused(call: Callable[[], object], file: Path, *words: str) -> InputError:
    """``call`` fails with one InputError line that starts with ``file`` and holds ``words``."""
    with pytest.raises(InputError) as info:
        call()
    exc = info.value
    assert exc.message.startswith(f"{file}: "), exc.message
    assert "\n" not in exc.message and exc.hint and exc.exit_code == 2
    for word in words:
        assert word in exc.message, exc.message
    return exc


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _rewrite(path: Path, change: Callable[[Any], None]) -> None:
    doc = _json(path)
    change(doc)
    path.write_text(json.dumps(doc))


def _manifest_path(img: OciImage) -> Path:
    return img.blob_path(img.manifest.digest)


def _replace_manifest(root: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """Edit the manifest and re-point index.json at the edited bytes (digest and size right),
    so that only the edited key is wrong; returns the new manifest's path."""
    import hashlib

    old = _json(root / "index.json")["manifests"][0]["digest"]
    doc = _json(root / "blobs" / "sha256" / old[7:])
    change(doc)
    data = json.dumps(doc).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)

    def point(index: dict[str, Any]) -> None:
        index["manifests"][0].update(digest=f"sha256:{digest}", size=len(data))

    _rewrite(root / "index.json", point)
    return root / "blobs" / "sha256" / digest


def test_reads_manifest_config_and_layers(tmp_path: Path) -> None:
    digest = write_layout(tmp_path, app_layers("1"), ref="demo")
    img = read_image(tmp_path)
    assert img.manifest.digest == digest and img.ref_name == "demo"
    assert len(img.layers) == 2 and img.blobs[-1] == img.manifest
    assert all(img.blob_path(b.digest).stat().st_size == b.size for b in img.blobs)
    assert img.platform == Platform("linux", "amd64")
    assert img.config_document["architecture"] == "amd64"


def test_missing_blob_and_wrong_size_are_named(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    path = img.blob_path(img.layers[0].digest)
    path.write_bytes(path.read_bytes() + b"x")
    _refused(lambda: read_image(tmp_path), _manifest_path(img), "layers[0]", "descriptor says")
    path.unlink()
    _refused(lambda: read_image(tmp_path), _manifest_path(img), "layers[0]", "missing from the layout")


def test_missing_manifest_and_config_blobs_are_named(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    img.blob_path(img.config.digest).unlink()
    _refused(lambda: read_image(tmp_path), _manifest_path(img), "config: blob", "missing from the layout")
    _manifest_path(img).unlink()
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0]", "missing")


def test_not_a_layout_and_ambiguous_index(tmp_path: Path) -> None:
    _refused(lambda: read_image(tmp_path / "nope"), tmp_path / "nope", "no such OCI layout directory")
    _refused(lambda: read_image(tmp_path), tmp_path, "not an OCI image layout")
    write_layout(tmp_path, app_layers("1"))
    _rewrite(
        tmp_path / "index.json", lambda i: i["manifests"].append({**i["manifests"][0], "annotations": {}})
    )
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "exactly one image manifest")
    assert read_image(tmp_path, ref="demo").ref_name == "demo"
    _refused(lambda: read_image(tmp_path, ref="v9"), tmp_path / "index.json", "no image tagged v9")


@pytest.mark.parametrize("text", ["{", "[]", '"x"', "[" * 100_000])
def test_malformed_index_json(tmp_path: Path, text: str) -> None:
    write_layout(tmp_path, app_layers("1"))
    (tmp_path / "index.json").write_text(text)
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda i: i.pop("manifests"), "manifests"),
        (lambda i: i.update(manifests={}), "manifests"),
        (lambda i: i.update(manifests=[]), "manifests"),
        (lambda i: i.update(manifests=["sha256:" + "0" * 64]), "manifests[0]"),
        (lambda i: i.update(schemaVersion=1), "schemaVersion"),
        (lambda i: i.update(mediaType="application/vnd.oci.image.manifest.v1+json"), "mediaType"),
        (lambda i: i["manifests"][0].pop("size"), "manifests[0].size"),
        (lambda i: i["manifests"][0].update(size=True), "manifests[0].size"),
        (lambda i: i["manifests"][0].update(size=-1), "manifests[0].size"),
        (lambda i: i["manifests"][0].update(platform="linux/amd64"), "manifests[0].platform"),
    ],
)
def test_malformed_index_entries(tmp_path: Path, change: Callable[[Any], None], key: str) -> None:
    write_layout(tmp_path, app_layers("1"))
    _rewrite(tmp_path / "index.json", change)
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", key)


def test_annotations_not_a_mapping(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    _rewrite(tmp_path / "index.json", lambda i: i["manifests"][0].update(annotations=["demo"]))
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].annotations")
    _rewrite(tmp_path / "index.json", lambda i: i["manifests"][0].update(annotations={"a": 1}))
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].annotations.a")


def test_media_type_a_list(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    kind = "application/vnd.oci.image.manifest.v1+json"
    _rewrite(tmp_path / "index.json", lambda i: i["manifests"][0].update(mediaType=[kind]))
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].mediaType", "string")


def test_layer_media_type_a_list_or_unknown(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    path = _replace_manifest(tmp_path, lambda m: m["layers"][1].update(mediaType=["x"]))
    _refused(lambda: read_image(tmp_path), path, "layers[1].mediaType")
    path = _replace_manifest(tmp_path, lambda m: m["layers"][1].update(mediaType="text/plain"))
    _refused(lambda: read_image(tmp_path), path, "layers[1].mediaType", "not a layer type")


@pytest.mark.parametrize("where", ["index", "layer"])
def test_digest_with_a_trailing_newline(tmp_path: Path, where: str) -> None:
    write_layout(tmp_path, app_layers("1"))
    if where == "index":
        _rewrite(
            tmp_path / "index.json",
            lambda i: i["manifests"][0].update(digest=i["manifests"][0]["digest"] + "\n"),
        )
        _refused(
            lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].digest", "malformed digest"
        )
    else:
        path = _replace_manifest(
            tmp_path, lambda m: m["layers"][0].update(digest=m["layers"][0]["digest"] + "\n")
        )
        _refused(lambda: read_image(tmp_path), path, "layers[0].digest", "malformed digest")


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "0" * 64, 7])
def test_hostile_digests_never_become_paths(tmp_path: Path, digest: object) -> None:
    write_layout(tmp_path, app_layers("1"))
    path = _replace_manifest(tmp_path, lambda m: m["config"].update(digest=digest))
    _refused(lambda: read_image(tmp_path), path, "config.digest")


def test_manifest_without_config(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    path = _replace_manifest(tmp_path, lambda m: m.pop("config"))
    _refused(lambda: read_image(tmp_path), path, "config", "missing")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda m: m.pop("layers"), "layers"),
        (lambda m: m.update(layers={}), "layers"),
        (lambda m: m.update(mediaType="application/vnd.oci.image.index.v1+json"), "mediaType"),
        (
            lambda m: m["config"].update(mediaType="application/vnd.oci.image.layer.v1.tar"),
            "config.mediaType",
        ),
        (lambda m: m["layers"][0].update(size="12"), "layers[0].size"),
    ],
)
def test_malformed_manifest(tmp_path: Path, change: Callable[[Any], None], key: str) -> None:
    write_layout(tmp_path, app_layers("1"))
    path = _replace_manifest(tmp_path, change)
    _refused(lambda: read_image(tmp_path), path, key)


def test_config_must_match_the_manifest(tmp_path: Path) -> None:
    import hashlib

    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    config = dict(img.config_document)
    config["rootfs"] = {"type": "layers", "diff_ids": config["rootfs"]["diff_ids"][:1]}
    data = json.dumps(config).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (tmp_path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    _replace_manifest(tmp_path, lambda m: m["config"].update(digest=digest, size=len(data)))
    _refused(
        lambda: read_image(tmp_path),
        tmp_path / "blobs" / "sha256" / digest[7:],
        "rootfs.diff_ids",
        "1 entries",
    )


def test_document_must_match_its_digest_and_size(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    path = _manifest_path(img)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"gzip", b"gzap"))  # same size, other bytes
    _refused(
        lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0]", "does not match its digest"
    )
    path.write_bytes(data + b" ")
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0]", "descriptor says")


def test_huge_document_is_refused_before_reading(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    _rewrite(tmp_path / "index.json", lambda i: i["manifests"][0].update(size=1 << 40))
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].size", "no JSON document")


def test_symlinked_blob_is_refused(tmp_path: Path) -> None:
    write_layout(tmp_path / "l", app_layers("1"))
    img = read_image(tmp_path / "l")
    for blob in (img.manifest, img.layers[0]):
        path = img.blob_path(blob.digest)
        os.replace(path, tmp_path / blob.hex)
        path.symlink_to(tmp_path / blob.hex)
    _refused(
        lambda: read_image(tmp_path / "l"), tmp_path / "l" / "index.json", "manifests[0]", "symbolic link"
    )


def test_blob_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    write_layout(tmp_path, app_layers("1"))
    img = read_image(tmp_path)
    for blob, where, key in (
        (img.layers[1], _manifest_path(img), "layers[1]"),
        (img.config, _manifest_path(img), "config"),
    ):
        path = img.blob_path(blob.digest)
        path.unlink()
        path.mkdir()
        _refused(lambda: read_image(tmp_path), where, key, "not a regular file")
        path.rmdir()


def _two_platforms(root: Path, nested: bool = False, ref: str | None = "demo") -> dict[str, str]:
    images = {
        "amd64": write_image_blobs(root, app_layers("amd64")),
        "arm64": write_image_blobs(root, app_layers("arm64"), architecture="arm64"),
    }
    write_platform_index(root, images, ref=ref, nested=nested)
    return {arch: str(desc["digest"]) for arch, desc in images.items()}


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("ref", ["demo", None])
def test_multi_platform_layout_picks_the_platform(tmp_path: Path, nested: bool, ref: str | None) -> None:
    digests = _two_platforms(tmp_path, nested, ref)
    img = read_image(tmp_path, ref)
    assert img.manifest.digest == digests["amd64"] and img.ref_name == ref
    assert read_image(tmp_path, ref, ARM64).manifest.digest == digests["arm64"]
    where = tmp_path / "index.json"
    if nested:
        where = tmp_path / "blobs" / "sha256" / _json(where)["manifests"][0]["digest"][7:]
    exc = _refused(
        lambda: read_image(tmp_path, ref, Platform("linux", "s390x")), where, "no linux/s390x image"
    )
    assert exc.hint and "linux/amd64, linux/arm64" in exc.hint


def test_platform_of_the_config_and_descriptor_are_checked(tmp_path: Path) -> None:
    digests = _two_platforms(tmp_path)
    # one entry left, the arm64 one: asking for amd64 names the platform it has
    _rewrite(tmp_path / "index.json", lambda i: i.update(manifests=i["manifests"][1:]))
    _refused(lambda: read_image(tmp_path), tmp_path / "index.json", "manifests[0].platform", "linux/arm64")
    # without the descriptor's platform, the config still says arm64
    _rewrite(tmp_path / "index.json", lambda i: i["manifests"][0].pop("platform"))
    manifest = _json(tmp_path / "blobs" / "sha256" / digests["arm64"][7:])
    config = tmp_path / "blobs" / "sha256" / manifest["config"]["digest"][7:]
    _refused(lambda: read_image(tmp_path), config, "architecture", "linux/arm64")
    assert read_image(tmp_path, platform=ARM64).manifest.digest == digests["arm64"]


def test_indexes_nest_boundedly(tmp_path: Path) -> None:
    import hashlib

    _two_platforms(tmp_path, nested=True)
    for _ in range(4):
        entry = _json(tmp_path / "index.json")["manifests"][0]
        data = json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode()
        hexd = hashlib.sha256(data).hexdigest()
        (tmp_path / "blobs" / "sha256" / hexd).write_bytes(data)
        new = {**entry, "digest": f"sha256:{hexd}", "size": len(data)}
        _rewrite(tmp_path / "index.json", lambda i, new=new: i.update(manifests=[new]))
    with pytest.raises(InputError, match="nest deeper than 4"):
        read_image(tmp_path)


def test_build_reads_the_same_layouts_as_build_errors(tmp_path: Path) -> None:
    digests = _two_platforms(tmp_path / "mp", nested=False)
    cache = BlobCache(tmp_path / "cache")
    base = read_base(tmp_path / "mp", None, cache, "amd64")
    assert base.manifest_digest == digests["amd64"]
    assert all(cache.has(layer.digest[7:]) for layer in base.layers)
    assert read_base(tmp_path / "mp", "demo", cache, "arm64").manifest_digest == digests["arm64"]
    with pytest.raises(BuildError, match=r"index\.json: manifests: no linux/s390x image"):
        read_base(tmp_path / "mp", None, cache, "s390x")
    with pytest.raises(BuildError, match="no such OCI layout directory"):
        read_base(tmp_path / "nope", None, cache, "amd64")
