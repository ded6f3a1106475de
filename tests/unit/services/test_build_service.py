"""`envctl build` orchestration with fake parts: a base made here, a downloader serving bytes from
a table, recording installers and loader (no network, no engine, no registry).

What is covered: the layer plan and its order, the base's Python chosen before any download, the
metadata layer (lock, SBOM, venv skeleton), layer reuse, ``--load``, and the errors.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.tarball import write_layer
from envctl.adapters.wheel_install import WheelInstaller
from envctl.core.build_parts import BuildParts, PackageInstaller
from envctl.core.image import MEDIA_LAYER_GZIP, BaseImage, Layer
from envctl.core.lock import LockEntry
from envctl.errors import BuildError, BuildFailure, InputError, LockError
from envctl.services.build.build import build_image
from envctl.services.build.model import BuildOptions, BuildResult

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))

import bd_wheels

FILES = "https://files.test/"


class TableDownloader:
    """Serves URLs from a table of bytes; counts what was opened."""

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table = table
        self.opened: list[str] = []

    @contextlib.contextmanager
    def _stream(self, url: str, what: str, offset: int) -> Iterator[IO[bytes]]:
        self.opened.append(url)
        if url not in self.table:
            raise BuildFailure(f"{what}: cannot fetch {url}: unreachable")
        yield io.BytesIO(self.table[url][offset:])

    def open(self, url: str, what: str, offset: int = 0) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self._stream(url, what, offset)


class MadeBases:
    """A BaseResolver with one base per ref, each a real layer holding a Python's two files."""

    def __init__(self, cache: BlobCache, tmp: Path, pythons: dict[str, str]) -> None:
        self.cache, self.tmp, self.pythons = cache, tmp, pythons
        self.asked: list[tuple[str, str]] = []

    def resolve(self, ref: str, architecture: str) -> BaseImage:
        self.asked.append((ref, architecture))
        if ref not in self.pythons:
            raise BuildError(f"{ref}: no such base")
        root = self.tmp / f"rootfs-{len(self.asked)}"
        python = self.pythons[ref]
        (root / "usr/bin").mkdir(parents=True)
        (root / f"usr/bin/python{python}").write_text("#!ELF\n")
        (root / f"usr/lib/python{python}").mkdir(parents=True)
        (root / f"usr/lib/python{python}/os.py").write_text("")
        blob = write_layer(root, self.cache, 0)
        config = {
            "architecture": architecture,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [blob.diff_id]},
        }
        layer = Layer(blob.digest, blob.diff_id, blob.size, MEDIA_LAYER_GZIP, "base")
        return BaseImage(ref, "sha256:" + "1" * 64, config, (layer,))


class RecordingInstaller:
    """Writes one marker file per package into the staging tree and remembers the call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def install(self, source: Path, package: LockEntry, staging: Path, prefix: str, python: str) -> None:
        self.calls.append((package.name, prefix, python))
        target = staging / prefix.lstrip("/") / "installed" / package.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes()[:16])


class RecordingLoader:
    def __init__(self, fail: bool = False) -> None:
        self.archives: list[Path] = []
        self.fail = fail

    def load(self, archive: Path) -> list[str]:
        self.archives.append(archive)
        assert archive.is_file()
        if self.fail:
            raise BuildError("engine said no")
        return ["bd/test:1"]


class World:
    """One lock served from https://files.test/, a cache, and the fake parts around them."""

    def __init__(self, tmp: Path, installers: dict[str, PackageInstaller] | None = None) -> None:
        self.tmp = tmp
        wheels = bd_wheels.standard_wheels(tmp / "wheels", lib_mb=1)
        urls = {bd_wheels.wheel_name_version(w)[0]: FILES + w.name for w in wheels}
        self.lock = bd_wheels.write_lock(tmp / "conda-lock.yml", wheels, urls=urls)
        self.downloader = TableDownloader({FILES + w.name: w.read_bytes() for w in wheels})
        self.cache = BlobCache(tmp / "cache", downloader=self.downloader)
        self.bases = MadeBases(self.cache, tmp, {"made:py311": "3.11", "made:py312": "3.12"})
        self.installer = RecordingInstaller()
        self.loader = RecordingLoader()
        self.parts = BuildParts(
            bases=self.bases,
            installers=installers if installers is not None else {"pip": self.installer},
            loader=self.loader,
        )

    def build(self, **options: object) -> BuildResult:
        settings: dict[str, object] = {"lock": self.lock, "base": "made:py311", "output": self.tmp / "out"}
        settings.update(options)
        return build_image(BuildOptions(**settings), self.cache, self.parts)  # type: ignore[arg-type]


def _layer_members(cache: BlobCache, digest: str) -> dict[str, bytes | None]:
    with gzip.open(cache.path(digest.split(":")[1])) as fh, tarfile.open(fileobj=fh) as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isreg() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def test_layers_in_order_from_the_base_that_has_the_python(tmp_path: Path) -> None:
    world = World(tmp_path)
    result = world.build(platform="linux/amd64")
    assert world.bases.asked == [("made:py311", "amd64")]
    assert [(layer.kind, layer.name) for layer in result.layers] == [
        ("cuda", "cuda:nvidia-cudnn-cu12"),
        ("framework", "framework:torch"),
        ("package", "package:numpy"),
        ("package", "package:six"),
        ("metadata", "metadata"),
    ]
    assert not any(layer.reused for layer in result.layers)
    assert (result.python, result.env_name, result.env_prefix) == (
        "3.11",
        "bdtest",
        "/opt/envctl/envs/bdtest",
    )
    assert result.base_layers == 1 and result.outputs == {"oci": str(tmp_path / "out")}
    assert result.tag.startswith("envctl/bdtest:")
    # every file downloaded once and verified; every package installed into the env's prefix
    assert sorted(world.downloader.opened) == sorted(world.downloader.table)
    assert sorted(world.installer.calls) == [
        (name, "/opt/envctl/envs/bdtest", "3.11") for name in ("numpy", "nvidia-cudnn-cu12", "six", "torch")
    ]
    # the layout on disk: its manifest names the base layer, then the five envctl layers
    index = json.loads((tmp_path / "out/index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((tmp_path / "out/blobs/sha256" / manifest_hex).read_bytes())
    assert len(manifest["layers"]) == 6 and "sha256:" + manifest_hex == result.image_digest
    config = json.loads((tmp_path / "out/blobs/sha256" / result.config_digest.split(":")[1]).read_bytes())
    labels = config["config"]["Labels"]
    assert labels["dev.envctl.cuda"] == "12.4" and labels["dev.envctl.frameworks"] == "torch==2.5.1"
    assert labels["org.opencontainers.image.created"] == "2024-06-01T00:00:00Z"  # the lock's cutoff


def test_the_metadata_layer_holds_the_lock_the_sbom_and_the_venv(tmp_path: Path) -> None:
    world = World(tmp_path)
    result = world.build()
    members = _layer_members(world.cache, result.layers[-1].digest)
    prefix = "opt/envctl/envs/bdtest"
    assert members[f"{prefix}/envctl/conda-lock.yml"] == world.lock.read_bytes()
    sbom = json.loads(members[f"{prefix}/envctl/sbom.spdx.json"] or b"")
    assert sorted(p["name"] for p in sbom["packages"]) == ["numpy", "nvidia-cudnn-cu12", "six", "torch"]
    assert sbom["creationInfo"]["created"] == "2024-06-01T00:00:00Z"
    cfg = (members[f"{prefix}/pyvenv.cfg"] or b"").decode()
    assert "home = /usr/bin\n" in cfg and "version = 3.11\n" in cfg
    assert f"{prefix}/bin/python" in members and f"{prefix}/lib/python3.11/site-packages" in members


def test_a_rebuild_reuses_every_layer_and_downloads_nothing(tmp_path: Path) -> None:
    world = World(tmp_path)
    first = world.build()
    opened = len(world.downloader.opened)
    again = world.build(output=tmp_path / "again")
    assert all(layer.reused for layer in again.layers)
    assert again.image_digest == first.image_digest and len(world.downloader.opened) == opened
    assert len(world.installer.calls) == 4  # nothing installed a second time


def test_real_wheel_installs_through_the_seam(tmp_path: Path) -> None:
    world = World(tmp_path, installers={"pip": WheelInstaller()})
    result = world.build()
    torch = next(layer for layer in result.layers if layer.kind == "framework")
    members = _layer_members(world.cache, torch.digest)
    site = "opt/envctl/envs/bdtest/lib/python3.11/site-packages"
    assert f"{site}/torch/__init__.py" in members
    assert (members["opt/envctl/envs/bdtest/bin/torchrun"] or b"").startswith(
        b"#!/opt/envctl/envs/bdtest/bin/python"
    )


def test_a_base_without_the_locks_python_fails_before_any_download(tmp_path: Path) -> None:
    world = World(tmp_path)
    with pytest.raises(BuildError, match=r"made:py312: base image has 3\.12, the lock needs Python 3\.11"):
        world.build(base="made:py312")
    with pytest.raises(BuildError, match="made:nope: no such base"):
        world.build(base="made:nope")
    assert world.downloader.opened == [] and not (tmp_path / "out").exists()


def test_platform_errors(tmp_path: Path) -> None:
    world = World(tmp_path)
    with pytest.raises(InputError, match="--platform linux/s390x: not supported"):
        world.build(platform="linux/s390x")
    with pytest.raises(LockError, match="no packages for platform linux-aarch64"):
        world.build(platform="linux/arm64")
    assert world.bases.asked == []


def test_a_wrong_download_stops_the_build_and_leaves_nothing(tmp_path: Path) -> None:
    world = World(tmp_path)
    numpy = next(url for url in world.downloader.table if "numpy" in url)
    world.downloader.table[numpy] = b"not the locked file"
    with pytest.raises(BuildError, match=r"numpy 1\.26\.4: sha256 mismatch") as info:
        world.build()
    assert hashlib.sha256(b"not the locked file").hexdigest() in info.value.message
    assert world.installer.calls == [] and not (tmp_path / "out").exists()
    del world.downloader.table[numpy]
    with pytest.raises(BuildFailure, match="unreachable"):
        world.build()


def test_no_installer_for_a_manager_is_a_build_error(tmp_path: Path) -> None:
    world = World(tmp_path)
    nccl = bd_wheels.make_conda_package(tmp_path / "channel", "libnccl", "2.21.5", {"lib/x": "x"})
    world.lock = bd_wheels.write_lock(tmp_path / "conda.yml", [], conda=[nccl])
    world.downloader.table[nccl.resolve().as_uri()] = nccl.read_bytes()
    with pytest.raises(BuildError, match=r"no installer for conda packages \(layer cuda:libnccl\)"):
        world.build()


def test_load_goes_through_the_loader(tmp_path: Path) -> None:
    world = World(tmp_path)
    loaded = world.build(output=None, load=True)
    assert loaded.loaded == ("bd/test:1",) and loaded.outputs == {}
    (archive,) = world.loader.archives
    assert archive.parent.parent == world.cache.root and not archive.exists()  # a temporary one
    kept = world.build(output=None, docker_archive=tmp_path / "image.tar", load=True)
    assert world.loader.archives[-1] == tmp_path / "image.tar"
    assert kept.outputs == {"docker_archive": str(tmp_path / "image.tar")}
    world.parts = BuildParts(world.bases, world.parts.installers, RecordingLoader(fail=True))
    with pytest.raises(BuildError, match="--load: engine said no"):
        world.build(output=None, load=True)


def test_every_build_is_in_the_ledger(tmp_path: Path) -> None:
    from envctl.adapters import ledger

    world = World(tmp_path)
    result = world.build(tag="bd/ledger:1")
    with pytest.raises(BuildError):
        world.build(base="made:nope")
    outcomes = sorted((e.outcome, e.subject) for e in ledger.events("build"))
    assert outcomes == [("failed", str(world.lock)), ("ok", result.image_digest)]


def test_an_image_built_here_is_a_base_for_the_next(tmp_path: Path) -> None:
    """The real base source (oci:DIR[:TAG], docker-archive:FILE) on this build's own outputs."""
    from envctl.services.build.base_source import BaseSource, find_python

    world = World(tmp_path)
    first = world.build(docker_archive=tmp_path / "first.tar", tag="bd/first:v1")
    source = BaseSource(BlobCache(tmp_path / "other-cache"))
    for ref in (
        f"oci:{tmp_path / 'out'}",
        f"oci:{tmp_path / 'out'}:v1",
        f"docker-archive:{tmp_path / 'first.tar'}",
    ):
        base = source.resolve(ref, "amd64")
        assert len(base.layers) == 1 + len(first.layers) and base.ref == ref
        assert {v: p.executable for v, p in find_python(base, source.cache).items()} == {
            "3.11": "/usr/bin/python3.11"
        }
    with pytest.raises(BuildError, match="no image tagged v2"):
        source.resolve(f"oci:{tmp_path / 'out'}:v2", "amd64")
    world.parts = BuildParts(BaseSource(world.cache), world.parts.installers, world.loader)
    second = world.build(base=f"oci:{tmp_path / 'out'}", output=tmp_path / "second")
    assert second.base_layers == 1 + len(first.layers)
    assert all(layer.reused for layer in second.layers[:-1])  # same packages, same layers


def test_a_base_with_the_same_layers_writes_each_blob_once(tmp_path: Path) -> None:
    from envctl.adapters.docker_archive import read_archive
    from envctl.services.build.base_source import BaseSource

    world = World(tmp_path)
    first = world.build()
    world.parts = BuildParts(BaseSource(world.cache), world.parts.installers, world.loader)
    second = world.build(
        base=f"oci:{tmp_path / 'out'}", output=tmp_path / "o2", docker_archive=tmp_path / "i.tar"
    )
    blobs = sorted(p.name for p in (tmp_path / "o2/blobs/sha256").iterdir())
    # the first image's layers (its base's and its own), then only the new config and manifest:
    # every layer of the second build is one the first already has
    assert len(blobs) == 1 + len(first.layers) + 2
    # the archive keeps every layer in order, duplicates included, as its config's diff_ids
    base = read_archive(tmp_path / "i.tar", BlobCache(tmp_path / "c3"))
    assert len(base.layers) == second.base_layers + len(second.layers)


def test_progress_reports_each_download_s_bytes_and_each_layer(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
    from progress_recorder import RecordingProgress

    world = World(tmp_path)
    progress = RecordingProgress()
    settings = {"lock": world.lock, "base": "made:py311", "output": tmp_path / "out"}
    result = build_image(BuildOptions(**settings), world.cache, world.parts, progress=progress)  # type: ignore[arg-type]
    sizes = {f"{name} {version}": len(data) for url, data in world.downloader.table.items()
             for name, version in [bd_wheels.wheel_name_version(Path(url))]}  # fmt: skip
    downloads = {item: n for item, n in progress.bytes.items() if not item.startswith("layer ")}
    assert downloads == sizes  # every byte of every file, under its package's name
    assert all(progress.totals[item] == size for item, size in sizes.items())
    assert all(progress.finished[item] == "downloaded" for item in sizes)
    layers = {item: s for item, s in progress.finished.items() if item.startswith("layer ")}
    assert len(layers) == len(result.layers) and all("built" in s for s in layers.values())
    assert [p.split()[0] for p in progress.phases] == [
        "read",
        "base",
        "fetch",
        f"{len(result.layers)}",
        "write",
    ]
    assert f"fetch {len(sizes)} files ({len(sizes)} to download)" in progress.phases

    again = RecordingProgress()
    build_image(
        BuildOptions(**{**settings, "output": tmp_path / "again"}), world.cache, world.parts, progress=again
    )  # type: ignore[arg-type]
    assert f"fetch {len(sizes)} files (0 to download)" in again.phases
    assert all(status.startswith("cached") for status in again.finished.values()), again.finished


def test_the_locks_base_image_is_the_default_base_and_base_overrides_it(tmp_path: Path) -> None:
    world = World(tmp_path)
    wheels = [bd_wheels.make_wheel(tmp_path / "w", "six", "1.16.0")]
    world.downloader.table = {w.resolve().as_uri(): w.read_bytes() for w in wheels}
    world.lock = bd_wheels.write_lock(tmp_path / "b.yml", wheels, base_image="made:py311")
    result = world.build(base=None)
    assert world.bases.asked == [("made:py311", "amd64")] and result.base == "made:py311"
    with pytest.raises(BuildError, match="Python"):
        world.build(base="made:py312")  # --base wins, and its Python must still be the lock's
    assert world.bases.asked[-1] == ("made:py312", "amd64")
    world.lock = bd_wheels.write_lock(tmp_path / "n.yml", wheels)
    with pytest.raises(BuildError, match="base:debian-bookworm-python: no such base"):
        world.build(base=None)
    assert world.bases.asked[-1] == ("base:debian-bookworm-python", "amd64")
