"""The one model of a node: how to reach it over SSH and how it receives environments.

Pure. The inventory (``envctl.core.inventory``) builds these; every multi-node command (push,
status, gc, rollback, exec, inventory check) takes them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Runtime = Literal["docker", "podman", "prefix", "oci"]
#: how envctl reaches a node: over SSH, or on this machine (Ansible's ``ansible_connection=local``)
Connection = Literal["ssh", "local"]
CONNECTIONS: tuple[Connection, ...] = get_args(Connection)
#: Every runtime a node can activate environments with. The node agent keeps its own copy (it
#: may not import the core); tests/unit/node/test_runtimes_agree.py holds the two together.
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
#: ``oci`` only stores the image: the one runtime that needs nothing installed on the node
DEFAULT_RUNTIME: Runtime = "oci"
DEFAULT_STORE = "/var/lib/envctl"
DEFAULT_PREFIX_ROOT = "/opt/envctl/envs"
DEFAULT_PYTHON = "python3"
#: OpenSSH's GlobalKnownHostsFile default: read, never written
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass(frozen=True)
class NodeSpec:
    """How to reach one node and what runs on it."""

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key: str | None = None  # private key file; None: the agent and the default keys
    # more private keys, tried in order after ``key`` (OpenSSH's IdentityFile lines)
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False  # only the key files, never the agent's other keys
    jump: NodeSpec | None = None  # reached through this node's SSH connection
    proxy_command: str | None = None  # OpenSSH's ProxyCommand: a shell command, %h %p %r %n %%
    runtime: Runtime = DEFAULT_RUNTIME
    store: str = DEFAULT_STORE
    prefix_root: str = DEFAULT_PREFIX_ROOT  # where the prefix runtime unpacks environments
    python: str = DEFAULT_PYTHON  # the interpreter that runs envctl's node agent
    known_hosts: str = "~/.ssh/known_hosts"  # read, and where accepted new keys are written
    global_known_hosts: tuple[str, ...] = DEFAULT_GLOBAL_KNOWN_HOSTS  # read only
    accept_new_host_keys: bool = False  # StrictHostKeyChecking accept-new; changed keys: refused
    docker_host: str | None = None  # node-local engine socket, e.g. unix:///run/docker.sock
    connect_timeout: float = 10.0
    groups: tuple[str, ...] = ()
    connection: Connection = "ssh"
    become: bool = False  # run the agent through `sudo -n` (as ``become_user``)
    become_user: str = "root"
    # limits on what one image may unpack to (prefix runtime); None: the agent's defaults
    unpack_max_entries: int | None = None
    unpack_max_bytes: int | None = None
    unpack_max_depth: int | None = None
    # registry delivery (docs/fanout.md): the registry ``--fanout auto`` pushes through, and a
    # pull-through mirror near the node (per group, typically) tried before the registry
    registry: str | None = None
    registry_mirror: str | None = None
    registry_ca: str | None = None  # a PEM CA bundle on the SENDER, for a registry's private CA

    @property
    def key_files(self) -> tuple[str, ...]:
        """Every private key file to try, in order (``key`` first), each once."""
        return tuple(dict.fromkeys(([self.key] if self.key else []) + list(self.identity_files)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the jump host is shown by name and address)."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key": self.key,
            "identity_files": list(self.identity_files),
            "identities_only": self.identities_only,
            "jump": None if self.jump is None else self.jump.to_dict(),
            "proxy_command": self.proxy_command,
            "runtime": self.runtime,
            "store": self.store,
            "prefix_root": self.prefix_root,
            "python": self.python,
            "known_hosts": self.known_hosts,
            "global_known_hosts": list(self.global_known_hosts),
            "accept_new_host_keys": self.accept_new_host_keys,
            "docker_host": self.docker_host,
            "connect_timeout": self.connect_timeout,
            "groups": list(self.groups),
            "connection": self.connection,
            "become": self.become,
            "become_user": self.become_user,
            "unpack_max_entries": self.unpack_max_entries,
            "unpack_max_bytes": self.unpack_max_bytes,
            "unpack_max_depth": self.unpack_max_depth,
            "registry": self.registry,
            "registry_mirror": self.registry_mirror,
            "registry_ca": self.registry_ca,
        }
