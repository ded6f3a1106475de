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

    def group(self, name: str) -> None:
        self.group_hosts.setdefault(name, [])
        self.group_vars.setdefault(name, {})
        self.children.setdefault(name, [])

    def add_host(self, group: str, pattern: str, variables: Mapping[str, Any]) -> None:
        self.group(group)
        port = _HOST_PORT.match(pattern)
        if port is not None:  # `host:2222` is the host with ansible_port, as Ansible reads it
            pattern = port.group(1).strip("[]") if port.group(1).startswith("[") else port.group(1)
            variables = {"ansible_port": int(port.group(2)), **variables}
        for host in expand_pattern(pattern, self.source):
            self.hosts.setdefault(host, {}).update(variables)
            if host not in self.group_hosts[group]:
                self.group_hosts[group].append(host)

    def merge(self, other: AnsibleInventory) -> None:
        """Add ``other`` (another file of the same inventory directory) to this one."""
        for host, variables in other.hosts.items():
            self.hosts.setdefault(host, {}).update(variables)
        for name in other.group_hosts:
            self.group(name)
            self.group_hosts[name] += [h for h in other.group_hosts[name] if h not in self.group_hosts[name]]
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


def expand_pattern(pattern: str, source: str) -> list[str]:
    """Expand Ansible's ``web[01:04]``, ``db-[a:c]`` and ``n[1:9:2]`` host ranges."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    low, high, stride = match.group(1), match.group(2), int(match.group(3) or 1)
    head, tail = pattern[: match.start()], pattern[match.end() :]
    if low.isdigit() and high.isdigit():
        width = len(low) if low.startswith("0") else 1
        values = [str(n).zfill(width) for n in range(int(low), int(high) + 1, max(stride, 1))]
    elif len(low) == 1 and len(high) == 1 and low in string.ascii_letters:
        letters = string.ascii_letters
        values = list(letters[letters.index(low) : letters.index(high) + 1 : max(stride, 1)])
    else:
        raise InputError(f"{source}: host range {pattern!r} is not numeric or single letters")
    if not values or len(values) > MAX_HOSTS:
        raise InputError(f"{source}: host range {pattern!r} expands to {len(values)} hosts")
    out: list[str] = []
    for value in values:
        out.extend(expand_pattern(head + value + tail, source))
        if len(out) > MAX_HOSTS:
            raise InputError(f"{source}: host range {pattern!r} expands to over {MAX_HOSTS} hosts")
    return out


def _scalar(text: str) -> Any:
    return int(text) if text.isdigit() else text


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
                raise InputError(f"{where}: unknown section {line!r}", hint="use [g], [g:vars], [g:children]")
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
                raise InputError(f"{where}: expected key=value in [{section}:vars], got {line!r}")
            inv.group_vars[section][key.strip()] = _scalar(value.strip().strip("'\""))
        else:
            variables: dict[str, Any] = {}
            for token in tokens[1:]:
                key, sep, value = token.partition("=")
                if not sep:
                    raise InputError(f"{where}: expected key=value after the host, got {token!r}")
                variables[key] = _scalar(value)
            inv.add_host(section, tokens[0], variables)
    return inv


def parse_yaml(data: Any, source: str) -> AnsibleInventory:
    """Walk Ansible's YAML inventory (``all: {hosts, vars, children}``), already parsed."""
    inv = AnsibleInventory(source)
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping of groups at the top level")

    def walk(name: str, body: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InputError(f"{source}: groups nest deeper than {MAX_DEPTH} at {name!r}")
        inv.group(name)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InputError(f"{source}: group {name!r}: expected hosts/vars/children")
        for key in body:
            if key not in ("hosts", "vars", "children"):
                raise InputError(f"{source}: group {name!r}: unknown key {key!r}")
        for host, variables in (body.get("hosts") or {}).items():
            if variables is not None and not isinstance(variables, Mapping):
                raise InputError(f"{source}: host {host!r}: expected a mapping of variables")
            inv.add_host(name, str(host), dict(variables or {}))
        inv.group_vars[name].update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            if child not in inv.children[name]:
                inv.children[name].append(str(child))
            walk(str(child), child_body, depth + 1)

    for name, body in data.items():
        walk(str(name), body, 0)
    return inv


def to_document(inv: AnsibleInventory) -> tuple[dict[str, Any], dict[str, tuple[str, list[str]]]]:
    """Build the envctl inventory document; also return what was dropped: each variable (or ssh
    option) -> (why, the hosts that had it)."""
    depth: dict[str, int] = {}

    def set_depth(group: str, level: int) -> None:
        if level > MAX_DEPTH:
            raise InputError(f"{inv.source}: group {group!r} is its own ancestor")
        if depth.get(group, -1) >= level:
            return
        depth[group] = level
        for child in inv.children.get(group, []):
            set_depth(child, level + 1)

    for group in inv.group_hosts:
        set_depth(group, 1 if group != "all" else 0)

    def members(group: str, level: int = 0) -> list[str]:
        if level > MAX_DEPTH:
            raise InputError(f"{inv.source}: group {group!r} is its own ancestor")
        out = list(inv.group_hosts.get(group, []))
        for child in inv.children.get(group, []):
            out.extend(h for h in members(child, level + 1) if h not in out)
        return out

    dropped: dict[str, tuple[str, list[str]]] = {}
    flat = {group: members(group) for group in inv.group_hosts}
    nodes: dict[str, dict[str, Any]] = {}
    ordered_groups = sorted(inv.group_hosts, key=lambda g: (depth.get(g, 1), g))
    for host, host_vars in inv.hosts.items():
        effective: dict[str, Any] = {}
        for group in ordered_groups:
            if group == "all" or host in flat[group]:
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
