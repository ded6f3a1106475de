"""Reading inventories from disk: envctl TOML (with ~/.ssh/config) and Ansible INI / YAML imports.

The parsing and validation rules live in the pure ``envctl.core.inventory``; this module does the
file I/O around them.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from envctl.adapters.files import read_text, read_toml
from envctl.core import ansible, toml_out
from envctl.core.documents import loads_yaml
from envctl.core.inventory import Inventory, SshLookup, parse_inventory
from envctl.core.shown import one_line, shown
from envctl.errors import InputError

DEFAULT_SSH_CONFIG = "~/.ssh/config"


def _ssh_lookup(path: Path) -> SshLookup | None:
    """A lookup into an OpenSSH client config, or None when there is no such file."""
    import paramiko

    if not path.exists():
        return None
    text = read_text(path, "ssh config")  # a regular file, bounded: never blocks on a FIFO
    try:
        config = paramiko.SSHConfig.from_text(text)
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise InputError(f"{path}: cannot read ssh config: {one_line(str(exc))}") from exc

    def lookup(name: str) -> dict[str, Any]:
        try:
            return dict(config.lookup(name))
        except Exception as exc:  # paramiko raises several types for bad Match/Include lines
            raise InputError(f"{path}: Host {name}: {one_line(str(exc))}") from exc

    return lookup


def load_inventory(path: Path, *, ssh_config: Path | str | None = DEFAULT_SSH_CONFIG) -> Inventory:
    """Read and validate an inventory file.

    ``ssh_config`` is the OpenSSH config consulted for settings the inventory leaves out; the
    inventory's own ``[defaults] ssh_config`` overrides it ("" turns it off), ``None`` turns it off.
    """
    data = read_toml(path, "inventory")
    defaults = data.get("defaults", {})
    if isinstance(defaults, dict) and "ssh_config" in defaults:
        value = defaults["ssh_config"]
        if not isinstance(value, str):
            raise InputError(f'{path}: defaults.ssh_config: expected a path or "", got {shown(value)}')
        ssh_config = value or None
    lookup = None
    if ssh_config is not None:
        config_path = Path(os.path.expanduser(str(ssh_config)))
        if not config_path.is_absolute():
            config_path = path.parent / config_path
        lookup = _ssh_lookup(config_path)
    return parse_inventory(data, source=str(path), ssh_lookup=lookup, local_user=getpass.getuser())


def detect_format(path: Path, text: str) -> str:
    """``ini`` or ``yaml``, from the suffix or, failing that, the content."""
    if path.suffix in (".yml", ".yaml"):
        return "yaml"
    if path.suffix in (".ini", ".cfg"):
        return "ini"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "yaml" if first.startswith("---") or first.endswith(":") else "ini"


def import_ansible(path: Path, fmt: str | None = None) -> tuple[str, dict[str, Any], list[str]]:
    """Convert an Ansible inventory file into envctl TOML text, its document and ignored vars.

    The result is validated with the same rules as ``load_inventory`` before it is returned.
    """
    text = read_text(path, "inventory")
    fmt = fmt or detect_format(path, text)
    if fmt == "yaml":
        parsed = ansible.parse_yaml(loads_yaml(text, str(path)), str(path))
    else:
        parsed = ansible.parse_ini(text, str(path))
    document, ignored = ansible.to_document(parsed)
    parse_inventory(document, source=str(path))  # refuse to write what we could not read back
    header = f"# envctl inventory imported from {path.name} (Ansible {fmt})\n"
    return header + toml_out.dumps(document), document, ignored


def write_inventory(path: Path, text: str, *, force: bool = False) -> None:
    """Write an inventory atomically (readers never see half a file), as an owned output: a
    file that is not an inventory envctl wrote is replaced only with ``force``."""
    from envctl.adapters.outputs import INVENTORY, write_owned_file

    try:
        write_owned_file(path, text, INVENTORY, force=force)
    except OSError as exc:
        raise InputError(f"{path}: cannot write inventory: {exc.strerror}") from exc
