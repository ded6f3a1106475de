"""The plan of a sandbox cluster: names, addresses, paths and config files, as values.

Pure. ``plan_sandbox`` decides everything ``envctl sandbox up`` will create, so that the plan can
be written down before anything exists and ``sandbox down`` can remove exactly that, even after a
crash left half of it behind.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from envctl.core.node import DEFAULT_STORE, RUNTIMES
from envctl.core.shown import shown
from envctl.errors import InputError

SCHEMA = "envctl.sandbox/1"
MAX_NODES = 200
#: the sandbox starts a dockerd per node when asked, never podman
SANDBOX_RUNTIMES = tuple(r for r in RUNTIMES if r != "podman")
STORE = DEFAULT_STORE
OPT = "/opt/envctl"
#: paths each node gets its own copy of (bind mounts in its mount namespace)
PRIVATE_PATHS = (STORE, OPT, "/tmp")
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,7}")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit)")
_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}
MAX_DIR_LEN = 48  # keeps dockerd's and containerd's unix socket paths under 108 bytes


@dataclass(frozen=True)
class SandboxNode:
    """One node: its namespace, link, address and the files that make its sshd (and dockerd)."""

    name: str  # inventory name, "n1"
    netns: str  # "ps-n1"
    veth: str  # host side of its link, "ps-v1"
    address: str
    root: str  # its private directory under the sandbox dir
    docker: bool

    def path(self, *parts: str) -> str:
        """A path inside this node's private directory."""
        return str(PurePosixPath(self.root, *parts))

    @property
    def docker_host(self) -> str | None:
        """The URL of this node's own engine, if it has one."""
        return f"unix://{self.path('docker.sock')}" if self.docker else None

    def mounts(self) -> tuple[tuple[str, str], ...]:
        """(private source, target) bind mounts for this node's mount namespace."""
        return (
            (self.path("store"), STORE),
            (self.path("opt"), OPT),
            (self.path("tmp"), "/tmp"),
        )


@dataclass(frozen=True)
class SandboxPlan:
    """Everything a sandbox consists of."""

    dir: str
    prefix: str
    subnet: str
    bridge: str
    bridge_address: str  # "10.251.7.1/24"
    runtime: str
    rate: str | None
    nodes: tuple[SandboxNode, ...]

    @property
    def client_key(self) -> str:
        """The private key every node accepts for root."""
        return str(PurePosixPath(self.dir, "id_ed25519"))

    @property
    def known_hosts(self) -> str:
        """The known_hosts file listing every node's generated host key."""
        return str(PurePosixPath(self.dir, "known_hosts"))

    @property
    def inventory(self) -> str:
        """The inventory file ``sandbox up`` writes."""
        return str(PurePosixPath(self.dir, "inventory.toml"))

    def to_dict(self) -> dict[str, Any]:
        """The state record (JSON) that ``sandbox down`` and ``status`` read back."""
        return {"schema": SCHEMA, **asdict(self)}


def plan_from_dict(data: dict[str, Any], source: str) -> SandboxPlan:
    """Rebuild a plan from its state record."""
    if data.get("schema") != SCHEMA:
        raise InputError(f"{source}: not an envctl sandbox state ({SCHEMA})")
    try:
        nodes = tuple(SandboxNode(**node) for node in data["nodes"])
        fields = {k: v for k, v in data.items() if k not in ("schema", "nodes")}
        return SandboxPlan(nodes=nodes, **fields)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{source}: malformed sandbox state: {exc}") from exc


def rate_bits(rate: str) -> int:
    """``"1gbit"`` -> 1_000_000_000 (tc's own units, decimal)."""
    match = _RATE.fullmatch(rate)
    if match is None:
        raise InputError(f"--rate {shown(rate)}: expected a rate like 200mbit or 1gbit")
    bits = int(float(match.group(1)) * _RATE_UNITS[match.group(2)])
    if bits < 8000:
        raise InputError(f"--rate {shown(rate)}: too slow to be useful (under 8kbit)")
    return bits


def tbf_burst(rate: str) -> int:
    """A token bucket size in bytes that lets tbf reach ``rate`` at any kernel HZ."""
    return max(256 * 1024, rate_bits(rate) // 8 // 100)


def plan_sandbox(
    count: int,
    *,
    directory: str,
    prefix: str = "ec",
    subnet: str = "10.251.0.0/24",
    runtime: str = "prefix",
    rate: str | None = None,
) -> SandboxPlan:
    """Validate the options of ``sandbox up`` and decide every name, address and path."""
    if not 1 <= count <= MAX_NODES:
        raise InputError(f"--nodes {count}: expected 1 to {MAX_NODES}")
    if not _PREFIX.fullmatch(prefix):
        raise InputError(f"--prefix {shown(prefix)}: expected 1-8 lowercase letters/digits")
    if runtime not in SANDBOX_RUNTIMES:
        raise InputError(f"--runtime {shown(runtime)}: expected one of {', '.join(SANDBOX_RUNTIMES)}")
    if rate is not None:
        rate_bits(rate)
    root = PurePosixPath(directory)
    if not root.is_absolute() or ".." in root.parts or len(str(root)) > MAX_DIR_LEN:
        raise InputError(
            f"--dir {shown(directory)}: expected an absolute path of at most {MAX_DIR_LEN} chars"
        )
    for private in PRIVATE_PATHS:
        if root == PurePosixPath(private) or root.is_relative_to(private):
            raise InputError(
                f"--dir {shown(directory)}: lies under {private}, which every node replaces by its own",
                hint="use a directory such as /var/lib/envctl-sandbox",
            )
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise InputError(f"--subnet {shown(subnet)}: {exc}") from exc
    hosts = list(network.hosts())
    if len(hosts) < count + 1:
        raise InputError(f"--subnet {subnet}: too small for a bridge and {count} nodes")
    nodes = tuple(
        SandboxNode(
            name=f"n{i}",
            netns=f"{prefix}-n{i}",
            veth=f"{prefix}-v{i}",
            address=str(hosts[i]),
            root=str(root / f"n{i}"),
            docker=runtime == "docker",
        )
        for i in range(1, count + 1)
    )
    return SandboxPlan(
        dir=str(root),
        prefix=prefix,
        subnet=str(network),
        bridge=f"{prefix}-br0",
        bridge_address=f"{hosts[0]}/{network.prefixlen}",
        runtime=runtime,
        rate=rate,
        nodes=nodes,
    )


def sshd_config(node: SandboxNode) -> str:
    """The sshd_config of one node: its own host key, key-only root login, internal sftp."""
    return "\n".join(
        [
            "# written by envctl sandbox up",
            f"ListenAddress {node.address}",
            "Port 22",
            f"HostKey {node.path('ssh', 'ssh_host_ed25519_key')}",
            f"PidFile {node.path('sshd.pid')}",
            f"AuthorizedKeysFile {node.path('ssh', 'authorized_keys')}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the sandbox dir may sit below a world-writable directory
            "AllowTcpForwarding yes",  # nodes serve as jump hosts
            "MaxStartups 200",
            "MaxSessions 200",
            "ClientAliveInterval 15",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


#: a node's own shell start-up file (see ``sshd_launch_script``)
SHELL_RC = "# envctl sandbox node: sessions start with a clean shell, not this machine's own set-up\n"


def sshd_launch_script(node: SandboxNode, sshd: str = "/usr/sbin/sshd", shell_rcs: Sequence[str] = ()) -> str:
    """The ``sh -c`` script run in the node's fresh mount namespace: bind mounts, then sshd.

    ``shell_rcs`` are the login user's shell start-up files on this machine (``~/.bashrc``, which
    bash sources for every command sshd runs): each that exists is covered, in the node's
    namespace only, by the node's own empty one (``node.path("ssh", "shell-rc")``). The machine's
    developer set-up (pyenv or conda init, 0.2 s of CPU a command) is not a node's, and it would
    put the host's interpreter shims on every node's PATH."""
    steps = [f"mount --bind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in node.mounts()]
    clean = shlex.quote(node.path("ssh", "shell-rc"))
    for rc in shell_rcs:
        steps.append(f"{{ [ ! -f {shlex.quote(rc)} ] || mount --bind {clean} {shlex.quote(rc)}; }}")
    config = shlex.quote(node.path("ssh", "sshd_config"))
    log = shlex.quote(node.path("sshd.log"))
    steps.append(f"exec {shlex.quote(sshd)} -f {config} -E {log}")
    return " && ".join(steps)


def inventory_document(plan: SandboxPlan) -> dict[str, Any]:
    """A ready inventory for the sandbox (independent of the user's ~/.ssh/config)."""
    nodes: dict[str, Any] = {}
    for node in plan.nodes:
        nodes[node.name] = {
            "host": node.address,
            "port": 22,
            "user": "root",
            "key": plan.client_key,
            "known_hosts": plan.known_hosts,
            "runtime": plan.runtime,
            "store": STORE,
            "docker_host": node.docker_host,
        }
    return {
        "defaults": {"ssh_config": ""},
        "groups": {"sandbox": {"nodes": [f"n[1-{len(plan.nodes)}]"]}},
        "nodes": nodes,
    }
