"""Locks written by conda-lock: the real files in tests/fixtures/condalock (read, exported in
every format, built up to their first download) and locks of packages made here (a conda python,
md5-only entries, a ``noarch: python`` package), built with the real installers and fake base and
downloader (the integration tests run them in a container)."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest
import yaml

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.conda_install import CondaInstaller
from envctl.adapters.lockfile import read_lock
from envctl.adapters.wheel_install import WheelInstaller
from envctl.core.build_parts import BuildParts
from envctl.core.image import MEDIA_LAYER_GZIP, BaseImage, Layer
from envctl.core.lock import locked_env
from envctl.errors import BuildError, BuildFailure, LockError
from envctl.services.lock.export import FORMATS, export_lock

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "condalock"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "build"))

import bd_wheels
from cl_locks import REAL_LOCKS, write_condalock

from .test_build_service import FILES, TableDownloader, World, _layer_members

ROOT = Path(__file__).resolve().parents[2]
NAMES = [p.name for p in REAL_LOCKS]


def _raw_linux(path: Path) -> list[dict[str, object]]:
    raw = yaml.safe_load(path.read_text())
    return [p for p in raw["package"] if p["platform"] == "linux-64"]


def test_the_real_locks_are_there() -> None:
    assert len(REAL_LOCKS) == 6
    clay = ROOT / "fixtures/condalock/clay-2024-pytorch-cuda12.yml"
    assert len(clay.read_text().splitlines()) == 22174


@pytest.mark.parametrize("path", REAL_LOCKS, ids=NAMES)
def test_every_real_lock_reads_and_gives_an_environment(path: Path) -> None:
    lock = read_lock(path)
    assert not lock.written_by_envctl and lock.content_hash
    raw = _raw_linux(path)
    env = locked_env(lock, "linux-64", source=str(path))
    # v1 repeats a package once per category: one file each
    assert len(env.files) == len({(p["manager"], p["name"]) for p in raw})
    conda_python = next(p for p in raw if p["name"] == "python" and p["manager"] == "conda")
    assert env.conda_python is not None and env.python == ".".join(
        str(conda_python["version"]).split(".")[:2]
    )
    md5_only = {p["name"] for p in raw if "sha256" not in p["hash"]}  # type: ignore[operator]
    assert {f.name for f in env.md5_only} == md5_only


def test_conda_lock_1x_entries_carry_only_md5() -> None:
    env = locked_env(
        read_lock(ROOT / "fixtures/condalock/condalock-test-lockfile.yml"), "linux-64", source="l"
    )
    conda = [f for f in env.files if f.manager == "conda"]
    assert len(conda) == 144 and all(f.md5 and not f.sha256 for f in conda)
    assert all(f.sha256 for f in env.files if f.manager == "pip")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", REAL_LOCKS, ids=NAMES)
def test_every_real_lock_exports_in_every_format(path: Path, fmt: str, tmp_path: Path) -> None:
    raw = _raw_linux(path)
    out = tmp_path / "out"
    result = export_lock(path, fmt, platform="linux-64", output=out)  # type: ignore[arg-type]
    text = out.read_text()
    pip = {p["name"] for p in raw if p["manager"] == "pip"}
    conda = [p for p in raw if p["manager"] == "conda"]
    if fmt == "explicit":
        lines = [line for line in text.splitlines() if line.startswith(("http", "file:"))]
        assert result.packages == len(lines) == len({p["name"] for p in conda})
        # conda verifies an explicit file by md5: every conda-lock file has one per entry
        assert all(re.search(r"#[0-9a-f]{32}$", line) for line in lines)
    elif fmt == "requirements":
        assert result.packages == len(pip)
        named = {line.split(" @ ")[0] for line in text.splitlines() if " @ " in line}
        assert {n.lower() for n in named} == {n.lower() for n in pip}  # type: ignore[attr-defined]
    else:
        from packaging.pylock import Pylock

        from envctl.adapters.files import tomllib

        document = Pylock.from_dict(tomllib.loads(text))
        assert result.packages == len(document.packages) == len(pip)
        python = next(p for p in conda if p["name"] == "python")
        assert str(document.requires_python) == "==" + ".".join(str(python["version"]).split(".")[:2]) + ".*"


def test_a_github_archive_and_a_git_checkout_export_as_pep_751_archive_and_vcs(tmp_path: Path) -> None:
    from envctl.adapters.files import tomllib

    text = export_lock(ROOT / "fixtures/condalock/condalock-v3.0.3.yml", "pylock", platform="linux-64").text
    packages = {p["name"]: p for p in tomllib.loads(text)["packages"]}
    assert packages["cowsay"]["archive"]["url"].endswith("/archive/refs/tags/v6.1.tar.gz")
    assert packages["requests"]["vcs"] == {
        "type": "git",
        "url": "https://github.com/requests/requests.git",
        "commit-id": "3f07f990ac74f1e1691ba17ef8c14007f05846ab",
    }
    requirements = export_lock(
        ROOT / "fixtures/condalock/condalock-v3.0.3.yml", "requirements", platform="linux-64"
    ).text
    line = next(line for line in requirements.splitlines() if line.startswith("requests @"))
    assert (
        line
        == "requests @ git+https://github.com/requests/requests.git@3f07f990ac74f1e1691ba17ef8c14007f05846ab"
    )
    assert "pip --require-hashes refuses it" in requirements


class NoPythonBase:
    """A base with a shell and no Python at all (busybox's shape)."""

    def __init__(self, cache: BlobCache, tmp: Path) -> None:
        self.cache, self.tmp = cache, tmp
        self.asked: list[tuple[str, str]] = []

    def resolve(self, ref: str, architecture: str) -> BaseImage:
        from envctl.adapters.tarball import write_layer

        self.asked.append((ref, architecture))
        root = self.tmp / f"busybox-{len(self.asked)}"
        (root / "bin").mkdir(parents=True)
        (root / "bin/sh").write_text("#!ELF\n")
        blob = write_layer(root, self.cache, 0)
        config = {
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [blob.diff_id]},
        }
        return BaseImage(
            ref,
            "sha256:" + "2" * 64,
            config,
            (Layer(blob.digest, blob.diff_id, blob.size, MEDIA_LAYER_GZIP, "b"),),
        )


def _conda_world(tmp_path: Path, md5_only: tuple[str, ...] = ()) -> World:
    """python 3.12 (a conda package), a noarch six, a library and a wheel, locked by conda-lock."""
    channel = tmp_path / "channel"
    python = bd_wheels.make_conda_package(
        channel / "linux-64",
        "python",
        "3.12.1",
        {"bin/python3.12": "#!ELF @PREFIX@\n", "lib/python3.12/os.py": ""},
    )
    zlib = bd_wheels.make_conda_package(channel / "linux-64", "libzlib", "1.3.1", {"lib/libz.so.1": "z"})
    six = _noarch_six(channel / "noarch")
    wheel = bd_wheels.make_wheel(
        tmp_path / "wheels", "hello-cl", "1.0", console_scripts={"hello-cl": "hello_cl:hello"}
    )
    world = World(tmp_path, installers={"pip": WheelInstaller(), "conda": CondaInstaller(tmp_path / "work")})
    world.lock = write_condalock(tmp_path / "conda-lock.yml", [python, zlib, six], [wheel], md5_only=md5_only)
    world.downloader.table = {p.resolve().as_uri(): p.read_bytes() for p in (python, zlib, six, wheel)}
    world.parts = BuildParts(NoPythonBase(world.cache, tmp_path), world.parts.installers, world.loader)
    return world


def _noarch_six(directory: Path) -> Path:
    import cl_python

    return cl_python.build_six(directory).path


def test_a_conda_python_lock_builds_on_a_base_without_python(tmp_path: Path) -> None:
    world = _conda_world(tmp_path)
    result = world.build(base="busybox-like")
    assert (result.python, result.python_from, result.env_name) == ("3.12", "conda", "default")
    assert result.to_dict()["env"]["python_from"] == "conda"
    assert result.verified.md5_only == () and result.verified.by_sha256 == 4
    prefix = "opt/envctl/envs/default"
    layers = {layer.name: _layer_members(world.cache, layer.digest) for layer in result.layers}
    python = layers["package:python"]
    # linked by rattler for the image's prefix: the placeholder is gone
    assert python[f"{prefix}/bin/python3.12"] == b"#!ELF /opt/envctl/envs/default\n"
    # the noarch package lands in the conda python's site-packages
    assert f"{prefix}/lib/python3.12/site-packages/six.py" in layers["package:six"]
    # the wheel too, and its script runs the env's python
    hello = layers["package:hello-cl"]
    assert f"{prefix}/lib/python3.12/site-packages/hello_cl/__init__.py" in hello
    assert (hello[f"{prefix}/bin/hello-cl"] or b"").startswith(b"#!/opt/envctl/envs/default/bin/python")
    # no venv: the prefix is the conda environment
    metadata = layers["metadata"]
    assert f"{prefix}/pyvenv.cfg" not in metadata and f"{prefix}/bin/python" not in metadata
    assert f"{prefix}/envctl/conda-lock.yml" in metadata
    config_path = tmp_path / "out/blobs/sha256" / result.config_digest.split(":")[1]
    env = dict(e.split("=", 1) for e in yaml.safe_load(config_path.read_text())["config"]["Env"])
    assert env["CONDA_PREFIX"] == "/opt/envctl/envs/default" and "VIRTUAL_ENV" not in env
    assert env["PATH"].startswith("/opt/envctl/envs/default/bin:")


def test_md5_only_entries_are_verified_by_md5_and_said_so(tmp_path: Path) -> None:
    world = _conda_world(tmp_path, md5_only=("libzlib", "six"))
    result = world.build(base="busybox-like")
    assert result.verified.md5_only == ("libzlib 1.3.1", "six 1.16.0")
    assert result.to_dict()["verified"] == {
        "by_sha256": 2,
        "by_md5": 2,
        "md5_only": ["libzlib 1.3.1", "six 1.16.0"],
    }
    assert (
        "2 by md5 only (the lock has no sha256 for them: libzlib 1.3.1, six 1.16.0)"
        in result.verified.summary()
    )
    # the SBOM names the sha256 of the verified bytes and the lock's md5
    metadata = _layer_members(world.cache, result.layers[-1].digest)
    sbom = yaml.safe_load(metadata["opt/envctl/envs/default/envctl/sbom.spdx.json"] or b"")
    zlib_url = next(u for u in world.downloader.table if "libzlib" in u)
    sums = {
        c["algorithm"]: c["checksumValue"]
        for p in sbom["packages"]
        if p["name"] == "libzlib"
        for c in p["checksums"]
    }
    data = world.downloader.table[zlib_url]
    assert sums == {"SHA256": hashlib.sha256(data).hexdigest(), "MD5": hashlib.md5(data).hexdigest()}
    # a second build finds the md5-pinned files in the cache: nothing is downloaded again
    opened = len(world.downloader.opened)
    again = world.build(base="busybox-like", output=tmp_path / "again")
    assert len(world.downloader.opened) == opened and again.image_digest == result.image_digest


def test_a_wrong_md5_stops_the_build_and_caches_nothing(tmp_path: Path) -> None:
    world = _conda_world(tmp_path, md5_only=("libzlib",))
    zlib_url = next(u for u in world.downloader.table if "libzlib" in u)
    world.downloader.table[zlib_url] = b"not the locked file"
    with pytest.raises(BuildError, match=r"libzlib 1\.3\.1: md5 mismatch for file://") as info:
        world.build(base="busybox-like")
    assert hashlib.md5(b"not the locked file").hexdigest() in info.value.message
    assert not (world.cache.root / "md5").exists() and not (tmp_path / "out").exists()
    blobs = world.cache.root / "blobs/sha256"
    assert hashlib.sha256(b"not the locked file").hexdigest() not in {p.name for p in blobs.iterdir()}


def test_an_entry_without_any_hash_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "l.yml"
    lock.write_text(
        "version: 1\nmetadata: {platforms: [linux-64], channels: [], content_hash: {linux-64: x}, sources: []}\n"
        "package:\n- {name: zlib, version: '1.3', manager: conda, platform: linux-64, dependencies: {},\n"
        "   url: 'https://c/zlib-1.3-0.conda', hash: {}, category: main, optional: false}\n"
    )
    with pytest.raises(LockError, match=r"package zlib 1\.3 has no sha256 or md5"):
        locked_env(read_lock(lock, validate=False), "linux-64", source=str(lock))


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("condalock-test-lockfile.yml", "pydashi 2.0.0a0 is not a wheel"),
        ("condalock-v3.0.3.yml", "cowsay 0.0.0 is not a wheel"),
    ],
)
def test_a_lock_with_an_sdist_is_refused_before_any_download(tmp_path: Path, name: str, first: str) -> None:
    world = World(tmp_path)
    world.lock = ROOT / "fixtures/condalock" / name
    with pytest.raises(LockError, match=first):
        world.build()
    assert world.downloader.opened == []


@pytest.mark.parametrize(
    "name", ["clay-2023-cudatoolkit.yml", "clay-2024-pytorch-cuda12.yml", "condalock-pip-deps.yml"]
)
def test_a_real_lock_builds_up_to_its_first_download(tmp_path: Path, name: str) -> None:
    """Past the lock and the base (its conda python needs none from the base) to the downloads,
    which the table here does not hold: the files live on conda.anaconda.org."""
    world = World(tmp_path)
    world.lock = ROOT / "fixtures/condalock" / name
    world.parts = BuildParts(NoPythonBase(world.cache, tmp_path), world.parts.installers, world.loader)
    with pytest.raises(BuildFailure, match=r"cannot fetch https://conda\.anaconda\.org/conda-forge/"):
        world.build()
    opened = set(world.downloader.opened)
    assert len(opened) >= 1 and all(
        url.startswith(("https://conda.anaconda.org/", "https://files.pythonhosted.org/")) for url in opened
    )
    assert not FILES.startswith("https://conda")


def test_render_links_conda_packages_into_the_context(tmp_path: Path) -> None:
    from envctl.services.build.render import render_dockerfile

    world = _conda_world(tmp_path, md5_only=("libzlib",))
    result = render_dockerfile(world.lock, tmp_path / "ctx", "envctl-base/busybox:latest", world.cache)
    assert (result.python_from, result.conda_packages, result.packages) == ("conda", 3, 4)
    assert result.verified["md5_only"] == ["libzlib 1.3.1"]
    ctx = tmp_path / "ctx"
    prefix = ctx / "conda/opt/envctl/envs/default"
    assert (prefix / "bin/python3.12").read_text() == "#!ELF /opt/envctl/envs/default\n"
    assert (prefix / "lib/python3.12/site-packages/six.py").is_file()
    dockerfile = (ctx / "Dockerfile").read_text()
    assert "COPY conda/ /\n" in dockerfile and "py=/opt/envctl/envs/default/bin/python3.12 && " in dockerfile
    assert "pyvenv.cfg" not in dockerfile and "command -v python" not in dockerfile
    assert "CONDA_PREFIX=/opt/envctl/envs/default" in dockerfile
    assert (ctx / "requirements.txt").read_text().startswith("hello-cl==1.0 --hash=sha256:")


def test_table_downloader_is_the_one_from_the_build_tests() -> None:
    assert TableDownloader({}).opened == []


def test_render_says_which_files_were_verified_by_md5_only(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from envctl.cli import cli

    world = _conda_world(tmp_path, md5_only=("libzlib",))
    args = [
        "render",
        str(world.lock),
        "--dockerfile",
        str(tmp_path / "ctx"),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "python: the lock's conda python (linked into conda/)" in result.output
    assert "1 files verified by md5 only (the lock has no sha256 for them): libzlib 1.3.1" in result.output


def test_a_symlink_one_package_makes_cannot_carry_anothers_files_out(tmp_path: Path) -> None:
    """Packages of one layer share a staging tree: package B's ``evil/x`` must not follow
    package A's ``evil -> outside`` link out of it."""
    import cl_python

    from envctl.adapters.conda_install import install_conda

    outside = tmp_path / "outside"
    outside.mkdir()
    link = cl_python._package(tmp_path / "ch", "a", "1", "h0", {}, links={"evil": str(outside)})
    files = cl_python._package(tmp_path / "ch", "b", "1", "h0", {"evil/x": b"owned"})
    staging, work = tmp_path / "staging", tmp_path / "work"
    prefix = "/opt/envctl/envs/t"
    install_conda(link.path, link.path.name, link.url, staging, prefix, work)
    assert (staging / prefix.lstrip("/") / "evil").is_symlink()
    with pytest.raises(
        BuildError, match=r"b-1-h0\.conda: opt/envctl/envs/t/evil is a symlink or file in the environment"
    ):
        install_conda(files.path, files.path.name, files.url, staging, prefix, work)
    assert list(outside.iterdir()) == []
