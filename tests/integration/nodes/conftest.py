"""A real sandbox cluster for the node-side tests: 3 sshd nodes, each with its own dockerd.

Names: prefix ``nd`` and addresses inside 10.251.9.0/24 only (this area's share of the machine).
A missing component (root, ip, sshd, dockerd, busybox) FAILS the tests; it never skips them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
from nd_oci import Entry, write_image_blobs, write_layout, write_platform_index

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.core.delivery import NodeTarget
from envctl.core.sandbox import SandboxPlan, plan_sandbox
from envctl.core.transport import Transport

TOOLS = ("ip", "tc", "sshd", "ssh-keygen", "nsenter", "unshare", "dockerd", "docker", "mount")
BUSYBOX = Path("/bin/busybox")
IO_TIMEOUT = 5.0  # seconds a stalled link may take before the transfer is called lost


def require_components() -> None:
    """Fail (never skip) when the real parts are missing."""
    if os.geteuid() != 0:
        pytest.fail("node integration tests need root (network namespaces, mounts)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if not BUSYBOX.is_file():
        missing.append("busybox (busybox-static)")
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: apt-get install openssh-server iproute2 docker.io busybox-static"
        )


@pytest.fixture(scope="session")
def cluster() -> Iterator[SandboxPlan]:
    """Three docker-runtime nodes on 10.251.9.0/26; always taken down."""
    from envctl.services.cluster import sandbox

    require_components()
    directory = f"/var/tmp/nd-{os.getpid()}"
    plan = plan_sandbox(3, directory=directory, prefix="nd", subnet="10.251.9.0/26", runtime="docker")
    sandbox.down(directory)
    try:
        yield sandbox.up(plan)
    finally:
        sandbox.down(directory)


@pytest.fixture(scope="session")
def docker_targets(cluster: SandboxPlan) -> list[NodeTarget]:
    """The inventory's nodes, as push targets (runtime docker)."""
    from envctl.services.cluster.targets import load_targets

    targets, _ = load_targets(Path(cluster.inventory), None)
    assert {t.runtime for t in targets} == {"docker"}
    return targets


@pytest.fixture(scope="session")
def prefix_targets(docker_targets: list[NodeTarget]) -> list[NodeTarget]:
    """The same nodes with the prefix runtime (unpacked under /opt/envctl/envs)."""
    return [dataclasses.replace(t, runtime="prefix") for t in docker_targets]


@pytest.fixture(scope="session")
def connect(cluster: SandboxPlan) -> Callable[[NodeTarget], Transport]:
    """SSH to a node by name with host keys checked, and a short I/O timeout for link faults."""
    from envctl.adapters.inventory_file import load_inventory

    specs = {s.name: s for s in load_inventory(Path(cluster.inventory)).nodes}

    def connect(t: NodeTarget) -> Transport:
        from envctl.adapters.ssh import connect as ssh_connect

        return ssh_connect(specs[t.name], io_timeout=IO_TIMEOUT)

    return connect


def busybox_layers(version: str, big: bytes = b"") -> list[list[Entry] | bytes]:
    """A runnable image: busybox as /bin/sh, plus an app layer (and optional bulk data)."""
    base: list[Entry] = [
        ("dir", "bin"),
        ("file", "bin/busybox", BUSYBOX.read_bytes(), 0o755),
        ("symlink", "bin/sh", "busybox"),
        ("symlink", "bin/cat", "busybox"),
    ]
    layers: list[list[Entry] | bytes] = [base]
    if big:
        layers.append([("dir", "data"), ("file", "data/blob.bin", big)])
    layers.append(
        [
            ("dir", "app"),
            ("file", "app/envmod.py", f"VERSION = {version!r}\n".encode()),
            ("file", "app/run.sh", f"#!/bin/sh\necho envmod {version}\n".encode(), 0o755),
        ]
    )
    return layers


@pytest.fixture(scope="session")
def make_image(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., OciImage]:
    """``make_image(version, big=b"")`` -> a fresh OCI layout on this machine."""
    root = tmp_path_factory.mktemp("nd-images")

    def make(version: str, big: bytes = b"") -> OciImage:
        where = root / f"{version}-{len(big)}"
        if not where.exists():
            write_layout(where, busybox_layers(version, big), ref="demo", cmd=["/bin/sh", "/app/run.sh"])
        return read_image(where)

    return make


@pytest.fixture
def make_platform_layout(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, str]]]:
    """``make_platform_layout(nested)`` -> a multi-platform layout (linux/amd64 and linux/arm64
    images with different app layers) and each architecture's manifest digest."""

    def make(nested: bool) -> tuple[Path, dict[str, str]]:
        form = "nested" if nested else "flat"
        root = tmp_path / f"multi-{form}"
        images = {
            arch: write_image_blobs(
                root, busybox_layers(f"{arch}-{form}"), cmd=["/bin/sh", "/app/run.sh"], architecture=arch
            )
            for arch in ("amd64", "arm64")
        }
        write_platform_index(root, images, ref="multi", nested=nested)
        return root, {arch: str(desc["digest"]) for arch, desc in images.items()}

    return make


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVCTL_STATE_DIR", str(tmp_path / "state"))
