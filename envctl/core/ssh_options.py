"""An OpenSSH client configuration, resolved for one host, as envctl node settings.

Pure. The options come from ``ssh -G HOST`` (OpenSSH resolves Include, Match, Host patterns and
defaults: what the user's own ssh would do) or, without OpenSSH's client, from paramiko's
``SSHConfig.lookup``; ``envctl.adapters.ssh_config`` runs either. Only options the configuration
actually sets become settings (``ssh -G`` prints every option: a value equal to OpenSSH's own
default for the host counts as unset), so ``[defaults]`` of the inventory still apply. An option
that changes how OpenSSH would connect or authenticate and that envctl cannot honour is reported
as a warning naming the option; nothing is dropped without a word.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envctl.errors import InputError

Options = Mapping[str, list[str]]

#: OpenSSH's default IdentityFile list: tried when the configuration names none
DEFAULT_IDENTITY = re.compile(r"^~/\.ssh/id_(rsa|dsa|ecdsa|ecdsa_sk|ed25519|ed25519_sk|xmss)$")

#: options that change how OpenSSH connects or authenticates and that envctl does not honour
#: (lower-case name as ``ssh -G`` prints it -> the name as ssh_config(5) writes it)
NOT_HONOURED = {
    "hostkeyalias": "HostKeyAlias",
    "certificatefile": "CertificateFile",
    "pkcs11provider": "PKCS11Provider",
    "securitykeyprovider": "SecurityKeyProvider",
    "knownhostscommand": "KnownHostsCommand",
    "addressfamily": "AddressFamily",
    "bindaddress": "BindAddress",
    "bindinterface": "BindInterface",
    "proxyusefdpass": "ProxyUseFdpass",
    "kexalgorithms": "KexAlgorithms",
    "ciphers": "Ciphers",
    "macs": "MACs",
    "hostkeyalgorithms": "HostKeyAlgorithms",
    "pubkeyacceptedalgorithms": "PubkeyAcceptedAlgorithms",
    "pubkeyacceptedkeytypes": "PubkeyAcceptedKeyTypes",
    "include": "Include",
}
#: values of options in NOT_HONOURED that mean "off" (then nothing is lost)
_OFF = {"none", "no", "false", "any", "internal", ""}


@dataclass(frozen=True)
class SshSettings:
    """What a host's SSH configuration sets, as inventory keys, and what envctl cannot honour."""

    source: str  # where the values come from, for messages: "ssh -G -F cfg" / "~/.ssh/config"
    values: Mapping[str, Any]  # inventory key -> value (validated by the inventory parser)
    warnings: tuple[tuple[str, str], ...] = ()  # (Option, what envctl does instead)


def parse_ssh_g(text: str) -> dict[str, list[str]]:
    """``ssh -G`` output (``option value`` lines) -> option -> its values, in order."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            options.setdefault(key.lower(), []).append(value.strip())
    return options


def from_openssh(name: str, options: Options, baseline: Options, source: str) -> SshSettings:
    """Settings from ``ssh -G NAME``; ``baseline`` is ``ssh -G -F /dev/null`` of any host
    (OpenSSH's defaults, which depend on nothing but the local user)."""

    def is_set(key: str) -> bool:
        if key not in options:
            return False
        if key == "hostname":
            return options[key][0].lower() != name.lower()
        return options[key] != baseline.get(key)

    return _settings(name, options, is_set, source)


def from_paramiko(name: str, found: Mapping[str, Any], source: str) -> SshSettings:
    """Settings from paramiko's ``SSHConfig.lookup(NAME)`` (it returns only what is set; it
    fills in ``hostname`` itself)."""
    options: dict[str, list[str]] = {}
    for key, value in found.items():
        if value is None:
            continue
        options[str(key).lower()] = [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def is_set(key: str) -> bool:
        if key == "hostname":
            return key in options and options[key][0] != name
        return key in options

    # paramiko expanded ProxyCommand's %h, %p and %r itself; %n and %% are left to envctl
    return _settings(name, options, is_set, source)


def _first(options: Options, key: str) -> str:
    return options[key][0]


def _settings(name: str, options: Options, is_set: Any, source: str) -> SshSettings:
    values: dict[str, Any] = {}
    warnings: list[tuple[str, str]] = []
    if is_set("hostname"):
        values["host"] = _first(options, "hostname")
    if is_set("port"):
        values["port"] = _first(options, "port")
    if is_set("user"):
        values["user"] = _first(options, "user")
    if is_set("identityfile"):
        files = [f for f in options["identityfile"] if f.lower() != "none"]
        if files and not all(DEFAULT_IDENTITY.match(f) for f in files):
            values["identity_files"] = files
    if is_set("identitiesonly"):
        values["identities_only"] = _first(options, "identitiesonly").lower() in ("yes", "true")
    if is_set("identityagent"):
        agent = _first(options, "identityagent")
        if agent.lower() == "none":
            values["identities_only"] = True
        elif agent != "SSH_AUTH_SOCK":
            warnings.append(("IdentityAgent", f"{agent} is not used: envctl asks $SSH_AUTH_SOCK's agent"))
    jump = _first(options, "proxyjump") if is_set("proxyjump") else None
    command = _first(options, "proxycommand") if is_set("proxycommand") else None
    if jump is not None and jump.lower() != "none":
        values["jump"] = ",".join(hop.removeprefix("ssh://") for hop in jump.split(","))
    elif command is not None and command.lower() != "none":
        values["proxy_command"] = command
    if is_set("userknownhostsfile"):
        files = _words(options["userknownhostsfile"])
        if files and files[0].lower() != "none":
            values["known_hosts"] = files[0]
            # later user files are read like the global ones (OpenSSH writes only to the first)
            values["global_known_hosts"] = files[1:] + _words(options.get("globalknownhostsfile", []))
    if is_set("globalknownhostsfile"):
        values["global_known_hosts"] = [
            *values.get("global_known_hosts", []),
            *(
                f
                for f in _words(options["globalknownhostsfile"])
                if f not in values.get("global_known_hosts", [])
            ),
        ]
    if "global_known_hosts" in values:
        values["global_known_hosts"] = [f for f in values["global_known_hosts"] if f.lower() != "none"]
    if is_set("stricthostkeychecking"):
        strict = _first(options, "stricthostkeychecking").lower()
        if strict == "accept-new":
            values["accept_new_host_keys"] = True
        elif strict in ("no", "off", "false"):
            values["accept_new_host_keys"] = True
            warnings.append(
                ("StrictHostKeyChecking", f"{strict}: envctl records new host keys but refuses changed ones")
            )
    if is_set("connecttimeout") and _first(options, "connecttimeout").lower() != "none":
        seconds = _first(options, "connecttimeout")
        if not seconds.isdigit():
            raise InputError(f"{source}: Host {name}: ConnectTimeout: expected seconds, got {seconds[:40]!r}")
        values["connect_timeout"] = int(seconds)
    for key, option in NOT_HONOURED.items():
        if is_set(key) and _first(options, key).lower() not in _OFF:
            warnings.append((option, "is not honoured by envctl's SSH client (paramiko)"))
    return SshSettings(source, values, tuple(warnings))


def _words(values: list[str]) -> list[str]:
    return [word for value in values for word in value.split()]


#: ProxyCommand tokens envctl expands (ssh_config(5) TOKENS)
_TOKEN = re.compile(r"%(.)")
#: what a value must look like to be put into a shell command unquoted
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def expand_proxy_command(command: str, *, host: str, port: int, user: str, name: str) -> str:
    """``command`` with ``%h %p %r %n %%`` replaced (OpenSSH's ProxyCommand tokens).

    The values come from the inventory: each must be safe to place in a shell command as it is
    (the command runs as ``sh -c 'exec COMMAND'``, as OpenSSH runs it).
    """
    tokens = {"h": host, "p": str(port), "r": user, "n": name, "%": "%"}

    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if token not in tokens:
            raise InputError(
                f"node {name}: ProxyCommand {shlex.quote(command[:80])}: token %{token} is not supported",
                hint="envctl expands %h, %p, %r, %n and %%",
            )
        value = tokens[token]
        if token != "%" and not _SHELL_SAFE.match(value):
            raise InputError(
                f"node {name}: ProxyCommand: %{token} would be {value[:80]!r}, not safe in a shell"
            )
        return value

    return _TOKEN.sub(one, command)
