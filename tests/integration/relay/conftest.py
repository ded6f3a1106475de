"""Eight real sshd nodes in two racks for the relay tests, the sender's link shaped with tc.

Names: prefix ``rl`` and addresses inside 10.252.4.0/26 only (this area's share of the machine),
directory /var/tmp/ect-rl. A missing component (root, ip, tc, sshd) FAILS the tests; it never
skips them. The sandbox bridge is the sender's link: its tx counter is what this machine sent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures"))  # sandbox_nodes
from nd_oci import app_layers, write_layout

from envctl.adapters.oci_layout import OciImage, read_image
from envctl.adapters.ssh_pool import SSHPool

sys.path.insert(0, str(Path(__file__).parent))  # rl_helpers
from rl_helpers import DIRECTORY, RelayCluster, relay_sandbox


@pytest.fixture(scope="session")
def relay_cluster() -> Iterator[RelayCluster]:
    racks = {"rack1": "n[1-4]", "rack2": "n[5-8]"}
    with relay_sandbox("rl", 8, "10.252.4.0/26", DIRECTORY, racks) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pool() -> Iterator[SSHPool]:
    with SSHPool(io_timeout=5.0) as ssh:
        yield ssh


@pytest.fixture(scope="session")
def make_image(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., OciImage]:
    """``make_image(version, big)`` -> an OCI layout whose base layer holds ``big`` bytes of noise."""
    root = tmp_path_factory.mktemp("rl-images")

    def make(version: str, big: int) -> OciImage:
        where = root / f"{version}-{big}"
        if not where.exists():
            layers = app_layers(version, big=big)
            layers[0] = [*layers[0], ("file", f"data/{version}.txt", version.encode())]  # a distinct base
            write_layout(where, layers, ref="demo")
        return read_image(where)

    return make
