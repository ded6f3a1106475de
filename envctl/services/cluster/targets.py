"""From an inventory to push targets and a way to connect to each (SSH, host keys verified)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from envctl.core.delivery import DEFAULT_PREFIX_ROOT, RUNTIMES, Connect, NodeTarget, Runtime
from envctl.core.transport import Transport
from envctl.errors import InputError

if TYPE_CHECKING:
    from envctl.core.node import NodeSpec


def target_of(spec: NodeSpec) -> NodeTarget:
    """The push target of one inventory node."""
    if spec.runtime not in RUNTIMES:
        raise InputError(f"node {spec.name}: runtime {spec.runtime!r} is not one of {RUNTIMES}")
    runtime: Runtime = spec.runtime  # type: ignore[assignment]
    return NodeTarget(spec.name, runtime, spec.store, DEFAULT_PREFIX_ROOT, spec.docker_host)


def ssh_connector(specs: Sequence[NodeSpec], accept_new_host_keys: bool = False) -> Connect:
    """Connect to a target by its inventory spec over SSH (paramiko, known_hosts enforced)."""
    by_name = {s.name: s for s in specs}

    def connect(target: NodeTarget) -> Transport:
        from envctl.adapters.ssh import connect as ssh_connect

        return ssh_connect(by_name[target.name], accept_new_host_keys=accept_new_host_keys)

    return connect


def load_targets(
    inventory: Path, limit: str | None, accept_new_host_keys: bool = False
) -> tuple[list[NodeTarget], Connect]:
    """Targets selected by ``limit`` from an inventory file, and their SSH connector."""
    from envctl.adapters.inventory_file import load_inventory

    specs = load_inventory(inventory).select(limit)
    return [target_of(s) for s in specs], ssh_connector(specs, accept_new_host_keys)
