"""Turn an Ansible inventory (INI text, parsed YAML, or ``ansible-inventory --list`` JSON) into an
envctl inventory document.

Pure. Ansible resolves a host's variables as: ``all`` vars < parent groups < child groups < host
vars. envctl groups do not nest and two groups may not disagree, so the import applies Ansible's
order itself and writes each node's resulting settings into its own ``[nodes.NAME]`` table; groups
keep only their (flattened) members.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envctl.core.ansible_vars import Dropped, map_vars
from envctl.core.names import decimal
from envctl.core.shown import shown
from envctl.errors import InputError

MAX_DEPTH = 32
MAX_HOSTS = 100_000
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")
#: Ansible's ``host:port`` (a name or IPv4 address; IPv6 needs ``[addr]:port``)
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+(?:\[[^\]]+\][^:\[\]]*)*):(\d{1,5})$")


@dataclass
class AnsibleInventory:
    """Groups with their hosts, vars and children, as Ansible models them."""

    source: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> host vars
    group_hosts: dict[str, list[str]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    _members: dict[str, set[str]] = field(default_factory=dict, repr=False)  # group_hosts as sets

    def group(self, name: str) -> None:
        self._members.setdefault(name, set())
        self.group_hosts.setdefault(name, [])
        self.group_vars.setdefault(name, {})
        self.children.setdefault(name, [])

    def add_host(self, group: str, pattern: str, variables: Mapping[str, Any]) -> None:
        self.group(group)
        port = _HOST_PORT.match(pattern)
        if port is not None:  # `host:2222` is the host with ansible_port, as Ansible reads it
            pattern = port.group(1).strip("[]") if port.group(1).startswith("[") else port.group(1)
            variables = {"ansible_port": int(port.group(2)), **variables}
        hosts = expand_pattern(pattern, self.source)
        if len(self.hosts) + len(hosts) > MAX_HOSTS:
            raise InputError(f"{self.source}: over {MAX_HOSTS} hosts in all", hint=_RANGE_HINT)
        members = self._members[group]
        for host in hosts:
            self.hosts.setdefault(host, {}).update({str(k): v for k, v in variables.items()})
            if host not in members:
                members.add(host)
                self.group_hosts[group].append(host)

    def merge(self, other: AnsibleInventory) -> None:
        """Add ``other`` (another file of the same inventory directory) to this one."""
        for host, variables in other.hosts.items():
            self.hosts.setdefault(host, {}).update(variables)
        for name in other.group_hosts:
            self.group(name)
            members = self._members[name]
            for host in other.group_hosts[name]:
                if host not in members:
                    members.add(host)
                    self.group_hosts[name].append(host)
            self.group_vars[name].update(other.group_vars[name])
            self.children[name] += [c for c in other.children[name] if c not in self.children[name]]


def from_list_json(doc: Any, source: str) -> AnsibleInventory:
    """``ansible-inventory --list`` output: groups with hosts and children, and ``_meta.hostvars``
    holding each host's variables already resolved by Ansible (group_vars and host_vars included)."""
    if not isinstance(doc, Mapping):
        raise InputError(f"{source}: ansible-inventory --list did not print a JSON object")
    meta = doc.get("_meta") or {}
    hostvars = meta.get("hostvars") or {} if isinstance(meta, Mapping) else {}
    if not isinstance(hostvars, Mapping):
        raise InputError(f"{source}: ansible-inventory --list: _meta.hostvars is not a mapping")
    inv = AnsibleInventory(source)
    for name, body in doc.items():
        if name == "_meta":
            continue
        if not isinstance(body, Mapping):
            raise InputError(f"{source}: ansible-inventory --list: group {str(name)[:60]!r} is not a mapping")
        inv.group(str(name))
        for host in body.get("hosts") or []:
            variables = hostvars.get(host) or {}
            if not isinstance(variables, Mapping):
                raise InputError(f"{source}: ansible-inventory --list: host {str(host)[:60]!r}: bad vars")
            inv.hosts[str(host)] = dict(variables)
            if host not in inv.group_hosts[str(name)]:
                inv.group_hosts[str(name)].append(str(host))
        for child in body.get("children") or []:
            inv.group(str(child))
            inv.children[str(name)].append(str(child))
        inv.group_vars[str(name)].update(body.get("vars") or {})
        if len(inv.hosts) > MAX_HOSTS:
            raise InputError(f"{source}: over {MAX_HOSTS} hosts")
    return inv


_RANGE_HINT = "Ansible ranges look like web[01:04], db-[a:c] or n[1:9:2]"


def _range_values(low: str, high: str, stride: int) -> range | list[str] | None:
    """The values of one ``[low:high:stride]``: a range of numbers (nothing built yet: a range
    of a trillion numbers costs what a range of two does) or a list of letters; None if neither."""
    if decimal(low) is not None and decimal(high) is not None:
        return range(int(low), int(high) + 1, stride)
    letters = string.ascii_letters
    if len(low) == 1 and len(high) == 1 and low in letters and high in letters:
        return list(letters[letters.index(low) : letters.index(high) + 1 : stride])
    return None


def expand_pattern(pattern: str, source: str) -> list[str]:
    """Expand Ansible's ``web[01:04]``, ``db-[a:c]`` and ``n[1:9:2]`` host ranges.

    Every range is counted, and the product of all of them, before one name is built.
    """
    pieces: list[str | range | list[str]] = []
    widths: list[int] = []
    pos, total = 0, 1
    for match in _RANGE.finditer(pattern):
        low, high = match.group(1), match.group(2)
        stride = decimal(match.group(3) or "1", 9) or 1
        values = _range_values(low, high, stride)
        if values is None:
            raise InputError(
                f"{source}: host range {shown(pattern)}: [{shown(low, 20)}:{shown(high, 20)}] "
                "is not two numbers or two single letters",
                hint=_RANGE_HINT,
            )
        total *= len(values)
        if total == 0 or total > MAX_HOSTS:
            raise InputError(
                f"{source}: host range {shown(pattern)} expands to "
                + ("no host" if total == 0 else f"over {MAX_HOSTS} hosts"),
                hint=_RANGE_HINT,
            )
        pieces += [pattern[pos : match.start()], values]
        widths += [0, len(low) if isinstance(values, range) and low.startswith("0") else 1]
        pos = match.end()
    pieces.append(pattern[pos:])
    widths.append(0)
    names = [""]
    for piece, width in zip(pieces, widths, strict=True):
        if isinstance(piece, str):
            names = [name + piece for name in names]
        else:
            names = [name + str(value).zfill(width) for name in names for value in piece]
    return names


def _scalar(text: str) -> Any:
    number = decimal(text, 18)
    return text if number is None else number


def parse_ini(text: str, source: str) -> AnsibleInventory:
    """Parse Ansible's INI inventory format."""
    inv = AnsibleInventory(source)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        where = f"{source}:{number}"
        if line.startswith("[") and line.endswith("]"):
            name, _, kind = line[1:-1].partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children") or not name:
                raise InputError(
                    f"{where}: unknown section {shown(line)}", hint="use [g], [g:vars], [g:children]"
                )
            section = name
            inv.group(section)
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        if not tokens:
            continue
        if kind == "children":
            inv.group(tokens[0])
            inv.children[section].append(tokens[0])
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise InputError(f"{where}: expected key=value in [{section}:vars], got {shown(line)}")
            inv.group_vars[section][key.strip()] = _scalar(value.strip().strip("'\""))
        else:
            variables: dict[str, Any] = {}
            for token in tokens[1:]:
                key, sep, value = token.partition("=")
                if not sep:
                    raise InputError(f"{where}: expected key=value after the host, got {shown(token)}")
                variables[key] = _scalar(value)
            inv.add_host(section, tokens[0], variables)
    return inv


def parse_yaml(data: Any, source: str) -> AnsibleInventory:
    """Walk Ansible's YAML inventory (``all: {hosts, vars, children}``), already parsed."""
    inv = AnsibleInventory(source)
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping of groups at the top level")

    def section(group: str, body: Mapping[str, Any], key: str) -> Mapping[Any, Any]:
        value = body.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            shape = "a list" if isinstance(value, list) else type(value).__name__
            raise InputError(
                f"{source}: group {shown(group)}: {key}: expected a mapping, got {shape}",
                hint=f"write {key} as 'name: ...' lines (a host or group per key), not '- name' items",
            )
        return value

    def walk(name: str, body: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InputError(f"{source}: groups nest deeper than {MAX_DEPTH} at {shown(name)}")
        inv.group(name)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InputError(
                f"{source}: group {shown(name)}: expected hosts/vars/children",
                hint="a group is a mapping with hosts:, vars: and children:",
            )
        for key in body:
            if key not in ("hosts", "vars", "children"):
                raise InputError(f"{source}: group {shown(name)}: unknown key {shown(key)}")
        for host, variables in section(name, body, "hosts").items():
            if variables is not None and not isinstance(variables, Mapping):
                raise InputError(f"{source}: host {shown(host)}: expected a mapping of variables")
            inv.add_host(name, _name(host, source, "host"), dict(variables or {}))
        inv.group_vars[name].update({str(k): v for k, v in section(name, body, "vars").items()})
        for child, child_body in section(name, body, "children").items():
            child_name = _name(child, source, "group")
            if child_name not in inv.children[name]:
                inv.children[name].append(child_name)
            walk(child_name, child_body, depth + 1)

    for name, body in data.items():
        walk(_name(name, source, "group"), body, 0)
    return inv


def _name(value: object, source: str, what: str) -> str:
    """A host or group name from YAML: a string (or a plain number); ``~`` is no name."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(
        f"{source}: a {what} named {shown(value)}: expected a name",
        hint="YAML reads ~, null, yes/no and empty keys as values, not names: quote the name",
    )


def to_document(inv: AnsibleInventory) -> tuple[dict[str, Any], dict[str, tuple[str, list[str]]]]:
    """Build the envctl inventory document; also return what was dropped: each variable (or ssh
    option) -> (why, the hosts that had it)."""
    depth: dict[str, int] = {}

    def set_depth(group: str, level: int) -> None:
        if level > MAX_DEPTH:
            raise InputError(f"{inv.source}: group {shown(group)} is its own ancestor")
        if depth.get(group, -1) >= level:
            return
        depth[group] = level
        for child in inv.children.get(group, []):
            set_depth(child, level + 1)

    for group in inv.group_hosts:
        set_depth(group, 1 if group != "all" else 0)

    known: dict[str, list[str]] = {}  # each group's members once: shared children cost one walk

    def members(group: str, level: int = 0) -> list[str]:
        if level > MAX_DEPTH:
            raise InputError(f"{inv.source}: group {shown(group)} is its own ancestor")
        if group not in known:
            out = dict.fromkeys(inv.group_hosts.get(group, []))
            for child in inv.children.get(group, []):
                out.update(dict.fromkeys(members(child, level + 1)))
            known[group] = list(out)
        return known[group]

    dropped: dict[str, tuple[str, list[str]]] = {}
    flat = {group: members(group) for group in inv.group_hosts}
    in_group = {group: set(hosts) for group, hosts in flat.items()}
    nodes: dict[str, dict[str, Any]] = {}
    ordered_groups = sorted(inv.group_hosts, key=lambda g: (depth.get(g, 1), g))
    for host, host_vars in inv.hosts.items():
        effective: dict[str, Any] = {}
        for group in ordered_groups:
            if group == "all" or host in in_group[group]:
                effective.update(inv.group_vars.get(group, {}))
        effective.update(host_vars)
        settings, host_dropped = map_vars(effective)
        _note(dropped, host, host_dropped)
        nodes[host] = settings
    groups = {
        group: {"nodes": hosts}
        for group, hosts in flat.items()
        if group not in ("all", "ungrouped") and hosts
    }
    return {"groups": groups, "nodes": nodes}, dict(sorted(dropped.items()))


def _note(dropped: dict[str, tuple[str, list[str]]], host: str, found: Dropped) -> None:
    for what, why in found.items():
        dropped.setdefault(what, (why, []))[1].append(host)
