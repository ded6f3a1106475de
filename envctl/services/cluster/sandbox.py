"""A cluster on one machine: network namespaces on a bridge, each node with its own sshd.

``up`` writes its plan (envctl.core.sandbox) to a state file *before* it creates anything, so
``down`` can always remove exactly what exists, whatever step a crash interrupted. A failed ``up``
removes what it made before it reports the error.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.adapters import system
from envctl.adapters.files import read_text, write_atomic
from envctl.core import sandbox as core
from envctl.core import toml_out
from envctl.core.documents import loads_json
from envctl.core.sandbox import SandboxNode, SandboxPlan
from envctl.errors import EnvctlError, InputError, SandboxError

STATE_FILE = "sandbox.json"
DEFAULT_DIR = "/var/lib/envctl-sandbox"
SSHD = "/usr/sbin/sshd"
SSHD_READY_S = 20.0
DOCKERD_READY_S = 90.0


@dataclass(frozen=True)
class NodeStatus:
    """What is running of one sandbox node."""

    name: str
    address: str
    netns: str
    netns_exists: bool
    sshd_pid: int | None
    reachable: bool
    dockerd_pid: int | None
    docker_host: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DownReport:
    """What ``down`` removed; ``leftovers`` lists what it could not."""

    dir: str
    removed: tuple[str, ...]
    leftovers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"dir": self.dir, "removed": list(self.removed), "leftovers": list(self.leftovers)}


def require_root() -> None:
    """The sandbox creates namespaces and links: only root may."""
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (network namespaces, bridges, mounts)")


def load_plan(directory: str) -> SandboxPlan | None:
    """The plan recorded in ``directory``, or None if no sandbox state is there.

    The record must be exactly what ``plan_sandbox`` makes for its own options and this very
    directory: ``down`` stops, unmounts and deletes what it names, so a state file that was
    edited or copied (node roots elsewhere, another directory) is refused, not obeyed.
    """
    path = Path(directory, STATE_FILE)
    if not path.exists():
        return None
    data = loads_json(read_text(path, "sandbox state", SandboxError), str(path), SandboxError)
    if not isinstance(data, dict):
        raise SandboxError(f"{path}: not an envctl sandbox state", hint=_NOT_OURS)
    plan = core.plan_from_dict(data, str(path))
    try:
        expected = core.plan_sandbox(
            len(plan.nodes),
            directory=directory,
            prefix=plan.prefix,
            subnet=plan.subnet,
            runtime=plan.runtime,
            rate=plan.rate,
        )
    except EnvctlError as exc:
        raise SandboxError(f"{path}: not a state sandbox up wrote: {exc.message}", hint=_NOT_OURS) from None
    if plan != expected:
        raise SandboxError(
            f"{path}: records a sandbox other than the one in {directory} (edited or copied)",
            hint=_NOT_OURS,
        )
    return plan


_NOT_OURS = "remove the sandbox's namespaces and processes by hand; envctl will not act on this file"


def _check_free(plan: SandboxPlan) -> None:
    if load_plan(plan.dir) is not None:
        raise SandboxError(
            f"a sandbox is already recorded in {plan.dir}",
            hint=f"envctl sandbox down --dir {plan.dir}",
        )
    if Path(plan.dir).exists() and not _looks_like_sandbox(plan.dir):
        # down deletes the directory: it must hold nothing but what up makes
        raise InputError(
            f"--dir {plan.dir}: exists and holds files the sandbox did not make",
            hint="name a new or empty directory for the sandbox",
        )
    taken = [n.netns for n in plan.nodes if system.netns_exists(n.netns)]
    taken += [name for name in [plan.bridge, *(n.veth for n in plan.nodes)] if system.link_exists(name)]
    if taken:
        raise SandboxError(
            f"names already in use: {', '.join(taken)}",
            hint="another sandbox uses this --prefix; pick another or take it down",
        )
    network = ipaddress.IPv4Network(plan.subnet)
    for entry in json.loads(system.run(["ip", "-j", "-4", "addr"]) or "[]"):
        for addr in entry.get("addr_info", []):
            if ipaddress.IPv4Address(addr["local"]) in network:
                raise SandboxError(
                    f"subnet {plan.subnet} is already used by {entry['ifname']} ({addr['local']})",
                    hint="pick another --subnet",
                )


def _keygen(path: str, comment: str) -> str:
    system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    return Path(path + ".pub").read_text().split()[1]


def _make_node_files(plan: SandboxPlan, node: SandboxNode, client_pub: str) -> str:
    for sub in ("store", "opt", "tmp", "ssh"):
        Path(node.path(sub)).mkdir(parents=True, exist_ok=True)
    os.chmod(node.path("tmp"), 0o1777)
    host_key = _keygen(node.path("ssh", "ssh_host_ed25519_key"), f"envctl-sandbox {node.name}")
    write_atomic(Path(node.path("ssh", "authorized_keys")), client_pub)
    write_atomic(Path(node.path("ssh", "sshd_config")), core.sshd_config(node))
    write_atomic(Path(node.path("ssh", "shell-rc")), core.SHELL_RC)
    return f"{node.address} ssh-ed25519 {host_key}\n"


def _make_link(plan: SandboxPlan, node: SandboxNode) -> None:
    system.run(["ip", "netns", "add", node.netns])
    system.run(
        [
            "ip",
            "link",
            "add",
            node.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node.netns,
        ]
    )
    system.run(["ip", "link", "set", node.veth, "master", plan.bridge, "up"])
    prefixlen = plan.bridge_address.split("/")[1]
    system.run(["ip", "-n", node.netns, "addr", "add", f"{node.address}/{prefixlen}", "dev", "eth0"])
    system.run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
    system.run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
    if plan.rate:
        burst = str(core.tbf_burst(plan.rate))
        # every word is validated (prefix and rate by plan_sandbox), so splitting is safe
        tbf = f"rate {plan.rate} burst {burst} latency 50ms".split()
        system.run(["tc", "qdisc", "replace", "dev", node.veth, "root", "tbf", *tbf])


def _shell_rcs() -> list[str]:
    """The start-up files a command over SSH sources for root here (the sandbox logs in as root)."""
    import pwd

    home = pwd.getpwuid(0).pw_dir
    return [os.path.join(home, name) for name in (".bashrc", ".zshenv")]


def start_sshd(node: SandboxNode) -> None:
    """Start a node's sshd in its netns and a private mount namespace; wait until it listens."""
    script = core.sshd_launch_script(node, SSHD, shell_rcs=_shell_rcs())
    nsenter = ["nsenter", f"--net=/var/run/netns/{node.netns}"]
    system.run([*nsenter, "unshare", "-m", "--propagation", "private", "sh", "-c", script])
    # sshd listens before it writes its pid file: wait for both
    pidfile = Path(node.path("sshd.pid"))
    if not (
        system.wait_tcp(node.address, 22, SSHD_READY_S)
        and system.wait_for(lambda: system.read_pid(str(pidfile), "sshd") is not None, 5.0)
    ):
        log = system.tail(node.path("sshd.log"))
        raise SandboxError(f"{node.name}: sshd did not start within {SSHD_READY_S:g}s: {log}")


def _start_dockerd(node: SandboxNode) -> None:
    """Start the node's engine in its network and mount namespaces (sshd's), so containers
    bind-mounting /var/lib/envctl or /opt/envctl see the node's own copy."""
    sshd = system.read_pid(node.path("sshd.pid"), "sshd")
    if sshd is None:
        raise SandboxError(f"{node.name}: sshd is not running; cannot join its mount namespace")
    argv = [
        "nsenter",
        f"--net=/var/run/netns/{node.netns}",  # not `ip netns exec`: it remounts /sys
        f"--mount=/proc/{sshd}/ns/mnt",
        "dockerd",
        "--storage-driver=vfs",
        "--iptables=false",
        "--bridge=none",
        f"--data-root={node.path('docker')}",
        f"--exec-root={node.path('dx')}",
        f"--host={node.docker_host}",
        f"--pidfile={node.path('docker.pid')}",
    ]
    system.spawn(argv, node.path("dockerd.log"))


def up(plan: SandboxPlan) -> SandboxPlan:
    """Create the sandbox described by ``plan`` and write its inventory and known_hosts."""
    require_root()
    tools = ["ip", "ssh-keygen", "nsenter", "unshare", SSHD]
    tools += ["tc"] if plan.rate else []
    tools += ["dockerd"] if plan.runtime == "docker" else []
    system.require_tools(tools)
    _check_free(plan)
    Path(plan.dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(Path(plan.dir, STATE_FILE), json.dumps(plan.to_dict(), indent=2))
    try:
        for private in core.PRIVATE_PATHS:
            Path(private).mkdir(parents=True, exist_ok=True)  # bind-mount targets
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        client_pub = Path(plan.client_key + ".pub")
        _keygen(plan.client_key, "envctl-sandbox client")
        known = [_make_node_files(plan, node, client_pub.read_text()) for node in plan.nodes]
        system.run(["ip", "link", "add", plan.bridge, "type", "bridge"])
        system.run(["ip", "addr", "add", plan.bridge_address, "dev", plan.bridge])
        system.run(["ip", "link", "set", plan.bridge, "up"])
        for node in plan.nodes:
            _make_link(plan, node)
        for node in plan.nodes:
            start_sshd(node)
            if node.docker:
                _start_dockerd(node)
        for node in plan.nodes:
            sock = node.path("docker.sock")
            if node.docker and not system.wait_docker(sock, DOCKERD_READY_S):
                log = system.tail(node.path("dockerd.log"))
                raise SandboxError(f"{node.name}: dockerd did not answer within {DOCKERD_READY_S:g}s: {log}")
        write_atomic(Path(plan.known_hosts), "".join(known))
        header = f"# sandbox cluster written by `envctl sandbox up` ({plan.dir})\n"
        write_atomic(Path(plan.inventory), header + toml_out.dumps(core.inventory_document(plan)))
    except BaseException:
        with contextlib.suppress(EnvctlError):  # the first error is the one to report
            down(plan.dir)
        raise
    return plan


def down(directory: str) -> DownReport:
    """Remove the sandbox recorded in ``directory``: processes, namespaces, links, mounts, files.

    Idempotent: whatever part is already gone is skipped.
    """
    require_root()
    directory = os.path.abspath(directory)
    # decide what DIR is before touching anything: a sandbox (its state), the remains of an
    # `up` that crashed before writing it (only its own files), or nothing to do
    plan = load_plan(directory)
    if plan is None and Path(directory).exists() and not _looks_like_sandbox(directory):
        raise InputError(
            f"--dir {directory}: holds no sandbox state; refusing to touch it",
            hint="pass the --dir that `envctl sandbox up` was given",
        )
    removed: list[str] = []
    leftovers: list[str] = []
    if plan is not None:
        engines = [p for n in plan.nodes if (p := system.read_pid(n.path("docker.pid"), "dockerd"))]
        leftovers += [f"pid {p}" for p in system.stop(engines, grace=20.0)]  # stops its containers
        removed += [f"dockerd {pid}" for pid in engines]
        for node in plan.nodes:
            pids = system.netns_pids(node.netns)
            sshd = system.read_pid(node.path("sshd.pid"), "sshd")
            pids += [sshd] if sshd and sshd not in pids else []
            leftovers += [f"{node.name}: pid {p}" for p in system.stop(pids, grace=5.0)]
            removed += [f"{node.name}: {len(pids)} processes"] if pids else []
            if system.netns_exists(node.netns):
                system.run(["ip", "netns", "delete", node.netns], check=False)
                removed.append(f"netns {node.netns}")
            if system.netns_exists(node.netns):
                leftovers.append(f"netns {node.netns}")
        for link in [*(n.veth for n in plan.nodes), plan.bridge]:
            # a veth vanishes with its namespace, asynchronously: deleting it may race that
            if system.link_exists(link):
                system.run(["ip", "link", "delete", link], check=False)
                removed.append(f"link {link}")
            if not system.wait_gone(Path("/sys/class/net", link), 5.0):
                leftovers.append(f"link {link}")
    # only what the sandbox mounted: under its nodes' own directories (engines' mounts that
    # leaked into this namespace); nothing else under DIR, nothing above it
    for node in plan.nodes if plan is not None else ():
        for mount in system.mounts_under(node.root):
            system.run(["umount", "-l", mount], check=False)
            removed.append(f"mount {mount}")
    if Path(directory).exists():
        system.run(["rm", "-rf", "--one-file-system", directory], timeout=300)
        removed.append(f"dir {directory}")
    if leftovers:
        raise SandboxError(f"could not remove: {', '.join(leftovers)}", hint="re-run sandbox down")
    return DownReport(directory, tuple(removed), tuple(leftovers))


def _looks_like_sandbox(directory: str) -> bool:
    """An empty directory, or one ``up`` created but crashed in before its state file (only
    its own names)."""
    try:
        names = {p.name for p in Path(directory).iterdir()}
    except NotADirectoryError:
        return False
    return names <= {"id_ed25519", "id_ed25519.pub"}


def status(directory: str) -> tuple[SandboxPlan, tuple[NodeStatus, ...]]:
    """Per node: namespace, sshd, reachability and engine."""
    plan = load_plan(directory)
    if plan is None:
        raise SandboxError(f"no sandbox in {directory}", hint="envctl sandbox up --nodes 3")
    nodes = []
    for node in plan.nodes:
        exists = system.netns_exists(node.netns)
        nodes.append(
            NodeStatus(
                name=node.name,
                address=node.address,
                netns=node.netns,
                netns_exists=exists,
                sshd_pid=system.read_pid(node.path("sshd.pid"), "sshd"),
                reachable=exists and system.wait_tcp(node.address, 22, 1.0),
                dockerd_pid=system.read_pid(node.path("docker.pid"), "dockerd"),
                docker_host=node.docker_host,
            )
        )
    return plan, tuple(nodes)
