"""Helpers of the relay tests (the sandbox's shape, the sender's byte counter)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from envctl.core.node import NodeSpec
from envctl.core.sandbox import SandboxPlan

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
