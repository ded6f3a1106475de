"""``envctl base build NAME``: a recipe under images/ -> a cached, one-layer OCI base image."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.files import read_toml, write_atomic
from envctl.adapters.package_data import data_dir
from envctl.core.image import (
    DEFAULT_PATH,
    MEDIA_LAYER_GZIP,
    Layer,
    canonical_json,
    image_index,
    image_manifest,
    sha256_digest,
)
from envctl.core.image_check import Platform
from envctl.core.names import valid_name
from envctl.core.progress import NullProgress, Progress
from envctl.core.shown import shown
from envctl.errors import BuildError, InputError

BASE_FORMAT = 1
KINDS = ("debootstrap", "busybox")
#: the architectures a recipe may name (``arch``; default amd64): Debian's names, which are OCI's
ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str
    path: Path
    digest: str  # of the recipe file and envctl's base format: the cache key
    data: dict[str, Any]

    @property
    def arch(self) -> str:
        """The image's architecture (``arch`` in the recipe, default amd64)."""
        return str(self.data.get("arch", "amd64"))


@dataclass(frozen=True)
class BaseBuildResult:
    name: str
    layout: str
    image_digest: str
    reused: bool
    loaded: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.base/1``."""
        return {"schema": "envctl.base/1", **self.__dict__, "loaded": list(self.loaded)}


def default_images_dir() -> Path:
    """The recipes envctl ships (images/ in the package, or the checkout's); ``--images`` for others."""
    shipped = data_dir("images")
    if shipped is None:
        raise InputError("this envctl ships no images/ recipes", hint="pass --images DIR")
    return shipped


def load_recipe(images: Path, name: str) -> Recipe:
    """Read and check ``images/NAME/recipe.toml``."""
    path = images / valid_name("env", name, "base recipe") / "recipe.toml"
    if not path.is_file():
        known = sorted(p.parent.name for p in images.glob("*/recipe.toml"))
        hint = f"known: {', '.join(known)}" if known else f"{images} holds no NAME/recipe.toml"
        raise InputError(f"{path}: no such base recipe", hint=hint)
    data = read_toml(path, "base recipe")
    kind = data.get("kind")
    if kind not in KINDS:
        raise InputError(f"{path}: kind = {shown(kind)}", hint=f"one of: {', '.join(KINDS)}")
    if data.get("arch", "amd64") not in ARCHES:
        raise InputError(f"{path}: arch = {shown(data.get('arch'))}", hint=f"one of: {', '.join(ARCHES)}")
    if kind == "busybox" and data.get("arch", "amd64") != "amd64":
        raise InputError(f"{path}: arch: a busybox base copies this machine's busybox (amd64 only)")
    if not isinstance(data.get("epoch", 0), int):
        raise InputError(f"{path}: epoch must be an integer (seconds since 1970)")
    digest = sha256_digest(path.read_bytes() + f"format={BASE_FORMAT}".encode())
    return Recipe(name, str(kind), path, digest.split(":")[1][:16], data)


def _pointer(cache_root: Path, name: str) -> Path:
    return cache_root / "bases" / f"{name}.json"


def built_layout(name: str, cache_root: Path) -> Path:
    """The layout of the last ``envctl base build NAME``; BuildError when there is none."""
    valid_name("env", name, f"--base base:{name}", BuildError)
    try:
        layout = Path(json.loads(_pointer(cache_root, name).read_text())["layout"])
    except (OSError, ValueError, KeyError):
        raise BuildError(f"base:{name}: not built", hint=f"run `envctl base build {name}` first") from None
    if not (layout / "index.json").is_file():
        raise BuildError(f"base:{name}: {layout} is gone", hint=f"run `envctl base build {name}`")
    return layout


#: debootstrap's per-step verbs -> the phase they start (it alternates Retrieving and Validating
#: for every package: one phase, so a CI log gets a handful of lines, not two per package)
DEBOOTSTRAP_PHASES = {
    "Retrieving": "download",
    "Validating": "download",
    "Checking": "download",
    "Resolving": "resolve dependencies",
    "Extracting": "extract",
    "Installing": "install core packages",
    "Unpacking": "unpack",
    "Configuring": "configure",
}


def debootstrap_phase(line: str) -> str | None:
    """The phase a debootstrap output line belongs to ("I: Unpacking libc6..." -> "unpack")."""
    if not line.startswith("I: "):
        return None
    verb = line[3:].split(" ", 1)[0]
    return DEBOOTSTRAP_PHASES.get(verb)


def _debootstrap_lines(progress: Progress) -> Callable[[str], None]:
    """Turn debootstrap's output into phases (each once, in order) and notes (every line)."""
    current: list[str | None] = [None]

    def on_line(line: str) -> None:
        phase = debootstrap_phase(line)
        if phase is not None and phase != current[0]:
            current[0] = phase
            progress.phase(f"debootstrap: {phase}")
        progress.note(line)

    return on_line


def _make_rootfs(recipe: Recipe, root: Path, progress: Progress) -> None:
    from envctl.adapters import rootfs

    if recipe.kind == "debootstrap":
        suite = str(recipe.data.get("suite", "bookworm"))
        foreign = recipe.arch != rootfs.host_arch()
        progress.phase(
            f"debootstrap {suite}" + (f" {recipe.arch} (--foreign, under qemu)" if foreign else "")
        )
        rootfs.debootstrap(
            root,
            suite,
            str(recipe.data.get("variant", "minbase")),
            [str(p) for p in recipe.data.get("include", [])],
            str(recipe.data.get("mirror", "http://deb.debian.org/debian")),
            on_line=_debootstrap_lines(progress),
            arch=recipe.arch if "arch" in recipe.data else None,
        )
        if "python" in recipe.data:
            # the root's own interpreter must run: under qemu, this proves the emulation works too
            progress.phase(f"smoke check: python3 in the {recipe.arch} root")
            rootfs.smoke_python(root, recipe.arch)
    else:
        progress.phase("busybox root filesystem")
        rootfs.busybox(root)


def build_base(
    recipe: Recipe, cache: BlobCache, load: bool | None = None, progress: Progress | None = None
) -> BaseBuildResult:
    """Build (or reuse) the recipe's image; ``load`` None means: load when an engine runs."""
    report = progress or NullProgress()
    from envctl.adapters import oci_layout
    from envctl.adapters.tarball import write_layer

    layout = cache.root / "bases" / f"{recipe.name}-{recipe.digest}"
    reused = (layout / "index.json").is_file()
    if not reused:
        epoch = int(recipe.data.get("epoch", 0))
        cache.root.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"rootfs-{recipe.name}-", dir=cache.root))
        try:
            root.chmod(0o755)
            _make_rootfs(recipe, root, report)
            report.phase("layer (tar + gzip)")
            blob = write_layer(root, cache, epoch, keep_owner=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        layer = Layer(blob.digest, blob.diff_id, blob.size, MEDIA_LAYER_GZIP, f"base {recipe.name}")
        env = {
            "PATH": DEFAULT_PATH,
            **{str(k): str(v) for k, v in recipe.data.get("env", {}).items()},
        }
        created = "1970-01-01T00:00:00Z" if not epoch else _iso(epoch)
        config = canonical_json(
            {
                "architecture": recipe.arch,
                "os": "linux",
                "created": created,
                "config": {
                    "Env": [f"{k}={v}" for k, v in sorted(env.items())],
                    "Cmd": list(recipe.data.get("cmd", ["/bin/sh"])),
                    "Labels": {"dev.envctl.base.recipe": f"{recipe.name}@{recipe.digest}"},
                },
                "rootfs": {"type": "layers", "diff_ids": [blob.diff_id]},
                "history": [{"created": created, "created_by": f"envctl base {recipe.kind}"}],
            }
        )
        manifest = canonical_json(image_manifest(sha256_digest(config), len(config), (layer,), {}))
        index = image_index(sha256_digest(manifest), len(manifest), "latest")
        report.phase("OCI layout")
        # the cache is envctl's own store: a layout left there without a marker is ours too
        oci_layout.write_layout(layout, cache, [blob.digest], [config, manifest], index, force=True)
    write_atomic(_pointer(cache.root, recipe.name), json.dumps({"layout": str(layout)}))
    with oci_layout.build_errors():
        digest = oci_layout.read_image(layout, platform=Platform("linux", recipe.arch)).manifest.digest
    loaded = _maybe_load(recipe.name, layout, cache, load, report, recipe.arch)
    return BaseBuildResult(recipe.name, str(layout), digest, reused, loaded)


def _iso(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _maybe_load(
    name: str, layout: Path, cache: BlobCache, load: bool | None, progress: Progress, arch: str
) -> tuple[str, ...]:
    from envctl.adapters import docker_archive, oci_layout
    from envctl.adapters.docker_engine import engine_running, load_archive

    if load is False or (load is None and not engine_running()):
        return ()
    progress.phase("load into the Docker engine")
    base = oci_layout.read_base(layout, None, cache, arch)
    config = canonical_json(base.config)
    tag = f"envctl-base/{name}:latest"
    with tempfile.TemporaryDirectory(prefix="load-", dir=cache.root) as tmp:
        archive = Path(tmp) / "base.tar"
        docker_archive.write_archive(
            archive,
            cache,
            [layer.digest for layer in base.layers],
            {f"blobs/sha256/{sha256_digest(config).split(':')[1]}": config},
            sha256_digest(config),
            tag,
            0,
        )
        return tuple(load_archive(archive))
