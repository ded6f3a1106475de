"""The cluster inventory as values: which nodes exist and how to reach and serve each one.

Pure: ``parse_inventory`` takes the parsed TOML document plus a lookup into the user's SSH
configuration (injected: ``ssh -G`` or paramiko, run by ``envctl.adapters.ssh_config``; no file
is read here) and returns an ``Inventory`` of ``NodeSpec`` values (``envctl.core.node``, the one
node model), with a warning for every SSH option it could not honour.

A setting of a node comes from, in order of precedence (fabric's rule):
``[nodes.NAME]`` > ``[groups.G]`` (a node in two groups that disagree is an error) >
the SSH configuration for the node's name > ``[defaults]`` > built-in defaults.
``jump`` and ``proxy_command`` are one choice, and so are ``key`` and ``identity_files``: the
layer that sets one drops both from the layers below. Every error names the file, the key path and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from envctl.core import hostlist
from envctl.core.names import decimal
from envctl.core.node import CONNECTIONS, RUNTIMES, NodeSpec
from envctl.core.registry_target import parse_mirror, parse_via
from envctl.core.shown import one_line, shown
from envctl.core.ssh_options import SshSettings, expand_proxy_command
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
    "identity_files",
    "identities_only",
    "proxy_command",
    "global_known_hosts",
    "accept_new_host_keys",
    "connection",
    "become",
    "become_user",
    "registry",
    "registry_mirror",
    "registry_ca",
)
#: settings that are not strings (checked by ``_Parser.check_typed``)
BOOL_KEYS = ("identities_only", "accept_new_host_keys", "become")
LIST_KEYS = ("identity_files", "global_known_hosts")
MAX_LIST = 64  # key files or known_hosts files of one node
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
#: the agent's own bound on each limit (int64 on the node's command line)
UNPACK_LIMIT_MAX = 2**62
DEFAULT_ONLY_KEYS = ("ssh_config",)
#: one way to reach a node through another: a layer that sets one drops the other
ROUTE_KEYS = ("jump", "proxy_command")
#: the keys to log in with: a layer that names any replaces those of the layers below
KEY_KEYS = ("key", "identity_files")
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
    "registry_ca": "/etc/ssl/harbor-ca.pem",
}

SshLookup = Callable[[str], SshSettings]


@dataclass(frozen=True)
class Inventory:
    """Every node of a cluster, in file order, and the groups that name them."""

    source: str
    nodes: tuple[NodeSpec, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # SSH options of some nodes that envctl does not honour

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
            "warnings": list(self.warnings),
        }


class _Parser:
    def __init__(self, data: Mapping[str, Any], source: str, ssh_lookup: SshLookup | None) -> None:
        self.data = data
        self.source = source
        self.ssh_lookup = ssh_lookup
        self.warned: dict[tuple[str, str, str], list[str]] = {}  # (source, option, why) -> hosts

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
        if key in BOOL_KEYS or key in LIST_KEYS or key in ("connection", "become_user"):
            return self.check_typed(path, key, value)
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
        if key in ("registry", "registry_mirror"):
            try:
                return str(parse_via(value, path)) if key == "registry" else parse_mirror(value, path)
            except InputError as exc:
                raise self.fail(path, exc.message.removeprefix(f"{path}: "), exc.hint) from None
        if key == "host" and re.search(r"\s", value):
            raise self.fail(path, f"expected a host name or address, got {shown(value)}", hint)
        return value

    def check_typed(self, path: str, key: str, value: Any) -> Any:
        """The settings that are booleans, lists of paths or one of a few words."""
        if key in BOOL_KEYS:
            if not isinstance(value, bool):
                raise self.fail(path, f"expected true or false, got {value!r}", hint=f"e.g. {key} = true")
            return value
        if key in LIST_KEYS:
            items = [value] if isinstance(value, str) else value
            if (
                not isinstance(items, list)
                or len(items) > MAX_LIST
                or not all(isinstance(i, str) and i.strip() and i.isprintable() for i in items)
            ):
                raise self.fail(
                    path,
                    f"expected a list of up to {MAX_LIST} paths, got {str(value)[:80]!r}",
                    hint=f'e.g. {key} = ["~/.ssh/id_ed25519"]',
                )
            return tuple(items)
        if key == "connection":
            if value not in CONNECTIONS:
                raise self.fail(path, f"expected one of {', '.join(CONNECTIONS)}, got {str(value)[:40]!r}")
            return value
        if not isinstance(value, str) or not _USER_NAME.match(value):
            raise self.fail(
                path, f"expected a user name, got {str(value)[:40]!r}", hint='e.g. become_user = "root"'
            )
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
        where = f"{found.source} Host {name}"
        out = {key: self.check_value(where, key, value) for key, value in found.values.items()}
        for option, why in found.warnings:
            self.warned.setdefault((found.source, option, why), []).append(name)
        return out

    def warnings(self) -> tuple[str, ...]:
        """One line per SSH option not honoured, naming the hosts that set it."""
        lines = []
        for (source, option, why), hosts in self.warned.items():
            names = ", ".join(dict.fromkeys(hosts[:5])) + (
                f" and {len(hosts) - 5} more" if len(hosts) > 5 else ""
            )
            lines.append(f"{source}: Host {names}: {option} {why}")
        return tuple(lines)


def _layer(values: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Put ``top`` over ``values``: a route (jump or proxy_command) replaces the other one, and
    keys named in ``top`` replace every key of ``values``."""
    for together in (ROUTE_KEYS, KEY_KEYS):
        if any(key in top for key in together):
            for key in together:
                values.pop(key, None)
    values.update(top)


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

    for name, settings in explicit.items():
        where = f"nodes.{name}"
        if all(key in settings for key in ROUTE_KEYS):
            raise parser.fail(where, "sets both jump and proxy_command", hint="keep one of them")
    if all(key in defaults for key in ROUTE_KEYS):
        raise parser.fail("defaults", "sets both jump and proxy_command", hint="keep one of them")

    def layered(name: str) -> dict[str, Any]:
        values: dict[str, Any] = {"host": name, "user": local_user}
        _layer(values, {k: v for k, v in defaults.items() if k in NODE_KEYS})
        mine = explicit.get(name, {})
        if mine.get("connection", values.get("connection")) != "local":
            _layer(values, parser.from_ssh_config(name))
        _layer(values, mine)
        if values.get("connection") == "local":  # this machine: no SSH route applies
            for key in ROUTE_KEYS:
                values.pop(key, None)
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
        match = re.fullmatch(r"(?:ssh://)?(?:([^@\s]+)@)?([^@:\s\[\]]+|\[[^\]]+\])(?::(\d+))?", hop)
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
        if str(values.get("proxy_command", "")).lower() == "none":
            values.pop("proxy_command")
        spec = NodeSpec(name=name, jump=jump, groups=member, **values)
        if spec.proxy_command is not None:
            try:  # its tokens and the values they stand for are checked before any connect
                expand_proxy_command(
                    spec.proxy_command, host=spec.host, port=spec.port, user=spec.user, name=name
                )
            except InputError as exc:
                raise parser.fail(f"nodes.{name}.proxy_command", exc.message, exc.hint) from None
        return spec

    def build(name: str, depth: int = 0) -> NodeSpec:
        if depth > MAX_JUMP_DEPTH:
            raise parser.fail(
                f"nodes.{name}.jump", f"jump hosts nest deeper than {MAX_JUMP_DEPTH} (a cycle?)"
            )
        if name not in resolved:
            resolved[name] = make(name, layered(name), member_of[name], depth)
        return resolved[name]

    nodes = tuple(build(name) for name in order)
    return Inventory(source=source, nodes=nodes, groups=groups, warnings=parser.warnings())
