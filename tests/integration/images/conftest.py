"""Real services for the build tests: a private Docker engine and the debootstrap base image.

The engine listens on unix:///run/bd-docker.sock with its own data/exec roots under /tmp/bd-*;
one already answering there is reused. The base is built once and cached on disk (keyed by its
recipe's hash) under $ENVCTL_CACHE or ~/.cache/envctl, so later sessions skip debootstrap.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "build"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))  # json_envelope


@pytest.fixture(scope="session")
def bd_docker() -> Iterator[str]:
    """DOCKER_HOST of a running engine (started here when none answers on our socket)."""
    import bd_services

    previous = os.environ.get("DOCKER_HOST")
    try:
        process = bd_services.start_engine()
    except bd_services.EngineError as exc:
        pytest.fail(str(exc))
    os.environ["DOCKER_HOST"] = bd_services.DOCKER_HOST
    try:
        yield bd_services.DOCKER_HOST
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        bd_services.stop_engine(process)


@pytest.fixture(scope="session")
def bd_base_cache() -> Path:
    """The persistent cache that holds built base images between test sessions."""
    from envctl.adapters.blob_cache import default_cache_root

    return default_cache_root()


@pytest.fixture(scope="session")
def bd_base_layout(bd_base_cache: Path) -> Path:
    """The debootstrap base (Debian bookworm + Python 3.11) as an OCI layout."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.services.build.base_images import build_base, load_recipe

    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed (apt-get install debootstrap)")
    recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
    return Path(build_base(recipe, BlobCache(bd_base_cache), load=False).layout)


@pytest.fixture(scope="session")
def bd_arm64_base_layout() -> Path:
    """The arm64 debootstrap base (debootstrap --foreign, finished under qemu-user-static), cached
    under $ENVCTL_TEST_CACHE (default /var/cache/envctl-tests): cold it takes minutes."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.adapters.rootfs import require_emulation
    from envctl.errors import BuildError
    from envctl.services.build.base_images import build_base, load_recipe

    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed (apt-get install debootstrap)")
    try:
        require_emulation("arm64")
    except BuildError as exc:
        pytest.fail(f"{exc.message} ({exc.hint})")
    cache = Path(os.environ.get("ENVCTL_TEST_CACHE", "/var/cache/envctl-tests")) / "envctl"
    recipe = load_recipe(ROOT / "images", "debian-bookworm-python-arm64")
    return Path(build_base(recipe, BlobCache(cache), load=False).layout)


@pytest.fixture
def bd_multi_lock(tmp_path: Path, bd_wheelhouse: list[Path]) -> Path:
    """A lock for linux-64 (the standard wheelhouse and x86_64 wheels) and linux-aarch64
    (aarch64 wheels), written by the writer `envctl lock` uses."""
    import bd_wheels

    x86 = bd_wheels.arch_wheels(tmp_path / "x86_64", "x86_64")
    arm = bd_wheels.arch_wheels(tmp_path / "aarch64", "aarch64")
    amd64 = [w for w in bd_wheelhouse if not w.name.startswith("six-")] + x86
    return bd_wheels.write_lock(tmp_path / "conda-lock.yml", amd64, other_platforms={"linux-aarch64": arm})


@pytest.fixture(scope="session")
def bd_busybox_layout(bd_base_cache: Path) -> Path:
    """A base without Python (static busybox) as an OCI layout."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.services.build.base_images import build_base, load_recipe

    if shutil.which("busybox") is None:
        pytest.fail("busybox is not installed (apt-get install busybox-static)")
    recipe = load_recipe(ROOT / "images", "busybox")
    return Path(build_base(recipe, BlobCache(bd_base_cache), load=False).layout)


@pytest.fixture(scope="session")
def bd_base_loaded(bd_docker: str, bd_base_cache: Path) -> str:
    """The debootstrap base loaded into the engine; returns its tag."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.services.build.base_images import build_base, load_recipe

    recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
    build_base(recipe, BlobCache(bd_base_cache), load=True)
    return "envctl-base/debian-bookworm-python:latest"


@pytest.fixture
def bd_cache(tmp_path: Path) -> Path:
    """A fresh, empty download/layer cache for one test."""
    return tmp_path / "cache"


@pytest.fixture
def bd_wheelhouse(tmp_path: Path) -> list[Path]:
    """Real wheels: fake torch (with a console script), nvidia-cudnn-cu12, numpy, six."""
    import bd_wheels

    return bd_wheels.standard_wheels(tmp_path / "wheelhouse")


@pytest.fixture
def bd_lock(tmp_path: Path, bd_wheelhouse: list[Path]) -> Path:
    """A lock for the wheelhouse, written by the writer `envctl lock` uses."""
    import bd_wheels

    return bd_wheels.write_lock(tmp_path / "conda-lock.yml", bd_wheelhouse)
