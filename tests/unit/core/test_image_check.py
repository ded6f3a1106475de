"""Pure checks of OCI documents: digests, descriptors, platform choice, manifest and config shapes."""

from __future__ import annotations

from typing import Any

import pytest

from envctl.core.image import MEDIA_INDEX, MEDIA_LAYER_GZIP, MEDIA_MANIFEST
from envctl.core.image_check import (
    Descriptor,
    Platform,
    base_image,
    digest_hex,
    load_document,
    parse_config,
    parse_descriptor,
    parse_manifest,
    select_image,
)
from envctl.errors import InputError

D = "sha256:" + "a" * 64
AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


def _entry(
    n: int, platform: Platform | None = None, ref: str | None = None, kind: str = MEDIA_MANIFEST
) -> Descriptor:
    annotations = {"org.opencontainers.image.ref.name": ref} if ref else {}
    return Descriptor(kind, "sha256:" + f"{n:x}" * 64, 10, annotations, platform)


@pytest.mark.parametrize(
    "bad", [D + "\n", " " + D, D.upper(), D[:-1], "sha256:../../x", "md5:" + "a" * 32, None, 3]
)
def test_digest_hex_refuses_anything_but_sha256_hex(bad: object) -> None:
    with pytest.raises(InputError, match=r"^f: k: malformed digest"):
        digest_hex(bad, "f", "k")
    assert digest_hex(D) == "a" * 64


def test_cut_values_keep_their_end_visible() -> None:
    with pytest.raises(InputError) as info:
        digest_hex(D + "\n", "f", "k")
    assert "\\n'" in info.value.message and len(info.value.message) < 140


def test_platforms() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert str(Platform.parse("linux/amd64")) == "linux/amd64"
    assert ARM64.matches(Platform("linux", "arm64", "v8"))
    assert not Platform("linux", "arm64", "v8").matches(ARM64)
    assert not AMD64.matches(ARM64)
    with pytest.raises(InputError, match="OS/ARCH"):
        Platform.parse("amd64")


def test_descriptor_maps_docker_names_and_checks_platform() -> None:
    desc = parse_descriptor(
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": D,
            "size": 3,
            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        },
        "f",
        "m",
    )
    assert desc.media_type == MEDIA_MANIFEST and desc.platform == Platform("linux", "arm64", "v8")
    with pytest.raises(InputError, match=r"^f: m.platform: expected os and architecture"):
        parse_descriptor({"mediaType": "x", "digest": D, "size": 3, "platform": {"os": "linux"}}, "f", "m")
    with pytest.raises(InputError, match=r"^f: m.mediaType: missing"):
        parse_descriptor({"digest": D, "size": 3}, "f", "m")


def test_select_by_ref_then_platform() -> None:
    entries = [_entry(1, AMD64, "a"), _entry(2, ARM64, "a"), _entry(3, None, "b")]
    assert select_image(entries, "f", AMD64, "a") == entries[0]
    assert select_image(entries, "f", ARM64, "a") == entries[1]
    assert select_image(entries, "f", ARM64, "b") == entries[2]  # one image, no platform said
    with pytest.raises(InputError, match="no image tagged c") as info:
        select_image(entries, "f", AMD64, "c")
    assert info.value.hint == "tags here: a, b"
    with pytest.raises(InputError, match="exactly one image manifest, found 3"):
        select_image(entries, "f", AMD64)


def test_select_skips_what_is_no_image_and_refuses_a_wrong_platform() -> None:
    entries = [_entry(1, AMD64), _entry(2, None, kind="application/vnd.in-toto+json")]
    assert select_image(entries, "f", AMD64) == entries[0]
    with pytest.raises(InputError, match=r"^f: manifests\[0\].platform: the image is for linux/amd64"):
        select_image(entries, "f", ARM64)
    index = _entry(3, None, kind=MEDIA_INDEX)
    assert select_image([index], "f", ARM64) == index  # the platform is chosen inside it


def _manifest(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": "sha256:" + "b" * 64, "size": 5}],
    }
    doc.update(change)
    return doc


def test_hostile_layer_digests_are_refused() -> None:
    layers = [{"digest": "sha256:../../etc/passwd", "size": 1, "mediaType": MEDIA_LAYER_GZIP}]
    with pytest.raises(InputError, match=r"^m: layers\[0\].digest: malformed digest"):
        parse_manifest(_manifest(layers=layers), "m")


def test_config_and_base_image() -> None:
    manifest = parse_manifest(_manifest(), "m")
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [D]}}
    base = base_image("oci:x", D, manifest, parse_config(config, "c", manifest, AMD64))
    assert [(layer.digest, layer.diff_id) for layer in base.layers] == [("sha256:" + "b" * 64, D)]
    with pytest.raises(InputError, match=r"^c: architecture: the image is for linux/amd64, not linux/arm64"):
        parse_config(config, "c", manifest, ARM64)
    with pytest.raises(InputError, match=r"^c: rootfs.diff_ids\[0\]: malformed digest"):
        parse_config({"rootfs": {"diff_ids": ["x"]}}, "c", manifest, AMD64)
    with pytest.raises(InputError, match=r"^c: rootfs: expected an object"):
        parse_config({}, "c", manifest, AMD64)


def test_load_document() -> None:
    assert load_document(b'{"a": 1}', "f") == {"a": 1}
    for data in (b"[1]", b"\xff", b"[" * 100_000):
        with pytest.raises(InputError, match=r"^f: "):
            load_document(data, "f")
