"""Ansible connection variables -> envctl node settings, and why each other one is dropped.

Pure. A host's effective variables (after Ansible's precedence) map to settings; every variable,
and every ``ssh`` option inside ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``, that
envctl does not use comes back with the reason, so the import can say so.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

#: Ansible variable -> envctl node setting, taken as they are
DIRECT = {
    "ansible_host": "host",
    "ansible_ssh_host": "host",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "key",
    "ansible_private_key_file": "key",
    "ansible_become_user": "become_user",
}
SSH_ARGS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
#: ``ansible_connection`` values that mean "over SSH", as envctl connects anyway
SSH_CONNECTIONS = ("ssh", "paramiko", "paramiko_ssh", "smart", "ansible.builtin.ssh")
_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n")
#: ssh -o options envctl takes from the ssh arguments -> setting
_SSH_OPTIONS = {
    "proxyjump": "jump",
    "proxycommand": "proxy_command",
    "port": "port",
    "user": "user",
    "identityfile": "identity_files",
    "identitiesonly": "identities_only",
    "userknownhostsfile": "known_hosts",
}
#: ssh flags with a value envctl takes -> setting
_SSH_FLAGS = {"-J": "jump", "-p": "port", "-l": "user", "-i": "identity_files"}

Dropped = dict[str, str]  # what was dropped ("ansible_x", "ansible_ssh_common_args -o X=y") -> why


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def map_vars(effective: Mapping[str, Any]) -> tuple[dict[str, Any], Dropped]:
    """The envctl settings of one host's effective Ansible variables, and what was dropped."""
    settings: dict[str, Any] = {}
    dropped: Dropped = {}
    for var, value in effective.items():
        if isinstance(value, str) and "{{" in value:
            dropped[var] = "is a Jinja template: envctl does not evaluate templates"
        elif not isinstance(value, (str, int, float, bool)):
            dropped[var] = f"is a {type(value).__name__}, not a plain value (vaulted?)"
        elif var in DIRECT:
            settings[DIRECT[var]] = value
        elif var == "ansible_python_interpreter":
            if str(value).startswith("/"):
                settings["python"] = value
            else:
                dropped[var] = f"{str(value)[:40]!r}: envctl runs the agent with an absolute path or python3"
        elif var == "ansible_become":
            flag = _bool(value)
            if flag is None:
                dropped[var] = f"{str(value)[:40]!r} is not true or false"
            else:
                settings["become"] = flag
        elif var == "ansible_become_method":
            if str(value) not in ("sudo", "ansible.builtin.sudo"):
                dropped[var] = f"{str(value)[:40]!r}: envctl becomes root only through `sudo -n`"
        elif var in ("ansible_become_pass", "ansible_become_password"):
            dropped[var] = "envctl runs `sudo -n`: the node needs a NOPASSWD rule instead"
        elif var == "ansible_connection":
            if value == "local":
                settings["connection"] = "local"
            elif value not in SSH_CONNECTIONS:
                dropped[var] = f"{str(value)[:40]!r}: envctl connects over SSH or locally"
        elif var in SSH_ARGS:
            ssh_settings, ssh_dropped = ssh_args(var, str(value))
            settings.update(ssh_settings)
            dropped.update(ssh_dropped)
        else:
            dropped[var] = "is not used by envctl"
    if "become_user" in settings and not settings.get("become", False):
        settings.pop("become_user")  # Ansible ignores it without become; so does envctl
    return settings, dropped


def ssh_args(var: str, text: str) -> tuple[dict[str, Any], Dropped]:
    """The settings an ``ssh`` argument string gives (``-o ProxyJump=..``, ``-J``, ``-i``...)."""
    settings: dict[str, Any] = {}
    dropped: Dropped = {}
    try:
        words = shlex.split(text)
    except ValueError as exc:
        return {}, {var: f"cannot be split into arguments: {exc}"}
    i = 0
    while i < len(words):
        word = words[i]
        flag, attached = word[:2], word[2:]
        if flag == "-o" or flag in _SSH_FLAGS:
            value = attached
            if not value and i + 1 < len(words):
                i += 1
                value = words[i]
            if flag == "-o":
                key, _, option_value = value.replace("=", " ", 1).partition(" ")
                setting = _SSH_OPTIONS.get(key.lower())
                value = option_value.strip()
            else:
                key, setting = flag, _SSH_FLAGS[flag]
            if setting is None or not value:
                dropped[f"{var} {flag} {value[:60]}".strip() if flag != "-o" else f"{var} -o {key}"] = (
                    "is not honoured by envctl's SSH client"
                )
            elif setting == "identity_files":
                settings.setdefault("identity_files", []).append(value)
            elif setting == "identities_only":
                settings[setting] = _bool(value) is True
            else:
                settings[setting] = value
        else:
            dropped[f"{var} {word[:60]}"] = "is not honoured by envctl's SSH client"
        i += 1
    if "jump" in settings:
        settings["jump"] = ",".join(hop.removeprefix("ssh://") for hop in str(settings["jump"]).split(","))
        settings.pop("proxy_command", None)  # OpenSSH: the first of the two wins; envctl: the jump
    return settings, dropped
