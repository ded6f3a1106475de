"""Multi-platform builds with fake parts: one index over a manifest per platform, each from that
platform's part of the lock on that platform's base; and the --platform / --base parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from envctl.adapters.oci_layout import read_image, read_platform_images
from envctl.core.image import MEDIA_INDEX
from envctl.core.image_check import Platform
from envctl.errors import InputError
from envctl.services.build.model import BuildOptions
from envctl.services.build.multi import build_index, parse_bases, parse_platforms
from tests.unit.services.test_build_service import FILES, World

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))

import bd_wheels

BOTH = ("linux/amd64", "linux/arm64")


class MultiWorld(World):
    """The World's lock with a linux-aarch64 part: an aarch64 platform wheel and six."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        wheels = bd_wheels.standard_wheels(tmp / "wheels", lib_mb=1)
        arm = [
            bd_wheels.make_wheel(tmp / "arm", "armonly", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64"),
            bd_wheels.make_wheel(tmp / "arm", "six", "1.16.0"),
        ]
        everything = [*wheels, *arm]
        urls = {bd_wheels.wheel_name_version(w)[0]: FILES + w.name for w in everything}
        self.lock = bd_wheels.write_lock(
            tmp / "multi.yml", wheels, urls=urls, other_platforms={"linux-aarch64": arm}
        )
        self.downloader.table.update({FILES + w.name: w.read_bytes() for w in arm})

    def index(self, out: Path, platforms: tuple[str, ...] = BOTH, **options: object):  # type: ignore[no-untyped-def]
        settings: dict[str, object] = {"lock": self.lock, "base": "made:py311", "output": out}
        settings.update(options)
        return build_index(BuildOptions(**settings), platforms, self.cache, self.parts)  # type: ignore[arg-type]


def test_one_index_with_a_manifest_per_platform(tmp_path: Path) -> None:
    world = MultiWorld(tmp_path)
    result = world.index(tmp_path / "out")
    assert [i.platform for i in result.images] == list(BOTH)
    assert world.bases.asked == [("made:py311", "amd64"), ("made:py311", "arm64")]
    (entry,) = json.loads((tmp_path / "out" / "index.json").read_text())["manifests"]
    assert entry["mediaType"] == MEDIA_INDEX and entry["digest"] == result.index_digest
    images = read_platform_images(tmp_path / "out", list(BOTH))
    assert {p: i.manifest.digest for p, i in images.items()} == {
        i.platform: i.image_digest for i in result.images
    }
    assert images["linux/arm64"].config_document["architecture"] == "arm64"
    layers = {i.platform: {layer.name for layer in i.layers} for i in result.images}
    assert "package:armonly" in layers["linux/arm64"] and "package:armonly" not in layers["linux/amd64"]
    assert "framework:torch" in layers["linux/amd64"] and "framework:torch" not in layers["linux/arm64"]
    assert result.to_dict()["schema"] == "envctl.build-index/1"


def test_same_inputs_same_index_digest_whatever_the_flag_order(tmp_path: Path) -> None:
    world = MultiWorld(tmp_path)
    first = world.index(tmp_path / "a")
    again = world.index(tmp_path / "b", platforms=parse_platforms(("linux/arm64,linux/amd64",)))
    assert first.index_digest == again.index_digest
    assert (tmp_path / "a" / "index.json").read_bytes() == (tmp_path / "b" / "index.json").read_bytes()


def test_each_platform_its_own_base(tmp_path: Path) -> None:
    world = MultiWorld(tmp_path)
    world.bases.pythons["made:arm"] = "3.11"
    world.index(tmp_path / "out", platform_bases=(("linux/arm64", "made:arm"),))
    assert world.bases.asked == [("made:py311", "amd64"), ("made:arm", "arm64")]


def test_a_platform_the_lock_lacks_is_refused_before_writing(tmp_path: Path) -> None:
    world = World(tmp_path)  # linux-64 only
    with pytest.raises(Exception, match="linux-aarch64"):
        build_index(
            BuildOptions(world.lock, "made:py311", output=tmp_path / "out"), BOTH, world.cache, world.parts
        )
    assert not (tmp_path / "out").exists()


def test_one_platform_image_of_the_index_reads_as_before(tmp_path: Path) -> None:
    world = MultiWorld(tmp_path)
    result = world.index(tmp_path / "out")
    image = read_image(tmp_path / "out", platform=Platform("linux", "arm64"))
    assert image.manifest.digest == result.images[1].image_digest
    assert image.ref_name == result.tag.rsplit(":", 1)[1]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"docker_archive": Path("x.tar")}, "one platform's image"),
        ({"load": True}, "one platform's image"),
        ({"output": None}, "needs -o DIR"),
    ],
)
def test_outputs_a_multi_platform_image_cannot_have(
    tmp_path: Path, option: dict[str, object], message: str
) -> None:
    world = MultiWorld(tmp_path)
    with pytest.raises(InputError, match=message):
        world.index(tmp_path / "out", **option)


def test_parse_platforms() -> None:
    assert parse_platforms(()) == ("linux/amd64",)
    assert parse_platforms(("linux/arm64", "linux/amd64")) == BOTH
    assert parse_platforms(("linux/arm64,linux/amd64",)) == BOTH
    with pytest.raises(InputError, match="linux/s390x: not supported"):
        parse_platforms(("linux/s390x",))
    with pytest.raises(InputError, match="named twice"):
        parse_platforms(("linux/amd64,linux/amd64",))


def test_parse_bases() -> None:
    assert parse_bases((), BOTH) == (None, {})
    assert parse_bases(("base:a", "linux/arm64=base:b"), BOTH) == ("base:a", {"linux/arm64": "base:b"})
    assert parse_bases(("oci:dir=with=equals",), BOTH) == ("oci:dir=with=equals", {})
    with pytest.raises(InputError, match="not built"):
        parse_bases(("linux/arm64=base:b",), ("linux/amd64",))
    with pytest.raises(InputError, match="second base"):
        parse_bases(("base:a", "base:b"), BOTH)
