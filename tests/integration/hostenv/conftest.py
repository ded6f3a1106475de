"""Real parts for the host-runnable environment and pack tests: the debootstrap base, images
built by envctl from locks of wheels built here, and a sandbox of sshd nodes (prefix runtime).

Names: prefix ``he`` and addresses inside 10.252.6.0/27 only (this area's share of the machine).
A missing component (root, ip, sshd, debootstrap, gcc, mksquashfs) FAILS the tests; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "build"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "nodes"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))  # json_envelope, sandbox_nodes

from sandbox_nodes import running_sandbox  # noqa: E402

from envctl.core.sandbox import SandboxPlan  # noqa: E402

TOOLS = (
    "ip",
    "sshd",
    "nsenter",
    "unshare",
    "setpriv",
    "debootstrap",
    "gcc",
    "mksquashfs",
    "unsquashfs",
    "unzip",
)


def require_components() -> None:
    """Fail (never skip) when the real parts are missing."""
    if os.geteuid() != 0:
        pytest.fail("the host-env tests need root (network namespaces, a non-root user to run as)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install squashfs-tools gcc unzip debootstrap")


@pytest.fixture(scope="session")
def he_base() -> Path:
    """The debootstrap base (Debian bookworm + Python 3.11) as an OCI layout (cached)."""
    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.services.build.base_images import build_base, load_recipe

    require_components()
    recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
    return Path(build_base(recipe, BlobCache(default_cache_root()), load=False).layout)


@pytest.fixture(scope="session")
def he_lock(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``he_lock(version)``: a lock of ``thepkg`` VERSION (a console script ``thepkg-hello``) and six."""
    import bd_wheels

    root = tmp_path_factory.mktemp("he-locks")

    def make(version: str) -> Path:
        where = root / version
        lock = where / "conda-lock.yml"
        if not lock.exists():
            hello = (
                "def main():\n    import os, sys\n"
                "    print('hello', __version__, sys.executable, sys.argv[0], os.getcwd())\n"
            )
            wheels = [
                bd_wheels.make_wheel(
                    where / "wheels",
                    "thepkg",
                    version,
                    {"thepkg/__init__.py": f"__version__ = {version!r}\n{hello}"},
                    console_scripts={"thepkg-hello": "thepkg:main"},
                ),
                bd_wheels.make_wheel(where / "wheels", "six", "1.16.0"),
            ]
            bd_wheels.write_lock(lock, wheels, cuda=None)
        return lock

    return make


@pytest.fixture(scope="session")
def he_image(
    he_base: Path, he_lock: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``he_image(version)``: the OCI layout envctl builds from ``he_lock(version)``, env ``jobenv``."""
    from envctl.adapters.blob_cache import BlobCache
    from envctl.services.build.build import build_image
    from envctl.services.build.model import BuildOptions

    root = tmp_path_factory.mktemp("he-images")
    cache = BlobCache(root / "cache")

    def make(version: str) -> Path:
        layout = root / f"image-{version}"
        if not layout.exists():
            build_image(
                BuildOptions(lock=he_lock(version), base=f"oci:{he_base}", output=layout, env_name="jobenv"),
                cache,
            )
        return layout

    return make


@pytest.fixture(scope="session")
def he_cluster() -> Iterator[SandboxPlan]:
    """One prefix-runtime sshd node on 10.252.6.0/27 (directory /var/tmp/ect-he); always taken down."""
    require_components()
    with running_sandbox("he", 1, "10.252.6.0/27", runtime="prefix") as plan:
        yield plan


@pytest.fixture(scope="session")
def fake_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a stand-in for the host driver's ``libcuda.so.1`` (``cuInit`` returns
    42), found only through the host's LD_LIBRARY_PATH, never in the image."""
    where = tmp_path_factory.mktemp("he-driver")
    source = where / "cuda.c"
    source.write_text("int cuInit(unsigned int flags) { return 42 + (int)flags; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(where / "libcuda.so.1"), str(source)], check=True)
    return where


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
