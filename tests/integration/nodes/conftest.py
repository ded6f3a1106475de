"""A real sandbox cluster for the node-side tests: 3 sshd nodes, each with its own dockerd, and
(for the jump-host tests) 5 prefix nodes, the first of them the bastion of the others.

Names: prefix ``nd*`` and addresses inside 10.251.9.0/24 only (this area's share of the machine;
10.251.9.64/26 is the benchmark's).
A missing component (root, ip, sshd, dockerd, busybox) FAILS the tests; it never skips them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures"))  # sandbox_nodes
from nd_jump import JumpCluster
from nd_oci import Entry, write_image_blobs, write_layout, write_platform_index
from sandbox_nodes import running_sandbox

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.adapters.ssh_pool import SSHPool
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan

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
    """Three docker-runtime nodes on 10.251.9.0/26 (directory /var/tmp/ect-nd); always taken down."""
    require_components()
    with running_sandbox("nd", 3, "10.251.9.0/26", runtime="docker") as plan:
        yield plan


@pytest.fixture(scope="session")
def jump_cluster() -> Iterator[JumpCluster]:
    """Five prefix-runtime nodes on 10.251.9.128/27 (directory /var/tmp/ect-ndj); n1 is the bastion,
    its sshd logs logins."""
    from envctl.adapters import system
    from envctl.core import sandbox as plans
    from envctl.core import toml_out

    require_components()
    with running_sandbox("ndj", 5, "10.251.9.128/27", runtime="prefix") as plan:
        bastion = plan.nodes[0]
        # sshd logs each accepted login at INFO; SIGHUP makes it re-exec and read the new level
        config = Path(bastion.path("ssh", "sshd_config"))
        config.write_text(config.read_text().replace("LogLevel ERROR", "LogLevel INFO"))
        pid = system.read_pid(bastion.path("sshd.pid"), "sshd")
        assert pid is not None, "the bastion's sshd is not running"
        os.kill(pid, signal.SIGHUP)
        log = Path(bastion.path("sshd.log"))
        # at INFO the re-executed sshd says when it listens again (at ERROR nothing was logged)
        assert system.wait_for(lambda: "Server listening on" in log.read_text(errors="replace"), 10.0)
        document = plans.inventory_document(plan)
        for name in document["nodes"]:
            if name != bastion.name:
                document["nodes"][name]["jump"] = bastion.name
        inventory = Path(plan.dir, "behind-n1.toml")
        inventory.write_text(toml_out.dumps(document))
        yield JumpCluster(plan, str(inventory))


@pytest.fixture(scope="session")
def docker_targets(cluster: SandboxPlan) -> list[NodeSpec]:
    """The inventory's nodes, as push targets (runtime docker)."""
    from envctl.adapters.inventory_file import load_inventory

    nodes = list(load_inventory(Path(cluster.inventory)).nodes)
    assert {n.runtime for n in nodes} == {"docker"}
    return nodes


@pytest.fixture(scope="session")
def prefix_targets(docker_targets: list[NodeSpec]) -> list[NodeSpec]:
    """The same nodes with the prefix runtime (unpacked under /opt/envctl/envs)."""
    return [dataclasses.replace(t, runtime="prefix") for t in docker_targets]


@pytest.fixture(scope="session")
def pool() -> Iterator[SSHPool]:
    """The SSH pool the commands use (host keys checked), with a short I/O timeout for link faults."""
    with SSHPool(io_timeout=IO_TIMEOUT) as ssh:
        yield ssh


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
