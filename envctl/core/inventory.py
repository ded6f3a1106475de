"""The cluster inventory as values: which nodes exist and how to reach and serve each one.

Pure: ``parse_inventory`` takes the parsed TOML document plus a lookup into ``~/.ssh/config``
(injected, so no file is read here) and returns an ``Inventory`` of ``NodeSpec`` values
(``envctl.core.node``, the one node model).

A setting of a node comes from, in order of precedence (fabric's rule):
``[nodes.NAME]`` > ``[groups.G]`` (a node in two groups that disagree is an error) >
``~/.ssh/config`` for the node's name > ``[defaults]`` > built-in defaults.
Every error names the file, the key path and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from envctl.core import hostlist
from envctl.core.names import decimal
from envctl.core.node import RUNTIMES, NodeSpec
from envctl.core.shown import one_line, shown
from envctl.errors import InputError

MAX_JUMP_DEPTH = 8
#: names the hostlists of one inventory may expand to, duplicates included (groups overlap), so
#: thirty groups of 100,000 names each in a 1 KB file are refused before one name is built
MAX_EXPANDED = 10 * hostlist.MAX_HOSTS
#: seconds: a day is already far longer than any SSH handshake
MAX_CONNECT_TIMEOUT = 86_400

#: settings a node may take from [defaults], its groups or its own table
NODE_KEYS = (
    "host",
    "port",
    "user",
    "key",
    "jump",
    "runtime",
    "store",
    "prefix_root",
    "python",
    "known_hosts",
    "docker_host",
    "connect_timeout",
    "unpack_max_entries",
    "unpack_max_bytes",
    "unpack_max_depth",
)
#: the agent's own bound on each limit (int64 on the node's command line)
UNPACK_LIMIT_MAX = 2**62
DEFAULT_ONLY_KEYS = ("ssh_config",)
#: example values for the hints of errors
_EXAMPLES = {
    "host": "10.0.0.1",
    "user": "root",
    "key": "~/.ssh/id_ed25519",
    "jump": "bastion",
    "runtime": "prefix",
    "store": "/var/lib/envctl",
    "prefix_root": "/opt/envctl",
    "python": "/usr/bin/python3",
    "known_hosts": "~/.ssh/known_hosts",
    "docker_host": "unix:///run/docker.sock",
}
#: inventory key -> paramiko.SSHConfig key it may come from
SSH_CONFIG_KEYS = {
    "host": "hostname",
    "port": "port",
    "user": "user",
    "key": "identityfile",
    "jump": "proxyjump",
    "known_hosts": "userknownhostsfile",
}

SshLookup = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class Inventory:
    """Every node of a cluster, in file order, and the groups that name them."""

    source: str
    nodes: tuple[NodeSpec, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise InputError(f"{self.source}: no node {shown(name)}", hint="see `envctl inventory show`")

    def select(self, limit: str | None) -> tuple[NodeSpec, ...]:
        """Nodes named by ``limit``: group names, node names or hostlists, comma separated."""
        if not limit:
            return self.nodes
        wanted: dict[str, None] = {}
        known = {spec.name for spec in self.nodes}
        for part in hostlist.split(limit):
            names = self.groups.get(part) or hostlist.expand(part)
            for name in names:
                if name not in known:
                    raise InputError(
                        f"{self.source}: --limit {shown(part)} names {shown(name)}, not a group or node",
                        hint=f"groups: {', '.join(sorted(self.groups)) or '(none)'}",
                    )
                wanted[name] = None
        return tuple(spec for spec in self.nodes if spec.name in wanted)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "source": self.source,
            "groups": {name: list(members) for name, members in self.groups.items()},
            "nodes": [spec.to_dict() for spec in self.nodes],
        }


class _Parser:
    def __init__(self, data: Mapping[str, Any], source: str, ssh_lookup: SshLookup | None) -> None:
        self.data = data
        self.source = source
        self.ssh_lookup = ssh_lookup

    def fail(self, where: str, message: str, hint: str | None = None) -> InputError:
        # the key path holds the user's own keys: one line, cut like any echoed value
        return InputError(f"{self.source}: {one_line(shown(where)[1:-1], 120)}: {message}", hint=hint)

    def table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def check_value(self, where: str, key: str, value: Any) -> Any:
        """Type-check one setting; returns it normalised."""
        path = f"{where}.{key}"
        if key == "port":
            number = decimal(value.strip(), 5) if isinstance(value, str) else value
            if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
                raise self.fail(
                    path, f"expected a port number 1-65535, got {shown(value)}", hint="e.g. port = 22"
                )
            return number
        if key == "connect_timeout":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            # nan compares false with everything and inf never times out: both are refused
            if not ok or not 0 < value <= MAX_CONNECT_TIMEOUT or not math.isfinite(value):
                raise self.fail(
                    path,
                    f"expected seconds, more than 0 and at most {MAX_CONNECT_TIMEOUT}, got {shown(value)}",
                    hint="e.g. connect_timeout = 10",
                )
            return float(value)
        if key.startswith("unpack_max_"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= UNPACK_LIMIT_MAX:
                raise self.fail(
                    path, f"expected a whole number >= 1, got {shown(value)}", hint=f"e.g. {key} = 1000000"
                )
            return value
        hint = f'e.g. {key} = "{_EXAMPLES.get(key, "...")}"'
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"expected a non-empty string, got {shown(value)}", hint)
        if not value.isprintable():
            raise self.fail(path, f"expected text without control characters, got {shown(value)}", hint)
        if key == "runtime" and value not in RUNTIMES:
            raise self.fail(path, f"expected one of {', '.join(RUNTIMES)}, got {shown(value)}", hint)
        if key in ("store", "prefix_root") and not value.startswith("/"):
            raise self.fail(path, f"expected an absolute path, got {shown(value)}", hint)
        if key == "host" and re.search(r"\s", value):
            raise self.fail(path, f"expected a host name or address, got {shown(value)}", hint)
        return value

    def settings(self, where: str, table: Mapping[str, Any], extra: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key in extra:
                continue
            if key == "address":
                key = "host"
            if key not in NODE_KEYS:
                raise self.fail(
                    f"{where}.{key}",
                    "unknown key",
                    hint=f"known keys: {', '.join(NODE_KEYS + extra)}",
                )
            out[key] = self.check_value(where, key, value)
        return out

    def from_ssh_config(self, name: str) -> dict[str, Any]:
        if self.ssh_lookup is None:
            return {}
        found = self.ssh_lookup(name)
        out: dict[str, Any] = {}
        for key, ssh_key in SSH_CONFIG_KEYS.items():
            value = found.get(ssh_key)
            if isinstance(value, list):
                value = value[0] if value else None
            if value is None or (key == "host" and value == name):
                continue
            if key == "known_hosts":
                value = str(value).split()[0]
            out[key] = self.check_value(f"~/.ssh/config Host {name}", key, value)
        return out


class _Budget:
    """Counts the names the hostlists expanded to: each expansion is bounded (``MAX_HOSTS``),
    this bounds their sum (``MAX_EXPANDED``)."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, names: int) -> None:
        self.used += names
        if self.used > MAX_EXPANDED:
            raise InputError(
                f"the hostlists up to here expand to over {MAX_EXPANDED} names in all",
                hint="name each node once, in one group or one [nodes] pattern",
            )


def parse_inventory(
    data: Mapping[str, Any],
    *,
    source: str,
    ssh_lookup: SshLookup | None = None,
    local_user: str = "root",
) -> Inventory:
    """Validate an inventory document and resolve every node's settings and jump host."""
    parser = _Parser(data, source, ssh_lookup)
    for key in data:
        if key not in ("defaults", "groups", "nodes"):
            raise parser.fail(key, "unknown table", hint="use [defaults], [groups.NAME], [nodes.NAME]")
    defaults = parser.settings("defaults", parser.table("defaults"), DEFAULT_ONLY_KEYS)

    groups: dict[str, tuple[str, ...]] = {}
    group_settings: dict[str, dict[str, Any]] = {}
    expanded = _Budget()
    for group, table in parser.table("groups").items():
        where = f"groups.{group}"
        if not isinstance(table, dict):
            raise parser.fail(where, "expected a table")
        members = table.get("nodes", [])
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise parser.fail(f"{where}.nodes", 'expected a list of hostlists, e.g. ["gpu[01-04]"]')
        try:
            groups[group] = hostlist.expand_all(members)  # at most MAX_HOSTS each
            expanded.take(len(groups[group]))
        except InputError as exc:
            raise parser.fail(f"{where}.nodes", exc.message, exc.hint) from None
        group_settings[group] = parser.settings(where, table, ("nodes",))

    node_settings: dict[str, dict[str, Any]] = {}
    for pattern, table in parser.table("nodes").items():
        where = f"nodes.{pattern}"
        if not isinstance(table, dict):
            raise parser.fail(where, "expected a table")
        try:
            names = hostlist.expand(pattern)
            expanded.take(len(names))
        except InputError as exc:
            raise parser.fail(where, exc.message, exc.hint) from None
        settings = parser.settings(where, table, ())
        for name in names:
            node_settings.setdefault(name, {}).update(settings)

    order: dict[str, None] = {}
    for members in groups.values():
        order.update(dict.fromkeys(members))
    order.update(dict.fromkeys(node_settings))
    if not order:
        raise parser.fail("nodes", "the inventory names no node", hint="add [nodes.NAME] or groups")
    if len(order) > hostlist.MAX_HOSTS:
        raise parser.fail("nodes", f"the inventory names over {hostlist.MAX_HOSTS} nodes", hint="split it")

    explicit: dict[str, dict[str, Any]] = {}
    member_of: dict[str, tuple[str, ...]] = {name: () for name in order}
    for group, members in groups.items():  # one pass: a name test per group was quadratic
        for name in dict.fromkeys(members):
            member_of[name] += (group,)
    for name in order:
        merged: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for group in member_of[name]:
            for key, value in group_settings[group].items():
                if key in merged and merged[key] != value:
                    raise parser.fail(
                        f"nodes.{name}.{key}",
                        f"groups {shown(origin[key])} and {shown(group)} disagree ({shown(merged[key])} vs {shown(value)})",
                        hint=f"set {key} in [nodes.{name}] to decide",
                    )
                merged[key], origin[key] = value, group
        merged.update(node_settings.get(name, {}))
        explicit[name] = merged

    def layered(name: str) -> dict[str, Any]:
        values: dict[str, Any] = {"host": name, "user": local_user}
        values.update({k: v for k, v in defaults.items() if k in NODE_KEYS})
        values.update(parser.from_ssh_config(name))
        values.update(explicit.get(name, {}))
        return values

    resolved: dict[str, NodeSpec] = {}

    def resolve_jump(owner: str, value: str, depth: int) -> NodeSpec | None:
        if value == "none":
            return None
        jump: NodeSpec | None = None
        for hop in value.split(","):
            hop = hop.strip()
            if hop == owner:
                raise parser.fail(f"nodes.{owner}.jump", "a node cannot be its own jump host")
            spec = build(hop, depth + 1) if hop in order else adhoc(owner, hop, depth + 1)
            jump = spec if jump is None else replace(spec, jump=jump)
        return jump

    def adhoc(owner: str, hop: str, depth: int) -> NodeSpec:
        match = re.fullmatch(r"(?:([^@\s]+)@)?([^@:\s\[\]]+|\[[^\]]+\])(?::(\d+))?", hop)
        if match is None:
            raise parser.fail(
                f"nodes.{owner}.jump", f"expected a node name or [user@]host[:port], got {shown(hop)}"
            )
        user, host, port = match.groups()
        values = layered(host.strip("[]"))
        values.pop("docker_host", None)
        if user:
            values["user"] = user
        if port:
            values["port"] = parser.check_value(f"nodes.{owner}.jump", "port", port)
        return make(hop, values, (), depth)

    def make(name: str, values: dict[str, Any], member: tuple[str, ...], depth: int) -> NodeSpec:
        jump_value = values.pop("jump", None)
        jump = None if jump_value is None else resolve_jump(name, str(jump_value), depth)
        return NodeSpec(name=name, jump=jump, groups=member, **values)

    def build(name: str, depth: int = 0) -> NodeSpec:
        if depth > MAX_JUMP_DEPTH:
            raise parser.fail(
                f"nodes.{name}.jump", f"jump hosts nest deeper than {MAX_JUMP_DEPTH} (a cycle?)"
            )
        if name not in resolved:
            resolved[name] = make(name, layered(name), member_of[name], depth)
        return resolved[name]

    return Inventory(source=source, nodes=tuple(build(name) for name in order), groups=groups)
