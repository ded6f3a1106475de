"""Sandbox clusters of real sshd nodes for the transport and sandbox tests.

Names: prefix ``ps*`` and addresses inside 10.251.7.0/24 only (this area's share of the machine).
A missing component (root, ip, sshd) FAILS the tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from envctl.adapters.inventory_file import load_inventory
from envctl.core.inventory import Inventory
from envctl.core.sandbox import SandboxPlan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))  # json_envelope, sandbox_nodes
import sandbox_nodes

TOOLS = ("ip", "tc", "sshd", "ssh-keygen", "nsenter", "unshare")


def require_components(*extra: str) -> None:
    """Fail (never skip) when the real parts are missing."""
    if os.geteuid() != 0:
        pytest.fail("sandbox tests need root (network namespaces)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS + extra if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install openssh-server iproute2 docker.io")


@contextmanager
def running_sandbox(
    name: str, count: int, subnet: str, *, runtime: str = "prefix", rate: str | None = None
) -> Iterator[SandboxPlan]:
    """Bring a sandbox up (directory /var/tmp/ect-NAME) and always take it down, even if the test
    or ``up`` fails."""
    require_components(*(("dockerd", "docker") if runtime == "docker" else ()))
    with sandbox_nodes.running_sandbox(name, count, subnet, runtime=runtime, rate=rate) as plan:
        yield plan


@pytest.fixture
def sandbox_components() -> None:
    """For tests that drive ``envctl sandbox`` themselves: fail unless root and the tools are here."""
    require_components()


@pytest.fixture(scope="session")
def make_sandbox() -> Callable[..., AbstractContextManager[SandboxPlan]]:
    """``with make_sandbox(prefix, count, subnet, **options) as plan:`` for one-off clusters."""
    return running_sandbox


@pytest.fixture(scope="session")
def cluster() -> Iterator[SandboxPlan]:
    """Three sshd nodes (prefix runtime), unshaped links: 10.251.7.0/26."""
    require_components()
    with running_sandbox("ps", 3, "10.251.7.0/26") as plan:
        yield plan


@pytest.fixture(scope="session")
def inventory(cluster: SandboxPlan) -> Inventory:
    """The inventory ``sandbox up`` wrote, read back the way users read it."""
    return load_inventory(Path(cluster.inventory))
