"""Real parts for the verify tests: envctl-built images (a good one, one with a package broken on
purpose) and sandbox clusters of real sshd nodes.

Names: prefix ``vf*`` and addresses inside 10.252.2.0/27 only (this area's share of the machine):
three prefix-runtime nodes on 10.252.2.0/28, one docker-runtime node on 10.252.2.16/28.
A missing component (root, ip, sshd, dockerd, debootstrap) FAILS the tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envctl.core.sandbox import SandboxPlan

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "build"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "nodes"))

from sandbox_nodes import running_sandbox  # noqa: E402

TOOLS = ("ip", "sshd", "ssh-keygen", "nsenter", "unshare", "chroot", "mount", "debootstrap")
#: a free address in the prefix cluster's /28: no node answers there
GHOST = "10.252.2.14"


def require(*extra: str) -> None:
    """Fail (never skip) when the real parts are missing."""
    if os.geteuid() != 0:
        pytest.fail("verify tests need root (network namespaces, chroot)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS + extra if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: bash tests/run.sh installs them")


@pytest.fixture(scope="session")
def vf_cluster() -> Iterator[SandboxPlan]:
    """Three prefix-runtime nodes (n1..n3) on 10.252.2.0/28 (directory /var/tmp/ect-vf); always
    taken down."""
    require()
    with running_sandbox("vf", 3, "10.252.2.0/28", runtime="prefix") as plan:
        yield plan


@pytest.fixture(scope="session")
def vfd_cluster() -> Iterator[SandboxPlan]:
    """One docker-runtime node (its own dockerd) on 10.252.2.16/28 (directory /var/tmp/ect-vfd);
    always taken down."""
    require("dockerd", "docker")
    with running_sandbox("vfd", 1, "10.252.2.16/28", runtime="docker") as plan:
        yield plan


@dataclass(frozen=True)
class Images:
    """OCI layouts envctl built on the debootstrap base from real wheels."""

    good: Path  # torch (a stand-in), nvidia-cudnn-cu12, numpy, six: every import works
    broken: Path  # the same plus brokenpkg, whose import raises on purpose


@pytest.fixture(scope="session")
def vf_images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    """Both images, built once per session with ``envctl build``."""
    import bd_wheels
    from bd_cli import run_cli

    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.services.build.base_images import build_base, load_recipe

    require()
    recipe = load_recipe(ROOT / "images", "debian-bookworm-python")
    base = Path(build_base(recipe, BlobCache(default_cache_root()), load=False).layout)
    root = tmp_path_factory.mktemp("vf-images")
    wheels = bd_wheels.standard_wheels(root / "wheels", lib_mb=1)
    broken = bd_wheels.make_wheel(
        root / "wheels",
        "brokenpkg",
        "0.1",
        {"brokenpkg/__init__.py": "raise ImportError('broken on purpose by the test')\n"},
    )
    out = {}
    for name, files in (("good", wheels), ("broken", [*wheels, broken])):
        lock = bd_wheels.write_lock(root / f"{name}.conda-lock.yml", files)
        layout = root / name
        code, _, err = run_cli(
            ["build", str(lock), "--base", f"oci:{base}", "-o", str(layout)], root / "cache"
        )
        assert code == 0, err
        out[name] = layout
    return Images(**out)


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
