"""The one model of a node: how to reach it over SSH and how it receives environments.

Pure. The inventory (``envctl.core.inventory``) builds these; every multi-node command (push,
status, gc, rollback, exec, inventory check) takes them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Runtime = Literal["docker", "podman", "prefix", "oci"]
#: Every runtime a node can activate environments with. The node agent keeps its own copy (it
#: may not import the core); tests/unit/node/test_runtimes_agree.py holds the two together.
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
#: ``oci`` only stores the image: the one runtime that needs nothing installed on the node
DEFAULT_RUNTIME: Runtime = "oci"
DEFAULT_STORE = "/var/lib/envctl"
DEFAULT_PREFIX_ROOT = "/opt/envctl/envs"
DEFAULT_PYTHON = "python3"


@dataclass(frozen=True)
class NodeSpec:
    """How to reach one node and what runs on it."""

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key: str | None = None  # private key file; None: the agent and the default keys
    jump: NodeSpec | None = None  # reached through this node's SSH connection
    runtime: Runtime = DEFAULT_RUNTIME
    store: str = DEFAULT_STORE
    prefix_root: str = DEFAULT_PREFIX_ROOT  # where the prefix runtime unpacks environments
    python: str = DEFAULT_PYTHON  # the interpreter that runs envctl's node agent
    known_hosts: str = "~/.ssh/known_hosts"
    docker_host: str | None = None  # node-local engine socket, e.g. unix:///run/docker.sock
    connect_timeout: float = 10.0
    groups: tuple[str, ...] = ()
    # limits on what one image may unpack to (prefix runtime); None: the agent's defaults
    unpack_max_entries: int | None = None
    unpack_max_bytes: int | None = None
    unpack_max_depth: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the jump host is shown by name and address)."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key": self.key,
            "jump": None if self.jump is None else self.jump.to_dict(),
            "runtime": self.runtime,
            "store": self.store,
            "prefix_root": self.prefix_root,
            "python": self.python,
            "known_hosts": self.known_hosts,
            "docker_host": self.docker_host,
            "connect_timeout": self.connect_timeout,
            "groups": list(self.groups),
            "unpack_max_entries": self.unpack_max_entries,
            "unpack_max_bytes": self.unpack_max_bytes,
            "unpack_max_depth": self.unpack_max_depth,
        }
