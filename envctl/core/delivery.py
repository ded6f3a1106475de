"""Pure models of delivering an image to nodes: targets, per-node results, the failure policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from envctl.core.transport import Transport
from envctl.errors import InputError

Runtime = Literal["docker", "podman", "prefix", "oci"]
RUNTIMES: tuple[str, ...] = ("docker", "podman", "prefix", "oci")
NodeStatus = Literal["ok", "unchanged", "failed", "skipped"]
ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

DEFAULT_STORE = "/var/lib/envctl"
DEFAULT_PREFIX_ROOT = "/opt/envctl/envs"


@dataclass(frozen=True)
class NodeTarget:
    """Where and how one node receives environments."""

    name: str
    runtime: Runtime = "prefix"
    store: str = DEFAULT_STORE
    prefix_root: str = DEFAULT_PREFIX_ROOT
    docker_host: str | None = None
    python: str = "python3"


#: How a service reaches one node: SSH in production, a local subprocess in tests.
Connect = Callable[["NodeTarget"], Transport]


@dataclass(frozen=True)
class NodeResult:
    """What happened on one node."""

    node: str
    status: NodeStatus
    reason: str | None = None
    digest: str | None = None
    previous: str | None = None
    bytes_sent: int = 0
    blobs_sent: int = 0
    resumed_from: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape for ``--json``."""
        return {
            "status": self.status,
            "reason": self.reason,
            "digest": self.digest,
            "previous": self.previous,
            "bytes_sent": self.bytes_sent,
            "blobs_sent": self.blobs_sent,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class DeliveryReport:
    """The per-node map of one push or rollback, and what it adds up to."""

    operation: str
    env: str
    digest: str | None
    nodes: Mapping[str, NodeResult] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)  # phase -> seconds

    @property
    def outcome(self) -> Literal["ok", "partial", "failed"]:
        """``ok`` when every node is ok or unchanged, ``failed`` when none is, else ``partial``."""
        good = sum(r.status in ("ok", "unchanged") for r in self.nodes.values())
        if good == len(self.nodes):
            return "ok"
        return "failed" if good == 0 else "partial"

    @property
    def exit_code(self) -> int:
        """0 when every node succeeded, 1 otherwise."""
        return 0 if self.outcome == "ok" else 1

    def as_json(self) -> dict[str, Any]:
        """Stable JSON shape for ``--json`` (schema ``envctl.push/1`` or ``envctl.rollback/1``)."""
        return {
            "schema": f"envctl.{self.operation}/1",
            "operation": self.operation,
            "env": self.env,
            "digest": self.digest,
            "outcome": self.outcome,
            "bytes_sent": sum(r.bytes_sent for r in self.nodes.values()),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "nodes": {name: r.as_json() for name, r in sorted(self.nodes.items())},
        }


def parse_max_fail(text: str | None, total: int) -> int | None:
    """``N`` or ``P%`` of ``total`` nodes may fail before activation stops; None: no limit."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)(%?)\s*", text)
    if not m:
        raise InputError(f"--max-fail: expected N or P%, got {text!r}")
    value = int(m.group(1))
    if m.group(2):
        if value > 100:
            raise InputError(f"--max-fail: {text!r} is over 100%")
        return value * total // 100
    return value


def default_env_name(ref_name: str | None, directory: str) -> str:
    """``registry/team/torch-train:v3`` -> ``torch-train``; else the layout directory's name."""
    if ref_name:
        return ref_name.split(":")[0].rsplit("/", 1)[-1].lower()
    return directory.lower()


def check_env_name(name: str) -> str:
    """Environment names become paths and image tags: lower-case, no slashes."""
    if not ENV_NAME.match(name):
        raise InputError(
            f"environment name {name!r} is not allowed",
            hint="use lower-case letters, digits, '.', '_' and '-' (max 63), starting alphanumeric",
        )
    return name
