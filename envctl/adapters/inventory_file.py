"""Reading inventories from disk: envctl TOML (with the SSH configuration) and Ansible imports.

The parsing and validation rules live in the pure ``envctl.core.inventory``; this module does the
file I/O around them.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from envctl.adapters.files import read_toml, write_atomic
from envctl.core import ansible, toml_out
from envctl.core.inventory import Inventory, parse_inventory
from envctl.core.ssh_options import SshSettings
from envctl.errors import InputError

DEFAULT_SSH_CONFIG = "~/.ssh/config"


def load_inventory(path: Path, *, ssh_config: Path | str | None = DEFAULT_SSH_CONFIG) -> Inventory:
    """Read and validate an inventory file.

    ``ssh_config`` is the OpenSSH client configuration consulted for settings the inventory
    leaves out (``DEFAULT_SSH_CONFIG``: what the user's own ssh reads, ~/.ssh/config and
    /etc/ssh/ssh_config); the inventory's own ``[defaults] ssh_config`` overrides it (a path, or
    "" for none); ``None`` turns it off. It is resolved by ``ssh -G`` when OpenSSH's client is
    installed, else by paramiko (``envctl.adapters.ssh_config``).
    """
    from envctl.adapters.ssh_config import ssh_lookup

    data = read_toml(path, "inventory")
    defaults = data.get("defaults", {})
    if isinstance(defaults, dict) and "ssh_config" in defaults:
        value = defaults["ssh_config"]
        if not isinstance(value, str):
            raise InputError(f'{path}: defaults.ssh_config: expected a path or "", got {value!r}')
        ssh_config = value or None
    lookup = None
    if ssh_config is not None:
        config_path = None
        if ssh_config != DEFAULT_SSH_CONFIG:
            config_path = Path(os.path.expanduser(str(ssh_config)))
            if not config_path.is_absolute():
                config_path = path.parent / config_path
        lookup = ssh_lookup(config_path)
    user = getpass.getuser()
    if lookup is not None:
        # a first pass without SSH settings names the hosts, resolved then all at once
        asked: list[str] = []

        def record(name: str) -> SshSettings:
            asked.append(name)
            return SshSettings("", {})

        parse_inventory(data, source=str(path), ssh_lookup=record, local_user=user)
        lookup.prefetch(asked)
    return parse_inventory(data, source=str(path), ssh_lookup=lookup, local_user=user)


def import_ansible(
    path: Path, fmt: str | None = None, reader: str = "auto"
) -> tuple[str, dict[str, Any], dict[str, tuple[str, list[str]]]]:
    """Convert an Ansible inventory into envctl TOML text, its document and what was dropped
    (variable or ssh option -> why, and the hosts that had it).

    ``reader``: ``ansible`` (``ansible-inventory --list``), ``builtin``, or ``auto`` (the first
    when ansible-core is installed and no ``fmt`` is forced). The result is validated with the
    same rules as ``load_inventory`` before it is returned.
    """
    from envctl.adapters.ansible_inventory import read_ansible

    parsed, how = read_ansible(path, reader, fmt)
    document, dropped = ansible.to_document(parsed)
    parse_inventory(document, source=str(path))  # refuse to write what we could not read back
    header = f"# envctl inventory imported from {path.name} (read by {how})\n"
    return header + toml_out.dumps(document), document, dropped


def write_inventory(path: Path, text: str) -> None:
    """Write an inventory atomically: readers never see half a file."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write inventory: {exc}") from exc
