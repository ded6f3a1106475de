"""Eight real sshd nodes in two racks for the relay tests, the sender's link shaped with tc.

Names: prefix ``rl`` and addresses inside 10.252.4.0/26 only (this area's share of the machine),
directory /var/tmp/ect-rl. A missing component (root, ip, tc, sshd) FAILS the tests; it never
skips them. The sandbox bridge is the sender's link: its tx counter is what this machine sent.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures" / "nodes"))
sys.path.insert(0, str(Path(__file__).parents[2] / "fixtures"))  # sandbox_nodes
from nd_oci import app_layers, write_layout
from sandbox_nodes import running_sandbox

from envctl.adapters.inventory_file import load_inventory
from envctl.adapters.oci_layout import OciImage, read_image
from envctl.adapters.ssh_pool import SSHPool
from envctl.core import toml_out
from envctl.core.sandbox import inventory_document

sys.path.insert(0, str(Path(__file__).parent))  # rl_helpers
from rl_helpers import DIRECTORY, NODE_RATE, TOOLS, RelayCluster, shape_sender


@pytest.fixture(scope="session")
def relay_cluster() -> Iterator[RelayCluster]:
    if os.geteuid() != 0:
        pytest.fail("relay tests need root (network namespaces)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install openssh-server iproute2")
    with running_sandbox(
        "rl", 8, "10.252.4.0/26", runtime="prefix", rate=NODE_RATE, directory=DIRECTORY
    ) as plan:
        shape_sender(plan)
        document = inventory_document(plan)
        document["groups"] = {"rack1": {"nodes": ["n[1-4]"]}, "rack2": {"nodes": ["n[5-8]"]}}
        inventory = Path(DIRECTORY, "racks.toml")
        inventory.write_text(toml_out.dumps(document))
        yield RelayCluster(plan, list(load_inventory(inventory).nodes))


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
