"""Helpers of the relay tests (the sandbox's shape, the sender's byte counter)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox_nodes import running_sandbox

from envctl.adapters.inventory_file import load_inventory
from envctl.core import toml_out
from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan, inventory_document

TOOLS = ("ip", "tc", "sshd", "ssh-keygen", "nsenter", "unshare", "ss")
DIRECTORY = "/var/tmp/ect-rl"
SENDER_RATE = "100mbit"  # 12.5 MB/s: one image's time on the sender's link is measurable
NODE_RATE = "400mbit"


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def shape_sender(plan: SandboxPlan, rate: str = SENDER_RATE) -> None:
    sh(
        "tc",
        "qdisc",
        "replace",
        "dev",
        plan.bridge,
        "root",
        "tbf",
        "rate",
        rate,
        "burst",
        "256kb",
        "latency",
        "50ms",
    )


@dataclass(frozen=True)
class RelayCluster:
    plan: SandboxPlan
    nodes: list[NodeSpec]  # n1-n4 in rack1, n5-n8 in rack2

    def sent(self) -> int:
        """Bytes this machine has sent on its link to the nodes (the bridge's tx counter)."""
        return int(Path(f"/sys/class/net/{self.plan.bridge}/statistics/tx_bytes").read_text())


@contextmanager
def relay_sandbox(
    prefix: str, count: int, subnet: str, directory: str, racks: Mapping[str, str]
) -> Iterator[RelayCluster]:
    """``count`` prefix-runtime nodes, links at NODE_RATE, the sender's link shaped, and an
    inventory of ``racks`` (group -> node pattern). A missing component FAILS the tests."""
    if os.geteuid() != 0:
        pytest.fail("relay tests need root (network namespaces)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install openssh-server iproute2")
    with running_sandbox(
        prefix, count, subnet, runtime="prefix", rate=NODE_RATE, directory=directory
    ) as plan:
        shape_sender(plan)
        document = inventory_document(plan)
        document["groups"] = {group: {"nodes": [nodes]} for group, nodes in racks.items()}
        inventory = Path(directory, "racks.toml")
        inventory.write_text(toml_out.dumps(document))
        yield RelayCluster(plan, list(load_inventory(inventory).nodes))
